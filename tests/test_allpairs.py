"""The fast all-pairs engine equals the plain reference (norep.measures.metrics / ensembles / specialization
on softmax(logits, T)) exactly, including ties and examples where the top-k bound fails."""

import numpy as np
import pandas as pd
import pytest

from norep.allpairs import (
    calibrated_summary,
    fast_greedy_selection,
    pairwise_analysis,
    store_greedy_selection,
    store_pairwise_analysis,
)
from norep.measures import ensembles, metrics, specialization
from norep.measures.calibration import softmax


def random_logits(rng, m, n, c, *, dtype=np.float16, quantum=None, scale=3.0):
    """Correlated random logits; ``quantum`` rounds them to a grid, which creates many exact ties."""
    y = rng.integers(0, c, size=n)
    shared = rng.normal(size=(n, c))
    out = []
    for _ in range(m):
        z = 0.6 * shared + 0.8 * rng.normal(size=(n, c)) + rng.uniform(0.5, 2.5) * np.eye(c)[y]
        z *= scale
        if quantum:
            z = np.round(z / quantum) * quantum
        out.append(z.astype(dtype))
    return y, out


def reference_all_pairs(y, logits, temps, bins=18):
    probs = [softmax(z, t) for z, t in zip(logits, temps, strict=True)]
    preds = np.stack([p.argmax(axis=1) for p in probs])
    out = metrics.pairwise_outcomes(y, preds)
    out["ensemble_accuracy"] = ensembles.pairwise_ensemble_accuracy(y, probs)
    out["conversion_rate"] = ensembles.pairwise_conversion_rate(y, probs)
    return probs, out


def assert_same(res, ref):
    for key in ("both_correct", "only_a", "only_b", "both_wrong", "ensemble_accuracy"):
        np.testing.assert_array_equal(res[key], ref[key], err_msg=key)
    np.testing.assert_array_equal(res.conversion_rate, ref["conversion_rate"])


@pytest.mark.parametrize(
    "c,quantum,dtype,k",
    [
        (2, None, np.float32, 2),
        (3, 0.5, np.float16, 2),
        (10, 0.25, np.float16, 1),
        (10, None, np.float16, 3),
        (37, 1.0, np.float32, 2),
        (12, None, np.float64, 2),
    ],
)
def test_pairwise_analysis_equals_reference(c, quantum, dtype, k):
    rng = np.random.default_rng(c * 7 + k)
    y, logits = random_logits(rng, 5, 301, c, dtype=dtype, quantum=quantum)
    temps = list(rng.uniform(0.3, 3.0, size=5))
    res = pairwise_analysis(y, logits, temperatures=temps, k=k, chunk_size=64)
    probs, ref = reference_all_pairs(y, logits, temps)
    assert_same(res, ref)
    np.testing.assert_array_equal(res.accuracy, [metrics.accuracy_score(y, p.argmax(1)) for p in probs])
    # every level of the decision procedure was exercised and accounted for
    assert sum(res.levels.values()) == 10 * 301
    for i in range(5):
        for j in range(i + 1, 5):
            h = specialization.theta_histogram(y, probs[i], probs[j], bins=18)
            np.testing.assert_array_equal(res.theta_histogram(i, j)["count"].to_numpy(), h["count"].to_numpy())
            pd.testing.assert_frame_equal(res.theta_histogram(i, j), h)


def test_ties_and_failed_bounds_take_the_slow_levels():
    rng = np.random.default_rng(3)
    n, c = 400, 8
    y = rng.integers(0, c, size=n)
    # flat rows (all classes tied) and near-flat rows: the top-k bound fails, full rows decide
    a = np.zeros((n, c), dtype=np.float32)
    a[: n // 2] = rng.integers(0, 2, size=(n // 2, c))
    b = a.copy()
    b[::3] = rng.normal(scale=0.01, size=(len(b[::3]), c))
    d = a[:, ::-1].copy()  # mirror image: ties across the two members
    res = pairwise_analysis(y, [a, b, d, a], k=1, chunk_size=128)
    _, ref = reference_all_pairs(y, [a, b, d, a], [1.0] * 4)
    assert_same(res, ref)
    assert res.levels["full_row"] > 0 and res.levels["level2"] > 0
    # a model paired with an identical copy: the ensemble is the model itself
    assert res.ensemble_accuracy[0, 3] == res.accuracy[0]


def test_hand_worked_pair():
    y = np.array([0, 1, 1, 0])
    pa = np.log([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.3, 0.7]])
    pb = np.log([[0.4, 0.6], [0.1, 0.9], [0.7, 0.3], [0.2, 0.8]])
    res = pairwise_analysis(y, [pa, pb], names=["a", "b"])
    # outcomes: only_a, only_b, both_wrong, both_wrong; ensemble right on examples 0 and 1
    assert res.only_a[0, 1] == 0.25 and res.only_b[0, 1] == 0.25 and res.both_wrong[0, 1] == 0.5
    assert res.ensemble_accuracy[0, 1] == 0.5
    assert res.conversion_rate[0, 1] == 1.0
    frame = res.to_frame()
    assert frame.loc[0, "error_inconsistency"] == 0.5
    assert frame.loc[0, "ensemble_gain"] == pytest.approx(0.25)


def test_calibrated_summary_matches_definition():
    rng = np.random.default_rng(4)
    y, (z,) = random_logits(rng, 1, 500, 30, dtype=np.float16, quantum=0.5)
    s = calibrated_summary(y, z, temperature=1.7, k=3)
    p = softmax(z, 1.7)
    np.testing.assert_array_equal(s.pred, p.argmax(1))
    np.testing.assert_array_equal(s.conf, p.max(1))
    np.testing.assert_array_equal(s.q, p[np.arange(500), y])
    wrong = p.copy()
    wrong[np.arange(500), y] = -1
    srt = -np.sort(-wrong, axis=1)
    np.testing.assert_array_equal(s.top_wrong_probs, srt[:, :3])
    np.testing.assert_array_equal(s.bound, srt[:, 3])
    np.testing.assert_array_equal(np.take_along_axis(p, s.top_wrong.astype(np.int64), 1), srt[:, :3])
    rows, cols = rng.integers(0, 500, 200), rng.integers(0, 30, 200)
    np.testing.assert_array_equal(s.probs_at(z, rows, cols), p[rows, cols])  # bit-exact recomputation


@pytest.mark.parametrize("k,quantum", [(2, None), (1, 0.5)])
def test_fast_greedy_equals_reference(k, quantum):
    rng = np.random.default_rng(5 + k)
    names = ["base"] + [f"c{i}" for i in range(6)]
    y, sel = random_logits(rng, 7, 400, 15, quantum=quantum)
    ey, ev = random_logits(rng, 7, 300, 15, quantum=quantum)
    temps = dict(zip(names, rng.uniform(0.5, 2.0, size=7), strict=True))
    res = fast_greedy_selection(
        y,
        dict(zip(names, sel, strict=True)),
        "base",
        5,
        temperatures=temps,
        k=k,
        eval_y_true=ey,
        eval_logits=dict(zip(names, ev, strict=True)),
    )
    p = {m: softmax(z, temps[m]) for m, z in zip(names, sel, strict=True)}
    ep = {m: softmax(z, temps[m]) for m, z in zip(names, ev, strict=True)}
    ref = ensembles.greedy_selection(
        y,
        p["base"],
        {m: p[m] for m in names[1:]},
        5,
        eval_y_true=ey,
        eval_base_probs=ep["base"],
        eval_candidates={m: ep[m] for m in names[1:]},
    )
    assert res.selected == ref.selected
    assert res.accuracies == ref.accuracies
    assert res.eval_accuracies == ref.eval_accuracies
    assert sum(res.levels.values()) > 0


def test_greedy_with_replacement_and_tie_order():
    y = np.array([0, 1, 2, 0])
    base = np.log(np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    same = np.log(np.array([[0.2, 0.6, 0.2], [0.2, 0.6, 0.2], [0.2, 0.6, 0.2], [0.2, 0.6, 0.2]]))
    lg = {"base": base, "x": same, "y": same.copy()}
    res = fast_greedy_selection(y, lg, "base", 3, replace=True, candidates=["y", "x"])
    p = {m: softmax(z) for m, z in lg.items()}
    ref = ensembles.greedy_selection(y, p["base"], {"y": p["y"], "x": p["x"]}, 3, replace=True)
    assert res.selected == ref.selected and res.selected[0] == "y"  # ties go to the first candidate
    assert res.accuracies == ref.accuracies


def test_store_wrappers(tmp_path):
    from norep.storage import Store

    rng = np.random.default_rng(6)
    c = 12
    y_cal, cal = random_logits(rng, 4, 200, c)
    y_test, test = random_logits(rng, 4, 150, c)
    st = Store.create(
        tmp_path / "s",
        dataset="toy",
        class_names=[str(i) for i in range(c)],
        splits={"calib": y_cal, "test": y_test},
        info={"base_model": "m0"},
    )
    for i in range(4):
        st.add_model(f"m{i}", logits={"calib": cal[i], "test": test[i]}, meta={"category": "ARCH", "method": "random"})
    res = store_pairwise_analysis(st, split="test", chunk_size=50)
    probs = [st.probs(f"m{i}", "test") for i in range(4)]
    np.testing.assert_array_equal(res.ensemble_accuracy, ensembles.pairwise_ensemble_accuracy(y_test, probs))
    assert res.names == ["m0", "m1", "m2", "m3"]
    g = store_greedy_selection(st, steps=2)
    pc = {m: st.probs(m, "calib") for m in st.model_names()}
    pt = {m: st.probs(m, "test") for m in st.model_names()}
    ref = ensembles.greedy_selection(
        y_cal,
        pc["m0"],
        {m: pc[m] for m in ["m1", "m2", "m3"]},
        2,
        eval_y_true=y_test,
        eval_base_probs=pt["m0"],
        eval_candidates={m: pt[m] for m in ["m1", "m2", "m3"]},
    )
    assert (g.selected, g.accuracies, g.eval_accuracies) == (ref.selected, ref.accuracies, ref.eval_accuracies)


def test_bad_input():
    y = np.array([0, 1, 2])
    z = np.zeros((3, 3))
    with pytest.raises(ValueError, match=r"logits\[1\] has 2 rows"):
        pairwise_analysis(y, [z, z[:2]])
    with pytest.raises(ValueError, match="temperatures has 1"):
        pairwise_analysis(y, [z, z], temperatures=[1.0])
    with pytest.raises(ValueError, match="NaN or Inf"):
        pairwise_analysis(y, [z, np.full((3, 3), np.nan)])
    with pytest.raises(ValueError, match="class ids outside"):
        pairwise_analysis([0, 1, 5], [z, z])
    with pytest.raises(ValueError, match="names must be unique"):
        pairwise_analysis(y, [z, z], names=["a", "a"])
    with pytest.raises(ValueError, match="base model 'b'"):
        fast_greedy_selection(y, {"a": z}, "b", 1)
    with pytest.raises(ValueError, match="exceeds the number of candidates"):
        fast_greedy_selection(y, {"a": z, "c": z}, "a", 2)
    res = pairwise_analysis(y, [z, z], names=["a", "b"])
    with pytest.raises(ValueError, match="swap"):
        res.theta_histogram("b", "a")


def test_theta_binning_matches_numpy_histogram_on_edges():
    from norep.engine.result import _theta_bins

    rng = np.random.default_rng(7)
    for edges in (np.linspace(0.0, 90.0, 19), np.array([0.0, 10.0, 45.0, 60.0, 90.0])):
        x = np.concatenate(
            [rng.uniform(-1, 91, 5000), edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)]
        )
        idx = _theta_bins(edges, x)
        counts = np.bincount(idx[idx >= 0], minlength=len(edges) - 1)
        np.testing.assert_array_equal(counts, np.histogram(x, bins=edges)[0])
        assert np.all(idx[(x < 0) | (x > 90)] == -1)


def test_theta_blocks_in_threads_equal_one_pass():
    """Theta counts filled by several threads, a few pairs per block, equal the single pass and
    numpy's histograms, outcome by outcome (outcome columns: both right, only a, only b, both wrong)."""
    rng = np.random.default_rng(21)
    y, logits = random_logits(rng, 6, 257, 9, dtype=np.float16, quantum=0.5)
    res = pairwise_analysis(y, logits, theta=False)
    one = res.compute_theta(18).copy()
    many = res.compute_theta(18, pairs_per_block=2, n_jobs=3)
    np.testing.assert_array_equal(one, many)
    probs = [softmax(z) for z in logits]
    for i in range(6):
        for j in range(i + 1, 6):
            ca, cb = probs[i].argmax(1) == y, probs[j].argmax(1) == y
            th = np.degrees(np.arctan2(probs[i].max(1).astype(np.float64), probs[j].max(1).astype(np.float64)))
            for o, sel in enumerate([ca & cb, ca & ~cb, ~ca & cb, ~ca & ~cb]):
                np.testing.assert_array_equal(many[i, j, o], np.histogram(th[sel], bins=np.linspace(0, 90, 19))[0])
