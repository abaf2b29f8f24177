"""Tests of norep.measures.specialization against hand-worked cases and naive loop references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st

from norep.measures import metrics
from norep.measures import specialization as sp


def random_probs(rng, n, c):
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(2, n, c)) * 2.0
    logits[:, np.arange(n), y] += 1.5
    p = np.exp(logits - logits.max(axis=2, keepdims=True))
    return y, p[0] / p[0].sum(1, keepdims=True), p[1] / p[1].sum(1, keepdims=True)


def naive_theta(pa, pb):
    return np.array([math.degrees(math.atan2(max(ra), max(rb))) for ra, rb in zip(pa, pb, strict=True)])


def test_theta_hand_worked():
    s = 0.6 / math.sqrt(3)  # tan(60 deg) = sqrt(3): conf_a = 0.6, conf_b = 0.6 / sqrt(3) ~ 0.3464
    pa = np.array([[0.9, 0.1, 0.0], [0.5, 0.25, 0.25], [0.2, 0.2, 0.6], [0.4, 0.3, 0.3]])
    pb = np.array([[0.0, 0.1, 0.9], [0.5, 0.25, 0.25], [s, 0.33, 0.67 - s], [0.4, 0.3, 0.3][::-1]])
    th = sp.theta(pa, pb)
    # equal confidences -> 45 even if the top-1 classes differ; atan(0.6/0.3464) = 60 degrees
    np.testing.assert_allclose(th, [45.0, 45.0, 60.0, 45.0], atol=1e-12)
    # conf 0.5 vs 0.9: atan(5/9) = 0.5070985 rad = 29.0546 degrees
    th2 = sp.theta([[0.5, 0.5]], [[0.1, 0.9]])
    assert th2[0] == pytest.approx(29.0546041, abs=1e-6)


def test_theta_properties_and_naive_loop():
    rng = np.random.default_rng(0)
    _, pa, pb = random_probs(rng, 500, 10)
    th = sp.theta(pa, pb)
    np.testing.assert_allclose(th, naive_theta(pa, pb), atol=1e-9)
    np.testing.assert_allclose(sp.theta(pb, pa), 90.0 - th, atol=1e-9)  # swap A and B
    np.testing.assert_allclose(sp.theta(pa, pa), 45.0, atol=1e-12)  # equal confidences
    assert np.all((th > 0) & (th < 90))
    # A more confident <=> theta > 45
    np.testing.assert_array_equal(th > 45, pa.max(1) > pb.max(1))
    # float32 input gives the same angles to float32 precision
    np.testing.assert_allclose(sp.theta(pa.astype(np.float32), pb), th, atol=1e-4)


def test_outcome_labels_and_masks():
    y = np.array([0, 1, 2, 3])
    a = np.array([0, 1, 0, 0])
    b = np.array([0, 0, 2, 0])
    assert sp.outcome_labels(y, a, b).tolist() == ["both_correct", "only_a", "only_b", "both_wrong"]
    np.testing.assert_array_equal(sp.at_least_one_correct(y, a, b), [True, True, True, False])
    np.testing.assert_array_equal(sp.at_least_one_correct(y, a), [True, True, False, False])
    c = np.array([1, 1, 2, 3])  # right on 1, 2, 3
    # pair (a, b) inconsistent on 1, 2; pair (a, c) on 0, 2, 3 -> union 0..3
    np.testing.assert_array_equal(sp.any_inconsistent(y, [(a, b)]), [False, True, True, False])
    np.testing.assert_array_equal(sp.any_inconsistent(y, [(a, b), (a, c)]), [True, True, True, True])
    # labels agree with the pair fractions on random data
    rng = np.random.default_rng(1)
    y, pa, pb = random_probs(rng, 300, 5)
    labels = sp.outcome_labels(y, pa, pb)
    out = metrics.pair_outcomes(y, pa, pb)
    for key in metrics.OUTCOMES:
        assert np.mean(labels == key) == pytest.approx(out[key], abs=1e-12)


def test_theta_histogram_hand_worked():
    y = np.array([0, 1, 1, 0])
    pa = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.5, 0.5]])  # preds 0 0 1 0
    pb = np.array([[0.4, 0.6], [0.1, 0.9], [0.3, 0.7], [0.5, 0.5]])  # preds 1 1 1 0
    # outcomes: only_a (theta 56.3), only_b (33.7), both_correct (48.8), both_correct (45.0)
    h = sp.theta_histogram(y, pa, pb, bins=[0, 30, 45, 60, 90])
    assert list(h.columns[:6]) == ["outcome", "bin_left", "bin_right", "count", "fraction", "within_outcome"]
    assert len(h) == 4 * 4
    counts = {(r.outcome, r.bin_left): r.count for r in h.itertuples()}
    assert counts[("only_a", 45.0)] == 1
    assert counts[("only_b", 30.0)] == 1
    assert counts[("both_correct", 45.0)] == 2  # 45.0 exactly falls in [45, 60)
    assert h["count"].sum() == 4
    assert h["fraction"].sum() == pytest.approx(1.0)
    bw = h[h.outcome == "both_wrong"]
    assert bw["count"].sum() == 0 and bw["within_outcome"].isna().all()
    # mask: keep the inconsistent examples only
    hm = sp.theta_histogram(y, pa, pb, bins=2, mask=np.array([True, True, False, False]))
    assert hm["count"].sum() == 2
    assert hm.loc[hm.outcome == "only_a", "fraction"].sum() == 0.5


def test_theta_histogram_against_naive_binning():
    rng = np.random.default_rng(2)
    y, pa, pb = random_probs(rng, 400, 6)
    h = sp.theta_histogram(y, pa, pb)  # 18 bins of 5 degrees
    th = naive_theta(pa, pb)
    labels = sp.outcome_labels(y, pa, pb)
    for r in h.itertuples():
        inside = [
            lab == r.outcome and (r.bin_left <= t < r.bin_right or (r.bin_right == 90.0 and t == 90.0))
            for t, lab in zip(th, labels, strict=True)
        ]
        assert r.count == sum(inside)
        assert r.bin_right - r.bin_left == pytest.approx(5.0)
    by_outcome = h.groupby("outcome")["fraction"].sum()
    out = metrics.pair_outcomes(y, pa, pb)
    for key in metrics.OUTCOMES:
        assert by_outcome[key] == pytest.approx(out[key], abs=1e-12)
        wo = h.loc[h.outcome == key, "within_outcome"]
        assert wo.sum() == pytest.approx(1.0) or out[key] == 0


def test_per_class_hand_worked():
    y = np.array([0, 0, 1, 1, 1])
    pa = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.6, 0.4, 0.0], [0.3, 0.7, 0.0], [0.2, 0.8, 0.0]])
    pb = np.array([[0.4, 0.6, 0.0], [0.7, 0.3, 0.0], [0.2, 0.8, 0.0], [0.1, 0.9, 0.0], [0.7, 0.3, 0.0]])
    t = sp.per_class_specialization(y, pa, pb, class_names=["cat", "car", "cup"])
    assert t["class_name"].tolist() == ["cat", "car", "cup"]
    assert t["n"].tolist() == [2, 3, 0]
    # class 0: A right 2/2, B right 1/2 (only A on ex 0); class 1: A 2/3 (ex 3, 4), B 2/3 (ex 2, 3)
    np.testing.assert_allclose(t["acc_a"][:2], [1.0, 2 / 3])
    np.testing.assert_allclose(t["acc_b"][:2], [0.5, 2 / 3])
    np.testing.assert_allclose(t["acc_diff"][:2], [0.5, 0.0], atol=1e-15)
    np.testing.assert_allclose(t["only_a"][:2], [0.5, 1 / 3])
    np.testing.assert_allclose(t["only_b"][:2], [0.0, 1 / 3])
    # mean theta of class 0: atan2(.9, .6) and atan2(.8, .7)
    ref0 = (math.degrees(math.atan2(0.9, 0.6)) + math.degrees(math.atan2(0.8, 0.7))) / 2
    assert t["mean_theta"][0] == pytest.approx(ref0, abs=1e-12)
    assert t["mean_theta_only_a"][1] == pytest.approx(math.degrees(math.atan2(0.8, 0.7)), abs=1e-12)
    assert t["mean_theta_only_b"][1] == pytest.approx(math.degrees(math.atan2(0.6, 0.8)), abs=1e-12)
    assert np.isnan(t["mean_theta_only_b"][0])
    assert t.iloc[2][["acc_a", "acc_b", "mean_theta", "only_a"]].isna().all()  # empty class
    assert sp.per_class_specialization(y, pa, pb)["class_name"].tolist() == ["0", "1", "2"]


def test_per_class_against_naive_loop_and_sklearn():
    rng = np.random.default_rng(3)
    y, pa, pb = random_probs(rng, 600, 8)
    t = sp.per_class_specialization(y, pa, pb)
    th = naive_theta(pa, pb)
    for c in range(8):
        sel = y == c
        assert t["n"][c] == sel.sum()
        assert t["acc_a"][c] == pytest.approx(skm.accuracy_score(y[sel], pa[sel].argmax(1)), abs=1e-9)
        assert t["acc_b"][c] == pytest.approx(skm.accuracy_score(y[sel], pb[sel].argmax(1)), abs=1e-9)
        assert t["mean_theta"][c] == pytest.approx(float(np.mean(th[sel])), abs=1e-9)
        out = metrics.pair_outcomes(y[sel], pa[sel], pb[sel])
        for key in metrics.OUTCOMES:
            assert t[key][c] == pytest.approx(out[key], abs=1e-9)
    # recall per class = per-class accuracy
    np.testing.assert_allclose(t["acc_a"], skm.recall_score(y, pa.argmax(1), average=None), atol=1e-12)


def test_class_group_summary_matches_direct_computation():
    rng = np.random.default_rng(4)
    y, pa, pb = random_probs(rng, 800, 10)
    t = sp.per_class_specialization(y, pa, pb)
    groups = {"low": [0, 1, 2, 3], "high": range(6, 10), "overlap": [3, 6]}
    s = sp.class_group_summary(t, groups, other="other")
    assert s["group"].tolist() == ["low", "high", "overlap", "other"]
    assert s["n_classes"].tolist() == [4, 4, 2, 2]  # other = classes 4, 5
    th = naive_theta(pa, pb)
    for row in s.itertuples():
        cls = {"low": [0, 1, 2, 3], "high": [6, 7, 8, 9], "overlap": [3, 6], "other": [4, 5]}[row.group]
        sel = np.isin(y, cls)
        assert row.n == sel.sum()
        assert row.acc_a == pytest.approx(skm.accuracy_score(y[sel], pa[sel].argmax(1)), abs=1e-9)
        assert row.acc_b == pytest.approx(skm.accuracy_score(y[sel], pb[sel].argmax(1)), abs=1e-9)
        assert row.acc_diff == pytest.approx(row.acc_a - row.acc_b, abs=1e-12)
        assert row.mean_theta == pytest.approx(float(np.mean(th[sel])), abs=1e-9)
        out = metrics.pair_outcomes(y[sel], pa[sel], pb[sel])
        assert row.only_a == pytest.approx(out["only_a"], abs=1e-9)
        assert row.both_wrong == pytest.approx(out["both_wrong"], abs=1e-9)
        only_a = sel & (pa.argmax(1) == y) & (pb.argmax(1) != y)
        assert row.mean_theta_only_a == pytest.approx(float(np.mean(th[only_a])), abs=1e-9)


def test_imagenet_class_groups():
    g = sp.IMAGENET_CLASS_GROUPS
    assert set(g) == {"nature", "anthropogenic"}
    assert g["nature"][0] == 0 and g["nature"][-1] == 299 and len(g["nature"]) == 300
    assert g["anthropogenic"][0] == 500 and g["anthropogenic"][-1] == 899 and len(g["anthropogenic"]) == 400
    assert not set(g["nature"]) & set(g["anthropogenic"])
    # usable on a 1000-class table
    rng = np.random.default_rng(5)
    y = rng.integers(0, 1000, 3000)
    p = np.full((3000, 1000), 1e-3)
    s = sp.class_group_summary(sp.per_class_specialization(y, p, p), g)
    assert s["n"].tolist() == [int(np.sum(y < 300)), int(np.sum((y >= 500) & (y < 900)))]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sp.theta([[0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]]), "probs_b has 2 examples"),
        (lambda: sp.theta([[0.5, 0.5]], [[0.2, 0.3, 0.5]]), "probs_a has 2 classes"),
        (lambda: sp.theta([[2.0, -1.0]], [[0.5, 0.5]]), "probs_a contains negative"),
        (lambda: sp.theta([[0.5, 0.5]], [[3.0, 1.0]]), "probs_b rows must sum to 1"),
        (lambda: sp.theta([0.5, 0.5], [[0.5, 0.5]]), "probs_a must be a 2-D"),
        (lambda: sp.theta_histogram([0], [[0.5, 0.5]], [[0.5, 0.5]], bins=0), "bins must be"),
        (lambda: sp.theta_histogram([0], [[0.5, 0.5]], [[0.5, 0.5]], mask=[1]), "mask must be"),
        (lambda: sp.theta_histogram([2], [[0.5, 0.5]], [[0.5, 0.5]]), "y_true contains class id 2"),
        (
            lambda: sp.per_class_specialization([0], [[0.5, 0.5]], [[0.5, 0.5]], class_names=["a"]),
            "class_names has 1 names",
        ),
        (lambda: sp.any_inconsistent([0], []), "pairs holds no pair"),
        (lambda: sp.any_inconsistent([0], [([0],)]), r"pairs\[0\] must be"),
        (lambda: sp.at_least_one_correct([0]), "at least one prediction"),
        (
            lambda: sp.class_group_summary(sp.per_class_specialization([0], [[0.5, 0.5]], [[0.5, 0.5]]), {"g": [0, 7]}),
            r"groups\['g'\] has class ids not in per_class: 7",
        ),
        (
            lambda: sp.class_group_summary(sp.per_class_specialization([0], [[0.5, 0.5]], [[0.5, 0.5]]), {"g": []}),
            "is empty",
        ),
        (lambda: sp.class_group_summary({"x": 1}, {"g": [0]}), "per_class lacks the columns"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(2, 6))
def test_hypothesis_theta_swap_and_histogram_totals(seed, n, c):
    rng = np.random.default_rng(seed)
    y, pa, pb = random_probs(rng, n, c)
    th = sp.theta(pa, pb)
    np.testing.assert_allclose(th + sp.theta(pb, pa), 90.0, atol=1e-9)
    np.testing.assert_allclose(th, naive_theta(pa, pb), atol=1e-9)
    h = sp.theta_histogram(y, pa, pb, bins=9)
    assert h["count"].sum() == n
    assert h["fraction"].sum() == pytest.approx(1.0)
