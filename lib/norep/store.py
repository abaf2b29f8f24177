"""The prediction store: the one artifact between producers and analyses.

A store is a directory::

    STORE/
      store.json                          schema version, dataset, class names, splits, extras (base model,
                                          band, ...), the manifest of models and a checksum of itself
      splits/<split>.labels.npy           (N,) int64 class ids, or (N, K) uint8 multi-hot (multi-label splits)
      models/<model-dir>/v<k>/meta.json   metadata, temperature, accuracies, file checksums
      models/<model-dir>/v<k>/logits.<split>.npy       (N, C) float16/float32
      models/<model-dir>/v<k>/embeddings.<split>.npy   (N, D) float16/float32
      .lock, .locks/<model-dir>.lock      inter-process locks of writers (readers take none)

Guarantees (see also the book's store page):

* **One commit point.** A model version is written completely into a new ``v<k>`` directory; it
  becomes visible when ``store.json`` (written to a temporary file, fsynced, renamed) points to it.
  Adding, overwriting, merging into or removing a model is therefore one atomic step: after a crash
  (even ``SIGKILL``) or a full disk a reader sees either the old or the new model, never a mix.
  Unreferenced versions and temporary files are leftovers that :meth:`Store.clean` removes.
* **Writers.** Every read-modify-write holds a per-model lock (different models are written in
  parallel, e.g. a cluster job array) and, for the short commit, a store lock. Merging
  (``merge=True``, used by ``norep import`` and ``norep extract``) keeps every existing array and
  metadata field, checks each kept array's checksum first, and replaces an existing array only with
  ``overwrite=True``.
* **Readers.** ``store.json`` carries a manifest of the models with the SHA-256 of each model's
  ``meta.json`` and a checksum of itself; both files are schema-checked on every read, and a model's
  arrays are checked against their metadata (shape, dtype, size) when opened, memory-mapped.
  :meth:`Store.verify` also checks every array's SHA-256; :meth:`Store.verify_cached` skips that
  when no file changed since the last successful verification.
* arrays are plain ``.npy`` files, never pickles; files follow the umask.

Examples
--------
>>> import numpy as np, tempfile
>>> from norep.store import Store
>>> d = tempfile.mkdtemp()
>>> st = Store.create(d + "/s", dataset="toy", class_names=["a", "b", "c"],
...                   splits={"calib": np.array([0, 1, 2, 0]), "test": np.array([2, 1, 0])},
...                   info={"base_model": "m1"})
>>> rng = np.random.default_rng(0)
>>> meta = st.add_model("m1", logits={"calib": rng.normal(size=(4, 3)), "test": np.eye(3)[[2, 1, 0]] * 5},
...                     meta={"category": "REINIT", "method": "toy model"})
>>> meta["accuracy"]
{'calib': 0.0, 'test': 1.0}
>>> st.models()[["name", "category", "test_accuracy"]]
  name category  test_accuracy
0   m1   REINIT            1.0
>>> st.base_model
'm1'
>>> _ = st.add_model("m1", embeddings={"test": np.ones((3, 2))}, meta={"category": "REINIT", "method": "toy model"},
...                  merge=True)
>>> sorted(st.meta("m1")["files"]), st.verify()["arrays"]
(['embeddings.test.npy', 'logits.calib.npy', 'logits.test.npy'], 3)
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import hashlib
import json
import math
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from norep import CATEGORIES
from norep._storeio import (
    DIR_MODE,
    StoreError,
    canonical_sha,
    exchange,
    file_lock,
    fsync_dir,
    load_npy,
    read_json,
    read_npy_header,
    save_npy,
    sha256_file,
    write_error,
    write_json_atomic,
)

SCHEMA_VERSION = 2
"""Version of the on-disk layout written by this ``norep``. Readers refuse newer versions.
Version 1 stores (no manifest, one unversioned directory per model) are read, and upgraded by the
first write."""

_STORE_FILE = "store.json"
_MODEL_META = "meta.json"
_CHUNK_ROWS = 8192
_BASE_COLUMNS = ["name", "category", "method", "data", "head", "source", "temperature"]
_HIDDEN_META = {"files", "recipe", "added_at", "name", "schema_version"}
_RESERVED_INFO = {"schema_version", "dataset", "class_names", "splits", "models", "checksum"}
_SPLIT = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
_SPLIT_RE = re.compile(rf"^{_SPLIT}$")
_FILE_RE = re.compile(rf"^(logits|embeddings)\.({_SPLIT})\.npy$")
_VERSION_RE = re.compile(r"^v([0-9]{1,9})$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_MAX_DIRNAME = 200
_DTYPES = ("float16", "float32")

__all__ = ["SCHEMA_VERSION", "Store", "StoreError", "VerifyError"]


class VerifyError(StoreError):
    """:meth:`Store.verify` found problems; ``problems`` lists them, the message names the first."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        more = f" (and {len(problems) - 1} more; `norep store verify {path}` lists them)" if len(problems) > 1 else ""
        super().__init__(f"store {path} failed verification: {problems[0]}{more}")


# --------------------------------------------------------------------------------------------------
# small helpers


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
        if not np.isin(arr, (0, 1)).all():
            raise StoreError(f"split {split!r}: multi-label labels must be 0/1 multi-hot")
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


# --------------------------------------------------------------------------------------------------


class Store:
    """A prediction store on disk. Create with :meth:`create`, open with :meth:`open`.

    Parameters
    ----------
    path : str or Path
        The store directory. Use :meth:`open` rather than the constructor.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._stat: tuple | None = None
        self._info: dict = {}
        self._legacy: dict | None = None
        self._meta_cache: dict[tuple, dict] = {}
        self._refresh()

    # ---------------------------------------------------------------------------- creation / opening

    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        *,
        dataset: str,
        class_names: list[str],
        splits: Mapping[str, Any],
        split_class_names: Mapping[str, list[str]] | None = None,
        info: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> Store:
        """Create a new, empty store.

        Parameters
        ----------
        path : path-like
            Directory to create (it may exist if empty).
        dataset : str
            Name of the data set (free text, e.g. ``"imagenet-val"``).
        class_names : list of str
            The ``C`` class names of the single-label splits.
        splits : mapping of str to array
            Labels per split: 1-D class ids in ``[0, C)``, or 2-D 0/1 multi-hot arrays for multi-label
            splits (e.g. the downstream VOC-like task). Split names: letters, digits, ``_``, ``-``.
        split_class_names : mapping of str to list of str, optional
            Label names of the multi-label splits (default: ``label_0`` ...).
        info : mapping, optional
            Extras kept in ``store.json``: ``base_model``, ``accuracy_band`` (lo, hi as fractions),
            ``class_groups``, anything JSON-serialisable.
        overwrite : bool, default False
            Replace an existing store at ``path``: the new store is validated and built beside it,
            then swapped in (atomically where the file system supports ``RENAME_EXCHANGE``).

        Returns
        -------
        Store
        """
        path = Path(path)
        record, arrays = cls._build_record(dataset, class_names, splits, split_class_names, info)
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path} exists and is not a directory")
        if path.is_dir() and not cls._is_empty_dir(path):
            if not overwrite:
                raise StoreError(f"{path} already exists and is not empty; pass overwrite=True or use Store.open")
            if not (path / _STORE_FILE).exists():
                raise StoreError(f"refusing to overwrite {path}: it is not a norep store")
            new = cls._build_beside(path, record, arrays)
            try:
                if not exchange(new, path):
                    old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
                    os.replace(path, old)
                    os.replace(new, path)
                    new = old
                fsync_dir(path.parent)
            except OSError as exc:
                shutil.rmtree(new, ignore_errors=True)
                raise write_error(path, exc) from None
            shutil.rmtree(new, ignore_errors=True)  # now the old store
            return cls(path)
        if path.is_dir():  # empty, or the leftovers of an interrupted creation: build in place
            cls._write_store(path, record, arrays)
            return cls(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(path.parent, exc) from None
        new = cls._build_beside(path, record, arrays)
        try:
            os.rename(new, path)
            fsync_dir(path.parent)
        except OSError as exc:
            shutil.rmtree(new, ignore_errors=True)
            if path.is_dir() and (path / _STORE_FILE).exists():
                raise StoreError(f"{path} was created by another process at the same time; open it") from None
            raise write_error(path, exc) from None
        return cls(path)

    @staticmethod
    def _is_empty_dir(path: Path) -> bool:
        """True if ``path`` holds nothing, or only locks and what an interrupted creation leaves."""
        if (path / _STORE_FILE).exists():
            return False
        for p in path.iterdir():
            if p.name in (".lock", ".locks") or (p.name.startswith(".") and p.name.endswith(".tmp")):
                continue
            if p.name == "models" and p.is_dir() and not any(p.iterdir()):
                continue
            if p.name == "splits" and p.is_dir():
                continue
            return False
        return True

    @classmethod
    def _build_beside(cls, path: Path, record: dict, arrays: dict) -> Path:
        new = path.with_name(f".{path.name}.new-{uuid.uuid4().hex[:8]}")
        try:
            new.mkdir(mode=DIR_MODE)
            cls._write_store(new, record, arrays)
        except BaseException:
            shutil.rmtree(new, ignore_errors=True)
            raise
        return new

    @staticmethod
    def _write_store(path: Path, record: dict, arrays: dict) -> None:
        record = copy.deepcopy(record)
        try:
            (path / "splits").mkdir(exist_ok=True)
            (path / "models").mkdir(exist_ok=True)
        except OSError as exc:
            raise write_error(path, exc) from None
        for split, arr in arrays.items():
            record["splits"][split]["sha256"] = Store._write_labels(path, split, arr)
        record["models"] = {}
        write_json_atomic(path / _STORE_FILE, _seal(record))

    @staticmethod
    def _write_labels(path: Path, split: str, arr: np.ndarray) -> str:
        final = path / "splits" / f"{split}.labels.npy"
        tmp = final.with_name(f".{split}.labels.{uuid.uuid4().hex[:8]}.tmp")
        sha = save_npy(tmp, arr, shown=final)  # removes tmp on failure
        try:
            os.replace(tmp, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise write_error(final, exc) from None
        fsync_dir(final.parent)
        return sha

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, **create_kwargs: Any) -> Store:
        """Open the store at ``path``, or create it with ``create_kwargs`` if absent.

        Safe when several processes call it at once (an inter-process lock guards creation). If the
        store exists, its splits must hold the same labels as ``create_kwargs["splits"]``; new splits
        in ``create_kwargs`` are added. Nothing is locked or written when nothing needs to change, so a
        read-only store opens.
        """
        path = Path(path)
        names = create_kwargs.get("split_class_names") or {}
        splits = create_kwargs.get("splits", {})
        if (path / _STORE_FILE).exists():
            st = cls.open(path)
            if all(st._has_same_split(s, y) for s, y in splits.items()):
                return st
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path} exists and is not a directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(path, exc) from None
        with file_lock(path / ".lock", what=f"store {path}"):
            if not (path / _STORE_FILE).exists():
                return cls.create(path, **create_kwargs)
            st = cls.open(path)
            for split, labels in splits.items():
                st.add_split(split, labels, class_names=names.get(split), _lock=False)
            return st

    @classmethod
    def open(cls, path: str | os.PathLike) -> Store:
        """Open an existing store; raise ``FileNotFoundError`` if ``path`` holds none."""
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path} is a file, not a norep store (a store is a directory)")
        if not (path / _STORE_FILE).exists():
            hint = ""
            with contextlib.suppress(OSError):
                half = sorted(p.name for p in path.parent.glob(f".{path.name}.[no][el][wd]-*"))
                if half:
                    hint = (
                        f"; an interrupted overwrite left {', '.join(half)} beside it: rename the "
                        "complete one back to restore the store"
                    )
            raise FileNotFoundError(
                f"no norep store at {path} (missing {_STORE_FILE}); build one with "
                f"`norep zoo train`, `norep extract` or `norep import`{hint}"
            )
        return cls(path)

    @staticmethod
    def _build_record(dataset, class_names, splits, split_class_names, info) -> tuple[dict, dict]:
        if isinstance(class_names, str):
            raise StoreError("class_names must be a list of names, not one string")
        class_names = [str(c) for c in class_names]
        if not class_names:
            raise StoreError("class_names must not be empty")
        if len(set(class_names)) != len(class_names):
            dup = sorted({c for c in class_names if class_names.count(c) > 1})
            raise StoreError(f"class_names must be unique; repeated: {', '.join(dup[:5])}")
        if not splits:
            raise StoreError("a store needs at least one split")
        extras = dict(info or {})
        clash = _RESERVED_INFO & set(extras)
        if clash:
            raise StoreError(f"info must not set reserved keys {sorted(clash)}")
        record = {
            "schema_version": SCHEMA_VERSION,
            "dataset": str(dataset),
            "class_names": class_names,
            "splits": {},
            **extras,
        }
        arrays = {}
        for split, labels in splits.items():
            rec, arr = Store._split_record(split, labels, len(class_names), (split_class_names or {}).get(split))
            record["splits"][split] = rec
            arrays[split] = arr
        canonical_sha(record)  # fail early on unserialisable extras
        return record, arrays

    @staticmethod
    def _split_record(split: str, labels: Any, n_classes: int, names: list[str] | None) -> tuple[dict, np.ndarray]:
        _check_split_name(split)
        arr, multilabel = _as_labels(split, labels, n_classes)
        rec: dict[str, Any] = {"n": int(arr.shape[0]), "multilabel": multilabel}
        if multilabel:
            k = arr.shape[1]
            names = list(names) if names is not None else [f"label_{i}" for i in range(k)]
            if len(names) != k:
                raise StoreError(f"split {split!r}: {len(names)} class names for {k} label columns")
            rec["class_names"] = [str(n) for n in names]
        elif names is not None:
            raise StoreError(f"split {split!r}: split_class_names is only for multi-label splits")
        return rec, arr

    def _has_same_split(self, split: str, labels: Any) -> bool:
        if split not in self._info["splits"]:
            return False
        arr, _ = _as_labels(split, labels, len(self.class_names))
        return bool(np.array_equal(self.labels(split), arr))

    def add_split(self, split: str, labels: Any, *, class_names: list[str] | None = None, _lock: bool = True) -> None:
        """Add a split (e.g. a downstream task) to an existing store.

        Adding a split that exists with identical labels is a no-op; different labels raise ``ValueError``.
        """
        rec, arr = self._split_record(split, labels, len(self.class_names), class_names)
        self._refresh()
        if split in self._info["splits"]:
            if not np.array_equal(self.labels(split), arr):
                raise StoreError(f"split {split!r} already exists in {self.path} with different labels")
            return
        ctx = file_lock(self.path / ".lock", what=f"store {self.path}") if _lock else contextlib.nullcontext()
        with ctx:
            info = self._read_info()
            if split in info["splits"]:
                self._refresh()
                if not np.array_equal(self.labels(split), arr):
                    raise StoreError(f"split {split!r} already exists in {self.path} with different labels")
                return
            rec["sha256"] = self._write_labels(self.path, split, arr)

            def change(record):
                record["splits"][split] = rec

            try:
                self._commit(change, info)
            except BaseException:
                with contextlib.suppress(OSError):
                    (self.path / "splits" / f"{split}.labels.npy").unlink()
                raise

    # ---------------------------------------------------------------------------- store.json

    def _read_info(self) -> dict:
        file = self.path / _STORE_FILE
        if not file.exists():
            raise FileNotFoundError(f"no norep store at {self.path} (missing {_STORE_FILE})")
        info, _ = read_json(file)
        return _check_info(info, file)

    def refresh(self) -> None:
        """See the changes other processes made since this store was opened (or last refreshed).

        Reads go to the snapshot taken when the store was opened, so the metadata and the arrays
        of a model always belong together, even while another process overwrites it (the
        version it replaces is kept until the next write of that model or :meth:`clean`).
        This store's own writes update the snapshot.
        """
        self._refresh()

    def _refresh(self) -> None:
        """Re-read ``store.json`` if another process (or this one) replaced it since the last read."""
        try:
            s = os.stat(self.path / _STORE_FILE)
        except FileNotFoundError:
            raise FileNotFoundError(f"no norep store at {self.path} (missing {_STORE_FILE})") from None
        except OSError as exc:
            raise StoreError(f"cannot read {self.path / _STORE_FILE}: {exc.strerror}") from None
        key = (s.st_ino, s.st_size, s.st_mtime_ns)
        if key != self._stat:
            self._info = self._read_info()
            self._stat = key
            self._legacy = None

    def _commit(self, change, info: dict | None = None) -> dict:
        """Apply ``change(record)`` to a fresh ``store.json`` and write it atomically (store lock held)."""
        record = copy.deepcopy(info if info is not None else self._read_info())
        if record["schema_version"] < 2:
            record["models"] = self._legacy_manifest(recover=True)
        record["schema_version"] = SCHEMA_VERSION
        change(record)
        write_json_atomic(self.path / _STORE_FILE, _seal(record))
        self._stat = None
        self._refresh()
        return self._info

    # ---------------------------------------------------------------------------- store-level info

    @property
    def info(self) -> dict:
        """A copy of ``store.json``: dataset, class names, splits, schema version and extras."""
        return {k: v for k, v in copy.deepcopy(self._info).items() if k not in ("models", "checksum")}

    def update_info(self, **extras: Any) -> None:
        """Set extras in ``store.json`` atomically (e.g. ``base_model=``, ``accuracy_band=(lo, hi)``).

        Nothing is written (and no lock taken) when every value is already set.
        """
        reserved = _RESERVED_INFO & set(extras)
        if reserved:
            raise StoreError(f"update_info cannot change {sorted(reserved)}")
        if "accuracy_band" in extras and extras["accuracy_band"] is not None:
            lo, hi = (float(v) for v in extras["accuracy_band"])
            if not 0 <= lo <= hi <= 1:
                raise StoreError(f"accuracy_band must be (lo, hi) fractions with 0 <= lo <= hi <= 1, got {(lo, hi)}")
            extras["accuracy_band"] = [lo, hi]
        self._refresh()
        plain = json.loads(json.dumps(extras, default=list, allow_nan=True))
        if all(k in self._info and canonical_sha(self._info[k]) == canonical_sha(v) for k, v in plain.items()):
            return
        with file_lock(self.path / ".lock", what=f"store {self.path}"):
            self._commit(lambda record: record.update(extras))

    @property
    def dataset(self) -> str:
        return self._info["dataset"]

    @property
    def class_names(self) -> list[str]:
        """Names of the ``C`` classes of the single-label splits."""
        return list(self._info["class_names"])

    @property
    def base_model(self) -> str | None:
        """Name of the study's base model (``info["base_model"]``), or None if unset."""
        return self._info.get("base_model")

    @property
    def accuracy_band(self) -> tuple[float, float] | None:
        """The narrow accuracy band (lo, hi) of the main analyses (paper Sec. 3.2), or None."""
        band = self._info.get("accuracy_band")
        return None if band is None else (float(band[0]), float(band[1]))

    @property
    def class_groups(self) -> dict[str, list[int]]:
        """Groups of class ids (e.g. nature vs anthropogenic, Sec. 4.4) recorded in the store."""
        return {k: list(v) for k, v in (self._info.get("class_groups") or {}).items()}

    def splits(self) -> list[str]:
        """Names of the splits."""
        return list(self._info["splits"])

    def _split(self, split: str) -> dict:
        try:
            return self._info["splits"][split]
        except (KeyError, TypeError):
            raise StoreError(
                f"unknown split {split!r} in store {self.path}{_suggest(str(split), self.splits())}"
            ) from None

    def n_examples(self, split: str) -> int:
        return int(self._split(split)["n"])

    def is_multilabel(self, split: str) -> bool:
        return bool(self._split(split)["multilabel"])

    def split_class_names(self, split: str) -> list[str]:
        """Label names of ``split``: the store's class names, or the multi-label split's own."""
        rec = self._split(split)
        return list(rec["class_names"]) if rec["multilabel"] else self.class_names

    def labels(self, split: str) -> np.ndarray:
        """Labels of ``split``: (N,) int64 class ids, or (N, K) uint8 multi-hot."""
        rec = self._split(split)
        path = self.path / "splits" / f"{split}.labels.npy"
        if not path.exists():
            raise StoreError(f"labels of split {split!r} are missing: {path}")
        arr = load_npy(path, mmap=False, what=f"labels of split {split!r}")
        want = (rec["n"], len(rec["class_names"])) if rec["multilabel"] else (rec["n"],)
        if arr.shape != want:
            raise StoreError(f"labels of split {split!r}: {path} has shape {arr.shape}, store.json says {want}")
        return arr

    # ---------------------------------------------------------------------------- manifest & metadata

    def _manifest(self) -> dict[str, dict]:
        if self._info["schema_version"] >= 2:
            return self._info["models"]
        if self._legacy is None:
            self._legacy = self._legacy_manifest()
        return self._legacy

    def _legacy_manifest(self, recover: bool = False) -> dict[str, dict]:
        """The models of a version-1 store (one directory each, no manifest), found by listing.

        With ``recover``, a model hidden by an overwrite that an older ``norep`` left half done
        (its directory renamed to ``.trash-*`` and the new one still in ``.tmp-*``) is restored.
        """
        root = self.path / "models"
        found: dict[str, dict] = {}
        if not root.is_dir():
            return found
        hidden: dict[str, list[Path]] = {}
        for d in sorted(root.iterdir()):
            meta_path = d / _MODEL_META
            if not d.is_dir() or not meta_path.is_file():
                continue
            try:
                meta, raw = read_json(meta_path)
            except StoreError:
                if d.name.startswith("."):
                    continue
                raise
            if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
                if d.name.startswith("."):
                    continue
                raise StoreError(f"{meta_path}: expected a JSON object with the model's 'name'")
            name = meta["name"]
            if d.name.startswith("."):
                hidden.setdefault(name, []).append(d)
                continue
            if d.name != _model_dirname(name):
                raise StoreError(f"{meta_path}: name {name!r} does not belong to directory {d.name!r}")
            found[name] = {"dir": d.name, "meta_sha256": hashlib.sha256(raw).hexdigest()}
        for name, dirs in hidden.items():
            if name in found:
                continue
            if not recover:
                raise StoreError(
                    f"model {name!r} is hidden in {', '.join(str(d) for d in dirs)} by an overwrite "
                    "an older norep left half done; `norep store clean` restores it"
                )
            # prefer the new version (.tmp-*), complete by construction, over the old (.trash-*)
            best = sorted(dirs, key=lambda d: (not d.name.startswith(".tmp-"), d.name))[0]
            home = root / _model_dirname(name)
            os.rename(best, home)
            raw = (home / _MODEL_META).read_bytes()
            found[name] = {"dir": home.name, "meta_sha256": hashlib.sha256(raw).hexdigest()}
        return found

    def _entry(self, name: str) -> dict:
        manifest = self._manifest()
        if not isinstance(name, str) or name not in manifest:
            raise StoreError(f"unknown model {name!r} in store {self.path}{_suggest(str(name), list(manifest))}")
        return manifest[name]

    def _load_meta(self, name: str, entry: dict) -> dict:
        key = (entry["dir"], entry.get("meta_sha256"))
        if key in self._meta_cache:
            return self._meta_cache[key]
        path = self.path / "models" / entry["dir"] / _MODEL_META
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            self._raise_if_moved(name, path)
            raise StoreError(
                f"model {name!r}: {path} is missing (the model's files were deleted or "
                "damaged; `norep store verify` lists the problems)"
            ) from None
        except OSError as exc:
            raise StoreError(f"model {name!r}: cannot read {path}: {exc.strerror}") from None
        if entry.get("meta_sha256") and hashlib.sha256(raw).hexdigest() != entry["meta_sha256"]:
            raise StoreError(
                f"model {name!r}: {path} does not match its checksum in store.json (edited by hand or damaged)"
            )
        try:
            meta = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"model {name!r}: {path} is not valid JSON ({exc})") from None
        self._check_meta(meta, name, path)
        if len(self._meta_cache) > 4096:
            self._meta_cache.clear()
        self._meta_cache[key] = meta
        return meta

    def _raise_if_moved(self, name: str, path: Path) -> None:
        """Raise a clear error if ``name`` was rewritten on disk since this snapshot (a stale reader)."""
        moved = False
        with contextlib.suppress(StoreError, FileNotFoundError, KeyError):
            now = self._read_info()
            if now["schema_version"] >= 2 and self._info["schema_version"] >= 2:
                moved = now["models"].get(name, {}).get("dir") != self._info["models"][name]["dir"]
        if moved:
            raise StoreError(
                f"model {name!r} was rewritten by other processes since this store was opened "
                f"({path} is gone); open the store again"
            )

    def _check_meta(self, meta: Any, name: str, path: Path) -> None:
        """Schema-check a model's ``meta.json``; raise :class:`StoreError` naming the file and field."""
        where = f"model {name!r}: {path}"
        if not isinstance(meta, dict):
            raise StoreError(f"{where}: expected a JSON object, found {type(meta).__name__}")
        if meta.get("name") != name:
            raise StoreError(f"{where}: 'name' is {meta.get('name')!r}, expected {name!r}")
        if meta.get("category") not in CATEGORIES:
            raise StoreError(
                f"{where}: 'category' must be one of {', '.join(CATEGORIES)}, got {meta.get('category')!r}"
            )
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
            if m is None or m.group(2) not in self._info["splits"]:
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
            srec = self._info["splits"][split]
            if shape[0] != srec["n"]:
                raise StoreError(f"{where}: {key} has {shape[0]} rows but split {split!r} has {srec['n']} examples")
            if kind == "logits":
                if srec["multilabel"]:
                    raise StoreError(f"{where}: {key}: logits are for single-label splits")
                if shape[1] != len(self._info["class_names"]):
                    raise StoreError(
                        f"{where}: {key} has {shape[1]} columns but the store has "
                        f"{len(self._info['class_names'])} classes"
                    )

    def _model_dir(self, name: str) -> Path:
        return self.path / "models" / self._entry(name)["dir"]

    def model_names(self) -> list[str]:
        """Names of the stored models, in the order of :meth:`models`."""
        return [m["name"] for m in self._all_meta()]

    def _all_meta(self) -> list[dict]:
        metas = [self._load_meta(n, e) for n, e in self._manifest().items()]
        order = {c: i for i, c in enumerate(CATEGORIES)}
        metas.sort(key=lambda m: (order.get(m.get("category"), 99), m.get("added_at") or 0, m["name"]))
        return metas

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._manifest()

    def __len__(self) -> int:
        return len(self._manifest())

    def meta(self, name: str) -> dict:
        """The metadata of model ``name`` (category, method, temperature, accuracies, recipe, ...)."""
        return copy.deepcopy(self._load_meta(name, self._entry(name)))

    def models(self) -> Any:
        """One row per model: name, category, method, data, head, source, temperature, accuracies, extras.

        Returns
        -------
        pandas.DataFrame
            Rows ordered by category (Reinit to Dataset), then by the order models were added.
        """
        import pandas as pd

        acc_cols = [
            f"{s}_accuracy" for s in sorted(self.splits(), key=lambda s: (s != "test", s)) if not self.is_multilabel(s)
        ]
        rows = []
        for m in self._all_meta():
            row = {k: m.get(k) for k in _BASE_COLUMNS}
            row.update({c: m.get("accuracy", {}).get(c[: -len("_accuracy")]) for c in acc_cols})
            row.update(
                {
                    k: v
                    for k, v in m.items()
                    if k not in _HIDDEN_META and k not in row and k != "accuracy" and not isinstance(v, (dict, list))
                }
            )
            rows.append(row)
        df = pd.DataFrame(rows, columns=None if rows else _BASE_COLUMNS + acc_cols)
        return df

    # ---------------------------------------------------------------------------- writing models

    def _model_lock(self, name: str, timeout: float = -1):
        return file_lock(
            self.path / ".locks" / f"{_model_dirname(name)}.lock",
            timeout=timeout,
            what=f"model {name!r} of store {self.path}",
        )

    def add_model(
        self,
        name: str,
        *,
        logits: Mapping[str, Any] | None = None,
        embeddings: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any],
        overwrite: bool = False,
        merge: bool = False,
    ) -> dict:
        """Validate and add one model's arrays in one atomic step.

        Parameters
        ----------
        name : str
            Unique model name (any characters; e.g. ``"timm:resnet50.a1_in1k"``).
        logits : mapping of split to (N, C) array, optional
            Logits for single-label splits; float16 is kept, other floats are stored as float32.
        embeddings : mapping of split to (N, D) array, optional
            Penultimate embeddings, for any split (including multi-label ones).
        meta : mapping
            Must hold ``category`` (one of ``norep.CATEGORIES``) and ``method`` (free text); usually also
            ``data``, ``head``, ``source``, ``recipe``, ``seed``. ``temperature`` is fitted on the
            ``calib`` logits (paper Sec. 3.2) unless given; 1.0 when there is no ``calib`` split.
            NaN and infinite values are stored as ``null``.
        overwrite : bool, default False
            Without ``merge``: replace an existing model of the same name. With ``merge``: allow
            replacing arrays the model already has, and changing its category or method.
        merge : bool, default False
            Add to an existing model: every array it has is kept (after its checksum is checked;
            a corrupted one makes the call fail), and so is every metadata field not given again
            (a ``None`` value does not erase one; dict values are merged one level deep).

        Returns
        -------
        dict
            The stored metadata, with ``temperature`` and ``accuracy`` (per split) filled in.
        """
        _check_name(name)
        meta = dict(meta)
        category = meta.get("category")
        if category not in CATEGORIES:
            raise StoreError(
                f"model {name!r}: meta['category'] must be one of {', '.join(CATEGORIES)}, got {category!r}"
            )
        if not isinstance(meta.get("method"), str) or not meta["method"].strip():
            raise StoreError(f"model {name!r}: meta['method'] must be a non-empty description of the training method")
        logits = dict(logits or {})
        embeddings = dict(embeddings or {})
        if not logits and not embeddings:
            raise StoreError(f"model {name!r}: give logits and/or embeddings for at least one split")
        self._refresh()
        if name in self and not (overwrite or merge):
            raise StoreError(f"model {name!r} already exists in store {self.path}; pass overwrite=True to replace it")
        if merge and not overwrite and name in self:
            self._same_kind(name, self.meta(name), meta)
        arrays = self._check_arrays(name, logits, embeddings)
        if meta.get("temperature") is not None and (not _is_num(meta["temperature"]) or meta["temperature"] <= 0):
            raise StoreError(f"model {name!r}: temperature must be a positive number, got {meta['temperature']}")
        canonical_sha(meta)  # fail early on unserialisable metadata

        with self._model_lock(name):
            self._refresh()
            old_entry = self._manifest().get(name)
            # a plain overwrite does not read the old version, so it can replace a damaged model
            old = self._load_meta(name, old_entry) if old_entry is not None and merge else None
            if old_entry is not None and not (overwrite or merge):
                raise StoreError(
                    f"model {name!r} already exists in store {self.path} "
                    "(added concurrently); pass overwrite=True to replace it"
                )
            carried: dict[str, dict] = {}
            if old is not None and merge:
                meta, carried = self._merge(name, old, old_entry, meta, arrays, overwrite)
            meta = self._complete_meta(name, meta, arrays, old if merge else None, carried)
            version_dir = self._write_version(name, arrays, carried, old_entry, meta)
            rel = version_dir.relative_to(self.path / "models").as_posix()
            meta_sha = sha256_file(version_dir / _MODEL_META)
            try:
                with file_lock(self.path / ".lock", what=f"store {self.path}"):
                    self._commit(
                        lambda record: record["models"].__setitem__(name, {"dir": rel, "meta_sha256": meta_sha})
                    )
            except BaseException:
                shutil.rmtree(version_dir, ignore_errors=True)
                with contextlib.suppress(OSError):
                    version_dir.parent.rmdir()
                raise
            self._prune(name, keep={rel, old_entry["dir"]} if old_entry else {rel})
        return meta

    def _check_arrays(self, name, logits, embeddings) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {}
        for split, arr in logits.items():
            self._split(split)
            if self.is_multilabel(split):
                raise StoreError(
                    f"model {name!r}, split {split!r}: logits are for single-label splits; "
                    "store embeddings for multi-label splits"
                )
            arr = self._check_array(name, split, "logits", arr)
            if arr.shape[1] != len(self.class_names):
                raise StoreError(
                    f"model {name!r}, split {split!r}: logits have {arr.shape[1]} columns but the "
                    f"store has {len(self.class_names)} classes"
                )
            arrays[f"logits.{split}"] = arr
        for split, arr in embeddings.items():
            self._split(split)
            arrays[f"embeddings.{split}"] = self._check_array(name, split, "embeddings", arr)
        dims = {a.shape[1] for k, a in arrays.items() if k.startswith("embeddings.")}
        if len(dims) > 1:
            raise StoreError(f"model {name!r}: embeddings have different widths across splits: {sorted(dims)}")
        return arrays

    def _merge(self, name, old, old_entry, meta, arrays, overwrite) -> tuple[dict, dict]:
        """Metadata and carried-over files of a merge into the existing model ``old``."""
        if not overwrite:
            self._same_kind(name, old, meta)
            clash = sorted(f"{k}.npy" for k in arrays if f"{k}.npy" in old["files"])
            if clash:
                raise StoreError(
                    f"model {name!r} already has {', '.join(clash)}; pass overwrite (--overwrite) to replace it"
                )
        old_dir = self.path / "models" / old_entry["dir"]
        carried = {}
        for fname, rec in old["files"].items():
            if fname[: -len(".npy")] in arrays:
                continue
            p = old_dir / fname
            if not p.is_file():
                raise StoreError(
                    f"model {name!r}: {p} is missing; refusing to build on a damaged model "
                    "(overwrite it without merging, or remove it)"
                )
            read_npy_header(p)
            if sha256_file(p) != rec["sha256"]:
                raise StoreError(
                    f"model {name!r}: {p} does not match its checksum (corrupted); refusing to "
                    "build on it (re-import that array with overwrite, or remove the model)"
                )
            carried[fname] = rec
        dims = {tuple(r["shape"])[1] for f, r in carried.items() if f.startswith("embeddings.")}
        dims |= {a.shape[1] for k, a in arrays.items() if k.startswith("embeddings.")}
        if len(dims) > 1:
            raise StoreError(f"model {name!r}: embeddings have different widths across splits: {sorted(dims)}")
        merged = {k: v for k, v in old.items() if k not in ("files", "schema_version", "name")}
        for k, v in meta.items():
            if v is None:
                continue  # a value not given does not erase a stored one
            if isinstance(v, dict) and isinstance(merged.get(k), dict):
                merged[k] = {**merged[k], **v}
            else:
                merged[k] = v
        if meta.get("temperature") is not None:
            merged["temperature_fitted_on"] = meta.get("temperature_fitted_on")
        elif "logits.calib" in arrays:
            merged.pop("temperature", None)  # refitted on the new calib logits
        # else: the stored temperature stays (fitted on the kept calib logits, or given before)
        merged["accuracy"] = {k: v for k, v in (old.get("accuracy") or {}).items() if f"logits.{k}.npy" in carried}
        return merged, carried

    @staticmethod
    def _same_kind(name: str, old: dict, meta: Mapping) -> None:
        if (old.get("category"), old.get("method")) != (meta["category"], meta["method"]):
            raise StoreError(
                f"model {name!r} exists with category {old.get('category')} and method "
                f"{old.get('method')!r}; use the same ones to add a split, or overwrite"
            )

    def _complete_meta(self, name, meta, arrays, old, carried) -> dict:
        meta = dict(meta)
        accuracy = dict(meta.get("accuracy") or {}) if old is not None else {}
        for key, arr in arrays.items():
            if key.startswith("logits."):
                split = key.split(".", 1)[1]
                accuracy[split] = float(np.mean(_argmax_rows(arr) == self.labels(split)))
        if meta.get("temperature") is None:
            if "logits.calib" in arrays:
                from norep.calibration import fit_temperature

                meta["temperature"] = float(fit_temperature(arrays["logits.calib"], self.labels("calib")))
                meta["temperature_fitted_on"] = "calib"
            else:
                meta["temperature"] = 1.0
                meta["temperature_fitted_on"] = None
        meta["temperature"] = float(meta["temperature"])
        if not np.isfinite(meta["temperature"]) or meta["temperature"] <= 0:
            raise StoreError(f"model {name!r}: temperature must be a positive number, got {meta['temperature']}")
        meta.update(name=name, accuracy=accuracy, schema_version=SCHEMA_VERSION)
        if old is None or not _is_num(meta.get("added_at")):
            meta["added_at"] = time.time()
        dims = {a.shape[1] for k, a in arrays.items() if k.startswith("embeddings.")}
        dims |= {r["shape"][1] for f, r in carried.items() if f.startswith("embeddings.")}
        if dims:
            meta["embedding_dim"] = int(next(iter(dims)))
        return meta

    def _write_version(self, name, arrays, carried, old_entry, meta) -> Path:
        """Write a complete new version directory of model ``name`` (not yet visible to readers)."""
        home = self.path / "models" / _model_dirname(name)
        try:
            home.mkdir(parents=True, exist_ok=True)
            taken = [int(m.group(1)) for p in home.iterdir() if (m := _VERSION_RE.match(p.name))]
            vdir = home / f"v{max(taken, default=0) + 1}"
            vdir.mkdir(mode=DIR_MODE)
        except OSError as exc:
            raise write_error(home, exc) from None
        try:
            files = {}
            for key, arr in arrays.items():
                files[f"{key}.npy"] = {
                    "sha256": save_npy(vdir / f"{key}.npy", arr),
                    "shape": list(arr.shape),
                    "dtype": str(arr.dtype),
                }
            old_dir = self.path / "models" / old_entry["dir"] if old_entry else None
            for fname, rec in carried.items():
                src, dst = old_dir / fname, vdir / fname
                try:
                    os.link(src, dst)
                except OSError:
                    try:
                        shutil.copyfile(src, dst)
                    except OSError as exc:
                        raise write_error(dst, exc) from None
                files[fname] = dict(rec)
            meta["files"] = dict(sorted(files.items()))
            write_json_atomic(vdir / _MODEL_META, meta)
            fsync_dir(vdir)
            fsync_dir(home)
        except BaseException:
            shutil.rmtree(vdir, ignore_errors=True)
            with contextlib.suppress(OSError):
                home.rmdir()  # only when empty: a new model that failed to be written
            raise
        return vdir

    def _prune(self, name: str, keep: set[str]) -> None:
        """Delete versions of ``name`` other than ``keep`` (the current and the one it superseded, which
        readers that opened the store before the overwrite may still be reading)."""
        home = self.path / "models" / _model_dirname(name)
        with contextlib.suppress(OSError):
            for p in home.iterdir():
                if p.is_dir() and _VERSION_RE.match(p.name) and f"{home.name}/{p.name}" not in keep:
                    shutil.rmtree(p, ignore_errors=True)
                elif p.is_file() and home.name not in keep:  # files of a superseded version-1 directory
                    with contextlib.suppress(OSError):
                        p.unlink()

    def _check_array(self, name: str, split: str, kind: str, arr: Any) -> np.ndarray:
        what = f"model {name!r}, split {split!r}, {kind}"
        if isinstance(arr, np.ndarray) and arr.dtype == object:
            raise StoreError(f"{what}: object arrays are not allowed")
        arr = np.asarray(arr)
        if arr.ndim != 2:
            raise StoreError(
                f"{what}: expected a 2-D array (N, {'C' if kind == 'logits' else 'D'}), got shape {arr.shape}"
            )
        n = self.n_examples(split)
        if arr.shape[0] != n:
            raise StoreError(f"{what}: {arr.shape[0]} rows but split {split!r} has {n} labels")
        if not np.issubdtype(arr.dtype, np.floating):
            if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
                arr = arr.astype(np.float32)
            else:
                raise StoreError(f"{what}: expected floats, got dtype {arr.dtype}")
        if arr.dtype not in (np.float16, np.float32):
            arr = arr.astype(np.float32)
        _check_finite(arr, what)
        return np.ascontiguousarray(arr)

    def remove_model(self, name: str) -> None:
        """Delete model ``name`` from the store (one atomic step: its manifest entry goes first)."""
        self._entry(name)
        with self._model_lock(name):
            entry = self._entry(name)
            with file_lock(self.path / ".lock", what=f"store {self.path}"):
                self._commit(lambda record: record["models"].pop(name, None))
            home = self.path / "models" / entry["dir"].split("/")[0]
            shutil.rmtree(home, ignore_errors=True)

    # ---------------------------------------------------------------------------- arrays

    def _file(self, name: str, split: str, kind: str) -> tuple[Path, dict] | None:
        entry = self._entry(name)
        meta = self._load_meta(name, entry)
        self._split(split)
        key = f"{kind}.{split}.npy"
        rec = meta["files"].get(key)
        return None if rec is None else (self.path / "models" / entry["dir"] / key, rec)

    def has_logits(self, name: str, split: str) -> bool:
        return self._file(name, split, "logits") is not None

    def has_embeddings(self, name: str, split: str) -> bool:
        return self._file(name, split, "embeddings") is not None

    def _open_array(self, name: str, split: str, kind: str) -> np.ndarray | None:
        found = self._file(name, split, kind)
        if found is None:
            return None
        path, rec = found
        if not path.is_file():
            self._raise_if_moved(name, path)
            raise StoreError(f"model {name!r}: {path} is missing (`norep store verify` lists the problems)")
        return load_npy(path, shape=rec["shape"], dtype=rec["dtype"], what=f"model {name!r}, {kind} of {split!r}")

    def logits(self, name: str, split: str) -> np.ndarray:
        """Memory-mapped (N, C) logits of model ``name`` on ``split``."""
        arr = self._open_array(name, split, "logits")
        if arr is None:
            raise StoreError(f"model {name!r} has no logits for split {split!r}")
        return arr

    def embeddings(self, name: str, split: str) -> np.ndarray | None:
        """Memory-mapped (N, D) embeddings of model ``name`` on ``split``, or None where absent."""
        return self._open_array(name, split, "embeddings")

    def temperature(self, name: str) -> float:
        return float(self.meta(name)["temperature"])

    def probs(self, name: str, split: str, calibrated: bool = True) -> np.ndarray:
        """Softmax probabilities (float32) of ``name`` on ``split``, temperature-scaled if ``calibrated``."""
        from norep.calibration import softmax

        t = self.temperature(name) if calibrated else 1.0
        return np.asarray(
            softmax(np.asarray(self.logits(name, split), dtype=np.float32), temperature=t), dtype=np.float32
        )

    def predictions(self, name: str, split: str) -> np.ndarray:
        """Top-1 class ids: argmax of the logits (first maximum on ties).

        Temperature scaling does not change the argmax in exact arithmetic; the analyses
        (:mod:`norep.metrics`, :mod:`norep.allpairs`) take the argmax of float32 calibrated
        probabilities, which can differ from this in rare float rounding ties.
        """
        return _argmax_rows(self.logits(name, split))

    # ---------------------------------------------------------------------------- integrity

    def verify(self) -> dict:
        """Check the whole store; raise :class:`VerifyError` (a ``ValueError``) listing the problems.

        Checked: ``store.json`` (schema, its own checksum, the manifest), every split's labels (shape and
        checksum), every model of the manifest (``meta.json`` present, matching the manifest's checksum
        and the schema, its name and files confined to the store) and every array (present, header,
        shape and dtype, SHA-256), and the accuracies in the metadata against the logits. Half states of
        interrupted writes are leftovers (listed, harmless, removed by :meth:`clean`).

        Returns
        -------
        dict
            ``{"models": n, "arrays": n, "leftovers": [...], "notes": [...]}``.
        """
        problems: list[str] = []
        notes: list[str] = []
        try:
            self._stat = None
            self._refresh()
        except StoreError as exc:
            raise VerifyError(self.path, [str(exc)]) from None
        if self._info["schema_version"] < 2:
            notes.append(
                "written by an older norep: no manifest or metadata checksums (deleted models and "
                "edited metadata cannot be detected); any write, or `norep store clean`, adds them"
            )
        real_root = os.path.realpath(self.path)
        labels: dict[str, np.ndarray] = {}
        for split, rec in self._info["splits"].items():
            p = self.path / "splits" / f"{split}.labels.npy"
            if not p.is_file():
                problems.append(f"labels of split {split!r} missing ({p})")
                continue
            if not os.path.realpath(p).startswith(real_root + os.sep):
                problems.append(f"labels of split {split!r}: {p} points outside the store")
                continue
            try:
                arr = self.labels(split)
            except StoreError as exc:
                problems.append(str(exc))
                continue
            if rec.get("sha256") and sha256_file(p) != rec["sha256"]:
                problems.append(f"labels of split {split!r}: {p} checksum mismatch (corrupted)")
                continue
            labels[split] = arr
            if not rec["multilabel"] and arr.size and int(arr.max()) >= len(self.class_names):
                problems.append(
                    f"labels of split {split!r} go up to {int(arr.max())} but the store has "
                    f"{len(self.class_names)} classes"
                )
        try:
            manifest = self._manifest()
        except StoreError as exc:
            raise VerifyError(self.path, [*problems, str(exc)]) from None
        n_arrays = 0
        for name, entry in manifest.items():
            mdir = self.path / "models" / entry["dir"]
            if not os.path.realpath(mdir).startswith(real_root + os.sep):
                problems.append(f"model {name!r}: {mdir} points outside the store")
                continue
            try:
                meta = self._load_meta(name, entry)
            except StoreError as exc:
                problems.append(str(exc))
                continue
            for fname, frec in meta["files"].items():
                n_arrays += 1
                p = mdir / fname
                rel = p.relative_to(self.path).as_posix()
                if not p.is_file():
                    problems.append(f"model {name!r}: {rel} missing")
                    continue
                if not os.path.realpath(p).startswith(real_root + os.sep):
                    problems.append(f"model {name!r}: {rel} points outside the store")
                    continue
                try:
                    arr = load_npy(p, shape=frec["shape"], dtype=frec["dtype"], what=f"model {name!r}")
                except StoreError as exc:
                    problems.append(str(exc))
                    continue
                if sha256_file(p) != frec["sha256"]:
                    problems.append(f"model {name!r}: {rel} checksum mismatch (corrupted)")
                    continue
                kind, split, _ = fname.split(".")
                acc = (meta.get("accuracy") or {}).get(split)
                if kind == "logits" and split in labels and acc is not None:
                    real = float(np.mean(_argmax_rows(arr) == labels[split]))
                    if abs(real - acc) > 1e-9:
                        problems.append(
                            f"model {name!r}: meta.json says {split} accuracy {acc:.6g} but its logits "
                            f"give {real:.6g} (edited metadata or labels)"
                        )
        leftovers = self._leftovers(manifest)
        if problems:
            raise VerifyError(self.path, problems)
        return {"models": len(manifest), "arrays": n_arrays, "leftovers": leftovers, "notes": notes}

    def _leftovers(self, manifest: dict) -> list[str]:
        """Files and directories of interrupted or superseded writes (relative paths)."""
        found = []
        root = self.path / "models"
        referenced = {e["dir"] for e in manifest.values()}
        homes = {e["dir"].split("/")[0]: e["dir"] for e in manifest.values()}
        if root.is_dir():
            for home in sorted(root.iterdir()):
                if home.name not in homes:
                    found.append(f"models/{home.name}")
                    continue
                ref = homes[home.name]
                for p in sorted(home.iterdir()):
                    rel = f"{home.name}/{p.name}"
                    if ref == home.name:  # version-1 directory: subdirectories are leftovers
                        if p.is_dir() or p.name.endswith(".tmp"):
                            found.append(f"models/{rel}")
                    elif rel not in referenced:
                        found.append(f"models/{rel}")
        for sub in (self.path, self.path / "splits"):
            if sub.is_dir():
                found += [p.relative_to(self.path).as_posix() for p in sorted(sub.glob(".*.tmp"))]
        if (self.path / "splits").is_dir():
            wanted = {f"{s}.labels.npy" for s in self._info["splits"]}
            found += [
                f"splits/{p.name}"
                for p in sorted((self.path / "splits").iterdir())
                if not p.name.startswith(".") and p.name not in wanted
            ]
        return found

    def clean(self, *, dry_run: bool = False) -> list[str]:
        """Remove the leftovers of interrupted or superseded writes; return what was (or would be) removed.

        Safe while other processes write: a model being written (its lock held) is skipped, and nothing
        the manifest references is touched. A version-1 store is first upgraded (manifest added, and a
        model hidden by an interrupted overwrite of an older ``norep`` restored).
        """
        if not dry_run and self._info["schema_version"] < 2:
            with file_lock(self.path / ".lock", what=f"store {self.path}"):
                self._commit(lambda record: None)
        removed: list[str] = []
        self._refresh()
        for rel in self._leftovers(self._manifest()):
            p = self.path / rel
            parts = rel.split("/")
            if parts[0] == "models":
                home = parts[1]
                name = _home_name(home)
                try:
                    ctx = self._model_lock(name, timeout=0) if name is not None else contextlib.nullcontext()
                    with ctx:
                        self._refresh()
                        if rel not in self._leftovers(self._manifest()):
                            continue
                        if not dry_run:
                            _remove(p)
                except StoreError:
                    continue  # being written right now
            else:
                with file_lock(self.path / ".lock", what=f"store {self.path}"):
                    self._refresh()
                    if rel not in self._leftovers(self._manifest()):
                        continue
                    if not dry_run:
                        _remove(p)
            removed.append(rel)
        return removed

    def fingerprint(self) -> str:
        """A cheap identity of the store's current content: ``store.json`` and, for every file it refers
        to, the size, modification and change times and inode (no array is read).

        Any write through the file system changes it (the change time cannot be set back), so a
        verification recorded under a fingerprint still holds while the fingerprint is unchanged.
        """
        self._refresh()
        h = hashlib.sha256((self.path / _STORE_FILE).read_bytes())
        paths = [self.path / "splits" / f"{s}.labels.npy" for s in self._info["splits"]]
        for name, entry in sorted(self._manifest().items()):
            mdir = self.path / "models" / entry["dir"]
            paths.append(mdir / _MODEL_META)
            meta = self._load_meta(name, entry)
            paths += [mdir / f for f in sorted(meta["files"])]
        for p in paths:
            try:
                s = os.stat(p)
                h.update(f"{p}\0{s.st_size}\0{s.st_mtime_ns}\0{s.st_ctime_ns}\0{s.st_ino}\n".encode())
            except OSError:
                h.update(f"{p}\0missing\n".encode())
        return h.hexdigest()

    def verify_cached(self) -> dict:
        """:meth:`verify`, skipped when the store's :meth:`fingerprint` matches the last successful one.

        The record lives in ``$XDG_CACHE_HOME/norep/verified/`` (default ``~/.cache``), so read-only
        stores are covered too; a failure to write it only costs a re-verification next time.
        """
        try:
            fp = self.fingerprint()
        except (StoreError, OSError):
            return self.verify()  # raises, naming the problem
        cache = _verify_cache_file(self.path)
        with contextlib.suppress(OSError, ValueError):
            rec = json.loads(cache.read_text())
            if rec.get("fingerprint") == fp:
                return rec["report"]
        report = self.verify()
        if self.fingerprint() == fp:
            with contextlib.suppress(OSError, StoreError):
                cache.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(
                    cache,
                    {"path": str(self.path.resolve()), "fingerprint": fp, "report": report, "verified_at": time.time()},
                )
        return report

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, dataset={self.dataset!r}, models={len(self)}, splits={self.splits()})"


def _home_name(home: str) -> str | None:
    from urllib.parse import unquote

    if home.startswith("."):
        return None
    name = unquote(home)
    return name if _model_dirname(name) == home else None


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _verify_cache_file(path: Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:32]
    return base / "norep" / "verified" / f"{key}.json"
