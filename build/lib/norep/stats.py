"""Uncertainty of the paper's scalars: percentile bootstrap over examples (beyond the paper).

The paper reports point estimates; the companion attaches a confidence interval to every scalar
(accuracy, error inconsistency, ensemble gain, conversion rate, ...) by resampling the evaluation
examples with replacement. All arrays describing the same examples (labels, each model's
predictions or probabilities) are resampled *together*, so paired measures keep their pairing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

__all__ = ["BootstrapCI", "bootstrap_ci"]

# Bound on the number of resampled indices drawn at once (memory of the index batch).
_INDEX_BATCH_ELEMENTS = 2**22


class BootstrapCI(NamedTuple):
    """A point estimate with a percentile-bootstrap confidence interval."""

    estimate: float
    """The measure on the full (not resampled) data."""
    low: float
    """Lower end of the interval (the ``(1 - confidence) / 2`` quantile of the resamples)."""
    high: float
    """Upper end of the interval (the ``(1 + confidence) / 2`` quantile of the resamples)."""


def bootstrap_ci(
    measure: Callable[..., float],
    *arrays,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
) -> BootstrapCI:
    """Percentile bootstrap confidence interval of any measure computed over examples.

    Draws ``n_resamples`` resamples of the N examples with replacement (one
    :class:`numpy.random.Generator` seeded by ``seed``), indexes every array of ``arrays`` with
    the same indices along axis 0, and evaluates ``measure(*resampled_arrays)`` on each. The
    interval is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the
    resampled values (linear interpolation, :func:`numpy.quantile`). Resamples on which the
    measure is ``nan`` (e.g. a conversion rate without any error-inconsistent example) are left
    out of the quantiles; if all are, the interval is ``(nan, nan)``.

    Parameters
    ----------
    measure : callable
        ``measure(*arrays) -> float``, e.g. :func:`norep.metrics.error_inconsistency`. It may
        also return an array of fixed shape (each entry then gets its own interval).
    *arrays : array-like
        The data, examples along axis 0 and all of the same length N (e.g. ``y_true``,
        ``probs_a``, ``probs_b``). A stack of M models' predictions of shape (M, N) must be
        transposed to (N, M) (and transposed back inside ``measure``).
    n_resamples : int, default 1000
        Number of bootstrap resamples.
    confidence : float, default 0.95
        Coverage of the interval, in (0, 1).
    seed : int, numpy.random.Generator or None, default 0
        Seed of :func:`numpy.random.default_rng`; a fixed seed gives identical intervals.

    Returns
    -------
    BootstrapCI
        Named tuple ``(estimate, low, high)``; ``estimate`` is ``measure`` on the full data.

    Examples
    --------
    >>> import numpy as np
    >>> from norep.metrics import accuracy_score
    >>> y = np.array([0, 1, 1, 0, 1, 0, 0, 1, 1, 1])
    >>> pred = np.array([0, 1, 0, 0, 1, 1, 0, 1, 1, 1])
    >>> ci = bootstrap_ci(accuracy_score, y, pred, n_resamples=200, seed=0)
    >>> round(ci.estimate, 2)
    0.8
    >>> bool(ci.low <= ci.estimate <= ci.high)
    True
    """
    if not callable(measure):
        raise ValueError("measure must be a callable taking the arrays and returning a scalar")
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array to resample")
    data = [np.asarray(a) for a in arrays]
    for i, a in enumerate(data):
        if a.ndim == 0:
            raise ValueError(f"arrays[{i}] is a scalar; every array needs examples along axis 0")
    n = data[0].shape[0]
    for i, a in enumerate(data[1:], start=1):
        if a.shape[0] != n:
            raise ValueError(
                f"arrays[{i}] has {a.shape[0]} examples along axis 0 but arrays[0] has {n}"
            )
    if n == 0:
        raise ValueError("arrays[0] is empty")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not (isinstance(confidence, (float, int, np.floating)) and 0.0 < float(confidence) < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")

    estimate = np.asarray(measure(*data), dtype=np.float64)
    rng = np.random.default_rng(seed)
    batch = max(1, _INDEX_BATCH_ELEMENTS // n)
    values = np.empty((int(n_resamples), *estimate.shape), dtype=np.float64)
    done = 0
    while done < n_resamples:
        size = min(batch, n_resamples - done)
        indices = rng.integers(0, n, size=(size, n))
        for row in indices:
            values[done] = np.asarray(measure(*(a[row] for a in data)), dtype=np.float64)
            done += 1

    alpha = (1.0 - float(confidence)) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-nan slice gives nan, by design
        low, high = np.nanquantile(values, [alpha, 1.0 - alpha], axis=0)
    if estimate.ndim == 0:
        return BootstrapCI(float(estimate), float(low), float(high))
    return BootstrapCI(estimate, low, high)
