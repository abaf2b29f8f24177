"""Tests of norep.measures.metrics against hand-worked cases, scikit-learn and a naive loop reference."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st

from norep.measures import metrics

# Hand-worked case: 8 examples.
#            index: 0  1  2  3  4  5  6  7
Y = np.array([0, 1, 2, 3, 4, 5, 6, 7])
A = np.array([0, 1, 2, 3, 4, 0, 0, 0])  # correct on 0-4        -> acc 5/8
B = np.array([0, 1, 2, 0, 0, 5, 0, 0])  # correct on 0-2 and 5  -> acc 4/8
# both correct: 0,1,2 (3) | only A: 3,4 (2) | only B: 5 (1) | both wrong: 6,7 (2)


def naive_outcomes(y, a, b):
    counts = {"both_correct": 0, "only_a": 0, "only_b": 0, "both_wrong": 0}
    for yi, ai, bi in zip(y.tolist(), a.tolist(), b.tolist(), strict=True):
        if ai == yi and bi == yi:
            counts["both_correct"] += 1
        elif ai == yi:
            counts["only_a"] += 1
        elif bi == yi:
            counts["only_b"] += 1
        else:
            counts["both_wrong"] += 1
    return {k: v / len(y) for k, v in counts.items()}


def naive_argmax(row):
    best = 0
    for j, v in enumerate(row):
        if v > row[best]:
            best = j
    return best


def random_preds(rng, m, n, c, agree=0.6):
    y = rng.integers(0, c, n)
    preds = np.where(rng.random((m, n)) < agree, y, rng.integers(0, c, (m, n)))
    return y, preds


def test_hand_worked_outcomes():
    out = metrics.pair_outcomes(Y, A, B)
    assert out == {"both_correct": 3 / 8, "only_a": 2 / 8, "only_b": 1 / 8, "both_wrong": 2 / 8}
    assert list(out) == list(metrics.OUTCOMES)
    assert metrics.error_inconsistency(Y, A, B) == 3 / 8
    assert metrics.accuracy_score(Y, A) == 5 / 8
    assert metrics.accuracy_score(Y, B) == 4 / 8


def test_hand_worked_kappa_and_dominance():
    # c_obs = (3 + 2) / 8 = 5/8; c_exp = 5/8 * 4/8 + 3/8 * 4/8 = 1/2; kappa = (5/8 - 1/2) / (1/2)
    assert metrics.error_consistency_kappa(Y, A, B) == pytest.approx(0.25, abs=1e-12)
    # A wrong on 5, 6, 7; B correct on 5 of those -> 1/3. B wrong on 3, 4, 6, 7; A right on 3, 4.
    assert metrics.dominance_probability(Y, A, B) == pytest.approx(1 / 3, abs=1e-12)
    assert metrics.dominance_probability(Y, B, A) == pytest.approx(2 / 4, abs=1e-12)
    assert metrics.dominance_probability(Y, A, B, conditional=False) == 1 / 8
    assert metrics.dominance_probability(Y, B, A, conditional=False) == 2 / 8


def test_hand_worked_pairwise():
    preds = np.stack([A, B, Y])  # third model is always right
    out = metrics.pairwise_outcomes(Y, preds)
    np.testing.assert_array_equal(out["only_a"], [[0, 2 / 8, 0], [1 / 8, 0, 0], [3 / 8, 4 / 8, 0]])
    np.testing.assert_array_equal(out["both_correct"].diagonal(), [5 / 8, 4 / 8, 1.0])
    incons = metrics.pairwise_error_inconsistency(Y, preds)
    np.testing.assert_allclose(incons, [[0, 3 / 8, 3 / 8], [3 / 8, 0, 4 / 8], [3 / 8, 4 / 8, 0]])
    dom = metrics.pairwise_dominance_probability(Y, preds)
    assert dom[0, 1] == pytest.approx(1 / 3) and dom[1, 0] == pytest.approx(0.5)
    assert np.isnan(dom[2, 2]) and np.isnan(dom[2, 0])  # the perfect model is never wrong
    kappa = metrics.pairwise_error_consistency_kappa(Y, preds)
    assert kappa[0, 1] == pytest.approx(0.25)
    assert kappa[0, 0] == 1.0 and np.isnan(kappa[2, 2])
    # against a model that is always right: c_exp = p, c_obs = p -> kappa = 0
    assert kappa[0, 2] == pytest.approx(0.0, abs=1e-12)


def test_scores_are_reduced_by_argmax_with_first_max_on_ties():
    y = np.array([0, 1, 2])
    scores = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4], [1.0, 3.0, 3.0]])  # all ties
    np.testing.assert_array_equal(metrics.correctness(y, scores), [True, True, False])
    ids = np.array([naive_argmax(r) for r in scores])
    assert metrics.pair_outcomes(y, scores, scores[:, ::-1]) == metrics.pair_outcomes(
        y, ids, np.array([naive_argmax(r) for r in scores[:, ::-1]])
    )


def test_properties_on_random_data():
    rng = np.random.default_rng(1)
    y, (a, b) = random_preds(rng, 2, 500, 10)
    ab, ba = metrics.pair_outcomes(y, a, b), metrics.pair_outcomes(y, b, a)
    assert math.isclose(sum(ab.values()), 1.0, abs_tol=1e-12)
    assert ab["only_a"] == ba["only_b"] and ab["both_wrong"] == ba["both_wrong"]
    assert metrics.error_inconsistency(y, a, b) == metrics.error_inconsistency(y, b, a)
    assert metrics.error_consistency_kappa(y, a, b) == pytest.approx(
        metrics.error_consistency_kappa(y, b, a), abs=1e-15
    )
    assert metrics.error_inconsistency(y, a, a) == 0.0
    assert metrics.error_consistency_kappa(y, a, a) == 1.0
    # acc_a = both_correct + only_a
    assert ab["both_correct"] + ab["only_a"] == pytest.approx(metrics.accuracy_score(y, a))


def test_against_sklearn():
    rng = np.random.default_rng(2)
    y, preds = random_preds(rng, 5, 400, 7, agree=0.5)
    kappa = metrics.pairwise_error_consistency_kappa(y, preds)
    for i, j in itertools.product(range(5), repeat=2):
        ci, cj = preds[i] == y, preds[j] == y
        ref = skm.cohen_kappa_score(ci, cj)
        assert metrics.error_consistency_kappa(y, preds[i], preds[j]) == pytest.approx(ref, abs=1e-9)
        assert kappa[i, j] == pytest.approx(ref, abs=1e-9)
    for p in preds:
        assert metrics.accuracy_score(y, p) == pytest.approx(skm.accuracy_score(y, p), abs=1e-12)
    probs = rng.dirichlet(np.ones(7), size=400)
    assert metrics.accuracy_score(y, probs) == pytest.approx(skm.accuracy_score(y, probs.argmax(1)), abs=1e-12)


def test_pairwise_agrees_with_naive_loop():
    rng = np.random.default_rng(3)
    y, preds = random_preds(rng, 6, 300, 5)
    out = metrics.pairwise_outcomes(y, preds)
    incons = metrics.pairwise_error_inconsistency(y, preds)
    dom = metrics.pairwise_dominance_probability(y, preds)
    for i, j in itertools.product(range(6), repeat=2):
        ref = naive_outcomes(y, preds[i], preds[j])
        for key in metrics.OUTCOMES:
            assert out[key][i, j] == pytest.approx(ref[key], abs=1e-9)
        assert incons[i, j] == pytest.approx(ref["only_a"] + ref["only_b"], abs=1e-9)
        wrong_i = ref["only_b"] + ref["both_wrong"]
        if i != j:
            assert dom[i, j] == pytest.approx(ref["only_b"] / wrong_i, abs=1e-9)
    for key in ("both_correct", "both_wrong"):
        np.testing.assert_array_equal(out[key], out[key].T)
    np.testing.assert_array_equal(out["only_a"], out["only_b"].T)
    np.testing.assert_allclose(sum(out.values()), 1.0, atol=1e-12)


def test_input_forms_are_equivalent():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, 50)
    scores = rng.normal(size=(3, 50, 4))
    ids = scores.argmax(axis=2)
    ref = metrics.pairwise_outcomes(y, ids)
    for form in (scores, list(scores), list(ids), ids.tolist(), ids.astype(np.float32)):
        got = metrics.pairwise_outcomes(y, form)
        for key in metrics.OUTCOMES:
            np.testing.assert_array_equal(got[key], ref[key])
    # labels given as integral floats are accepted
    assert metrics.accuracy_score(y.astype(float), ids[0]) == metrics.accuracy_score(y, ids[0])


def test_degenerate_kappa_and_dominance_are_nan():
    y = np.array([0, 1, 2])
    assert np.isnan(metrics.error_consistency_kappa(y, y, y))  # c_exp = 1
    assert np.isnan(metrics.dominance_probability(y, y, [1, 1, 1]))  # A never wrong
    # one always right, one always wrong: c_exp = 0, c_obs = 0 -> kappa = 0
    assert metrics.error_consistency_kappa(y, y, [1, 2, 0]) == 0.0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.accuracy_score([0, 1, 2], [0, 1]), "pred has 2 examples"),
        (lambda: metrics.accuracy_score([[0, 1]], [0, 1]), "y_true must be a 1-D"),
        (lambda: metrics.accuracy_score([0, -1], [0, 1]), "y_true contains a negative"),
        (lambda: metrics.accuracy_score([0, 1.5], [0, 1]), "y_true must hold integer"),
        (lambda: metrics.accuracy_score([0, np.nan], [0, 1]), "y_true contains NaN"),
        (lambda: metrics.accuracy_score([], []), "y_true is empty"),
        (lambda: metrics.accuracy_score([0, 1], [[0.1, np.nan], [0.5, 0.5]]), "pred contains NaN"),
        (lambda: metrics.accuracy_score([0, 2], [[0.1, 0.9], [0.5, 0.5]]), "only 2 columns"),
        (lambda: metrics.accuracy_score([0, 1], np.zeros((2, 2, 2))), "pred must be 1-D"),
        (lambda: metrics.pair_outcomes([0, 1], [0, 1], [0]), "pred_b has 1 examples"),
        (lambda: metrics.error_inconsistency([0, 1], ["a", "b"], [0, 1]), "pred_a must hold"),
        (lambda: metrics.pairwise_outcomes([0, 1], np.zeros((3, 5), int)), "preds must be"),
        (lambda: metrics.pairwise_outcomes([0, 1], [[0, 1], [0]]), r"preds\[1\] has 1"),
        (lambda: metrics.pairwise_outcomes([0, 1], []), "preds holds no models"),
        (lambda: metrics.pairwise_outcomes([0, 1], np.zeros((1, 2, 3, 4))), "preds must be"),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=30).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 3), min_size=n, max_size=n),
            st.lists(st.lists(st.integers(0, 3), min_size=n, max_size=n), min_size=2, max_size=4),
        )
    )
)
def test_hypothesis_pairwise_matches_pair_functions(data):
    y, preds = np.array(data[0]), np.array(data[1])
    out = metrics.pairwise_outcomes(y, preds)
    np.testing.assert_allclose(sum(out.values()), 1.0, atol=1e-12)
    for i, j in itertools.product(range(len(preds)), repeat=2):
        pair = metrics.pair_outcomes(y, preds[i], preds[j])
        assert pair == pytest.approx(naive_outcomes(y, preds[i], preds[j]), abs=1e-12)
        for key in metrics.OUTCOMES:
            assert out[key][i, j] == pytest.approx(pair[key], abs=1e-12)
        k = metrics.error_consistency_kappa(y, preds[i], preds[j])
        kk = metrics.pairwise_error_consistency_kappa(y, preds)[i, j]
        assert (np.isnan(k) and np.isnan(kk)) or k == pytest.approx(kk, abs=1e-12)
