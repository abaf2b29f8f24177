"""Tests for norep.measures.calibration against independent references (scipy, scikit-learn, hand-worked cases)."""

import math
import tracemalloc

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax as sp_log_softmax
from scipy.special import logsumexp
from scipy.special import softmax as sp_softmax
from sklearn.metrics import log_loss

from norep.measures.calibration import (
    expected_calibration_error,
    fit_temperature,
    log_softmax,
    negative_log_likelihood,
    softmax,
)

# ------------------------------------------------------------------------------------------ helpers


def ref_nll(logits, y, t):
    """Mean NLL of softmax(logits / t), float64, straight from the definition."""
    z = np.asarray(logits, dtype=np.float64) / t
    return float(np.mean(logsumexp(z, axis=1) - z[np.arange(len(y)), y]))


def ref_newton_step(logits, y, t):
    """Derivative over curvature of the NLL in b = 1/T, relative to b: ~0 at the minimum.

    dNLL/db = mean(E_p[z] - z_y), d2NLL/db2 = mean(Var_p[z]) (float64, from the definition).
    """
    z = np.asarray(logits, dtype=np.float64)
    p = sp_softmax(z / t, axis=1)
    mean = (p * z).sum(axis=1)
    g = np.mean(mean - z[np.arange(len(y)), y])
    h = np.mean((p * z * z).sum(axis=1) - mean**2)
    return float(g / h * t)


def ref_fit(logits, y, lo=1e-4, hi=1e4, n_grid=121):
    """Reference fit: a fine bounded search in log T (grid, then bounded Brent with tiny xatol)."""
    grid = np.linspace(math.log(lo), math.log(hi), n_grid)
    vals = [ref_nll(logits, y, math.exp(u)) for u in grid]
    k = int(np.argmin(vals))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    res = minimize_scalar(
        lambda u: ref_nll(logits, y, math.exp(u)),
        bounds=(a, b),
        method="bounded",
        options={"xatol": 1e-12, "maxiter": 500},
    )
    return math.exp(res.x), res.fun


def synthetic(n, c, scale, seed=0, signal=2.5, dtype=np.float32):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, size=n)
    z = rng.normal(size=(n, c)) + rng.normal(signal, 1.5, size=n)[:, None] * np.eye(c)[y]
    return (z * scale).astype(dtype), y


# ------------------------------------------------------------------------------------------ softmax


def test_softmax_matches_scipy_and_rows_sum_to_one():
    rng = np.random.default_rng(1)
    z = rng.normal(scale=5, size=(50, 7))
    for t in (0.01, 0.5, 1.0, 3.0, 100.0):
        p = softmax(z, temperature=t)
        assert p.dtype == np.float64
        np.testing.assert_allclose(p, sp_softmax(z / t, axis=1), rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)


def test_softmax_float16_and_float32_compute_in_float32():
    rng = np.random.default_rng(2)
    z = rng.normal(scale=4, size=(300, 100)).astype(np.float16)
    p = softmax(z, temperature=1.7)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p, sp_softmax(z.astype(np.float64) / 1.7, axis=1), rtol=2e-5, atol=1e-8)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert softmax(z.astype(np.float32)).dtype == np.float32


def test_softmax_invariant_to_row_constant_and_order_of_blocks():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(40, 9))
    shift = rng.normal(scale=100, size=(40, 1))
    np.testing.assert_allclose(softmax(z + shift), softmax(z), rtol=1e-10, atol=1e-15)
    # the row-block computation gives bit-identical rows whatever rows surround them
    big = rng.normal(size=(5000, 33)).astype(np.float32)
    full = softmax(big, temperature=0.3)
    for rows in (slice(0, 1), slice(17, 18), slice(1000, 3001), slice(4990, 5000)):
        np.testing.assert_array_equal(softmax(big[rows], temperature=0.3), full[rows])
    idx = rng.integers(0, 5000, size=50)
    np.testing.assert_array_equal(softmax(big[idx], temperature=0.3), full[idx])


def test_softmax_extreme_values_and_1d():
    p = softmax([1000.0, 0.0, -1000.0])
    np.testing.assert_allclose(p, [1.0, 0.0, 0.0])
    assert np.all(np.isfinite(softmax(np.array([[1e4, -1e4]], dtype=np.float32), temperature=0.005)))
    np.testing.assert_allclose(softmax([[1.0, 2.0]], temperature=1e6), [[0.5, 0.5]], rtol=1e-5)


def test_log_softmax_matches_scipy():
    rng = np.random.default_rng(4)
    z = rng.normal(scale=30, size=(20, 11))
    np.testing.assert_allclose(log_softmax(z, temperature=0.7), sp_log_softmax(z / 0.7, axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.exp(log_softmax(z)), softmax(z), rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "x"])
def test_softmax_rejects_bad_temperature(bad):
    with pytest.raises(ValueError, match="temperature"):
        softmax([[1.0, 2.0]], temperature=bad)


def test_softmax_rejects_non_numeric():
    with pytest.raises(ValueError, match="logits"):
        softmax(np.array([["a", "b"]]))


# ------------------------------------------------------------------------------------------ fit_temperature


@pytest.mark.parametrize("scale,signal", [(0.004, 2.5), (0.01, 2.5), (1.0, 2.5), (3.0, 1.0), (60.0, 0.3)])
def test_fit_temperature_reaches_the_nll_minimum(scale, signal):
    logits, y = synthetic(3000, 20, scale, seed=int(scale * 1000) % 97, signal=signal, dtype=np.float64)
    t = fit_temperature(logits, y, bounds=(1e-4, 1e4))
    t_ref, nll_ref = ref_fit(logits, y)
    assert abs(t - t_ref) <= 1e-6 * t_ref, (t, t_ref)
    assert ref_nll(logits, y, t) - nll_ref <= 1e-6
    # the derivative in 1/T vanishes at the returned T (a Newton step would move 1/T by < 1e-6)
    assert abs(ref_newton_step(logits, y, t)) <= 1e-6


def test_fit_temperature_spans_small_and_large_temperatures():
    logits, y = synthetic(2000, 10, 1.0, seed=5, dtype=np.float64)
    t1 = fit_temperature(logits, y)
    # a logit scale of 0.005 (CLIP cosine-like) and of 100 move T by the same factor
    assert fit_temperature(logits * 0.005, y) == pytest.approx(t1 * 0.005, rel=1e-6)
    assert fit_temperature(logits * 100.0, y) == pytest.approx(t1 * 100.0, rel=1e-6)


def test_fit_temperature_float16_and_memmap(tmp_path):
    logits, y = synthetic(20000, 40, 3.0, seed=6, dtype=np.float16)
    path = tmp_path / "l.npy"
    np.save(path, logits)
    mm = np.load(path, mmap_mode="r")
    t_mm = fit_temperature(mm, y)
    t_ref, _ = ref_fit(logits.astype(np.float64), y, lo=0.1, hi=100, n_grid=41)
    assert abs(t_mm - t_ref) <= 1e-6 * t_ref
    assert fit_temperature(logits, y) == t_mm


def test_fit_temperature_streams_with_little_memory(tmp_path):
    logits, y = synthetic(20000, 500, 2.0, seed=7, dtype=np.float16)
    path = tmp_path / "l.npy"
    np.save(path, logits)
    mm = np.load(path, mmap_mode="r")
    del logits
    tracemalloc.start()
    fit_temperature(mm, y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # input is 20 MB (float16); the fit needs a subsample (8192 rows) and a few row blocks
    assert peak < 25e6, peak


def test_fit_temperature_clips_to_bounds():
    y = np.arange(50) % 5
    perfect = np.eye(5)[y] * 10.0  # right everywhere with a margin: NLL decreases as T -> 0
    assert fit_temperature(perfect, y, bounds=(0.01, 100)) == pytest.approx(0.01)
    rng = np.random.default_rng(8)
    noise = rng.normal(size=(400, 5))
    y_noise = (noise.argmax(axis=1) + 1) % 5  # always wrong: NLL decreases as T -> infinity
    assert fit_temperature(noise, y_noise, bounds=(0.01, 100)) == pytest.approx(100)


def test_central_pass_derivatives_match_bernoulli_cumulants():
    # two classes with logits (1, 0): under p, z is Bernoulli(q), q = sigmoid(b); the derivatives of
    # the NLL in b = 1/T are E[z] - z_y and Bernoulli's cumulants (hand-worked closed forms)
    from norep.measures.calibration import _central_pass

    b = 0.8
    q = 1.0 / (1.0 + math.exp(-b))
    v = q * (1 - q)
    expected = [
        q - 1.0,  # label = class 0, whose logit is 1
        v,
        v * (1 - 2 * q),
        v * (1 - 6 * v),
        v * (1 - 2 * q) * (1 - 12 * v),
    ]
    logits = np.tile([[1.0, 0.0]], (300, 1))
    got = _central_pass(logits, np.zeros(300, dtype=np.int64), b)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)


def test_central_pass_derivatives_match_float64_definitions():
    from norep.measures.calibration import _central_pass

    logits, y = synthetic(2000, 50, 3.0, seed=11, dtype=np.float32)
    b = 0.9
    z = logits.astype(np.float64)
    p = sp_softmax(b * z, axis=1)
    mu = (p * z).sum(axis=1)
    c = z - mu[:, None]
    m2, m3, m4, m5 = ((p * c**k).sum(axis=1) for k in (2, 3, 4, 5))
    expected = [
        np.mean(mu - z[np.arange(len(y)), y]),
        m2.mean(),
        m3.mean(),
        np.mean(m4 - 3 * m2**2),
        np.mean(m5 - 10 * m3 * m2),
    ]
    got = _central_pass(logits, y, b)
    # float32 sums: each derivative to about 1e-5 of its scale
    for g, e, scale in zip(got, expected, [expected[1], *expected[1:]], strict=True):
        assert abs(g - e) <= 2e-5 * abs(scale), (g, e)


def test_taylor_root_of_a_known_function():
    # L'(b) = exp(b) - e has its root at 1; every derivative above the first is exp(b)
    from norep.measures.calibration import _taylor_root

    for b0 in (1.01, 0.99, 1.03):
        derivs = (math.exp(b0) - math.e, *([math.exp(b0)] * 4))
        beta, err = _taylor_root(derivs, b0)
        actual = abs(beta - 1.0)
        assert actual < 1e-6
        assert err >= 0.3 * actual  # the estimate of the truncation error is of the right size
    assert _taylor_root((1.0, -1.0, 0.0, 0.0, 0.0), 1.0) is None  # no curvature: no guide
    assert _taylor_root((1.0, 1e-3, 0.0, 0.0, 0.0), 1.0) is None  # root beyond 10 %


def test_fit_temperature_ends_after_one_full_pass_from_a_close_start(monkeypatch):
    import norep.measures.calibration as cal

    logits, y = synthetic(20000, 100, 2.0, seed=12, dtype=np.float32)
    full = {"central": 0, "newton": 0}
    central, moment = cal._central_pass, cal._moment_pass

    def count_central(lg, yy, b):
        full["central"] += len(yy) == len(y)
        return central(lg, yy, b)

    def count_moment(lg, yy, b, **kw):
        full["newton"] += len(yy) == len(y)
        return moment(lg, yy, b, **kw)

    monkeypatch.setattr(cal, "_central_pass", count_central)
    monkeypatch.setattr(cal, "_moment_pass", count_moment)
    t = fit_temperature(logits, y)
    assert full == {"central": 1, "newton": 0}
    t_ref, _ = ref_fit(logits.astype(np.float64), y, lo=0.1, hi=100, n_grid=41)
    assert abs(t - t_ref) <= 1e-6 * t_ref
    # a tolerance below what the Taylor root can promise: Newton passes follow, the answer agrees
    full.update(central=0, newton=0)
    t_tight = fit_temperature(logits, y, rtol=1e-14)
    assert full["central"] == 1 and full["newton"] >= 1
    assert abs(t_tight - t_ref) <= 1e-6 * t_ref


def test_fit_temperature_at_a_bound_skips_the_taylor_pass(monkeypatch):
    # the subsample already finds the root beyond the upper bound of 1/T: no pass at the bound
    import norep.measures.calibration as cal

    y = np.arange(4000) % 5
    perfect = np.eye(5)[y] * 10.0
    calls = []
    central = cal._central_pass
    monkeypatch.setattr(cal, "_central_pass", lambda *a: calls.append(1) or central(*a))
    assert fit_temperature(perfect, y, bounds=(0.01, 100)) == pytest.approx(0.01)
    assert calls == []


def test_fit_temperature_bad_input():
    logits = np.zeros((4, 3))
    with pytest.raises(ValueError, match="y_true has 3 labels"):
        fit_temperature(logits, [0, 1, 2])
    with pytest.raises(ValueError, match="class ids outside"):
        fit_temperature(logits, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="NaN or Inf"):
        fit_temperature(np.array([[0.0, np.nan], [1.0, 0.0]]), [0, 1])
    with pytest.raises(ValueError, match="2-D"):
        fit_temperature(np.zeros(3), [0, 1, 2])
    with pytest.raises(ValueError, match="bounds"):
        fit_temperature(logits, [0, 1, 2, 0], bounds=(1.0, 0.5))


# ------------------------------------------------------------------------------------------ measures


def test_nll_matches_sklearn_log_loss():
    rng = np.random.default_rng(9)
    p = sp_softmax(rng.normal(size=(200, 6)), axis=1)
    y = rng.integers(0, 6, size=200)
    assert negative_log_likelihood(y, p) == pytest.approx(log_loss(y, p, labels=range(6)), rel=1e-12)
    # a zero probability gives a large finite loss (clipped at machine epsilon, like sklearn)
    assert np.isfinite(negative_log_likelihood([0], [[0.0, 1.0]]))


def test_nll_consistent_with_fit():
    logits, y = synthetic(1000, 8, 1.0, seed=10, dtype=np.float64)
    t = fit_temperature(logits, y)
    assert negative_log_likelihood(y, softmax(logits, t)) == pytest.approx(ref_nll(logits, y, t), rel=1e-10)


def test_ece_hand_worked():
    # 5 bins: confidences 0.9, 0.9 (bin 4, accuracy 1/2), 0.55 (bin 2, accuracy 1), 0.3 (bin 1, wrong)
    probs = np.array([[0.9, 0.1, 0.0], [0.9, 0.05, 0.05], [0.55, 0.45, 0.0], [0.3, 0.35, 0.35]])
    probs[3] = [0.3, 0.3, 0.4]  # confidence 0.4 -> bin 1 (0.2, 0.4]; prediction 2
    y = np.array([0, 1, 0, 0])
    expected = (2 * abs(0.5 - 0.9) + abs(1 - 0.55) + abs(0 - 0.4)) / 4
    assert expected_calibration_error(y, probs, n_bins=5) == pytest.approx(expected, abs=1e-12)


def test_ece_bin_edges_are_right_closed():
    # confidence exactly 0.6 belongs to (0.4, 0.6] with 5 bins, together with 0.5
    probs = np.array([[0.6, 0.4], [0.5, 0.5]])
    y = np.array([0, 1])  # correct at 0.6, wrong at 0.5 (argmax takes class 0)
    assert expected_calibration_error(y, probs, n_bins=5) == pytest.approx(abs(0.5 - 0.55), abs=1e-12)


def test_ece_zero_for_calibrated_and_matches_loop_reference():
    rng = np.random.default_rng(11)
    p = sp_softmax(rng.normal(scale=2, size=(5000, 4)), axis=1)
    y = np.array([rng.choice(4, p=row) for row in p])  # labels drawn from the probabilities
    ece = expected_calibration_error(y, p)
    assert ece < 0.03
    conf, pred = p.max(1), p.argmax(1)
    ref = 0.0
    for k in range(15):
        lo, hi = k / 15, (k + 1) / 15
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ref += m.mean() * abs((pred[m] == y[m]).mean() - conf[m].mean())
    assert ece == pytest.approx(ref, abs=1e-12)


def test_measures_bad_input():
    with pytest.raises(ValueError, match="probs has 2 rows"):
        expected_calibration_error([0, 1, 0], [[1.0, 0.0], [0.0, 1.0]])
    with pytest.raises(ValueError, match="probabilities"):
        negative_log_likelihood([0], [[1.5, -0.5]])
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0], [[1.0, 0.0]], n_bins=0)
