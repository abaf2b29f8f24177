"""Tests for norep.measures.transfer: VOC 2007 11-point AP and the multi-label probe (paper Sec. 4.7)."""

from fractions import Fraction

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from norep.measures.transfer import (
    multilabel_probe,
    voc07_average_precision,
    voc07_map_resampler,
    voc07_mean_average_precision,
)

# ----------------------------------------------------------------------------------------------
# independent references
# ----------------------------------------------------------------------------------------------


def naive_voc07_ap(y, s):
    """Literal reading of the VOC 2007 definition, in exact rational arithmetic.

    Ranking: decreasing score, ties in input order (the devkit's stable ``sort(-confidence)``).
    """
    y = [bool(v) for v in y]
    ranking = sorted(range(len(y)), key=lambda i: -float(s[i]))  # Python's sort is stable
    n_pos = sum(y)
    points = []  # (recall, precision) after each rank
    tp = fp = 0
    for i in ranking:
        if y[i]:
            tp += 1
        else:
            fp += 1
        points.append((Fraction(tp, n_pos), Fraction(tp, tp + fp)))
    total = Fraction(0)
    for k in range(11):
        t = Fraction(k, 10)
        candidates = [p for r, p in points if r >= t]
        total += max(candidates) if candidates else 0
    return float(total / 11)


def all_point_interpolated_ap(y, s):
    """Area under the interpolated precision-recall step curve (VOC 2010+ style)."""
    o = np.argsort(-np.asarray(s), kind="stable")
    ys = np.asarray(y, bool)[o]
    tp = np.cumsum(ys)
    prec = tp / np.arange(1, len(ys) + 1)
    rec = np.concatenate([[0.0], tp / tp[-1]])
    p_interp = np.maximum.accumulate(prec[::-1])[::-1]
    return float(np.sum(np.diff(rec) * p_interp))


# ----------------------------------------------------------------------------------------------
# hand-worked cases
# ----------------------------------------------------------------------------------------------


def test_hand_worked_eight_elevenths():
    # ranks: P N P N N P -> (recall, precision): (1/3, 1) (1/3, 1/2) (2/3, 2/3) (2/3, 1/2)
    # (2/3, 2/5) (1, 1/2). Interpolated precision: t in {0, .1, .2, .3} -> 1 (4 terms),
    # t in {.4, .5, .6} -> 2/3 (3 terms), t in {.7, .8, .9, 1} -> 1/2 (4 terms).
    # AP = (4 + 2 + 2) / 11 = 8/11. Non-interpolated AP = (1 + 2/3 + 1/2) / 3 = 13/18.
    y = [1, 0, 1, 0, 0, 1]
    s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    assert voc07_average_precision(y, s) == pytest.approx(8 / 11, abs=1e-12)
    assert average_precision_score(y, s) == pytest.approx(13 / 18, abs=1e-12)
    # here the 11-point value is above scikit-learn's non-interpolated AP
    assert voc07_average_precision(y, s) > average_precision_score(y, s)


def test_hand_worked_eleven_point_below_sklearn():
    # positives at ranks 1, 3 and 10 of 10: precisions 1, 2/3, 3/10 at recalls 1/3, 2/3, 1.
    # 11-point: 4 * 1 + 3 * 2/3 + 4 * 3/10 = 7.2 -> 7.2 / 11 = 0.654545...
    # non-interpolated: (1 + 2/3 + 3/10) / 3 = 0.655555...
    y = np.zeros(10, int)
    y[[0, 2, 9]] = 1
    s = -np.arange(10.0)
    assert voc07_average_precision(y, s) == pytest.approx(7.2 / 11, abs=1e-12)
    assert average_precision_score(y, s) == pytest.approx((1 + 2 / 3 + 0.3) / 3, abs=1e-12)
    assert voc07_average_precision(y, s) < average_precision_score(y, s)


def test_recall_exactly_on_a_threshold_counts():
    # 10 positives: P P P, then 7 N, then 7 P. At rank 3 the recall is exactly 0.3 with
    # precision 1, so t = 0.3 gets precision 1; every t >= 0.4 gets max precision 10/17
    # (reached at the last rank). AP = (4 * 1 + 7 * 10/17) / 11 = 138/187.
    # A float threshold 0.1 * 3 = 0.30000000000000004 would miss rank 3 and give 131/187.
    y = [1] * 3 + [0] * 7 + [1] * 7
    s = -np.arange(17.0)
    assert voc07_average_precision(y, s) == pytest.approx(138 / 187, abs=1e-12)


def test_perfect_and_worst_ranking():
    y = np.array([1, 1, 0, 0, 0])
    s = np.array([5.0, 4, 3, 2, 1])
    assert voc07_average_precision(y, s) == 1.0
    assert average_precision_score(y, s) == 1.0  # both 1 on a perfect ranking
    # worst ranking: positives last, precision at recall 1/2 is 1/4 and at recall 1 is 2/5
    assert voc07_average_precision(y, -s) == pytest.approx(2 / 5, abs=1e-12)


def test_ties_follow_devkit_input_order():
    # all scores tied: the devkit ranks tied examples in input order
    assert voc07_average_precision([1, 0], [0.5, 0.5]) == 1.0
    assert voc07_average_precision([0, 1], [0.5, 0.5]) == 0.5
    # scikit-learn treats the tie as one threshold, independent of order
    assert average_precision_score([1, 0], [0.5, 0.5]) == 0.5
    assert average_precision_score([0, 1], [0.5, 0.5]) == 0.5


def test_difficult_examples_are_ignored_like_removed():
    rng = np.random.default_rng(3)
    y = rng.random(40) < 0.4
    y[0] = True
    s = rng.integers(0, 6, 40).astype(float)  # many ties
    d = rng.random(40) < 0.25
    d[0] = False
    expected = naive_voc07_ap(y[~d], s[~d])
    assert voc07_average_precision(y, s, difficult=d) == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------------------------
# against independent implementations on random data
# ----------------------------------------------------------------------------------------------


def test_agrees_with_naive_implementation_on_random_data():
    rng = np.random.default_rng(0)
    for trial in range(150):
        n = int(rng.integers(1, 60))
        y = rng.random(n) < rng.uniform(0.05, 0.9)
        y[rng.integers(n)] = True
        # half the trials with heavy ties, half with continuous scores
        s = rng.integers(0, 5, n).astype(float) if trial % 2 else rng.normal(size=n)
        assert voc07_average_precision(y, s) == pytest.approx(naive_voc07_ap(y, s), abs=1e-9)


def test_relation_to_sklearn_average_precision():
    """What really holds between 11-point AP, all-point interpolated AP and sklearn's AP.

    sklearn's AP is the non-interpolated sum (R_n - R_{n-1}) P_n, so the all-point interpolated
    area (precision replaced by its running max from the right) is never below it. The 11-point
    value samples the same non-increasing interpolated curve g at t = 0, .1, ..., 1, so with
    a = 11-point AP and c = all-point AP: (g(1) - a) / 10 <= a - c <= (g(0) - a) / 10.
    The 11-point value itself can be above or below sklearn's (the two hand-worked cases).
    """
    rng = np.random.default_rng(1)
    n_above = n_below = 0
    for _ in range(300):
        n = int(rng.integers(2, 40))
        y = rng.random(n) < rng.uniform(0.1, 0.8)
        y[rng.integers(n)] = True
        s = rng.normal(size=n)  # no ties: sklearn and the devkit rank identically
        a = voc07_average_precision(y, s)
        b = average_precision_score(y, s)
        c = all_point_interpolated_ap(y, s)
        o = np.argsort(-s, kind="stable")
        prec = np.cumsum(y[o]) / np.arange(1, n + 1)
        g0, g1 = prec.max(), prec[np.argmax(np.cumsum(y[o]) == y.sum())]
        assert c >= b - 1e-12
        assert (g1 - a) / 10 - 1e-12 <= a - c <= (g0 - a) / 10 + 1e-12
        n_above += a > b + 1e-12
        n_below += a < b - 1e-12
    assert n_above > 0 and n_below > 0


def test_mean_average_precision_is_mean_of_columns():
    rng = np.random.default_rng(2)
    Y = rng.random((50, 6)) < 0.3
    Y[0] = True
    S = rng.normal(size=(50, 6)) + Y
    m, per_class = voc07_mean_average_precision(Y.astype(int), S)
    expected = [naive_voc07_ap(Y[:, k], S[:, k]) for k in range(6)]
    np.testing.assert_allclose(per_class, expected, atol=1e-9)
    assert m == pytest.approx(np.mean(expected), abs=1e-12)


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------


def test_bad_input_is_refused_with_the_array_named():
    with pytest.raises(ValueError, match="no .*positive"):
        voc07_average_precision([0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="class column.*\\[1\\]"):
        voc07_mean_average_precision([[1, 0], [0, 0]], [[0.1, 0.2], [0.3, 0.4]])
    with pytest.raises(ValueError, match="scores"):
        voc07_average_precision([1, 0], [0.1])
    with pytest.raises(ValueError, match="scores.*NaN"):
        voc07_average_precision([1, 0], [0.1, np.nan])
    with pytest.raises(ValueError, match="y_true.*0/1"):
        voc07_average_precision([2, 0], [0.1, 0.2])
    with pytest.raises(ValueError, match="Y_true"):
        voc07_mean_average_precision([1, 0], [0.1, 0.2])


# ----------------------------------------------------------------------------------------------
# multi-label probe
# ----------------------------------------------------------------------------------------------


def _synthetic_multilabel(n=400, k=5, d=12, seed=0, signal=2.0):
    rng = np.random.default_rng(seed)
    Y = rng.random((n, k)) < 0.35
    X = Y @ rng.normal(size=(k, d)) * signal + rng.normal(size=(n, d))
    return X, Y.astype(np.uint8)


def test_multilabel_probe_high_map_on_separable_task():
    X, Y = _synthetic_multilabel()
    res = multilabel_probe(X[:200], Y[:200], X[200:300], Y[200:300], X[300:], Y[300:], Cs=[0.001, 0.1, 10.0])
    assert res.test_map > 0.95
    assert res.per_class_ap.shape == (5,)
    assert res.test_scores.shape == (100, 5)
    # the reported numbers are the 11-point mAP of the returned scores / coefficients
    m, _ = voc07_mean_average_precision(Y[300:], X[300:] @ res.coef.T + res.intercept)
    assert m == pytest.approx(res.test_map, abs=1e-9)
    # C selection: the chosen C has the best validation mAP (ties to the smaller C)
    table = res.val_scores
    best = table.loc[table["val_map"] == table["val_map"].max(), "C"].min()
    assert res.best_C == best
    assert res.val_map == pytest.approx(table["val_map"].max())


def test_multilabel_probe_refit_train_matches_sklearn_per_class():
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    X, Y = _synthetic_multilabel(n=300, k=3, d=6, seed=4, signal=0.7)
    res = multilabel_probe(X[:150], Y[:150], X[150:220], Y[150:220], X[220:], Y[220:], Cs=[0.05], refit="train")
    sc = StandardScaler().fit(X[:150])
    for k in range(3):
        m = LogisticRegression(C=0.05, max_iter=1000).fit(sc.transform(X[:150]), Y[:150, k])
        ref = m.decision_function(sc.transform(X[220:]))
        np.testing.assert_allclose(res.test_scores[:, k], ref, atol=1e-3)


def _correlated_multilabel(n=500, k=4, d=30, seed=0):
    """Strongly correlated features (a few latent factors plus noise) on very different scales,
    the case where an unpreconditioned solver crawls."""
    rng = np.random.default_rng(seed)
    Y = rng.random((n, k)) < 0.3
    latent = np.concatenate([Y * 0.4, rng.normal(size=(n, 3))], axis=1)
    X = latent @ rng.normal(size=(k + 3, d)) + 1.0 * rng.normal(size=(n, d))
    X *= np.logspace(-2, 2, d)  # standardisation must undo this
    X[:, 0] = 5.0  # a constant feature is left unscaled and gets weight 0
    return X, Y.astype(np.uint8)


@pytest.mark.parametrize("refit", ["train", "train+val"])
def test_multilabel_probe_reaches_sklearn_optimum_at_every_C(refit):
    """Independent reference: one scikit-learn lbfgs LogisticRegression per class, solved far past
    its default tolerance, on the same standardised features; the chosen C must be the argmax of
    the reference's validation mAP and the final coefficients must agree."""
    from sklearn.linear_model import LogisticRegression

    X, Y = _correlated_multilabel()
    tr, va, te = slice(0, 250), slice(250, 380), slice(380, None)
    Cs = [0.01, 1.0, 100.0]
    res = multilabel_probe(X[tr], Y[tr], X[va], Y[va], X[te], Y[te], Cs=Cs, refit=refit, tol=1e-8, max_iter=5000)
    assert res.val_scores["n_not_converged"].tolist() == [0, 0, 0]

    def reference(Xf, Yf, C):
        mu, sd = Xf.mean(axis=0), Xf.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        W, b = [], []
        for k in range(Yf.shape[1]):
            m = LogisticRegression(C=C, tol=1e-12, max_iter=100000).fit((Xf - mu) / sd, Yf[:, k])
            W.append(m.coef_[0] / sd)
            b.append(m.intercept_[0] - (m.coef_[0] / sd) @ mu)
        return np.array(W), np.array(b)

    ref_val = []
    for C in Cs:
        W, b = reference(X[tr], Y[tr], C)
        ref_val.append(voc07_mean_average_precision(Y[va], X[va] @ W.T + b)[0])
    np.testing.assert_allclose(res.val_scores["val_map"], ref_val, atol=1e-9)
    best_C = Cs[int(np.argmax(ref_val))]
    assert res.best_C == best_C
    W, b = reference(
        np.concatenate([X[tr], X[va]]) if refit == "train+val" else X[tr],
        np.concatenate([Y[tr], Y[va]]) if refit == "train+val" else Y[tr],
        best_C,
    )
    np.testing.assert_allclose(res.coef, W, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(res.intercept, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(res.test_scores, X[te] @ W.T + b, rtol=1e-4, atol=1e-4)
    assert res.coef[:, 0].tolist() == [0.0] * Y.shape[1]  # the constant feature


def test_multilabel_probe_reports_classes_not_converged():
    X, Y = _correlated_multilabel(seed=1)
    res = multilabel_probe(X[:250], Y[:250], X[250:], Y[250:], Cs=[100.0], max_iter=2, tol=1e-8)
    row = res.val_scores.iloc[0]
    assert row["n_iter"] <= 2 and row["n_not_converged"] == Y.shape[1]
    res = multilabel_probe(X[:250], Y[:250], X[250:], Y[250:], Cs=[100.0], tol=1e-6)
    assert res.val_scores.iloc[0]["n_not_converged"] == 0


def test_multilabel_probe_device_and_dtype_options():
    X, Y = _synthetic_multilabel()
    ref = multilabel_probe(X[:200], Y[:200], X[200:300], Y[200:300], X[300:], Y[300:], Cs=[0.1, 1.0])
    auto = multilabel_probe(X[:200], Y[:200], X[200:300], Y[200:300], X[300:], Y[300:], Cs=[0.1, 1.0], device="auto")
    assert auto.device in ("cpu", "cuda")
    assert ref.device == "cpu"
    if auto.device == "cpu":  # the default is the CPU path, bit for bit
        np.testing.assert_array_equal(auto.coef, ref.coef)
    f32 = multilabel_probe(X[:200], Y[:200], X[200:300], Y[200:300], X[300:], Y[300:], Cs=[0.1, 1.0], dtype="float32")
    np.testing.assert_allclose(f32.test_scores, ref.test_scores, atol=1e-2)
    with pytest.raises(ValueError, match="dtype"):
        multilabel_probe(X[:200], Y[:200], X[200:300], Y[200:300], dtype="float16")
    with pytest.raises(ValueError, match="max_iter"):
        multilabel_probe(X[:200], Y[:200], X[200:300], Y[200:300], max_iter=0)


def test_multilabel_probe_refuses_one_sided_class():
    X, Y = _synthetic_multilabel(n=100, k=3)
    Y[:60, 2] = 0
    with pytest.raises(ValueError, match="Y_train.*\\[2\\]"):
        multilabel_probe(X[:60], Y[:60], X[60:], Y[60:], Cs=[1.0])
    X, Y = _synthetic_multilabel(n=100, k=3)
    with pytest.raises(ValueError, match="refit"):
        multilabel_probe(X[:60], Y[:60], X[60:], Y[60:], refit="val")


def test_voc07_map_resampler_matches_one_call_per_matrix_on_resamples():
    rng = np.random.default_rng(3)
    Y = (rng.random((200, 4)) < 0.3).astype(int)
    Y[0] = 1  # every class has a positive in every resample that keeps row 0
    mats = [rng.normal(size=(200, 4)) + s * Y for s in (0.0, 0.5, 2.0)]
    mats.append(np.round(mats[1], 1))  # ties
    mats.append(np.zeros((200, 4)))  # all tied
    mean_ap = voc07_map_resampler(Y, mats)
    np.testing.assert_allclose(mean_ap(), [voc07_mean_average_precision(Y, S)[0] for S in mats], rtol=0, atol=1e-12)
    for _ in range(5):
        counts = rng.multinomial(199, np.full(200, 1 / 200))
        counts[0] += 1
        rows = np.repeat(np.arange(200), counts)  # the resample, rows in their original order
        ref = [voc07_mean_average_precision(Y[rows], S[rows])[0] for S in mats]
        np.testing.assert_allclose(mean_ap(counts), ref, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="class column"):
        mean_ap((Y[:, 2] == 0).astype(int))
    with pytest.raises(ValueError, match="counts"):
        mean_ap(np.full(200, 0.5))
    with pytest.raises(ValueError, match=r"scores\[1\]"):
        voc07_map_resampler(Y, [mats[0], mats[1][:, :3]])


@pytest.mark.parametrize("refit", ["train", "train+val"])
def test_multilabel_ridge_probe_equals_sklearn_ridge(refit):
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    from norep.measures.transfer import multilabel_ridge_probe

    rng = np.random.default_rng(3)
    Y = (rng.random((500, 4)) < 0.35).astype(int)
    X = Y @ rng.normal(size=(4, 12)) + rng.normal(size=(500, 12)) * 1.5
    Cs = [0.01, 1.0]
    res = multilabel_ridge_probe(X[:250], Y[:250], X[250:350], Y[250:350], X[350:], Y[350:], Cs=Cs, refit=refit)
    fit_rows = slice(0, 250) if refit == "train" else slice(0, 350)
    sc = StandardScaler().fit(X[fit_rows])
    ref = Ridge(alpha=1.0 / res.best_C).fit(sc.transform(X[fit_rows]), Y[fit_rows])
    np.testing.assert_allclose(res.test_scores, ref.predict(sc.transform(X[350:])), atol=1e-9)
    assert res.test_map == pytest.approx(voc07_mean_average_precision(Y[350:], res.test_scores)[0])
    # the C chosen on validation: the best validation mAP of the sweep, checked against scikit-learn's fits
    sc_t = StandardScaler().fit(X[:250])
    val = [
        voc07_mean_average_precision(
            Y[250:350], Ridge(alpha=1.0 / C).fit(sc_t.transform(X[:250]), Y[:250]).predict(sc_t.transform(X[250:350]))
        )[0]
        for C in Cs
    ]
    assert res.best_C == Cs[int(np.argmax(val))]
    np.testing.assert_allclose(res.val_scores["val_map"], val)
    # ... and the check can fail: another penalty gives other scores
    other = Ridge(alpha=100.0 / res.best_C).fit(sc.transform(X[fit_rows]), Y[fit_rows])
    assert np.abs(res.test_scores - other.predict(sc.transform(X[350:]))).max() > 1e-3


def test_voc07_map_resampler_scores_a_subset_of_matrices():
    rng = np.random.default_rng(5)
    Y = (rng.random((150, 3)) < 0.4).astype(int)
    Y[0] = 1
    mats = [rng.normal(size=(150, 3)) + s * Y for s in (0.0, 0.7, 1.5, 3.0)]
    mean_ap = voc07_map_resampler(Y, mats)
    counts = rng.multinomial(149, np.full(150, 1 / 150))
    counts[0] += 1
    full = mean_ap(counts)
    np.testing.assert_allclose(mean_ap(counts, which=[3, 1]), full[[3, 1]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(mean_ap(which=[2]), [voc07_mean_average_precision(Y, mats[2])[0]], atol=1e-12)
    assert abs(mean_ap(counts, which=[3])[0] - full[1]) > 1e-3  # another matrix gives another value
    with pytest.raises(ValueError, match="which"):
        mean_ap(counts, which=[4])
