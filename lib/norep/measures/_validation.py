"""Argument checks shared by the measures and the fast engine.

Every public measure (:mod:`norep.measures.metrics`, :mod:`norep.measures.ensembles`,
:mod:`norep.measures.specialization`,
:mod:`norep.measures.calibration`, :mod:`norep.measures.features`, :mod:`norep.measures.transfer`) and the fast engine
(:mod:`norep.engine`) check their inputs with these helpers, so a wrong shape, dtype or value gives
the same ``ValueError`` message wherever it is passed, and no measure module imports another's
private helpers. Each helper returns the checked (and, where stated, converted) value or raises
``ValueError`` naming the argument. Nothing here computes a measure. A new measure checks its
arguments with these helpers, and a new kind of argument gets its check here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------------
# class ids, predictions and probabilities (metrics, ensembles, specialization)


def as_class_ids(values, *, name: str) -> np.ndarray:
    """Validate a 1-D array of class ids and return it as int64."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class ids, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or Inf")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer class ids, got non-integral values")
    arr = arr.astype(np.int64, copy=False)
    if arr.min() < 0:
        raise ValueError(f"{name} contains a negative class id ({int(arr.min())})")
    return arr


def check_y_true(y_true, *, name: str = "y_true") -> np.ndarray:
    """Validate labels: 1-D, non-empty, non-negative integer class ids."""
    return as_class_ids(y_true, name=name)


def check_length(arr: np.ndarray, n: int, *, name: str, ref: str = "y_true") -> None:
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} examples but {ref} has {n}")


def check_label_range(y_true: np.ndarray, n_classes: int, *, name: str) -> None:
    top = int(y_true.max())
    if top >= n_classes:
        raise ValueError(f"y_true contains class id {top} but {name} has only {n_classes} columns (classes)")


def check_finite(arr: np.ndarray, *, name: str) -> None:
    if not np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf")


def check_pred(pred, y_true: np.ndarray, *, name: str) -> np.ndarray:
    """Validate one prediction (class ids or (N, C) scores) and return (N,) int64 class ids."""
    arr = np.asarray(pred)
    if arr.ndim == 1:
        ids = as_class_ids(arr, name=name)
        check_length(ids, y_true.shape[0], name=name)
        return ids
    if arr.ndim == 2:
        check_length(arr, y_true.shape[0], name=name)
        if arr.shape[1] == 0:
            raise ValueError(f"{name} has no columns (classes)")
        check_finite(arr, name=name)
        check_label_range(y_true, arr.shape[1], name=name)
        return np.argmax(arr, axis=1).astype(np.int64, copy=False)
    raise ValueError(f"{name} must be 1-D class ids (N,) or 2-D scores (N, C), got shape {arr.shape}")


def check_preds(preds, y_true: np.ndarray, *, name: str = "preds") -> np.ndarray:
    """Validate a stack of M predictions and return (M, N) int64 class ids."""
    if isinstance(preds, np.ndarray) and preds.ndim in (2, 3):
        if preds.ndim == 2:
            if preds.shape[1] != y_true.shape[0]:
                raise ValueError(
                    f"{name} must be (M, N) class ids with N = len(y_true) = {y_true.shape[0]}, got shape {preds.shape}"
                )
            if preds.shape[0] == 0:
                raise ValueError(f"{name} holds no models")
            return as_class_ids(preds.ravel(), name=name).reshape(preds.shape)
        items = list(preds)
    elif isinstance(preds, np.ndarray):
        raise ValueError(f"{name} must be (M, N) class ids, (M, N, C) scores or a list, got shape {preds.shape}")
    elif isinstance(preds, Sequence) or hasattr(preds, "__iter__"):
        items = list(preds)
    else:
        raise ValueError(f"{name} must be an array or a list of predictions")
    if len(items) == 0:
        raise ValueError(f"{name} holds no models")
    return np.stack([check_pred(p, y_true, name=f"{name}[{i}]") for i, p in enumerate(items)])


def _probs_tolerance(dtype: np.dtype) -> float:
    eps = float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.floating) else 0.0
    return max(1e-4, 4.0 * eps)


def check_probs(probs, y_true: np.ndarray | None, *, name: str, n: int | None = None) -> np.ndarray:
    """Validate an (N, C) array of probabilities (rows on the simplex); returned as given (no copy).

    Rows must be non-negative and sum to one within a tolerance that fits the dtype
    (1e-4, or 4 machine epsilons for float16), so that logits passed by mistake are refused.
    """
    arr = np.asarray(probs)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of probabilities (N, C), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be floating-point probabilities, got dtype {arr.dtype}")
    if y_true is not None:
        check_length(arr, y_true.shape[0], name=name)
    elif n is not None:
        check_length(arr, n, name=name, ref="the other inputs")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no columns (classes)")
    check_finite(arr, name=name)
    tol = _probs_tolerance(arr.dtype)
    if arr.min() < 0:
        raise ValueError(
            f"{name} contains negative values: pass probabilities (e.g. "
            "norep.measures.calibration.softmax(logits, temperature)), not logits"
        )
    sums = arr.sum(axis=1, dtype=np.float64)
    worst = float(np.max(np.abs(sums - 1.0)))
    if worst > tol:
        raise ValueError(
            f"{name} rows must sum to 1 (largest deviation {worst:.3g}): pass probabilities "
            "(e.g. norep.measures.calibration.softmax(logits, temperature)), not logits or scores"
        )
    if y_true is not None:
        check_label_range(y_true, arr.shape[1], name=name)
    return arr


def check_probs_stack(probs, y_true: np.ndarray | None, *, name: str = "probs") -> list[np.ndarray]:
    """Validate M probability arrays given as (M, N, C) or a list; returns a list of (N, C) views."""
    if isinstance(probs, np.ndarray):
        if probs.ndim != 3:
            raise ValueError(
                f"{name} must be (M, N, C) probabilities or a list of (N, C) arrays, got shape {probs.shape}"
            )
        items = list(probs)
    elif hasattr(probs, "__iter__") and not isinstance(probs, (str, bytes, dict)):
        items = list(probs)
    else:
        raise ValueError(f"{name} must be (M, N, C) probabilities or a list of (N, C) arrays")
    if len(items) == 0:
        raise ValueError(f"{name} holds no models")
    out = []
    n = None if y_true is None else y_true.shape[0]
    for i, p in enumerate(items):
        arr = check_probs(p, y_true, name=f"{name}[{i}]", n=n)
        n = arr.shape[0]
        if out and arr.shape[1] != out[0].shape[1]:
            raise ValueError(f"{name}[{i}] has {arr.shape[1]} classes but {name}[0] has {out[0].shape[1]}")
        out.append(arr)
    return out


def check_weights(weights, m: int) -> np.ndarray | None:
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (m,):
        raise ValueError(f"weights must have one entry per model ({m}), got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be finite, non-negative and not all zero")
    return w


def check_candidates(candidates, y, *, name: str) -> dict[str, np.ndarray]:
    if not isinstance(candidates, Mapping):
        raise ValueError(f"{name} must be a mapping from model name to (N, C) probabilities")
    return {str(key): check_probs(p, y, name=f"{name}[{key!r}]") for key, p in candidates.items()}


def check_mask(mask, n: int) -> np.ndarray:
    m = np.asarray(mask)
    if m.dtype != bool or m.shape != (n,):
        raise ValueError(f"mask must be a boolean array of shape ({n},), got {m.dtype} {m.shape}")
    return m


# --------------------------------------------------------------------------------------------------
# logits, labels and temperatures (calibration and the fast engine)


def check_logits(logits, name: str = "logits", *, ndim: int | None = 2) -> np.ndarray:
    """Return ``logits`` as a floating ndarray (memory maps are kept as they are)."""
    if not isinstance(logits, np.ndarray):
        logits = np.asarray(logits)
    if logits.dtype == object or not (
        np.issubdtype(logits.dtype, np.floating) or np.issubdtype(logits.dtype, np.integer)
    ):
        raise ValueError(f"{name} must be a numeric array, got dtype {logits.dtype}")
    if np.issubdtype(logits.dtype, np.integer):
        logits = logits.astype(np.float64)
    if ndim is not None and logits.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D (n_samples, n_classes), got shape {logits.shape}")
    if logits.ndim == 0 or logits.shape[-1] == 0:
        raise ValueError(f"{name} must have at least one class column, got shape {logits.shape}")
    return logits


def as_logits(arr, name: str, n: int | None = None, c: int | None = None) -> np.ndarray:
    """C-contiguous 2-D numeric logits with at least two classes, ``n`` rows and ``c`` columns when
    given (integers become float64; a C-contiguous memory map is kept as it is)."""
    if not isinstance(arr, np.ndarray):
        arr = np.asarray(arr)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_classes), got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but y_true has {n} labels")
    if c is not None and arr.shape[1] != c:
        raise ValueError(f"{name} has {arr.shape[1]} classes, expected {c}")
    if arr.shape[1] < 2:
        raise ValueError(f"{name} must have at least 2 classes, got {arr.shape[1]}")
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr


def check_labels(y_true, n_samples: int, n_classes: int, name: str = "y_true") -> np.ndarray:
    """Integer class ids (int64) in ``[0, n_classes)``, one per row of the scores."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D class ids, got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError(f"{name} has {y.shape[0]} labels but the scores have {n_samples} rows")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer class ids, got dtype {y.dtype}")
    y = y.astype(np.int64, copy=False)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{name} has class ids outside [0, {n_classes - 1}] (min {y.min()}, max {y.max()})")
    return y


def check_temperature(temperature) -> float:
    """A positive finite temperature as a float."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}") from None
    if not (math.isfinite(t) and t > 0):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    return t


def check_fit_inputs(logits, y_true, bounds) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """The checked logits, labels and temperature bounds of a temperature fit (shared by the numpy
    fit and the torch backend's)."""
    logits = check_logits(logits)
    n, c = logits.shape
    y = check_labels(y_true, n, c)
    if n == 0:
        raise ValueError("logits has no rows")
    t_lo, t_hi = (float(b) for b in bounds)
    if not (0 < t_lo < t_hi < math.inf):
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds!r}")
    return logits, y, (t_lo, t_hi)


def check_prob_matrix(probs, n_samples: int | None = None, name: str = "probs") -> np.ndarray:
    """2-D floating probabilities in [0, 1] with ``n_samples`` rows when given."""
    p = np.asarray(probs)
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError(f"{name} must be 2-D (n_samples, n_classes), got shape {p.shape}")
    if not np.issubdtype(p.dtype, np.floating):
        raise ValueError(f"{name} must be floating-point probabilities, got dtype {p.dtype}")
    if n_samples is not None and p.shape[0] != n_samples:
        raise ValueError(f"{name} has {p.shape[0]} rows but y_true has {n_samples} labels")
    if not np.all(np.isfinite(p)) or p.min(initial=0.0) < 0 or p.max(initial=0.0) > 1 + 1e-6:
        raise ValueError(f"{name} must hold finite probabilities in [0, 1]")
    return p


def check_k(k) -> int:
    """A positive integer ``k`` (how many wrong classes a summary keeps)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def compute_dtype(dtype) -> type:
    """The dtype a measure computes in: float64 for float64 input, float32 for everything else."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def check_theta_bins(bins) -> np.ndarray:
    """Bin edges of the specialization angle: ``bins`` equal-width bins over [0, 90] degrees, or
    the given increasing edges."""
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError(f"bins must be a positive integer or increasing edges, got {bins}")
        return np.linspace(0.0, 90.0, int(bins) + 1)
    edges = np.asarray(bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
        raise ValueError("bins must be a positive integer or a 1-D increasing array of edges")
    return edges


# --------------------------------------------------------------------------------------------------
# features and labels of linear probes (features, transfer)


def check_2d(name: str, X: Any, *, finite: bool = True) -> np.ndarray:
    """Return ``X`` as a 2-D numeric array (no copy when possible) or raise naming ``name``."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} must not be empty, got shape {X.shape}")
    if not (np.issubdtype(X.dtype, np.floating) or np.issubdtype(X.dtype, np.integer) or X.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {X.dtype}")
    if finite and np.issubdtype(X.dtype, np.floating) and not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return X


def check_class_ids(name: str, y: Any, n: int | None = None) -> np.ndarray:
    """Return ``y`` as a 1-D int64 array of class ids, or raise naming ``name``."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class ids, got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} entries but its features have {n} rows")
    if y.size and np.issubdtype(y.dtype, np.floating):
        if not np.isfinite(y).all() or not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold integer class ids")
    elif not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool or y.size == 0):
        raise ValueError(f"{name} must hold integer class ids, got dtype {y.dtype}")
    return y.astype(np.int64)


def check_same_rows(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of rows (examples), got {a.shape[0]} and {b.shape[0]}"
        )


def check_rate(rate: Any) -> float:
    try:
        r = float(rate)
    except (TypeError, ValueError):
        raise ValueError(f"rate must be a number in [0, 1], got {rate!r}") from None
    if not 0.0 <= r <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate!r}")
    return r


def check_Cs(Cs: Any, default) -> np.ndarray:
    """Inverse regularisation strengths (``default`` when None), finite and > 0, sorted ascending."""
    Cs = np.asarray(default if Cs is None else Cs, dtype=np.float64).ravel()
    if Cs.size == 0:
        raise ValueError("Cs must hold at least one regularisation value")
    if not np.all(np.isfinite(Cs)) or np.any(Cs <= 0):
        raise ValueError(f"Cs must be finite and > 0, got {Cs.tolist()}")
    return np.unique(Cs)  # sorted ascending: strongest regularisation first (warm starts)


def check_binary(name: str, Y: Any, ndim: int) -> np.ndarray:
    Y = np.asarray(Y)
    if Y.ndim != ndim:
        kind = "a 1-D array" if ndim == 1 else "a 2-D (n_samples, n_classes) array"
        raise ValueError(f"{name} must be {kind} of 0/1 labels, got shape {Y.shape}")
    if Y.size == 0:
        raise ValueError(f"{name} must not be empty")
    if Y.dtype != bool:
        if not (np.issubdtype(Y.dtype, np.integer) or np.issubdtype(Y.dtype, np.floating)):
            raise ValueError(f"{name} must hold 0/1 labels, got dtype {Y.dtype}")
        if not np.isin(Y, (0, 1)).all():
            bad = np.unique(Y[~np.isin(Y, (0, 1))])[:5].tolist()
            raise ValueError(f"{name} must hold only 0/1 labels, found {bad}")
    return Y.astype(bool)


def check_scores(name: str, S: Any, shape: tuple[int, ...]) -> np.ndarray:
    S = np.asarray(S)
    if S.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (like the labels), got {S.shape}")
    if not (np.issubdtype(S.dtype, np.floating) or np.issubdtype(S.dtype, np.integer) or S.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {S.dtype}")
    S = S.astype(np.float64)
    if not np.isfinite(S).all():
        raise ValueError(f"{name} contains NaN or Inf values")
    return S
