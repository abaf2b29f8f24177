"""The :class:`Store` class: opening a store, reading it, its ``store.json``; see :mod:`norep.storage`."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from norep import CATEGORIES
from norep.storage._check import VerifyError, _Integrity, check_once
from norep.storage._create import _Creation
from norep.storage._inputs import check_extras
from norep.storage._io import StoreError, canonical_sha, file_lock, load_npy, read_json, write_json_atomic
from norep.storage._schema import (
    _MODEL_META,
    _RESERVED_INFO,
    _STORE_FILE,
    SCHEMA_VERSION,
    _argmax_rows,
    _check_info,
    _check_meta,
    _model_dirname,
    _seal,
    _suggest,
)
from norep.storage._write import _Writing

_BASE_COLUMNS = ["name", "category", "method", "data", "head", "source", "temperature"]
_HIDDEN_META = {"files", "recipe", "added_at", "name", "schema_version"}

__all__ = ["SCHEMA_VERSION", "Store", "StoreError", "VerifyError"]


class Store(_Creation, _Writing, _Integrity):
    """A prediction store on disk. Create with :meth:`create`, open with :meth:`open`.

    The methods that create a store, write models and check a store are defined in
    :mod:`norep.storage._create`, :mod:`norep.storage._write` and :mod:`norep.storage._check`.

    Parameters
    ----------
    path : str or Path
        The store directory. Use :meth:`open` rather than the constructor.
    """

    def __init__(self, path: str | os.PathLike, *, verify: bool = True) -> None:
        self.path = Path(path)
        self.verify_arrays = bool(verify)
        self._stat: tuple | None = None
        self._info: dict = {}
        self._legacy: dict | None = None
        self._meta_cache: dict[tuple, dict] = {}
        self._pending: dict[str, tuple[dict, np.ndarray]] = {}  # new splits of an add_model call
        self._refresh()

    # ---------------------------------------------------------------------------- opening

    @classmethod
    def open(cls, path: str | os.PathLike, *, verify: bool = True) -> Store:
        """Open an existing store; raise ``FileNotFoundError`` if ``path`` holds none.

        With ``verify`` (the default) every array reader (:meth:`logits`, :meth:`embeddings`,
        :meth:`labels`, :meth:`probs`, :meth:`predictions`) checks a file's SHA-256 the first time
        this process reads it (see :meth:`logits`); ``verify=False`` (or setting
        ``store.verify_arrays = False``) skips that check.
        """
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
        return cls(path, verify=verify)

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
        """Set extras in ``store.json`` atomically (e.g. ``base_model=``, ``accuracy_band=(lo, hi)``,
        ``class_groups={"nature": [0, 1], "anthropogenic": [2, 3]}``).

        The known extras are checked first (a band of fractions, class groups of at least two
        disjoint, non-empty groups of class ids of this store; JSON values, NaN stored as null); nothing
        is written (and no lock taken) when every value is already set.
        """
        reserved = _RESERVED_INFO & set(extras)
        if reserved:
            raise StoreError(f"update_info cannot change {sorted(reserved)}")
        self._refresh()
        extras = check_extras(extras, len(self.class_names))
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
        if isinstance(split, str) and split in self._pending:
            return self._pending[split][0]
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

    def labels(self, split: str, *, verify: bool | None = None) -> np.ndarray:
        """Labels of ``split``: (N,) int64 class ids, or (N, K) uint8 multi-hot (checksum checked as
        :meth:`logits` checks it)."""
        rec = self._split(split)
        if split in self._pending:
            return self._pending[split][1]
        path = self.path / "splits" / f"{split}.labels.npy"
        if not path.exists():
            raise StoreError(f"labels of split {split!r} are missing: {path}")
        if rec.get("sha256") and (self.verify_arrays if verify is None else verify):
            check_once(path, rec["sha256"], f"labels of split {split!r}")
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
        _check_meta(meta, name, path, self._info)
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

    # ---------------------------------------------------------------------------- locks

    def _model_lock(self, name: str, timeout: float = -1):
        return file_lock(
            self.path / ".locks" / f"{_model_dirname(name)}.lock",
            timeout=timeout,
            what=f"model {name!r} of store {self.path}",
        )

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

    def _open_array(self, name: str, split: str, kind: str, verify: bool | None) -> np.ndarray | None:
        found = self._file(name, split, kind)
        if found is None:
            return None
        path, rec = found
        if not path.is_file():
            self._raise_if_moved(name, path)
            raise StoreError(f"model {name!r}: {path} is missing (`norep store verify` lists the problems)")
        what = f"model {name!r}, {kind} of {split!r}"
        arr = load_npy(path, shape=rec["shape"], dtype=rec["dtype"], what=what)
        if self.verify_arrays if verify is None else verify:
            check_once(path, rec["sha256"], what)
        return arr

    def logits(self, name: str, split: str, *, verify: bool | None = None) -> np.ndarray:
        """Memory-mapped (N, C) logits of model ``name`` on ``split``, checked against their checksum.

        The first read of a file in a process computes its SHA-256 and compares it with the one
        recorded when it was written (a corrupted file raises :class:`StoreError`); later reads of
        the unchanged file (same size, modification and change times, inode) skip the check, and
        :meth:`verify` or a :meth:`verify_cached` hit counts as that first check (as does writing
        the file in this process). Measured on an AMD EPYC (family 25 model 17, Zen 4, with SHA
        instructions; 2 cores shared, load average 7.5): 0.09-0.10 s for a 50,000 x 1,000 float16
        array (100 MB, in the page cache), once per process; 0.5 ms for a later read. An edit in
        place within one tick of the file system's clock, by this process, can go unnoticed until
        the next process; :meth:`verify` checks every byte. ``verify=False`` here, or
        ``Store.open(path, verify=False)`` for every reader, skips the check.
        """
        arr = self._open_array(name, split, "logits", verify)
        if arr is None:
            raise StoreError(f"model {name!r} has no logits for split {split!r}")
        return arr

    def embeddings(self, name: str, split: str, *, verify: bool | None = None) -> np.ndarray | None:
        """Memory-mapped (N, D) embeddings of model ``name`` on ``split`` (checked as :meth:`logits`
        checks), or None where absent."""
        return self._open_array(name, split, "embeddings", verify)

    def temperature(self, name: str) -> float:
        return float(self.meta(name)["temperature"])

    def probs(self, name: str, split: str, calibrated: bool = True, *, verify: bool | None = None) -> np.ndarray:
        """Softmax probabilities (float32) of ``name`` on ``split``, temperature-scaled if ``calibrated``."""
        from norep.measures.calibration import softmax

        t = self.temperature(name) if calibrated else 1.0
        return np.asarray(
            softmax(np.asarray(self.logits(name, split, verify=verify), dtype=np.float32), temperature=t),
            dtype=np.float32,
        )

    def predictions(self, name: str, split: str, *, verify: bool | None = None) -> np.ndarray:
        """Top-1 class ids: argmax of the logits (first maximum on ties).

        Temperature scaling does not change the argmax in exact arithmetic; the analyses
        (:mod:`norep.measures.metrics`, :mod:`norep.allpairs`) take the argmax of float32 calibrated
        probabilities, which can differ from this in rare float rounding ties.
        """
        return _argmax_rows(self.logits(name, split, verify=verify))

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, dataset={self.dataset!r}, models={len(self)}, splits={self.splits()})"
