"""Tests of norep.measures.stats.bootstrap_ci against normal theory, scipy and hand-worked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from norep.measures import ensembles, metrics
from norep.measures.stats import BootstrapCI, bootstrap_ci


def test_estimate_is_the_measure_on_the_full_data():
    y = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    pred = np.array([0, 1, 0, 0, 1, 1, 0, 1])
    ci = bootstrap_ci(metrics.accuracy_score, y, pred, n_resamples=100)
    assert isinstance(ci, BootstrapCI)
    assert ci.estimate == 6 / 8
    assert 0.0 <= ci.low <= ci.estimate <= ci.high <= 1.0
    est, low, high = ci  # unpacks as a tuple
    assert (est, low, high) == tuple(ci)


def test_constant_measure_has_zero_width():
    y = np.arange(50) % 3
    ci = bootstrap_ci(metrics.accuracy_score, y, y, n_resamples=50)
    assert ci == (1.0, 1.0, 1.0)


def test_arrays_are_resampled_together():
    # a measure that is 1 only when the arrays stay aligned
    rng = np.random.default_rng(0)
    a = rng.integers(0, 1000, 300)
    ci = bootstrap_ci(lambda u, v: float(np.mean(u == v)), a, a.copy(), n_resamples=100)
    assert ci == (1.0, 1.0, 1.0)
    # 2-D arrays: rows (examples) are resampled together with the labels
    y, probs = rng.integers(0, 4, 300), rng.dirichlet(np.ones(4), 300)
    probs[np.arange(300), y] += 10
    probs /= probs.sum(1, keepdims=True)
    ci = bootstrap_ci(metrics.accuracy_score, y, probs, n_resamples=50)
    assert ci == (1.0, 1.0, 1.0)


def test_seeded_and_reproducible():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    pred = np.where(rng.random(200) < 0.7, y, 1 - y)
    c1 = bootstrap_ci(metrics.accuracy_score, y, pred, n_resamples=200, seed=3)
    c2 = bootstrap_ci(metrics.accuracy_score, y, pred, n_resamples=200, seed=3)
    c3 = bootstrap_ci(metrics.accuracy_score, y, pred, n_resamples=200, seed=4)
    c4 = bootstrap_ci(metrics.accuracy_score, y, pred, n_resamples=200, seed=np.random.default_rng(3))
    assert c1 == c2 == c4
    assert c1 != c3
    assert c1.estimate == c3.estimate


def test_width_matches_normal_theory_and_scipy():
    # accuracy p = 0.7 on n = 1000: normal-theory 95% half-width 1.96 sqrt(p (1 - p) / n) = 0.0284
    rng = np.random.default_rng(2)
    n = 1000
    y = rng.integers(0, 5, n)
    correct = np.zeros(n, dtype=bool)
    correct[rng.permutation(n)[:700]] = True
    pred = np.where(correct, y, (y + 1) % 5)
    ci = bootstrap_ci(metrics.accuracy_score, y, pred, n_resamples=2000, seed=0)
    half = 1.96 * math.sqrt(0.7 * 0.3 / n)
    assert ci.estimate == 0.7
    assert ci.low == pytest.approx(0.7 - half, abs=0.006)
    assert ci.high == pytest.approx(0.7 + half, abs=0.006)
    ref = scipy.stats.bootstrap(
        (y, pred),
        lambda a, b: np.mean(a == b),
        paired=True,
        vectorized=False,
        n_resamples=2000,
        method="percentile",
        random_state=np.random.default_rng(9),
    ).confidence_interval
    assert ci.low == pytest.approx(ref.low, abs=0.006)
    assert ci.high == pytest.approx(ref.high, abs=0.006)
    # a wider confidence gives a wider interval
    ci99 = bootstrap_ci(metrics.accuracy_score, y, pred, n_resamples=2000, seed=0, confidence=0.99)
    assert ci99.low < ci.low and ci99.high > ci.high


def test_percentiles_of_a_known_resample_distribution():
    # For the mean of x = (0, 1) the resampled mean is 0, 0.5 or 1 with probabilities 1/4, 1/2,
    # 1/4: the 2.5% and 97.5% quantiles of many resamples are 0 and 1, the 30% and 70% ones 0.5.
    x = np.array([0.0, 1.0])
    assert bootstrap_ci(np.mean, x, n_resamples=4000) == (0.5, 0.0, 1.0)
    assert bootstrap_ci(np.mean, x, n_resamples=4000, confidence=0.4) == (0.5, 0.5, 0.5)


def test_nan_resamples_are_ignored():
    # conversion rate is nan on resamples without an inconsistent example
    y = np.array([0, 0, 0, 0, 1])
    pa = np.array([[0.9, 0.1]] * 4 + [[0.2, 0.8]])
    pb = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]])  # only example 4 is inconsistent, converted
    ci = bootstrap_ci(ensembles.conversion_rate, y, pa, pb, n_resamples=200)
    assert ci == (1.0, 1.0, 1.0)
    all_nan = bootstrap_ci(lambda a: float("nan"), y, n_resamples=10)
    assert all(math.isnan(v) for v in all_nan)


def test_vector_valued_measure():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 2)) + [0.0, 10.0]
    ci = bootstrap_ci(lambda a: a.mean(axis=0), x, n_resamples=300)
    assert ci.estimate.shape == ci.low.shape == ci.high.shape == (2,)
    assert np.all(ci.low < ci.estimate) and np.all(ci.estimate < ci.high)
    assert ci.low[1] > 9.0


def test_batches_of_indices(monkeypatch):
    import norep.measures.stats

    x = np.random.default_rng(4).normal(size=50)
    monkeypatch.setattr(norep.measures.stats, "_INDEX_BATCH_ELEMENTS", 50 * 3)  # 3 resamples per batch
    ci = bootstrap_ci(np.mean, x, n_resamples=10)
    assert ci.low < ci.estimate < ci.high


@pytest.mark.parametrize(
    ("kwargs", "arrays", "message"),
    [
        ({}, (np.zeros(3), np.zeros(4)), r"arrays\[1\] has 4 examples"),
        ({}, (), "at least one array"),
        ({}, (np.float64(1.0),), r"arrays\[0\] is a scalar"),
        ({}, (np.zeros(0),), "empty"),
        ({"n_resamples": 0}, (np.zeros(3),), "n_resamples must be"),
        ({"confidence": 1.0}, (np.zeros(3),), "confidence must be"),
        ({"confidence": 95}, (np.zeros(3),), "confidence must be"),
    ],
)
def test_bad_input(kwargs, arrays, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(np.mean, *arrays, **kwargs)
    with pytest.raises(ValueError, match="measure must be a callable"):
        bootstrap_ci(None, np.zeros(3))
