"""Greedy selection from per-model summaries equals the reference greedy selection exactly,
ties included (between classes, between candidates, between whole models)."""

import numpy as np
import pytest

from norep.allpairs import fast_greedy_selection
from norep.measures import ensembles
from norep.measures.calibration import softmax
from random_logits import random_store as _random_store


def random_store(*args, **kwargs):
    """Copies of earlier models start from model 1: the start model is never copied."""
    return _random_store(*args, copy_from=1, **kwargs)


def reference(y, logits, temps, names, steps, ey, elogits, replace=False):
    p = {m: softmax(z, temps[m]) for m, z in zip(names, logits, strict=True)}
    ep = {m: softmax(z, temps[m]) for m, z in zip(names, elogits, strict=True)}
    return ensembles.greedy_selection(
        y,
        p[names[0]],
        {m: p[m] for m in names[1:]},
        steps,
        eval_y_true=ey,
        eval_base_probs=ep[names[0]],
        eval_candidates={m: ep[m] for m in names[1:]},
        replace=replace,
    )


CASES = [
    # m, n, c, dtype, quantum, k, copies, flat, replace, steps
    (8, 500, 20, np.float16, None, 2, 0, 0.0, False, 7),
    (8, 400, 10, np.float16, 0.5, 2, 2, 0.05, False, 9),
    (6, 300, 3, np.float32, 1.0, 2, 1, 0.1, False, 6),
    (6, 300, 2, np.float32, None, 1, 0, 0.0, True, 8),
    (7, 350, 30, np.float64, 0.25, 3, 1, 0.0, True, 10),
    (9, 250, 50, np.float16, None, 1, 3, 0.02, False, 11),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CASES)
def test_greedy_equals_reference_with_ties(case, seed):
    m, n, c, dtype, quantum, k, copies, flat, replace, steps = case
    rng = np.random.default_rng([seed, m, n, c])
    y, lg = random_store(rng, m, n, c, dtype=dtype, quantum=quantum, copies=copies, flat=flat)
    ey, elg = random_store(rng, m, n + 37, c, dtype=dtype, quantum=quantum, copies=copies, flat=flat)
    names = ["base"] + [f"c{i}" for i in range(len(lg) - 1)]
    temps = dict(zip(names, rng.choice([0.5, 1.0, 1.7, 3.0], size=len(names)), strict=True))
    if copies:  # an exact copy also has the same temperature: the two candidates tie everywhere
        for i in range(copies):
            temps[names[m + i]] = temps[names[1 + i % (m - 1)]]
    steps = min(steps, len(names) - 1) if not replace else steps
    res = fast_greedy_selection(
        y,
        dict(zip(names, lg, strict=True)),
        "base",
        steps,
        temperatures=temps,
        k=k,
        eval_y_true=ey,
        eval_logits=dict(zip(names, elg, strict=True)),
        replace=replace,
    )
    ref = reference(y, lg, temps, names, steps, ey, elg, replace=replace)
    assert res.selected == ref.selected
    assert res.accuracies == ref.accuracies
    assert res.eval_accuracies == ref.eval_accuracies


def test_every_level_is_used_and_needed():
    rng = np.random.default_rng(11)
    y, lg = random_store(rng, 8, 600, 12, quantum=0.5, copies=2, flat=0.05)
    names = ["base"] + [f"c{i}" for i in range(len(lg) - 1)]
    res = fast_greedy_selection(y, dict(zip(names, lg, strict=True)), "base", 8, k=1)
    ref = reference(y, lg, dict.fromkeys(names, 1.0), names, 8, y, lg)
    assert (res.selected, res.accuracies) == (ref.selected, ref.accuracies)
    for level in ("level1", "level2", "level3", "full_row"):
        assert res.levels[level] > 0, (level, res.levels)


def test_candidate_ties_go_to_the_first_in_order():
    rng = np.random.default_rng(12)
    y, lg = random_store(rng, 4, 300, 8)
    lg = [lg[0], lg[1], lg[1].copy(), lg[2]]
    for order in (["a", "b", "c"], ["b", "a", "c"], ["c", "b", "a"]):
        res = fast_greedy_selection(y, {"base": lg[0], "a": lg[1], "b": lg[2], "c": lg[3]}, "base", 3, candidates=order)
        p = {nm: softmax(z) for nm, z in zip(["base", "a", "b", "c"], lg, strict=True)}
        ref = ensembles.greedy_selection(y, p["base"], {nm: p[nm] for nm in order}, 3)
        assert res.selected == ref.selected
        assert res.accuracies == ref.accuracies
    # a and b are identical: whichever comes first in the order is picked first
    first = fast_greedy_selection(y, {"base": lg[0], "a": lg[1], "b": lg[2]}, "base", 1, candidates=["b", "a"])
    assert first.selected == ["b"]


def test_bad_candidates():
    z = np.zeros((3, 3))
    with pytest.raises(ValueError, match="candidates must be unique"):
        fast_greedy_selection([0, 1, 2], {"a": z, "b": z}, "a", 1, candidates=["b", "b"])


def test_evaluation_summaries_reused_from_all_pairs(tmp_path):
    from norep.allpairs import pairwise_analysis, store_pairwise_analysis
    from norep.storage import Store

    rng = np.random.default_rng(13)
    c = 15
    y_cal, cal = random_store(rng, 5, 300, c, quantum=0.5)
    y_test, test = random_store(rng, 5, 250, c, quantum=0.5)
    names = ["base", "a", "b", "c", "d"]
    temps = dict(zip(names, [1.0, 0.7, 1.3, 2.0, 1.0], strict=True))
    res = pairwise_analysis(y_test, test, temperatures=[temps[m] for m in names], names=names, theta=False)
    assert res._summaries is not None
    kw = dict(temperatures=temps, eval_y_true=y_test, eval_logits=dict(zip(names, test, strict=True)))
    plain = fast_greedy_selection(y_cal, dict(zip(names, cal, strict=True)), "base", 4, **kw)
    reused = fast_greedy_selection(y_cal, dict(zip(names, cal, strict=True)), "base", 4, eval_summaries=res, **kw)
    ref = reference(y_cal, cal, temps, names, 4, y_test, test)
    assert plain.eval_accuracies == reused.eval_accuracies == ref.eval_accuracies
    # another temperature: not reused, still exact
    other = pairwise_analysis(y_test, test, names=names, theta=False)
    again = fast_greedy_selection(y_cal, dict(zip(names, cal, strict=True)), "base", 4, eval_summaries=other, **kw)
    assert again.eval_accuracies == ref.eval_accuracies
    # from a store: memory maps of the same files are recognised
    st = Store.create(
        tmp_path / "s",
        dataset="toy",
        class_names=[str(i) for i in range(c)],
        splits={"calib": y_cal, "test": y_test},
        info={"base_model": "base"},
    )
    for i, m in enumerate(names):
        st.add_model(m, logits={"calib": cal[i], "test": test[i]}, meta={"category": "ARCH", "method": "r"})
    sres = store_pairwise_analysis(st, split="test", theta=False)
    from norep.engine.greedy import _kept_summary

    t_a = st.meta("a")["temperature"]
    assert _kept_summary(sres, "a", st.logits("a", "test"), y_test, t_a, 2) is not None
    assert _kept_summary(sres, "a", st.logits("b", "test"), y_test, t_a, 2) is None
    assert _kept_summary(sres, "a", st.logits("a", "test"), y_test, t_a, 3) is None


def test_evaluation_errors_reach_the_caller():
    """The evaluation split runs beside the selection: a bad evaluation matrix of a chosen model
    is still reported to the caller, and one the selection never chooses is never read."""
    rng = np.random.default_rng(14)
    y, lg = random_store(rng, 3, 200, 6)
    names = ["base", "a", "b"]
    sel = dict(zip(names, lg, strict=True))
    first = fast_greedy_selection(y, sel, "base", 1).selected[0]
    other = "b" if first == "a" else "a"
    good = {m: z[:150] for m, z in sel.items()}
    bad = {**good, first: good[first][:, :5]}
    with pytest.raises(ValueError, match=rf"eval_logits\['{first}'\]"):
        fast_greedy_selection(y, sel, "base", 1, eval_y_true=y[:150], eval_logits=bad)
    unread = {**good, other: good[other][:, :5]}
    res = fast_greedy_selection(y, sel, "base", 1, eval_y_true=y[:150], eval_logits=unread)
    assert res.selected == [first] and len(res.eval_accuracies) == 2


@pytest.mark.parametrize("n_jobs", [2, 3])
@pytest.mark.parametrize("case", CASES[:3] + CASES[5:])
def test_ranges_stepped_in_parallel_equal_the_reference(case, n_jobs, monkeypatch, tmp_path):
    """With several jobs the examples split into ranges, each stepped by its own state in its own
    thread (and each reading its rows at an offset of the same memory-mapped files): the counts add
    up to the reference's exactly, ties included."""
    from norep.engine.greedy import _PartedState
    from norep.storage import Store

    monkeypatch.setattr(_PartedState, "MIN_ROWS", 40)
    m, n, c, dtype, quantum, k, copies, flat, replace, steps = case
    rng = np.random.default_rng([7, m, n, c, n_jobs])
    y, lg = random_store(rng, m, n, c, dtype=dtype, quantum=quantum, copies=copies, flat=flat)
    names = ["base"] + [f"c{i}" for i in range(len(lg) - 1)]
    temps = dict(zip(names, rng.choice([0.5, 1.0, 1.7], size=len(names)), strict=True))
    if copies:
        for i in range(copies):
            temps[names[m + i]] = temps[names[1 + i % (m - 1)]]
    steps = min(steps, len(names) - 1)
    st = Store.create(tmp_path / "s", dataset="toy", class_names=[str(i) for i in range(c)], splits={"calib": y})
    for i, name in enumerate(names):
        st.add_model(name, logits={"calib": lg[i]}, meta={"category": "ARCH", "method": "r"})
    mapped = {name: st.logits(name, "calib") for name in names}
    ref = reference(y, lg, temps, names, steps, y, lg, replace=replace)
    for logits in (dict(zip(names, lg, strict=True)), mapped):
        res = fast_greedy_selection(y, logits, "base", steps, temperatures=temps, k=k, replace=replace, n_jobs=n_jobs)
        assert (res.selected, res.accuracies) == (ref.selected, ref.accuracies)
        if c > k + 1:  # with k + 1 classes or fewer the summaries decide everything
            assert res.levels["level3"] + res.levels["full_row"] > 0  # the ranges' hard rows were exercised
