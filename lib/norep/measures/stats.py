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

__all__ = [
    "BootstrapCI",
    "bootstrap_ci",
    "hierarchical_bootstrap_ci",
    "permutation_pvalue",
    "small_sample_factor",
    "widen",
]

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
        ``measure(*arrays) -> float``, e.g. :func:`norep.measures.metrics.error_inconsistency`. It may
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
    >>> from norep.measures.metrics import accuracy_score
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
            raise ValueError(f"arrays[{i}] has {a.shape[0]} examples along axis 0 but arrays[0] has {n}")
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


def hierarchical_bootstrap_ci(
    statistic: Callable[[list, np.ndarray], float],
    groups,
    n_examples: int,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | np.random.Generator | None = 0,
    resample_models: bool = True,
    small_sample: bool = False,
) -> BootstrapCI:
    """Two-level percentile bootstrap: models within groups, then evaluation examples.

    A statement about categories of models (e.g. "Dataset models disagree more with the base than
    Reinit models") rests on the models as well as on the examples: with two or three models per
    category, the spread between models is often larger than the sampling error of the examples.
    Each resample draws, independently within every group, as many models as the group holds
    (with replacement), and N example weights (how often each of the N examples is drawn when N
    are drawn with replacement); the statistic is evaluated on that resample. The interval is the
    percentile interval of the resampled values (resamples giving ``nan`` are left out).

    Parameters
    ----------
    statistic : callable
        ``statistic(members, weights) -> float``: ``members`` is a list with, per group, an int
        array of (resampled) model indices; ``weights`` an (N,) float array of example weights
        (all ones for the estimate). A weighted mean ``x @ weights / weights.sum()`` is the
        resampled mean of ``x``.
    groups : sequence of array-like of int
        The model indices of each group (e.g. per category). Empty groups are not allowed.
    n_examples : int
        N, the number of evaluation examples.
    n_resamples : int, default 1000
    confidence : float, default 0.95
    seed : int, Generator or None, default 0
    resample_models : bool, default True
        False resamples the examples only (for comparison: the interval most claims used before).
    small_sample : bool, default False
        Widen the percentile interval about the estimate by :func:`small_sample_factor` of the
        smallest group (:func:`widen`; with one group, the degrees of freedom of one mean): with a
        few models per group the plain percentile interval is too narrow (its model-level variance
        is ``(k - 1) / k`` of the true one and its tails are normal, not Student's t), and calls a
        one-sided effect far more often than its nominal rate.

    Returns
    -------
    BootstrapCI

    Examples
    --------
    The mean of group 1 minus the mean of group 0, over models whose values are per-example
    indicators (two models per group):

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = (rng.random((4, 500)) < np.array([[0.1], [0.12], [0.3], [0.33]])).astype(float)
    >>> def gap(members, w):
    ...     per_model = x @ w / w.sum()
    ...     return per_model[members[1]].mean() - per_model[members[0]].mean()
    >>> ci = hierarchical_bootstrap_ci(gap, [[0, 1], [2, 3]], 500, n_resamples=200)
    >>> bool(0.1 < ci.estimate < 0.3 and ci.low > 0)
    True
    """
    groups = [np.asarray(g, dtype=np.int64).ravel() for g in groups]
    if not groups or any(g.size == 0 for g in groups):
        raise ValueError("groups must be a non-empty list of non-empty index arrays")
    n = int(n_examples)
    if n < 1:
        raise ValueError(f"n_examples must be positive, got {n_examples!r}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not (isinstance(confidence, (float, int, np.floating)) and 0.0 < float(confidence) < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    estimate = np.asarray(statistic([g.copy() for g in groups], np.ones(n)), dtype=np.float64)
    rng = np.random.default_rng(seed)
    values = np.empty((int(n_resamples), *estimate.shape))
    for b in range(int(n_resamples)):
        members = [rng.choice(g, size=g.size, replace=True) if resample_models else g for g in groups]
        weights = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        values[b] = np.asarray(statistic(members, weights), dtype=np.float64)
    alpha = (1.0 - float(confidence)) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanquantile(values, [alpha, 1.0 - alpha], axis=0)
    if small_sample and resample_models:
        k = min(g.size for g in groups)
        low, high = widen(estimate, low, high, small_sample_factor(k, confidence, n_groups=min(2, len(groups))))
    if estimate.ndim == 0:
        return BootstrapCI(float(estimate), float(low), float(high))
    return BootstrapCI(estimate, low, high)


def small_sample_factor(k: int, confidence: float = 0.95, n_groups: int = 2) -> float:
    """How much wider a percentile interval over ``k`` resampled models per group must be to keep its level.

    ``sqrt(k / (k - 1)) * t / z``: the first factor undoes the bootstrap's ``(k - 1) / k`` shrinkage of
    the between-model variance, the second replaces the normal quantile ``z`` of ``confidence`` by
    Student's ``t`` with ``n_groups (k - 1)`` degrees of freedom (by default two groups of ``k`` models
    compared; ``n_groups=1`` for the mean over one group). It is
    1 in the limit of many models and conservative where the examples, not the models, dominate the
    variance. ``inf`` for ``k < 2`` (one model says nothing about the spread between models).

    Examples
    --------
    >>> round(small_sample_factor(4), 3), round(small_sample_factor(40), 3), small_sample_factor(1)
    (1.442, 1.029, inf)
    """
    from scipy.stats import norm, t

    k = int(k)
    if k < 2:
        return float("inf")
    q = (1.0 + float(confidence)) / 2.0
    return float(np.sqrt(k / (k - 1)) * t.ppf(q, max(1, int(n_groups)) * (k - 1)) / norm.ppf(q))


def widen(estimate, low, high, factor: float):
    """``(low, high)`` moved away from ``estimate`` by ``factor`` (each side keeps its own length).

    Examples
    --------
    >>> widen(1.0, 0.5, 2.0, 2.0)
    (0.0, 3.0)
    """
    est, lo, hi = (np.asarray(a, dtype=np.float64) for a in (estimate, low, high))
    lo2, hi2 = est - factor * (est - lo), est + factor * (hi - est)
    if lo2.ndim == 0:
        return float(lo2), float(hi2)
    return lo2, hi2


def permutation_pvalue(
    statistic: Callable[[np.ndarray], float],
    labels,
    *,
    n_permutations: int = 999,
    seed: int | np.random.Generator | None = 0,
) -> tuple[float, float, np.ndarray]:
    """One-sided permutation test: how often shuffled labels give a statistic at least as large.

    Parameters
    ----------
    statistic : callable
        ``statistic(labels) -> float``, larger meaning more structure.
    labels : array-like
        The labels to permute (e.g. the class group of every class).
    n_permutations : int, default 999
    seed : int, Generator or None, default 0

    Returns
    -------
    observed : float
        The statistic on the given labels.
    p_value : float
        ``(1 + #{permuted >= observed}) / (1 + n_permutations)`` (never 0).
    null : ndarray
        The permuted values.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.array([0.9, 0.8, 0.85, 0.1, 0.2, 0.15])
    >>> lab = np.array([1, 1, 1, 0, 0, 0])
    >>> obs, p, _ = permutation_pvalue(lambda g: x[g == 1].mean() - x[g == 0].mean(), lab, n_permutations=199)
    >>> round(obs, 2), p < 0.1
    (0.7, True)
    """
    lab = np.asarray(labels)
    if lab.ndim != 1 or lab.size < 2:
        raise ValueError("labels must be a 1-D array with at least two entries")
    if isinstance(n_permutations, bool) or not isinstance(n_permutations, (int, np.integer)) or n_permutations < 1:
        raise ValueError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    observed = float(statistic(lab))
    rng = np.random.default_rng(seed)
    null = np.array([float(statistic(rng.permutation(lab))) for _ in range(int(n_permutations))])
    p = (1.0 + np.count_nonzero(null >= observed - 1e-12)) / (1.0 + null.size)
    return observed, float(p), null
