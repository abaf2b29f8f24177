"""The torch backend (here on torch's CPU device) gives the numpy path's results exactly: all-pairs
counts, conversion rates, theta histograms, greedy selections; temperatures to the fit's tolerance."""

import subprocess
import sys

import numpy as np
import pytest

from norep.allpairs import fast_greedy_selection, pairwise_analysis
from norep.engine import DeviceError, fit_temperatures, resolve_device
from norep.measures.calibration import softmax
from random_logits import random_store

torch = pytest.importorskip("torch")


STORES = [
    # m, n, c, dtype, quantum, copies, flat, scale
    (5, 400, 10, np.float16, None, 0, 0.0, 3.0),
    (5, 300, 12, np.float16, 0.5, 1, 0.05, 3.0),
    (4, 300, 3, np.float32, 1.0, 1, 0.1, 3.0),
    (4, 250, 2, np.float32, None, 0, 0.0, 3.0),
    (4, 300, 40, np.float64, 0.25, 1, 0.0, 3.0),
    (4, 300, 20, np.float16, None, 0, 0.0, 0.02),  # cosine-like logits, small temperatures
]


def _store(case, seed):
    m, n, c, dtype, quantum, copies, flat, scale = case
    rng = np.random.default_rng([seed, m, n, c])
    y, lg = random_store(rng, m, n, c, dtype=dtype, quantum=quantum, copies=copies, flat=flat, scale=scale)
    temps = list(rng.choice([0.5, 1.0, 1.7], size=len(lg)) * (0.01 if scale < 1 else 1.0))
    return y, lg, temps


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", STORES)
def test_all_pairs_identical_on_torch_cpu(case, seed):
    y, lg, temps = _store(case, seed)
    a = pairwise_analysis(y, lg, temperatures=temps)
    b = pairwise_analysis(y, lg, temperatures=temps, device="cpu")
    for key in ("accuracy", "both_correct", "only_a", "only_b", "both_wrong", "ensemble_accuracy", "theta_counts"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_array_equal(a.conversion_rate, b.conversion_rate)
    for key, val in a.counts.items():
        np.testing.assert_array_equal(val, b.counts[key], err_msg=key)
    np.testing.assert_array_equal(a.correct, b.correct)
    # confidences to within the stated tolerance
    np.testing.assert_allclose(b.conf, a.conf, rtol=2e-5, atol=1e-30)


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("case", STORES)
def test_greedy_identical_on_torch_cpu(case, replace):
    y, lg, temps = _store(case, 2)
    ey, elg, _ = _store(case, 3)
    names = ["base"] + [f"c{i}" for i in range(len(lg) - 1)]
    kw = dict(
        temperatures=dict(zip(names, temps, strict=True)),
        eval_y_true=ey,
        eval_logits=dict(zip(names, elg, strict=True)),
        replace=replace,
    )
    steps = len(names) + 1 if replace else len(names) - 1
    a = fast_greedy_selection(y, dict(zip(names, lg, strict=True)), "base", steps, **kw)
    b = fast_greedy_selection(y, dict(zip(names, lg, strict=True)), "base", steps, device="cpu", **kw)
    assert (a.selected, a.accuracies, a.eval_accuracies) == (b.selected, b.accuracies, b.eval_accuracies)


@pytest.mark.parametrize("case", STORES)
def test_temperatures_agree_on_torch_cpu(case):
    y, lg, _ = _store(case, 4)
    a = fit_temperatures(lg, y)
    b = fit_temperatures(lg, y, device="cpu")
    np.testing.assert_allclose(b, a, rtol=1e-6)


def test_device_probabilities_within_the_stated_tolerance():
    from norep.engine.torch_backend import DELTA, ETA, _Model

    rng = np.random.default_rng(9)
    for scale, t, c in ((3.0, 1.3, 1000), (0.02, 0.01, 1000), (30.0, 0.7, 50)):
        z = (rng.normal(size=(300, c)) * scale).astype(np.float16)
        exact = softmax(z, t)
        dev = _Model(z, t, "cpu").probs(0, 300).numpy()
        err = np.abs(dev.astype(np.float64) - exact)
        assert np.all(err <= DELTA / 10 * exact + ETA), (scale, float(np.max(err / np.maximum(exact, 1e-38))))


def test_exact_fallback_is_used_for_ties():
    y = np.array([0, 1, 2, 0, 1])
    z = np.zeros((5, 3))  # every class tied: no device decision can be certain
    res = pairwise_analysis(y, [z, z, z + 1], device="cpu")
    assert res.levels["exact"] > 0
    np.testing.assert_array_equal(res.ensemble_accuracy, pairwise_analysis(y, [z, z, z + 1]).ensemble_accuracy)


def test_resolve_device():
    assert resolve_device(None) is None and resolve_device("numpy") is None
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") in (None, "cuda")
    with pytest.raises(DeviceError, match="unknown device"):
        resolve_device("tpu9")
    with pytest.raises(DeviceError, match="not supported"):
        resolve_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA device"):
            resolve_device("cuda")
        with pytest.raises(DeviceError, match="no CUDA device"):
            pairwise_analysis([0, 1], [np.eye(2), np.eye(2)], device="cuda")


def test_importing_norep_imports_no_torch():
    code = (
        "import sys, norep, norep.allpairs, norep.engine, norep.measures.calibration, norep.measures.ensembles; "
        "import norep.commands.bench_analyses; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
