"""Tests for norep.measures.features (paper Sec. 4.6): concatenation, diversity order, linear probe."""

import numpy as np
import pandas as pd
import pytest

from norep.measures.features import (
    compression_curve,
    concat_at_rate,
    dims_to_reach,
    diversity_order,
    linear_probe,
)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Small probes run faster on one thread on a shared, loaded 2-core machine."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _labelled_columns(n, d, offset):
    """Each column holds its own id (offset + j) so that taken columns can be identified."""
    return np.tile(np.arange(offset, offset + d, dtype=float), (n, 1))


# ----------------------------------------------------------------------------------------------
# concat_at_rate
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rate", "k_base"), [(1.0, 40), (0.75, 30), (0.5, 20), (0.25, 10), (0.0, 0)])
def test_concat_budget_and_origin_of_columns(rate, k_base):
    base, other = _labelled_columns(3, 40, 1000), _labelled_columns(3, 64, 2000)
    X, ib, io = concat_at_rate(base, other, rate, seed=7)
    assert X.shape == (3, 40)  # total = base dimension
    assert len(ib) == k_base and len(io) == 40 - k_base
    assert len(set(ib)) == len(ib) and len(set(io)) == len(io)
    np.testing.assert_array_equal(X[0, :k_base], 1000 + ib)
    np.testing.assert_array_equal(X[0, k_base:], 2000 + io)


def test_concat_rate_extremes():
    rng = np.random.default_rng(0)
    base, other = rng.normal(size=(5, 16)), rng.normal(size=(5, 24))
    X1, ib, io = concat_at_rate(base, other, 1)
    np.testing.assert_array_equal(X1, base)  # exactly the base embedding
    assert io.size == 0
    X0, ib, io = concat_at_rate(base, other, 0)
    assert ib.size == 0 and io.size == 16
    np.testing.assert_array_equal(X0, other[:, io])  # only the other model's dims


def test_concat_determinism_seed_and_nesting():
    rng = np.random.default_rng(0)
    base, other = rng.normal(size=(4, 100)), rng.normal(size=(4, 100))
    a = concat_at_rate(base, other, 0.5, seed=3)
    b = concat_at_rate(base, other, 0.5, seed=3)
    c = concat_at_rate(base, other, 0.5, seed=4)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[1], c[1])
    # a higher base share contains the lower share's base dims (same seed)
    _, ib25, io25 = concat_at_rate(base, other, 0.25, seed=3)
    _, ib75, io75 = concat_at_rate(base, other, 0.75, seed=3)
    assert set(ib25) <= set(a[1]) <= set(ib75)
    assert set(io75) <= set(a[2]) <= set(io25)


def test_concat_short_other_is_capped_and_proportional_budget():
    base, other = np.zeros((2, 20)), np.ones((2, 8))
    X, ib, io = concat_at_rate(base, other, 0.25)  # wants 15 of other's dims, has 8
    assert (len(ib), len(io)) == (5, 8) and X.shape == (2, 13)
    X, ib, io = concat_at_rate(base, other, 0.25, budget="proportional")
    assert (len(ib), len(io)) == (5, 6)


def test_concat_bad_input():
    with pytest.raises(ValueError, match="rate"):
        concat_at_rate(np.zeros((2, 3)), np.zeros((2, 3)), 1.5)
    with pytest.raises(ValueError, match="emb_base and emb_other.*rows"):
        concat_at_rate(np.zeros((2, 3)), np.zeros((3, 3)), 0.5)
    with pytest.raises(ValueError, match="emb_other.*2-D"):
        concat_at_rate(np.zeros((2, 3)), np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="budget"):
        concat_at_rate(np.zeros((2, 3)), np.zeros((2, 3)), 0.5, budget="max")


# ----------------------------------------------------------------------------------------------
# diversity_order
# ----------------------------------------------------------------------------------------------


def _correlated_pair(seed=0, n=500):
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(n, 3))
    A = np.column_stack(
        [shared @ rng.normal(size=(3, 4)) + rng.normal(size=(n, 4)) * s for s in (0.5,)] + [rng.normal(size=(n, 2))]
    )
    B = np.column_stack([shared @ rng.normal(size=(3, 3)) + rng.normal(size=(n, 3)), rng.normal(size=(n, 2))])
    return A, B


def test_diversity_order_is_a_deterministic_permutation():
    A, B = _correlated_pair()
    o1, o2 = diversity_order(A, B), diversity_order(A, B)
    assert sorted(o1.tolist()) == list(range(A.shape[1] + B.shape[1]))
    np.testing.assert_array_equal(o1, o2)


def test_diversity_scores_match_numpy_corrcoef():
    A, B = _correlated_pair(seed=1)
    order, scores = diversity_order(A, B, return_scores=True)
    R = np.abs(np.corrcoef(A.T, B.T)[: A.shape[1], A.shape[1] :])
    expected = np.concatenate([R.max(axis=1), R.max(axis=0)])
    np.testing.assert_allclose(scores, expected, atol=1e-10)
    np.testing.assert_array_equal(order, np.argsort(expected, kind="stable"))
    # scale-free: rescaling and shifting dims does not change the order
    np.testing.assert_array_equal(diversity_order(A * 1000 + 5, B * 0.001), order)


def test_duplicate_dim_goes_last_and_constant_dim_at_the_very_end():
    A, B = _correlated_pair(seed=2)
    B = np.column_stack([B, A[:, 1]])  # B's last dim duplicates A's dim 1
    A = np.column_stack([A, np.full(len(A), 3.0)])  # a dead unit in A
    d_a = A.shape[1]
    order = diversity_order(A, B)
    assert order[-1] == d_a - 1  # constant dim last
    assert set(order[-3:-1].tolist()) == {1, d_a + B.shape[1] - 1}  # the duplicated pair


def test_variance_method_ranks_by_variance():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(300, 3)) * [1.0, 5.0, 0.1]
    B = rng.normal(size=(300, 2)) * [2.0, 0.5]
    order = diversity_order(A, B, method="variance")
    assert order.tolist() == [1, 3, 0, 4, 2]
    with pytest.raises(ValueError, match="method"):
        diversity_order(A, B, method="pca")


def test_diversity_subsampling_is_seeded():
    A, B = _correlated_pair(seed=3, n=2000)
    o1 = diversity_order(A, B, max_samples=500, seed=1)
    np.testing.assert_array_equal(o1, diversity_order(A, B, max_samples=500, seed=1))
    assert sorted(o1.tolist()) == list(range(A.shape[1] + B.shape[1]))


# ----------------------------------------------------------------------------------------------
# linear_probe against scikit-learn
# ----------------------------------------------------------------------------------------------


def _blobs(seed=0, n=900, d=20, k=4, sep=1.2):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * sep
    y = rng.integers(0, k, n)
    X = centers[y] + rng.normal(size=(n, d)) * 2.0 + 3.0  # shifted: exercises standardisation
    return X, y


def _sklearn_fit(Xtr, ytr, C):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000, tol=1e-8)).fit(Xtr, ytr)


@pytest.mark.parametrize("C", [0.001, 0.05, 10.0])
def test_linear_probe_agrees_with_sklearn_on_blobs(C):
    X, y = _blobs()
    Xtr, ytr, Xva, yva, Xte, yte = X[:400], y[:400], X[400:600], y[400:600], X[600:], y[600:]
    res = linear_probe(Xtr, ytr, Xva, yva, Xte, yte, Cs=[C], max_iter=1000)
    ref = _sklearn_fit(Xtr, ytr, C)
    assert abs(res.test_accuracy - ref.score(Xte, yte)) <= 0.005
    assert abs(res.val_accuracy - ref.score(Xva, yva)) <= 0.005
    # same minimiser: probabilities agree closely (float32 fit)
    np.testing.assert_allclose(res.predict_proba(Xte), ref.predict_proba(Xte), atol=2e-3)


def test_linear_probe_agrees_with_sklearn_on_digits_float64():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    p = rng.permutation(len(y))
    X, y = X[p], y[p]
    Xtr, ytr, Xva, yva, Xte, yte = X[:900], y[:900], X[900:1300], y[900:1300], X[1300:], y[1300:]
    before = X.copy()
    res = linear_probe(Xtr, ytr, Xva, yva, Xte, yte, Cs=[0.1], dtype="float64", tol=1e-9)
    np.testing.assert_array_equal(X, before)  # inputs are not modified
    ref = _sklearn_fit(Xtr, ytr, 0.1)
    assert abs(res.test_accuracy - ref.score(Xte, yte)) <= 0.005
    np.testing.assert_allclose(res.predict_proba(Xte), ref.predict_proba(Xte), atol=1e-4)
    # the returned coefficients act on raw inputs and reproduce the reported accuracy
    assert np.mean(res.predict(Xte) == yte) == pytest.approx(res.test_accuracy)


def test_linear_probe_picks_best_C_on_validation():
    X, y = _blobs(seed=1, d=40, n=500, sep=0.6)
    Cs = [1e-3, 1e-2, 1.0, 100.0]
    res = linear_probe(X[:200], y[:200], X[200:350], y[200:350], X[350:], y[350:], Cs=Cs)
    table = res.val_scores
    assert isinstance(table, pd.DataFrame)
    assert table["C"].tolist() == Cs
    best_acc = table["val_accuracy"].max()
    assert res.val_accuracy == best_acc
    assert res.best_C == table.loc[table["val_accuracy"] == best_acc, "C"].min()
    # the sweep actually matters here (otherwise the test could not fail)
    assert table["val_accuracy"].nunique() > 1
    # each C's fit is the sklearn fit for that C (warm starts do not change the solution)
    for C, acc in zip(table["C"], table["val_accuracy"], strict=True):
        ref = _sklearn_fit(X[:200], y[:200], C)
        assert abs(acc - ref.score(X[200:350], y[200:350])) <= 0.005 + 1e-12


def test_linear_probe_labels_devices_and_errors():
    X, y = _blobs(seed=2, n=300, k=3)
    y = np.array([3, 7, 9])[y]  # non-contiguous class ids
    yva = y[200:].copy()
    yva[0] = 42  # a class never seen in training: counted wrong, log loss undefined
    res = linear_probe(X[:200], y[:200], X[200:], yva, Cs=[1.0], device="auto")
    assert res.classes.tolist() == [3, 7, 9]
    assert set(res.predict(X[200:]).tolist()) <= {3, 7, 9}
    assert res.test_accuracy is None
    assert np.isnan(res.val_scores["val_log_loss"].iloc[0])
    assert res.val_accuracy == pytest.approx(np.mean(res.predict(X[200:]) == yva))
    with pytest.raises(ValueError, match="y_train.*entries"):
        linear_probe(X[:200], y[:199], X[200:], y[200:])
    with pytest.raises(ValueError, match="X_val.*features"):
        linear_probe(X[:200], y[:200], X[200:, :5], y[200:])
    with pytest.raises(ValueError, match="X_train.*NaN"):
        linear_probe(np.full((4, 2), np.nan), [0, 1, 0, 1], X[:2, :2], [0, 1])
    with pytest.raises(ValueError, match="Cs"):
        linear_probe(X[:200], y[:200], X[200:], y[200:], Cs=[0.0])
    with pytest.raises(ValueError, match="two classes"):
        linear_probe(X[:200], np.zeros(200, int), X[200:], y[200:])
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            linear_probe(X[:200], y[:200], X[200:], y[200:], device="cuda")


# ----------------------------------------------------------------------------------------------
# compression curve
# ----------------------------------------------------------------------------------------------


def test_compression_curve_and_dims_to_reach():
    rng = np.random.default_rng(0)
    n = 600
    y = rng.integers(0, 3, n)
    informative = np.eye(3)[y] * 3 + rng.normal(size=(n, 3))
    X = np.column_stack([rng.normal(size=(n, 9)), informative])  # signal in the last 3 dims
    split = dict(X_train=X[:300], y_train=y[:300], X_val=X[300:450], y_val=y[300:450], X_test=X[450:], y_test=y[450:])
    good = compression_curve(**split, order=np.arange(12)[::-1], steps=3, Cs=[1.0])
    bad = compression_curve(**split, order=np.arange(12), steps=3, Cs=[1.0])
    assert good["n_dims"].tolist() == [3, 6, 9, 12]
    assert good["test_accuracy"].iloc[0] > 0.85 > bad["test_accuracy"].iloc[0]
    assert dims_to_reach(good, 0.85) == 3
    assert dims_to_reach(bad, 0.85) == 12
    assert dims_to_reach(bad, 1.01) is None
    assert dims_to_reach({512: 0.8, 256: 0.7}, 0.7) == 256
    with pytest.raises(ValueError, match="order"):
        compression_curve(**split, order=[0, 0, 1], steps=1)
    with pytest.raises(ValueError, match="steps"):
        compression_curve(**split, order=np.arange(12), steps=[20])


# ----------------------------------------------------------------------------------------------
# ridge_probe (closed form)
# ----------------------------------------------------------------------------------------------


def _ridge_reference(Xtr, ytr, X, C):
    """scikit-learn's RidgeClassifier(alpha=1/C) on features standardised with the training split."""
    from sklearn.linear_model import RidgeClassifier
    from sklearn.preprocessing import StandardScaler

    sc = StandardScaler().fit(Xtr)
    m = RidgeClassifier(alpha=1.0 / C).fit(sc.transform(Xtr), ytr)
    return m.decision_function(sc.transform(X)), m.predict(sc.transform(X))


@pytest.mark.parametrize("C", [0.001, 0.1, 10.0])
def test_ridge_probe_equals_sklearn_ridge_classifier(C):
    from sklearn.datasets import load_digits

    from norep.measures.features import ridge_probe

    X, y = load_digits(return_X_y=True)
    res = ridge_probe(X[:900], y[:900], X[900:1300], y[900:1300], X[1300:], y[1300:], Cs=[C])
    scores, pred = _ridge_reference(X[:900], y[:900], X[1300:], C)
    # one-hot targets (the probe) and +-1 targets (scikit-learn): scores 2 s - 1, the same classes
    np.testing.assert_allclose(2 * res.decision_function(X[1300:]) - 1, scores, atol=1e-9)
    np.testing.assert_array_equal(res.predict(X[1300:]), pred)
    np.testing.assert_array_equal(res.test_predictions, pred)
    assert res.test_accuracy == pytest.approx(np.mean(pred == y[1300:]))


def test_ridge_probe_reference_check_can_fail():
    """The comparison above tells penalties apart: the probe at C differs from scikit-learn at 100 C."""
    from sklearn.datasets import load_digits

    from norep.measures.features import ridge_probe

    X, y = load_digits(return_X_y=True)
    res = ridge_probe(X[:900], y[:900], X[900:1300], y[900:1300], Cs=[0.001])
    scores, _ = _ridge_reference(X[:900], y[:900], X[1300:], 0.1)
    assert np.abs(2 * res.decision_function(X[1300:]) - 1 - scores).max() > 1e-3


def test_ridge_probe_picks_C_on_validation_not_test():
    from norep.measures.features import ridge_probe

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 600)
    X = np.eye(3)[y] @ rng.normal(size=(3, 40)) + 2.0 * rng.normal(size=(600, 40))
    Cs = [1e-4, 1e-2, 1.0, 100.0]
    res = ridge_probe(X[:200], y[:200], X[200:400], y[200:400], X[400:], y[400:], Cs=Cs)
    val = res.val_scores.set_index("C")["val_accuracy"]
    assert res.best_C == float(val.idxmax()) and res.val_accuracy == val.max()
    # shuffling the test labels changes the test accuracy, never the choice
    shuffled = ridge_probe(X[:200], y[:200], X[200:400], y[200:400], X[400:], rng.permutation(y[400:]), Cs=Cs)
    assert shuffled.best_C == res.best_C and shuffled.test_accuracy != res.test_accuracy
