"""Tests of norep.measures.ensembles against hand-worked cases, scikit-learn and naive references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import sklearn.metrics as skm
from hypothesis import given, settings
from hypothesis import strategies as st

from norep.measures import ensembles

# Hand-worked case (2 classes, 4 examples).
Y = np.array([0, 1, 1, 0])
PA = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.45, 0.55]])  # preds 0 0 1 1: right on 0, 2
PB = np.array([[0.4, 0.6], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])  # preds 1 1 0 0: right on 1, 3
# mean:       [.65 .35]  [.4 .6]     [.45 .55]   [.575 .425] -> preds 0 1 1 0: all right
# every example is inconsistent and all four are converted.


def random_probs(rng, m, n, c, sharpness=2.0):
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(m, n, c)) * sharpness
    logits[:, np.arange(n), y] += rng.normal(1.0, 1.0, size=(m, n))  # some skill
    p = np.exp(logits - logits.max(axis=2, keepdims=True))
    return y, p / p.sum(axis=2, keepdims=True)


def naive_ensemble_correct(y, members):
    mean = np.mean(np.stack(members), axis=0)
    return np.array([int(np.argmax(row)) == t for row, t in zip(mean, y, strict=True)])


def naive_conversion(y, pa, pb):
    inconsistent = converted = 0
    ens = naive_ensemble_correct(y, [pa, pb])
    for t, ra, rb, e in zip(y, pa, pb, ens, strict=True):
        if (int(np.argmax(ra)) == t) != (int(np.argmax(rb)) == t):
            inconsistent += 1
            converted += bool(e)
    return converted / inconsistent if inconsistent else float("nan")


def test_hand_worked():
    np.testing.assert_allclose(
        ensembles.ensemble_probs([PA, PB]), [[0.65, 0.35], [0.4, 0.6], [0.45, 0.55], [0.575, 0.425]]
    )
    assert ensembles.ensemble_accuracy(Y, [PA, PB]) == 1.0
    assert ensembles.ensemble_gain(Y, PA, PB) == pytest.approx(1.0 - 0.5, abs=1e-12)
    assert ensembles.conversion_rate(Y, PA, PB) == 1.0
    # weights 1:3 -> B dominates: [.525 .475] [.3 .7] [.525 .475] [.6375 .3625] -> preds 0 1 0 0
    assert ensembles.ensemble_accuracy(Y, [PA, PB], weights=[1, 3]) == 0.75
    acc = ensembles.pairwise_ensemble_accuracy(Y, [PA, PB])
    np.testing.assert_array_equal(acc, [[0.5, 1.0], [1.0, 0.5]])
    np.testing.assert_allclose(ensembles.pairwise_ensemble_gain(Y, [PA, PB]), [[0, 0.5], [0.5, 0]])
    conv = ensembles.pairwise_conversion_rate(Y, np.stack([PA, PB]))
    assert conv[0, 1] == conv[1, 0] == 1.0 and np.isnan(conv[0, 0])


def test_conversion_rate_partial_and_nan():
    y = np.array([0, 0, 1, 1])
    pa = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.3, 0.7]])  # right on 0, 2, 3
    pb = np.array([[0.4, 0.6], [0.6, 0.4], [0.4, 0.6], [0.2, 0.8]])  # right on 1, 2, 3
    # inconsistent: 0 (mean .65 -> right), 1 (mean .4 -> wrong) -> 1/2 (ensemble accuracy 3/4)
    assert ensembles.conversion_rate(y, pa, pb) == 0.5
    assert ensembles.ensemble_accuracy(y, [pa, pb]) == 0.75
    assert np.isnan(ensembles.conversion_rate(y, pa, pa))


def test_ensemble_of_one_model_is_the_model():
    rng = np.random.default_rng(0)
    y, p = random_probs(rng, 1, 200, 5)
    np.testing.assert_array_equal(ensembles.ensemble_probs([p[0]]), p[0])
    ref = skm.accuracy_score(y, p[0].argmax(1))
    assert ensembles.ensemble_accuracy(y, [p[0]]) == pytest.approx(ref, abs=1e-12)
    assert ensembles.ensemble_accuracy(y, p[:1]) == pytest.approx(ref, abs=1e-12)
    # a model with itself, too
    assert ensembles.ensemble_accuracy(y, [p[0], p[0]]) == pytest.approx(ref, abs=1e-12)
    assert ensembles.ensemble_gain(y, p[0], p[0]) == pytest.approx(0.0, abs=1e-12)


def test_order_invariance_and_weights():
    rng = np.random.default_rng(1)
    y, p = random_probs(rng, 4, 300, 6)
    ref = ensembles.ensemble_accuracy(y, list(p))
    for perm in itertools.permutations(range(4)):
        assert ensembles.ensemble_accuracy(y, [p[i] for i in perm]) == ref
        np.testing.assert_allclose(ensembles.ensemble_probs(p[list(perm)]), p.mean(0), atol=1e-12)
    # integer weights = repeating members; scaling weights changes nothing
    w = ensembles.ensemble_probs(list(p[:2]), weights=[2, 1])
    np.testing.assert_allclose(w, ensembles.ensemble_probs([p[0], p[0], p[1]]), atol=1e-12)
    np.testing.assert_allclose(w, ensembles.ensemble_probs(list(p[:2]), weights=[0.2, 0.1]), atol=1e-12)
    assert ensembles.ensemble_accuracy(y, list(p), weights=[1, 0, 0, 0]) == ensembles.ensemble_accuracy(y, [p[0]])


def test_pairwise_against_naive_loop():
    rng = np.random.default_rng(2)
    y, p = random_probs(rng, 5, 250, 4, sharpness=1.0)
    acc = ensembles.pairwise_ensemble_accuracy(y, p)
    conv = ensembles.pairwise_conversion_rate(y, list(p))
    gain = ensembles.pairwise_ensemble_gain(y, p)
    for i, j in itertools.product(range(5), repeat=2):
        ref_acc = float(np.mean(naive_ensemble_correct(y, [p[i], p[j]])))
        assert acc[i, j] == pytest.approx(ref_acc, abs=1e-9)
        assert acc[i, j] == ensembles.ensemble_accuracy(y, [p[i], p[j]])  # same arithmetic
        ref_conv = naive_conversion(y, p[i], p[j])
        if i == j:
            assert np.isnan(conv[i, j])
        else:
            assert conv[i, j] == pytest.approx(ref_conv, abs=1e-9)
            assert conv[i, j] == pytest.approx(ensembles.conversion_rate(y, p[i], p[j]), abs=1e-12)
        mean_member = (skm.accuracy_score(y, p[i].argmax(1)) + skm.accuracy_score(y, p[j].argmax(1))) / 2
        assert gain[i, j] == pytest.approx(ref_acc - mean_member, abs=1e-9)
    np.testing.assert_array_equal(acc, acc.T)
    np.testing.assert_allclose(np.diagonal(acc), [skm.accuracy_score(y, q.argmax(1)) for q in p])


def test_pairwise_chunking(monkeypatch):
    rng = np.random.default_rng(3)
    y, p = random_probs(rng, 5, 40, 3)
    full = ensembles.pairwise_ensemble_accuracy(y, p)
    conv = ensembles.pairwise_conversion_rate(y, p)
    monkeypatch.setattr(ensembles, "_CHUNK_ELEMENTS", 2 * 40 * 3)  # two partners per chunk
    np.testing.assert_array_equal(ensembles.pairwise_ensemble_accuracy(y, p), full)
    np.testing.assert_array_equal(ensembles.pairwise_conversion_rate(y, p), conv)


def test_float16_probabilities_are_accepted():
    rng = np.random.default_rng(4)
    y, p = random_probs(rng, 2, 100, 10)
    p16 = p.astype(np.float16)
    ref = float(np.mean(naive_ensemble_correct(y, [p16[0].astype(float), p16[1].astype(float)])))
    assert ensembles.ensemble_accuracy(y, list(p16)) == pytest.approx(ref, abs=1e-12)


def naive_greedy(y, base, cands, steps):
    """Reference: re-evaluate every ensemble from scratch, first best candidate wins."""
    chosen, accs, members = [], [float(np.mean(naive_ensemble_correct(y, [base])))], [base]
    for _ in range(steps):
        best, best_acc = None, -1.0
        for name, p in cands.items():
            if name in chosen:
                continue
            a = float(np.mean(naive_ensemble_correct(y, [*members, p])))
            if a > best_acc:
                best, best_acc = name, a
        chosen.append(best)
        members.append(cands[best])
        accs.append(best_acc)
    return chosen, accs


def test_greedy_hand_worked_tie_break():
    y = np.array([0, 1, 2])
    base = np.array([[0.8, 0.1, 0.1], [0.5, 0.4, 0.1], [0.5, 0.1, 0.4]])  # right on 0
    fixes_1 = np.array([[0.4, 0.3, 0.3], [0.1, 0.8, 0.1], [0.4, 0.3, 0.3]])
    fixes_2 = np.array([[0.4, 0.3, 0.3], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
    useless = np.array([[0.1, 0.8, 0.1], [0.8, 0.1, 0.1], [0.8, 0.1, 0.1]])
    # base + fixes_1: [1.2 .4 .4] [.6 1.2 .2] [.9 .4 .7] -> 2/3; base + fixes_2: [1.2 .4 .4]
    # [.6 .5 .9] [.6 .2 1.2] -> 2/3 (tie: the first in order wins); base + useless -> 1/3.
    res = ensembles.greedy_selection(y, base, {"u": useless, "f2": fixes_2, "f1": fixes_1}, 1)
    assert res.selected == ["f2"]
    res = ensembles.greedy_selection(y, base, {"u": useless, "f1": fixes_1, "f2": fixes_2}, 3)
    assert res.selected[0] == "f1"
    assert sorted(res.selected) == ["f1", "f2", "u"]  # distinct by default
    assert res.accuracies[:2] == [pytest.approx(1 / 3), pytest.approx(2 / 3)]
    assert res.eval_accuracies is None
    # base + f1 + f2: [1.3 .5 .5] [.7 1.3 1.0] [1.0 .5 1.5] -> 1.0
    assert res.accuracies[2] == 1.0 and res.best_step == 2


def test_greedy_against_naive_and_eval_split():
    rng = np.random.default_rng(5)
    y, p = random_probs(rng, 7, 300, 5, sharpness=1.5)
    ey, ep = random_probs(rng, 7, 200, 5, sharpness=1.5)
    names = [f"m{i}" for i in range(1, 7)]
    cands = dict(zip(names, p[1:], strict=True))
    ecands = dict(zip(names, ep[1:], strict=True))
    res = ensembles.greedy_selection(y, p[0], cands, 4, eval_y_true=ey, eval_base_probs=ep[0], eval_candidates=ecands)
    chosen, accs = naive_greedy(y, p[0], cands, 4)
    assert res.selected == chosen
    np.testing.assert_allclose(res.accuracies, accs, atol=1e-9)
    assert len(set(res.selected)) == 4
    for k in range(5):
        members = [ep[0]] + [ecands[n] for n in res.selected[:k]]
        ref = float(np.mean(naive_ensemble_correct(ey, members)))
        assert res.eval_accuracies[k] == pytest.approx(ref, abs=1e-9)
    # steps = 0 -> only the base
    zero = ensembles.greedy_selection(y, p[0], cands, 0)
    assert zero.selected == [] and zero.accuracies == [pytest.approx(skm.accuracy_score(y, p[0].argmax(1)))]


def test_greedy_with_replacement_can_readd():
    y = np.array([0, 0, 1])
    base = np.array([[0.4, 0.6], [0.4, 0.6], [0.4, 0.6]])  # right on 2 only
    c = np.array([[0.6, 0.4], [0.55, 0.45], [0.45, 0.55]])  # right everywhere, weakly
    res = ensembles.greedy_selection(y, base, {"c": c}, 3, replace=True)
    assert res.selected == ["c", "c", "c"]
    # base + c: [1.0 1.0] tie -> class 0 on ex 0; ex 1 [.95 1.05] wrong; ex 2 right -> 2/3
    assert res.accuracies[1] == pytest.approx(2 / 3)
    assert res.accuracies[2] == 1.0  # base + 2c: [1.6 1.4] [1.5 1.5]->0 [1.3 1.7]
    with pytest.raises(ValueError, match="steps=2 exceeds the number of candidates"):
        ensembles.greedy_selection(y, base, {"c": c}, 2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ensembles.ensemble_accuracy(Y, [PA, np.log(PB)]), "probs_list.1. contains negative"),
        (lambda: ensembles.ensemble_accuracy(Y, [PA, PB * 2]), r"probs_list\[1\] rows must sum to 1"),
        (lambda: ensembles.ensemble_accuracy(Y, [PA, PB[:3]]), r"probs_list\[1\] has 3 examples"),
        (lambda: ensembles.ensemble_accuracy(Y, []), "probs_list holds no models"),
        (lambda: ensembles.ensemble_accuracy(Y[:, None], [PA]), "y_true must be a 1-D"),
        (lambda: ensembles.ensemble_accuracy(Y + 1, [PA]), "only 2 columns"),
        (lambda: ensembles.ensemble_accuracy(Y, [PA, np.full((4, 3), 1 / 3)]), "has 3 classes"),
        (lambda: ensembles.ensemble_probs([PA, PB], weights=[1, -1]), "weights must be"),
        (lambda: ensembles.ensemble_probs([PA, PB], weights=[1]), "weights must have one entry"),
        (lambda: ensembles.conversion_rate(Y, PA, np.where(PB > 0.5, np.nan, PB)), "probs_b contains NaN"),
        (lambda: ensembles.pairwise_ensemble_accuracy(Y, PA), "probs must be"),
        (lambda: ensembles.greedy_selection(Y, PA, [PB], 1), "candidates must be a mapping"),
        (lambda: ensembles.greedy_selection(Y, PA, {"b": PB}, -1), "steps must be"),
        (lambda: ensembles.greedy_selection(Y, PA, {"b": PB[:2]}, 1), r"candidates\['b'\] has 2"),
        (lambda: ensembles.greedy_selection(Y, PA, {"b": PB}, 1, eval_y_true=Y), "must be given together"),
        (
            lambda: ensembles.greedy_selection(
                Y, PA, {"b": PB}, 1, eval_y_true=Y, eval_base_probs=PA, eval_candidates={"c": PB}
            ),
            "eval_candidates lacks",
        ),
    ],
)
def test_bad_input_names_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 4), st.integers(1, 25))
def test_hypothesis_pairwise_and_pair_functions_agree(seed, m, n):
    rng = np.random.default_rng(seed)
    y, p = random_probs(rng, m, n, 3)
    acc = ensembles.pairwise_ensemble_accuracy(y, p)
    conv = ensembles.pairwise_conversion_rate(y, p)
    for i, j in itertools.combinations(range(m), 2):
        assert acc[i, j] == ensembles.ensemble_accuracy(y, [p[j], p[i]])
        c = ensembles.conversion_rate(y, p[i], p[j])
        assert (np.isnan(c) and np.isnan(conv[i, j])) or c == conv[i, j]
        assert 0.0 <= acc[i, j] <= 1.0
