"""Argument checks shared by the measures and the fast engine.

Every public measure validates its inputs with these helpers, so a wrong shape, dtype or value gives
the same ``ValueError`` message wherever it is passed. Each helper returns the checked (and, where
stated, converted) value. Nothing here computes a measure.
"""

from __future__ import annotations

import math

import numpy as np

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
