"""The prediction store: the one artifact between producers and analyses (DESIGN.md, "The prediction store").

A store is a directory::

    STORE/
      store.json                      schema version, dataset, class names, splits, extras (base model, band, ...)
      splits/<split>.labels.npy       (N,) int64 class ids, or (N, K) uint8 multi-hot for multi-label splits
      models/<model-dir>/meta.json    metadata, temperature, accuracies, file checksums
      models/<model-dir>/logits.<split>.npy       (N, C) float16/float32
      models/<model-dir>/embeddings.<split>.npy   (N, D) float16/float32

Properties that producers and notebooks rely on:

* arrays are plain ``.npy`` files read memory-mapped, never pickles (``allow_pickle=False``);
* a model is written into a private temporary directory and renamed into place in one step, so a crash
  never leaves half a model, and several processes (one per model, e.g. a cluster job array) can fill
  one store at the same time;
* every array carries a SHA-256 checksum that :meth:`Store.verify` checks;
* ``store.json`` carries a schema version; a store written by a newer ``norep`` is refused with a clear
  message instead of being misread.

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
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from norep import CATEGORIES

SCHEMA_VERSION = 1
"""Version of the on-disk layout written by this ``norep``. Readers refuse newer versions."""

_STORE_FILE = "store.json"
_MODEL_META = "meta.json"
_CHUNK_ROWS = 8192
_BASE_COLUMNS = ["name", "category", "method", "data", "head", "source", "temperature"]
_HIDDEN_META = {"files", "recipe", "added_at", "name", "schema_version"}


# --------------------------------------------------------------------------------------------------
# small helpers: atomic writes, checksums, locks


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _write_json_atomic(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=False, default=_json_default)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"metadata value of type {type(obj).__name__} is not JSON-serialisable")


def _save_npy(path: Path, arr: np.ndarray) -> str:
    """Write ``arr`` to ``path`` (inside a private temp dir) and return its SHA-256."""
    with open(path, "wb") as f:
        np.save(f, arr, allow_pickle=False)
        f.flush()
        os.fsync(f.fileno())
    return _sha256(path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An advisory inter-process lock (``fcntl.flock``) on ``path``."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _model_dirname(name: str) -> str:
    return quote(name, safe="-_.+@=,")


def _check_finite(arr: np.ndarray, what: str) -> None:
    for start in range(0, arr.shape[0], _CHUNK_ROWS):
        block = np.asarray(arr[start : start + _CHUNK_ROWS])
        if not np.isfinite(block).all():
            bad = start + int(np.nonzero(~np.isfinite(block).all(axis=tuple(range(1, block.ndim))))[0][0])
            raise ValueError(f"{what} contains NaN or Inf (first at row {bad})")


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
    if arr.ndim == 1:
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
                arr = arr.astype(np.int64)
            else:
                raise ValueError(f"split {split!r}: labels must be integer class ids, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or (n_classes is not None and arr.max() >= n_classes)):
            raise ValueError(
                f"split {split!r}: labels out of range: found {arr.min()}..{arr.max()}, "
                f"expected 0..{(n_classes or 0) - 1} for {n_classes} class names"
            )
        return arr, False
    if arr.ndim == 2:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"split {split!r}: multi-label labels must be 0/1 multi-hot")
        return arr.astype(np.uint8), True
    raise ValueError(f"split {split!r}: labels must be 1-D class ids or 2-D multi-hot, got shape {arr.shape}")


# --------------------------------------------------------------------------------------------------


class Store:
    """A prediction store on disk (DESIGN.md). Create with :meth:`create`, open with :meth:`open`.

    Parameters
    ----------
    path : str or Path
        The store directory. Use :meth:`open` rather than the constructor.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._info = self._read_info()

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
            splits (e.g. the downstream VOC-like task).
        split_class_names : mapping of str to list of str, optional
            Label names of the multi-label splits (default: ``label_0`` ...).
        info : mapping, optional
            Extras kept in ``store.json``: ``base_model``, ``accuracy_band`` (lo, hi as fractions),
            ``class_groups``, anything JSON-serialisable.
        overwrite : bool, default False
            Delete an existing store at ``path`` first.

        Returns
        -------
        Store
        """
        path = Path(path)
        if path.exists() and any(p.name != ".lock" for p in path.iterdir()):
            if not overwrite:
                raise ValueError(f"{path} already exists and is not empty; pass overwrite=True or use Store.open")
            if not (path / _STORE_FILE).exists():
                raise ValueError(f"refusing to overwrite {path}: it is not a norep store")
            shutil.rmtree(path)
        record = cls._build_record(dataset, class_names, splits, split_class_names, info)
        path.mkdir(parents=True, exist_ok=True)
        cls._write_splits(path, splits, record)
        _write_json_atomic(path / _STORE_FILE, record)
        (path / "models").mkdir(exist_ok=True)
        return cls(path)

    @classmethod
    def open_or_create(cls, path: str | os.PathLike, **create_kwargs: Any) -> Store:
        """Open the store at ``path``, or create it with ``create_kwargs`` if absent.

        Safe when several processes call it at once (an inter-process lock guards creation). If the
        store exists, its splits must hold the same labels as ``create_kwargs["splits"]``; new splits
        in ``create_kwargs`` are added.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with _locked(path / ".lock"):
            if not (path / _STORE_FILE).exists():
                return cls.create(path, **create_kwargs)
            st = cls.open(path)
            names = create_kwargs.get("split_class_names") or {}
            for split, labels in create_kwargs.get("splits", {}).items():
                st.add_split(split, labels, class_names=names.get(split), _lock=False)
            return st

    @classmethod
    def open(cls, path: str | os.PathLike) -> Store:
        """Open an existing store; raise ``FileNotFoundError`` if ``path`` holds none."""
        path = Path(path)
        if not (path / _STORE_FILE).exists():
            raise FileNotFoundError(
                f"no norep store at {path} (missing {_STORE_FILE}); build one with "
                "`norep zoo train`, `norep extract` or `norep import`"
            )
        return cls(path)

    @staticmethod
    def _build_record(dataset, class_names, splits, split_class_names, info) -> dict:
        class_names = [str(c) for c in class_names]
        if not class_names:
            raise ValueError("class_names must not be empty")
        if len(set(class_names)) != len(class_names):
            raise ValueError("class_names must be unique")
        if not splits:
            raise ValueError("a store needs at least one split")
        reserved = {"schema_version", "dataset", "class_names", "splits"}
        extras = dict(info or {})
        clash = reserved & set(extras)
        if clash:
            raise ValueError(f"info must not set reserved keys {sorted(clash)}")
        record = {
            "schema_version": SCHEMA_VERSION,
            "dataset": str(dataset),
            "class_names": class_names,
            "splits": {},
            **extras,
        }
        for split, labels in splits.items():
            record["splits"][split] = Store._split_record(
                split, labels, len(class_names), (split_class_names or {}).get(split)
            )
        json.dumps(record, default=_json_default)  # fail early on unserialisable extras
        return record

    @staticmethod
    def _split_record(split: str, labels: Any, n_classes: int, names: list[str] | None) -> dict:
        if not isinstance(split, str) or not split or split.startswith(".") or "/" in split:
            raise ValueError(f"invalid split name {split!r}")
        arr, multilabel = _as_labels(split, labels, n_classes)
        rec: dict[str, Any] = {"n": int(arr.shape[0]), "multilabel": multilabel}
        if multilabel:
            k = arr.shape[1]
            names = list(names) if names is not None else [f"label_{i}" for i in range(k)]
            if len(names) != k:
                raise ValueError(f"split {split!r}: {len(names)} class names for {k} label columns")
            rec["class_names"] = [str(n) for n in names]
        elif names is not None:
            raise ValueError(f"split {split!r}: split_class_names is only for multi-label splits")
        return rec

    @staticmethod
    def _write_splits(path: Path, splits: Mapping[str, Any], record: dict) -> None:
        (path / "splits").mkdir(parents=True, exist_ok=True)
        for split, labels in splits.items():
            arr, _ = _as_labels(split, labels, len(record["class_names"]))
            final = path / "splits" / f"{split}.labels.npy"
            fd, tmp = tempfile.mkstemp(prefix=".labels.", suffix=".npy", dir=final.parent)
            os.close(fd)
            record["splits"][split]["sha256"] = _save_npy(Path(tmp), arr)
            os.replace(tmp, final)

    def add_split(self, split: str, labels: Any, *, class_names: list[str] | None = None, _lock: bool = True) -> None:
        """Add a split (e.g. a downstream task) to an existing store.

        Adding a split that exists with identical labels is a no-op; different labels raise ``ValueError``.
        """
        ctx = _locked(self.path / ".lock") if _lock else contextlib.nullcontext()
        with ctx:
            self._info = self._read_info()
            rec = self._split_record(split, labels, len(self.class_names), class_names)
            arr, _ = _as_labels(split, labels, len(self.class_names))
            if split in self._info["splits"]:
                if not np.array_equal(self.labels(split), arr):
                    raise ValueError(f"split {split!r} already exists in {self.path} with different labels")
                return
            record = dict(self._info)
            record["splits"] = dict(record["splits"])
            record["splits"][split] = rec
            self._write_splits(self.path, {split: arr}, record)
            _write_json_atomic(self.path / _STORE_FILE, record)
            self._info = record

    def _read_info(self) -> dict:
        try:
            with open(self.path / _STORE_FILE) as f:
                info = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"no norep store at {self.path} (missing {_STORE_FILE})") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{self.path / _STORE_FILE} is corrupted: {exc}") from None
        version = info.get("schema_version")
        if not isinstance(version, int):
            raise ValueError(f"{self.path / _STORE_FILE} has no valid schema_version")
        if version > SCHEMA_VERSION:
            raise ValueError(
                f"store {self.path} has schema version {version}, newer than this norep supports "
                f"({SCHEMA_VERSION}); upgrade norep to read it"
            )
        return info

    # ---------------------------------------------------------------------------- store-level info

    @property
    def info(self) -> dict:
        """A copy of ``store.json``: dataset, class names, splits, schema version and extras."""
        return json.loads(json.dumps(self._info))

    def update_info(self, **extras: Any) -> None:
        """Set extras in ``store.json`` atomically (e.g. ``base_model=``, ``accuracy_band=(lo, hi)``)."""
        reserved = {"schema_version", "dataset", "class_names", "splits"} & set(extras)
        if reserved:
            raise ValueError(f"update_info cannot change {sorted(reserved)}")
        if "accuracy_band" in extras and extras["accuracy_band"] is not None:
            lo, hi = (float(v) for v in extras["accuracy_band"])
            if not 0 <= lo <= hi <= 1:
                raise ValueError(f"accuracy_band must be (lo, hi) fractions with 0 <= lo <= hi <= 1, got {(lo, hi)}")
            extras["accuracy_band"] = [lo, hi]
        with _locked(self.path / ".lock"):
            record = self._read_info()
            record.update(extras)
            _write_json_atomic(self.path / _STORE_FILE, record)
            self._info = record

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
        except KeyError:
            raise ValueError(f"unknown split {split!r} in store {self.path}{_suggest(split, self.splits())}") from None

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
        self._split(split)
        return np.load(self.path / "splits" / f"{split}.labels.npy", allow_pickle=False)

    # ---------------------------------------------------------------------------- models

    def _model_dir(self, name: str) -> Path:
        return self.path / "models" / _model_dirname(name)

    def model_names(self) -> list[str]:
        """Names of the stored models, in the order of :meth:`models`."""
        return [m["name"] for m in self._all_meta()]

    def _all_meta(self) -> list[dict]:
        metas = []
        root = self.path / "models"
        if not root.exists():
            return metas
        for d in root.iterdir():
            if d.name.startswith(".") or not (d / _MODEL_META).exists():
                continue
            with open(d / _MODEL_META) as f:
                metas.append(json.load(f))
        order = {c: i for i, c in enumerate(CATEGORIES)}
        metas.sort(key=lambda m: (order.get(m.get("category"), 99), m.get("added_at", 0), m["name"]))
        return metas

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (self._model_dir(name) / _MODEL_META).exists()

    def __len__(self) -> int:
        return len(self.model_names())

    def meta(self, name: str) -> dict:
        """The metadata of model ``name`` (category, method, temperature, accuracies, recipe, ...)."""
        path = self._model_dir(name) / _MODEL_META
        if not path.exists():
            raise ValueError(f"unknown model {name!r} in store {self.path}{_suggest(name, self.model_names())}")
        with open(path) as f:
            return json.load(f)

    def models(self) -> Any:
        """One row per model: name, category, method, data, head, source, temperature, accuracies, extras.

        Returns
        -------
        pandas.DataFrame
            Rows ordered by category (Reinit to Dataset), then by the order models were added.
        """
        import pandas as pd

        acc_cols = [f"{s}_accuracy" for s in sorted(self.splits(), key=lambda s: (s != "test", s))
                    if not self.is_multilabel(s)]
        rows = []
        for m in self._all_meta():
            row = {k: m.get(k) for k in _BASE_COLUMNS}
            row.update({c: m.get("accuracy", {}).get(c[: -len("_accuracy")]) for c in acc_cols})
            row.update({k: v for k, v in m.items()
                        if k not in _HIDDEN_META and k not in row and k != "accuracy"
                        and not isinstance(v, (dict, list))})
            rows.append(row)
        df = pd.DataFrame(rows, columns=None if rows else _BASE_COLUMNS + acc_cols)
        return df

    def add_model(
        self,
        name: str,
        *,
        logits: Mapping[str, Any] | None = None,
        embeddings: Mapping[str, Any] | None = None,
        meta: Mapping[str, Any],
        overwrite: bool = False,
    ) -> dict:
        """Validate and add one model's arrays atomically.

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
        overwrite : bool, default False
            Replace an existing model of the same name.

        Returns
        -------
        dict
            The stored metadata, with ``temperature`` and ``accuracy`` (per split) filled in.
        """
        if not isinstance(name, str) or not name.strip() or name.startswith("."):
            raise ValueError(f"invalid model name {name!r}: a non-empty string not starting with '.'")
        meta = dict(meta)
        category = meta.get("category")
        if category not in CATEGORIES:
            raise ValueError(f"model {name!r}: meta['category'] must be one of {', '.join(CATEGORIES)}, got {category!r}")
        if not isinstance(meta.get("method"), str) or not meta["method"].strip():
            raise ValueError(f"model {name!r}: meta['method'] must be a non-empty description of the training method")
        logits = dict(logits or {})
        embeddings = dict(embeddings or {})
        if not logits and not embeddings:
            raise ValueError(f"model {name!r}: give logits and/or embeddings for at least one split")
        if name in self and not overwrite:
            raise ValueError(f"model {name!r} already exists in store {self.path}; pass overwrite=True to replace it")

        arrays: dict[str, np.ndarray] = {}
        for split, arr in logits.items():
            self._split(split)
            if self.is_multilabel(split):
                raise ValueError(f"model {name!r}, split {split!r}: logits are for single-label splits; "
                                 "store embeddings for multi-label splits")
            arr = self._check_array(name, split, "logits", arr)
            if arr.shape[1] != len(self.class_names):
                raise ValueError(f"model {name!r}, split {split!r}: logits have {arr.shape[1]} columns but the "
                                 f"store has {len(self.class_names)} classes")
            arrays[f"logits.{split}"] = arr
        for split, arr in embeddings.items():
            self._split(split)
            arrays[f"embeddings.{split}"] = self._check_array(name, split, "embeddings", arr)
        dims = {a.shape[1] for k, a in arrays.items() if k.startswith("embeddings.")}
        if len(dims) > 1:
            raise ValueError(f"model {name!r}: embeddings have different widths across splits: {sorted(dims)}")

        accuracy = {}
        for split, arr in ((k.split(".", 1)[1], a) for k, a in arrays.items() if k.startswith("logits.")):
            accuracy[split] = float(np.mean(_argmax_rows(arr) == self.labels(split)))
        if meta.get("temperature") is None:
            if "calib" in logits:
                from norep.calibration import fit_temperature

                meta["temperature"] = float(fit_temperature(arrays["logits.calib"], self.labels("calib")))
                meta["temperature_fitted_on"] = "calib"
            else:
                meta["temperature"] = 1.0
                meta["temperature_fitted_on"] = None
        meta["temperature"] = float(meta["temperature"])
        if not np.isfinite(meta["temperature"]) or meta["temperature"] <= 0:
            raise ValueError(f"model {name!r}: temperature must be a positive number, got {meta['temperature']}")
        meta.update(name=name, accuracy=accuracy, added_at=time.time(), schema_version=SCHEMA_VERSION)
        if "embeddings.calib" in arrays or dims:
            meta["embedding_dim"] = int(next(iter(dims))) if dims else None

        models_dir = self.path / "models"
        models_dir.mkdir(exist_ok=True)
        tmp = models_dir / f".tmp-{_model_dirname(name)}-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            files = {}
            for key, arr in arrays.items():
                files[f"{key}.npy"] = {"sha256": _save_npy(tmp / f"{key}.npy", arr),
                                       "shape": list(arr.shape), "dtype": str(arr.dtype)}
            meta["files"] = files
            _write_json_atomic(tmp / _MODEL_META, meta)
            final = self._model_dir(name)
            with _locked(models_dir / ".lock"):
                if final.exists():
                    if not overwrite:
                        raise ValueError(f"model {name!r} already exists in store {self.path} "
                                         "(added concurrently); pass overwrite=True to replace it")
                    trash = models_dir / f".trash-{uuid.uuid4().hex[:12]}"
                    os.replace(final, trash)
                    os.replace(tmp, final)
                    shutil.rmtree(trash, ignore_errors=True)
                else:
                    os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return meta

    def _check_array(self, name: str, split: str, kind: str, arr: Any) -> np.ndarray:
        what = f"model {name!r}, split {split!r}, {kind}"
        if isinstance(arr, np.ndarray) and arr.dtype == object:
            raise ValueError(f"{what}: object arrays are not allowed")
        arr = np.asarray(arr)
        if arr.ndim != 2:
            raise ValueError(f"{what}: expected a 2-D array (N, {'C' if kind == 'logits' else 'D'}), got shape {arr.shape}")
        n = self.n_examples(split)
        if arr.shape[0] != n:
            raise ValueError(f"{what}: {arr.shape[0]} rows but split {split!r} has {n} labels")
        if not np.issubdtype(arr.dtype, np.floating):
            if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
                arr = arr.astype(np.float32)
            else:
                raise ValueError(f"{what}: expected floats, got dtype {arr.dtype}")
        if arr.dtype not in (np.float16, np.float32):
            arr = arr.astype(np.float32)
        _check_finite(arr, what)
        return np.ascontiguousarray(arr)

    def remove_model(self, name: str) -> None:
        """Delete model ``name`` from the store."""
        self.meta(name)
        d = self._model_dir(name)
        trash = self.path / "models" / f".trash-{uuid.uuid4().hex[:12]}"
        os.replace(d, trash)
        shutil.rmtree(trash, ignore_errors=True)

    # ---------------------------------------------------------------------------- arrays

    def _array_path(self, name: str, split: str, kind: str) -> Path | None:
        meta = self.meta(name)
        self._split(split)
        key = f"{kind}.{split}.npy"
        return self._model_dir(name) / key if key in meta.get("files", {}) else None

    def has_logits(self, name: str, split: str) -> bool:
        return self._array_path(name, split, "logits") is not None

    def has_embeddings(self, name: str, split: str) -> bool:
        return self._array_path(name, split, "embeddings") is not None

    def logits(self, name: str, split: str) -> np.ndarray:
        """Memory-mapped (N, C) logits of model ``name`` on ``split``."""
        path = self._array_path(name, split, "logits")
        if path is None:
            raise ValueError(f"model {name!r} has no logits for split {split!r}")
        return np.load(path, mmap_mode="r", allow_pickle=False)

    def embeddings(self, name: str, split: str) -> np.ndarray | None:
        """Memory-mapped (N, D) embeddings of model ``name`` on ``split``, or None where absent."""
        path = self._array_path(name, split, "embeddings")
        return None if path is None else np.load(path, mmap_mode="r", allow_pickle=False)

    def temperature(self, name: str) -> float:
        return float(self.meta(name)["temperature"])

    def probs(self, name: str, split: str, calibrated: bool = True) -> np.ndarray:
        """Softmax probabilities (float32) of ``name`` on ``split``, temperature-scaled if ``calibrated``."""
        from norep.calibration import softmax

        t = self.temperature(name) if calibrated else 1.0
        return np.asarray(softmax(np.asarray(self.logits(name, split), dtype=np.float32), temperature=t),
                          dtype=np.float32)

    def predictions(self, name: str, split: str) -> np.ndarray:
        """Top-1 class ids: argmax of the logits (first maximum on ties).

        Temperature scaling does not change the argmax in exact arithmetic; the analyses
        (:mod:`norep.metrics`, :mod:`norep.allpairs`) take the argmax of float32 calibrated
        probabilities, which can differ from this in rare float rounding ties.
        """
        return _argmax_rows(self.logits(name, split))

    # ---------------------------------------------------------------------------- integrity

    def verify(self) -> dict:
        """Check every array against its checksum and shape; raise ``ValueError`` listing problems.

        Returns
        -------
        dict
            ``{"models": n, "arrays": n, "leftovers": [...]}`` where leftovers are temp dirs of
            interrupted writes (harmless; removable).
        """
        problems = []
        n_arrays = 0
        for split, rec in self._info["splits"].items():
            p = self.path / "splits" / f"{split}.labels.npy"
            if not p.exists():
                problems.append(f"labels of split {split!r} missing")
            elif rec.get("sha256") and _sha256(p) != rec["sha256"]:
                problems.append(f"labels of split {split!r}: checksum mismatch")
        names = self.model_names()
        for name in names:
            meta = self.meta(name)
            for fname, frec in meta.get("files", {}).items():
                n_arrays += 1
                p = self._model_dir(name) / fname
                if not p.exists():
                    problems.append(f"model {name!r}: {fname} missing")
                    continue
                if _sha256(p) != frec["sha256"]:
                    problems.append(f"model {name!r}: {fname} checksum mismatch (corrupted)")
                    continue
                arr = np.load(p, mmap_mode="r", allow_pickle=False)
                if list(arr.shape) != frec["shape"]:
                    problems.append(f"model {name!r}: {fname} has shape {arr.shape}, expected {frec['shape']}")
        if problems:
            raise ValueError(f"store {self.path} failed verification:\n  " + "\n  ".join(problems))
        leftovers = [d.name for d in (self.path / "models").glob(".tmp-*")]
        return {"models": len(names), "arrays": n_arrays, "leftovers": leftovers}

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r}, dataset={self.dataset!r}, models={len(self)}, splits={self.splits()})"
