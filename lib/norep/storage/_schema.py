"""The on-disk format of a prediction store: names, schema checks and the checksum of ``store.json``.

Pure functions without file I/O (that is :mod:`norep.storage._io`), shared by :mod:`norep.storage` and the
modules that hold the groups of its methods (:mod:`norep.storage._create`, :mod:`norep.storage._write`,
:mod:`norep.storage._check`).
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import numpy as np

from norep import CATEGORIES
from norep.storage._io import StoreError, canonical_sha

SCHEMA_VERSION = 2
"""Version of the on-disk layout written by this ``norep``. Readers refuse newer versions.
Version 1 stores (no manifest, one unversioned directory per model) are read, and upgraded by the
first write."""

_STORE_FILE = "store.json"
_MODEL_META = "meta.json"
_CHUNK_ROWS = 8192
_RESERVED_INFO = {"schema_version", "dataset", "class_names", "splits", "models", "checksum"}
_SPLIT = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_SPLIT_RE = re.compile(rf"^{_SPLIT}$")
_FILE_RE = re.compile(rf"^(logits|embeddings)\.({_SPLIT})\.npy$")
_VERSION_RE = re.compile(r"^v([0-9]{1,9})$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAX_DIRNAME = 200
_DTYPES = ("float16", "float32")


def _model_dirname(name: str) -> str:
    return quote(name, safe="-_.+@=,")


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or name.startswith(".") or "\0" in name:
        raise StoreError(f"invalid model name {name!r}: a non-empty string not starting with '.'")
    n = len(_model_dirname(name).encode())
    if n > _MAX_DIRNAME:
        raise StoreError(
            f"model name too long: {n} bytes once encoded for the file system (at most "
            f"{_MAX_DIRNAME}); choose a shorter name"
        )
    return name


def _check_split_name(split: Any) -> str:
    if not isinstance(split, str) or not _SPLIT_RE.match(split):
        raise StoreError(
            f"invalid split name {split!r}: use 1-64 letters, digits, '_' or '-' (starting with a letter or digit)"
        )
    return split


def _check_finite(arr: np.ndarray, what: str) -> None:
    for start in range(0, arr.shape[0], _CHUNK_ROWS):
        block = np.asarray(arr[start : start + _CHUNK_ROWS])
        if not np.isfinite(block).all():
            bad = start + int(np.nonzero(~np.isfinite(block).all(axis=tuple(range(1, block.ndim))))[0][0])
            raise StoreError(f"{what} contains NaN or Inf (first at row {bad})")


def _argmax_rows(arr: np.ndarray) -> np.ndarray:
    out = np.empty(arr.shape[0], dtype=np.int64)
    for start in range(0, arr.shape[0], _CHUNK_ROWS):
        out[start : start + _CHUNK_ROWS] = np.asarray(arr[start : start + _CHUNK_ROWS]).argmax(axis=1)
    return out


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    if len(choices) <= 12:
        return f"; known: {', '.join(choices) or '(none)'}"
    return f"; {len(choices)} known (see Store.model_names())"


def _as_labels(split: str, labels: Any, n_classes: int | None) -> tuple[np.ndarray, bool]:
    arr = np.asarray(labels)
    if arr.dtype.hasobject:
        raise StoreError(f"split {split!r}: labels must be numbers, got Python objects")
    if arr.ndim == 1:
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(np.mod(arr, 1) == 0):
                arr = arr.astype(np.int64)
            else:
                raise StoreError(f"split {split!r}: labels must be integer class ids, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or (n_classes is not None and arr.max() >= n_classes)):
            raise StoreError(
                f"split {split!r}: labels out of range: found {arr.min()}..{arr.max()}, "
                f"expected 0..{(n_classes or 0) - 1} for {n_classes} class names"
            )
        return arr, False
    if arr.ndim == 2:
        if arr.shape[1] == 1:
            raise StoreError(
                f"split {split!r}: labels of shape {arr.shape}: give class ids as a 1-D array (N,), or "
                "multi-hot rows with one column per label"
            )
        if not np.isin(arr, (0, 1)).all():
            raise StoreError(
                f"split {split!r}: 2-D labels are multi-hot rows and must be 0/1; give class ids as a 1-D array (N,)"
            )
        return arr.astype(np.uint8), True
    raise StoreError(f"split {split!r}: labels must be 1-D class ids or 2-D multi-hot, got shape {arr.shape}")


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _seal(record: dict) -> dict:
    """Set ``record["checksum"]``: the SHA-256 of its canonical JSON without that field."""
    record = {k: v for k, v in record.items() if k != "checksum"}
    record["checksum"] = canonical_sha(record)
    return record


def _check_info(info: Any, file: Path) -> dict:
    """Schema-check a ``store.json`` record; raise :class:`StoreError` naming ``file`` and the field."""
    if not isinstance(info, dict):
        raise StoreError(f"{file}: expected a JSON object, found {type(info).__name__}")
    version = info.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StoreError(f"{file} has no valid schema_version")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store {file.parent} has schema version {version}, newer than this norep supports "
            f"({SCHEMA_VERSION}); upgrade norep to read it"
        )
    if version >= 2:
        if (
            not isinstance(info.get("checksum"), str)
            or canonical_sha({k: v for k, v in info.items() if k != "checksum"}) != info["checksum"]
        ):
            raise StoreError(
                f"{file}: its content does not match its checksum (edited by hand or damaged); "
                "restore it from a copy (extras are changed with Store.update_info)"
            )
    if not isinstance(info.get("dataset"), str):
        raise StoreError(f"{file}: 'dataset' must be a string")
    names = info.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(c, str) for c in names):
        raise StoreError(f"{file}: 'class_names' must be a non-empty list of strings")
    if len(set(names)) != len(names):
        raise StoreError(f"{file}: 'class_names' has duplicates")
    splits = info.get("splits")
    if not isinstance(splits, dict) or not splits:
        raise StoreError(f"{file}: 'splits' must be a non-empty object")
    for s, rec in splits.items():
        if not _SPLIT_RE.match(s):
            raise StoreError(f"{file}: invalid split name {s!r} (letters, digits, '_' and '-' only)")
        if (
            not isinstance(rec, dict)
            or not isinstance(rec.get("n"), int)
            or isinstance(rec.get("n"), bool)
            or rec["n"] < 0
            or not isinstance(rec.get("multilabel"), bool)
        ):
            raise StoreError(f"{file}: split {s!r} needs an integer 'n' >= 0 and a boolean 'multilabel'")
        if rec["multilabel"] and (
            not isinstance(rec.get("class_names"), list) or not all(isinstance(c, str) for c in rec["class_names"])
        ):
            raise StoreError(f"{file}: multi-label split {s!r} needs a list of 'class_names'")
        if "sha256" in rec and not (isinstance(rec["sha256"], str) and _HEX64.match(rec["sha256"])):
            raise StoreError(f"{file}: split {s!r} has an invalid 'sha256'")
    if version >= 2:
        models = info.get("models")
        if not isinstance(models, dict):
            raise StoreError(f"{file}: 'models' must be an object (the manifest)")
        for name, entry in models.items():
            try:
                _check_name(name)
            except StoreError as exc:
                raise StoreError(f"{file}: manifest: {exc}") from None
            if (
                not isinstance(entry, dict)
                or not isinstance(entry.get("dir"), str)
                or not _valid_dir(name, entry["dir"])
            ):
                raise StoreError(
                    f"{file}: manifest entry of model {name!r} has an invalid 'dir' "
                    f"{entry.get('dir') if isinstance(entry, dict) else entry!r}"
                )
            if not isinstance(entry.get("meta_sha256"), str) or not _HEX64.match(entry["meta_sha256"]):
                raise StoreError(f"{file}: manifest entry of model {name!r} has an invalid 'meta_sha256'")
    return info


def _valid_dir(name: str, d: str) -> bool:
    parts = d.split("/")
    home = _model_dirname(name)
    return (len(parts) == 1 and parts[0] == home) or (
        len(parts) == 2 and parts[0] == home and bool(_VERSION_RE.match(parts[1]))
    )


def _check_meta(meta: Any, name: str, path: Path, info: dict) -> None:
    """Schema-check a model's ``meta.json``; raise :class:`StoreError` naming the file and field."""
    where = f"model {name!r}: {path}"
    if not isinstance(meta, dict):
        raise StoreError(f"{where}: expected a JSON object, found {type(meta).__name__}")
    if meta.get("name") != name:
        raise StoreError(f"{where}: 'name' is {meta.get('name')!r}, expected {name!r}")
    if meta.get("category") not in CATEGORIES:
        raise StoreError(f"{where}: 'category' must be one of {', '.join(CATEGORIES)}, got {meta.get('category')!r}")
    if not isinstance(meta.get("method"), str):
        raise StoreError(f"{where}: 'method' must be a string")
    t = meta.get("temperature")
    if not _is_num(t) or t <= 0:
        raise StoreError(f"{where}: 'temperature' must be a positive number, got {t!r}")
    acc = meta.get("accuracy", {})
    if not isinstance(acc, dict) or not all(v is None or _is_num(v) for v in acc.values()):
        raise StoreError(f"{where}: 'accuracy' must map splits to numbers")
    files = meta.get("files")
    if not isinstance(files, dict) or not files:
        raise StoreError(f"{where}: 'files' must list the model's arrays")
    for key, rec in files.items():
        m = _FILE_RE.match(key) if isinstance(key, str) else None
        if m is None or m.group(2) not in info["splits"]:
            raise StoreError(f"{where}: lists file {key!r}, which is not an array of a split of this store")
        kind, split = m.groups()
        if not isinstance(rec, dict) or not isinstance(rec.get("sha256"), str) or not _HEX64.match(rec["sha256"]):
            raise StoreError(f"{where}: file {key!r} has no valid 'sha256'")
        shape = rec.get("shape")
        if (
            not isinstance(shape, list)
            or len(shape) != 2
            or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        ):
            raise StoreError(f"{where}: file {key!r} has no valid 2-D 'shape'")
        if rec.get("dtype") not in _DTYPES:
            raise StoreError(f"{where}: file {key!r} has dtype {rec.get('dtype')!r}, expected float16 or float32")
        srec = info["splits"][split]
        if shape[0] != srec["n"]:
            raise StoreError(f"{where}: {key} has {shape[0]} rows but split {split!r} has {srec['n']} examples")
        if kind == "logits":
            if srec["multilabel"]:
                raise StoreError(f"{where}: {key}: logits are for single-label splits")
            if shape[1] != len(info["class_names"]):
                raise StoreError(
                    f"{where}: {key} has {shape[1]} columns but the store has {len(info['class_names'])} classes"
                )


def _home_name(home: str) -> str | None:
    """The model name whose directory is ``home``, or None where ``home`` belongs to no model."""
    if home.startswith("."):
        return None
    name = unquote(home)
    return name if _model_dirname(name) == home else None
