"""Writing models into a prediction store: the writing side of :class:`norep.storage.Store`.

A model version is written completely into a new ``v<k>`` directory (:meth:`_Writing._write_version`)
and becomes visible with one atomic rewrite of ``store.json`` (``Store._commit``); superseded versions
are pruned afterwards. The only calibration step of a write, fitting a missing temperature on the
``calib`` logits, is :func:`_calib_temperature`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from norep import CATEGORIES
from norep.storage._check import _mark_verified
from norep.storage._inputs import refuse_probabilities
from norep.storage._io import (
    DIR_MODE,
    StoreError,
    canonical_sha,
    file_lock,
    fsync_dir,
    load_npy,
    read_npy_header,
    save_npy,
    sha256_file,
    write_error,
    write_json_atomic,
)
from norep.storage._schema import (
    _MODEL_META,
    _VERSION_RE,
    SCHEMA_VERSION,
    _argmax_rows,
    _check_finite,
    _check_name,
    _is_num,
    _model_dirname,
)


def _calib_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature fitted on a model's ``calib`` logits (paper Sec. 3.2) by :mod:`norep.measures.calibration`."""
    from norep.measures.calibration import fit_temperature

    return float(fit_temperature(logits, labels))


class _Writing:
    """The methods of :class:`norep.storage.Store` that add, merge, overwrite and remove models."""

    def add_model(
        self,
        name: str,
        *,
        logits: Mapping[str, Any] | None = None,
        embeddings: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any],
        overwrite: bool = False,
        merge: bool = False,
        splits: Mapping[str, Any] | None = None,
        split_class_names: Mapping[str, list[str]] | None = None,
    ) -> dict:
        """Validate and add one model's arrays in one atomic step.

        Everything is checked before the first write: a call that raises leaves the store as it was.

        Parameters
        ----------
        name : str
            Unique model name (any characters; e.g. ``"timm:resnet50.a1_in1k"``).
        logits : mapping of split to (N, C) array, optional
            Logits for single-label splits; float16 is kept, other floats are stored as float32.
            Probabilities (every row in [0, 1], summing to 1) are refused: store their logarithm.
        embeddings : mapping of split to (N, D) array, optional
            Penultimate embeddings (D >= 1), for any split (including multi-label ones).
        meta : mapping
            Must hold ``category`` (one of ``norep.CATEGORIES``, any case) and ``method`` (free text);
            usually also ``data``, ``head``, ``source``, ``recipe``, ``seed``. ``temperature`` is fitted
            on the ``calib`` logits (paper Sec. 3.2) unless given; 1.0 when there is no ``calib`` split.
            NaN and infinite values are stored as ``null``.
        overwrite : bool, default False
            Without ``merge``: replace an existing model of the same name. With ``merge``: allow
            replacing arrays the model already has, and changing its category or method.
        merge : bool, default False
            Add to an existing model: every array it has is kept (after its checksum is checked;
            a corrupted one makes the call fail), and so is every metadata field not given again
            (a ``None`` value does not erase one; dict values are merged one level deep). An array
            given again with identical content is no change, and a merge that changes nothing writes
            nothing (re-running an import is a no-op).
        splits : mapping of str to array, optional
            Labels of splits the arrays belong to that the store may not have yet (as
            :meth:`add_split` takes them): new ones are added in the same atomic step as the model,
            existing ones must hold the same labels.
        split_class_names : mapping of str to list of str, optional
            Label names of new multi-label ``splits``.

        Returns
        -------
        dict
            The stored metadata, with ``temperature`` and ``accuracy`` (per split) filled in.
        """
        _check_name(name)
        if not isinstance(meta, Mapping):
            raise StoreError(
                f"model {name!r}: meta must be a mapping (category, method, ...), got {type(meta).__name__}"
            )
        meta = dict(meta)
        if isinstance(meta.get("category"), str):
            meta["category"] = meta["category"].strip().upper()
        if meta.get("category") not in CATEGORIES:
            raise StoreError(
                f"model {name!r}: meta['category'] must be one of {', '.join(CATEGORIES)}, got {meta.get('category')!r}"
            )
        if not isinstance(meta.get("method"), str) or not meta["method"].strip():
            raise StoreError(f"model {name!r}: meta['method'] must be a non-empty description of the training method")
        logits = dict(logits or {})
        embeddings = dict(embeddings or {})
        if not logits and not embeddings:
            raise StoreError(f"model {name!r}: give logits and/or embeddings for at least one split")
        self._refresh()
        self._pending = self._pending_splits(splits or {}, split_class_names or {})
        try:
            return self._add_model(name, logits, embeddings, meta, overwrite, merge)
        finally:
            self._pending = {}

    def _pending_splits(self, splits: Mapping, names: Mapping) -> dict[str, tuple[dict, np.ndarray]]:
        """The checked new splits of an :meth:`add_model` call (existing ones must be identical)."""
        from norep.storage._create import _split_record

        unknown = sorted(set(names) - set(splits))
        if unknown:
            raise StoreError(f"split_class_names names split(s) {', '.join(unknown)} that splits does not give")
        pending = {}
        for split, labels in splits.items():
            rec, arr = _split_record(split, labels, len(self.class_names), names.get(split))
            if split in self._info["splits"]:
                self._check_same_split(split, rec, arr)
            else:
                rec.pop("names_given", None)
                pending[split] = (rec, arr)
        return pending

    def _add_model(self, name, logits, embeddings, meta, overwrite, merge) -> dict:
        if name in self and not (overwrite or merge):
            raise StoreError(f"model {name!r} already exists in store {self.path}; pass overwrite=True to replace it")
        if merge and not overwrite and name in self:
            self._same_kind(name, self._load_meta(name, self._entry(name)), meta)
        arrays = self._check_arrays(name, logits, embeddings)
        if meta.get("temperature") is not None and (not _is_num(meta["temperature"]) or meta["temperature"] <= 0):
            raise StoreError(f"model {name!r}: temperature must be a positive number, got {meta['temperature']}")
        canonical_sha(meta)  # fail early on unserialisable metadata
        plan = None
        if merge and name in self:  # every check that needs no lock, before the first file is touched
            entry = self._entry(name)
            old = self._load_meta(name, entry)
            plan = (dict(entry), self._identical(name, old, entry, arrays, overwrite))
            dims = {
                r["shape"][1] for f, r in old["files"].items() if f.startswith("embeddings.") and f[:-4] not in arrays
            }
            dims |= {a.shape[1] for k, a in arrays.items() if k.startswith("embeddings.")}
            if len(dims) > 1:
                raise StoreError(f"model {name!r}: embeddings have different widths across splits: {sorted(dims)}")
            if set(arrays) <= plan[1] and not self._pending:  # perhaps nothing to do: then take no lock
                merged, carried = self._merge(name, old, entry, dict(meta), {}, overwrite)
                if _same_meta(self._complete_meta(name, merged, {}, old, carried), old):
                    return dict(old)

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
            if old is not None:
                same = (
                    plan[1]
                    if plan and plan[0] == old_entry
                    else self._identical(name, old, old_entry, arrays, overwrite)
                )
                arrays = {k: a for k, a in arrays.items() if k not in same}
                meta, carried = self._merge(name, old, old_entry, meta, arrays, overwrite)
            meta = self._complete_meta(name, meta, arrays, old, carried)
            if old is not None and not arrays and not self._pending and _same_meta(meta, old):
                return dict(old)  # nothing changes: write nothing
            version_dir = self._write_version(name, arrays, carried, old_entry, meta)
            self._commit_model(name, version_dir)
            rel = version_dir.relative_to(self.path / "models").as_posix()
            self._prune(name, keep={rel, old_entry["dir"]} if old_entry else {rel})
        return meta

    def _commit_model(self, name: str, version_dir: Path) -> None:
        """Make ``version_dir`` the model's version (and add the pending splits) in one commit."""
        rel = version_dir.relative_to(self.path / "models").as_posix()
        meta_sha = sha256_file(version_dir / _MODEL_META)
        written: list[Path] = []
        try:
            with file_lock(self.path / ".lock", what=f"store {self.path}"):
                new = self._write_pending(written)

                def change(record):
                    record["splits"].update(new)
                    record["models"][name] = {"dir": rel, "meta_sha256": meta_sha}

                self._commit(change)
        except BaseException:
            for p in written:
                with contextlib.suppress(OSError):
                    p.unlink()
            shutil.rmtree(version_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                version_dir.parent.rmdir()
            raise

    def _write_pending(self, written: list[Path]) -> dict[str, dict]:
        """Write the label files of the pending new splits (store lock held); return their records."""
        from norep.storage._create import _write_labels

        info = self._read_info()
        new = {}
        for split, (rec, arr) in self._pending.items():
            if split in info["splits"]:  # added by another process meanwhile
                self._stat = None
                self._refresh()
                self._check_same_split(split, {**rec, "names_given": False}, arr)
                continue
            final = self.path / "splits" / f"{split}.labels.npy"
            written.append(final)
            new[split] = {**rec, "sha256": _write_labels(self.path, split, arr)}
        return new

    def _identical(self, name, old, old_entry, arrays, overwrite) -> set[str]:
        """Keys of ``arrays`` the model ``old`` already holds with identical content; without
        ``overwrite``, raise naming the arrays it holds with other content."""
        old_dir = self.path / "models" / old_entry["dir"]
        same, clash = set(), []
        for key, arr in arrays.items():
            rec = old["files"].get(f"{key}.npy")
            if rec is None:
                continue
            if rec["shape"] == list(arr.shape) and rec["dtype"] == str(arr.dtype):
                with contextlib.suppress(StoreError, OSError):
                    held = load_npy(old_dir / f"{key}.npy", shape=rec["shape"], dtype=rec["dtype"], what=name)
                    if _equal_rows(held, arr):
                        same.add(key)
                        continue
            clash.append(f"{key}.npy")
        if clash and not overwrite:
            raise StoreError(
                f"model {name!r} already has {', '.join(clash)} with other values; pass overwrite "
                "(--overwrite) to replace that array, or import under another --name"
            )
        return same

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
                    f"store has {len(self.class_names)} classes; give one column per class, in the "
                    "order of the store's class names"
                )
            refuse_probabilities(arr, f"model {name!r}, split {split!r}, logits")
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
                meta["temperature"] = _calib_temperature(arrays["logits.calib"], self.labels("calib"))
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
                sha = save_npy(vdir / f"{key}.npy", arr)
                _mark_verified(vdir / f"{key}.npy", sha)  # hashed as written: readers of this process trust it
                files[f"{key}.npy"] = {
                    "sha256": sha,
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
            raise StoreError(
                f"{what}: {arr.shape[0]} rows but split {split!r} has {n} labels; give one row per "
                "example of the split, in the order of its labels"
            )
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise StoreError(f"{what}: the array is empty (shape {arr.shape}); give at least one row and one column")
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


def _equal_rows(a: np.ndarray, b: np.ndarray, rows: int = 8192) -> bool:
    """``np.array_equal`` of two arrays of one shape, in blocks of rows (``a`` may be memory-mapped)."""
    return all(np.array_equal(a[i : i + rows], b[i : i + rows]) for i in range(0, a.shape[0], rows))


def _same_meta(meta: dict, old: dict) -> bool:
    """True when the metadata ``meta`` of a merge says what ``old`` says (``files`` and unset fields aside)."""

    def plain(m):
        return {k: v for k, v in m.items() if k != "files" and v is not None}

    try:
        return canonical_sha(plain(meta)) == canonical_sha(plain(old))
    except (TypeError, ValueError):
        return False
