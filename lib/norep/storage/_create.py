"""Creating a prediction store and adding splits: the creation side of :class:`norep.storage.Store`.

:class:`_Creation` holds the methods; the helpers validate the labels and build the store's first
``store.json`` and label files (beside the final directory where an existing one is replaced).
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from norep.storage._inputs import check_class_names, check_extras, names_differ
from norep.storage._io import (
    DIR_MODE,
    StoreError,
    canonical_sha,
    exchange,
    file_lock,
    fsync_dir,
    save_npy,
    write_error,
    write_json_atomic,
)
from norep.storage._schema import (
    _RESERVED_INFO,
    _STORE_FILE,
    SCHEMA_VERSION,
    _as_labels,
    _check_split_name,
    _seal,
)

_S = TypeVar("_S", bound="_Creation")


class _Creation:
    """The methods of :class:`norep.storage.Store` that create a store or add a split."""

    @classmethod
    def create(
        cls: type[_S],
        path: str | os.PathLike,
        *,
        dataset: str,
        class_names: list[str],
        splits: Mapping[str, Any],
        split_class_names: Mapping[str, list[str]] | None = None,
        info: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> _S:
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
        record, arrays = _build_record(dataset, class_names, splits, split_class_names, info)
        if path.exists() and not path.is_dir():
            raise StoreError(f"{path} exists and is not a directory")
        if path.is_dir() and not _is_empty_dir(path):
            if not overwrite:
                raise StoreError(f"{path} already exists and is not empty; pass overwrite=True or use Store.open")
            if not (path / _STORE_FILE).exists():
                raise StoreError(f"refusing to overwrite {path}: it is not a norep store")
            new = _build_beside(path, record, arrays)
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
            _write_store(path, record, arrays)
            return cls(path)
        made = make_parents(path)
        try:
            new = _build_beside(path, record, arrays)
        except BaseException:
            remove_parents(made)
            raise
        try:
            os.rename(new, path)
            fsync_dir(path.parent)
        except OSError as exc:
            shutil.rmtree(new, ignore_errors=True)
            if path.is_dir() and (path / _STORE_FILE).exists():
                raise StoreError(f"{path} was created by another process at the same time; open it") from None
            remove_parents(made)
            raise write_error(path, exc) from None
        return cls(path)

    @classmethod
    def create_with_model(cls, path: str | os.PathLike, *, model: Mapping[str, Any], **create_kwargs: Any) -> tuple:
        """Create a new store holding one model, in one step: nothing appears at ``path`` unless both
        the store (``create_kwargs`` as :meth:`create` takes them) and the model (``model``, the
        keyword arguments of :meth:`add_model`) are valid and written.

        The store is built in a hidden directory beside ``path`` and renamed into place. Raises
        ``FileExistsError`` when ``path`` holds a store by then (created by another process: add the
        model to it instead) and :class:`StoreError` when it holds anything else.

        Returns
        -------
        (Store, dict)
            The new store and the stored metadata of the model.
        """
        path = Path(path)
        record, arrays = _build_record(
            create_kwargs.get("dataset"),
            create_kwargs.get("class_names"),
            create_kwargs.get("splits"),
            create_kwargs.get("split_class_names"),
            create_kwargs.get("info"),
        )
        unknown = sorted(set(create_kwargs) - {"dataset", "class_names", "splits", "split_class_names", "info"})
        if unknown:
            raise TypeError(f"create_with_model() got unexpected arguments {unknown}")
        if (path / _STORE_FILE).exists():
            raise FileExistsError(f"{path} holds a norep store already; add the model to it")
        if path.exists() and not (path.is_dir() and not any(path.iterdir())):
            raise StoreError(f"{path} exists and is not a norep store; give a new folder (or an empty one)")
        made = make_parents(path)
        new = None
        try:
            new = _build_beside(path, record, arrays)
            meta = cls(new).add_model(**model)
            try:
                os.rename(new, path)
            except OSError as exc:
                if (path / _STORE_FILE).exists():
                    raise FileExistsError(
                        f"{path} was created by another process meanwhile; add the model to it"
                    ) from None
                raise write_error(path, exc) from None
            new = None
            fsync_dir(path.parent)
        except BaseException:
            if new is not None:
                shutil.rmtree(new, ignore_errors=True)
            remove_parents(made)
            raise
        return cls(path), meta

    @classmethod
    def open_or_create(cls: type[_S], path: str | os.PathLike, **create_kwargs: Any) -> _S:
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
            if all([st._has_same_split(s, y, names.get(s)) for s, y in splits.items()]):
                return st
        else:  # check the arguments before anything is created
            _build_record(
                create_kwargs.get("dataset"),
                create_kwargs.get("class_names"),
                splits,
                names,
                create_kwargs.get("info"),
            )
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

    def _has_same_split(self, split: str, labels: Any, names: list[str] | None = None) -> bool:
        """True if the store holds ``split`` with these labels, False if it lacks it (the labels are
        checked either way); raise if it holds it with others."""
        rec, arr = _split_record(split, labels, len(self.class_names), names)
        if split not in self._info["splits"]:
            return False
        self._check_same_split(split, rec, arr)
        return True

    def _check_same_split(self, split: str, rec: dict, arr: np.ndarray) -> None:
        """Raise unless the existing ``split`` holds the labels ``arr`` (and label names of ``rec``)."""
        held = self._info["splits"][split]
        if held["multilabel"] != rec["multilabel"] or not np.array_equal(self.labels(split), arr):
            raise StoreError(
                f"split {split!r} already exists in {self.path} with different labels "
                f"({held['n']} {'multi-hot rows' if held['multilabel'] else 'class ids'}); give its own "
                "labels, or a new split name for these"
            )
        if rec["multilabel"] and rec.get("names_given") and rec["class_names"] != held["class_names"]:
            diff = names_differ(rec["class_names"], held["class_names"])
            raise StoreError(
                f"split {split!r}: the label names given differ from the store's ({diff}); leave them out "
                "or give the same"
            )

    def add_split(self, split: str, labels: Any, *, class_names: list[str] | None = None, _lock: bool = True) -> None:
        """Add a split (e.g. a downstream task) to an existing store.

        Adding a split that exists with identical labels is a no-op; different labels raise ``ValueError``.
        """
        rec, arr = _split_record(split, labels, len(self.class_names), class_names)
        self._refresh()
        if split in self._info["splits"]:
            self._check_same_split(split, rec, arr)
            return
        ctx = file_lock(self.path / ".lock", what=f"store {self.path}") if _lock else contextlib.nullcontext()
        with ctx:
            info = self._read_info()
            if split in info["splits"]:
                self._refresh()
                self._check_same_split(split, rec, arr)
                return
            rec.pop("names_given", None)
            rec["sha256"] = _write_labels(self.path, split, arr)

            def change(record):
                record["splits"][split] = rec

            try:
                self._commit(change, info)
            except BaseException:
                with contextlib.suppress(OSError):
                    (self.path / "splits" / f"{split}.labels.npy").unlink()
                raise


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


def _build_beside(path: Path, record: dict, arrays: dict) -> Path:
    """Build the store in a new hidden directory beside ``path``; return that directory."""
    new = path.with_name(f".{path.name}.new-{uuid.uuid4().hex[:8]}")
    try:
        new.mkdir(mode=DIR_MODE)
        _write_store(new, record, arrays)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return new


def _write_store(path: Path, record: dict, arrays: dict) -> None:
    """Write the label files and the first ``store.json`` (no models) into the directory ``path``."""
    record = copy.deepcopy(record)
    try:
        (path / "splits").mkdir(exist_ok=True)
        (path / "models").mkdir(exist_ok=True)
    except OSError as exc:
        raise write_error(path, exc) from None
    for split, arr in arrays.items():
        record["splits"][split]["sha256"] = _write_labels(path, split, arr)
    record["models"] = {}
    write_json_atomic(path / _STORE_FILE, _seal(record))


def _write_labels(path: Path, split: str, arr: np.ndarray) -> str:
    """Write the labels of ``split`` atomically; return their SHA-256."""
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


def _build_record(dataset, class_names, splits, split_class_names, info) -> tuple[dict, dict]:
    """Validate the arguments of :meth:`_Creation.create`; return the ``store.json`` record and the labels."""
    class_names = check_class_names(class_names)
    if not isinstance(dataset, str) or not dataset.strip():
        raise StoreError(f"dataset must be a non-empty name of the data set, got {dataset!r}")
    if not isinstance(splits, Mapping) or not splits:
        raise StoreError("a store needs at least one split: splits={name: labels}")
    extras = dict(info or {})
    clash = _RESERVED_INFO & set(extras)
    if clash:
        raise StoreError(f"info must not set reserved keys {sorted(clash)}")
    extras = check_extras(extras, len(class_names))
    record = {
        "schema_version": SCHEMA_VERSION,
        "dataset": str(dataset),
        "class_names": class_names,
        "splits": {},
        **extras,
    }
    arrays = {}
    unknown = sorted(set(split_class_names or {}) - set(splits))
    if unknown:
        raise StoreError(f"split_class_names names split(s) {', '.join(unknown)} that splits does not give")
    for split, labels in splits.items():
        rec, arr = _split_record(split, labels, len(class_names), (split_class_names or {}).get(split))
        rec.pop("names_given", None)
        record["splits"][split] = rec
        arrays[split] = arr
    canonical_sha(record)  # fail early on unserialisable extras
    return record, arrays


def _split_record(split: str, labels: Any, n_classes: int, names: list[str] | None) -> tuple[dict, np.ndarray]:
    """Validate one split's labels; return its ``store.json`` entry and the labels as stored."""
    _check_split_name(split)
    if labels is None:
        raise StoreError(f"split {split!r}: labels are missing")
    arr, multilabel = _as_labels(split, labels, n_classes)
    if arr.shape[0] == 0:
        raise StoreError(f"split {split!r} has no examples; give at least one labelled example")
    rec: dict[str, Any] = {"n": int(arr.shape[0]), "multilabel": multilabel}
    if multilabel:
        k = arr.shape[1]
        if k == 0:
            raise StoreError(f"split {split!r}: multi-hot labels with no columns; give one column per label")
        given = names is not None
        names = (
            check_class_names(names, f"label names of split {split!r}") if given else [f"label_{i}" for i in range(k)]
        )
        if len(names) != k:
            raise StoreError(f"split {split!r}: {len(names)} class names for {k} label columns")
        rec["class_names"] = names
        rec["names_given"] = given
    elif names is not None:
        raise StoreError(f"split {split!r}: split_class_names is only for multi-label splits")
    return rec, arr


def make_parents(path: Path) -> list[Path]:
    """Create the missing parent directories of ``path``; return those created (outermost first)."""
    missing = [p for p in reversed(path.parents) if not p.exists()]
    try:
        for p in missing:
            p.mkdir()
    except FileExistsError:
        pass
    except OSError as exc:
        remove_parents([p for p in missing if p.is_dir()])
        raise write_error(path.parent, exc) from None
    return missing


def remove_parents(made: list[Path]) -> None:
    """Remove the directories ``make_parents`` created, if still empty (innermost first)."""
    for p in reversed(made):
        with contextlib.suppress(OSError):
            p.rmdir()
