"""The data effect (a Dataset model minus its Framework twin): against a hand computation, a planted
effect found, a null undecided, too few pairs not testable, pairs chosen on the selection split."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from norep.paper import data_effect as de
from norep.storage import Store
from norep.study import load_study

C = 5


def _store(path, *, n=600, d_share=0.3, f_share=0.3, n_pairs=4, seed=0, band=(0.0, 1.0), extra=()):
    """base, two Reinit models (errors shared with the base: 0.9), ``n_pairs`` Dataset models (shared
    ``d_share``) each with a Framework twin (shared ``f_share``); all about 70 % accurate. ``extra``:
    more (name, category, share, accuracy, twin) rows."""
    rng = np.random.default_rng(seed)
    y = {s: rng.integers(0, C, n) for s in ("calib", "test")}
    u0 = {s: rng.normal(size=n) for s in y}
    st = Store.create(
        path, dataset="toy", class_names=[f"c{i}" for i in range(C)], splits=y, info={"base_model": "base"}
    )
    st.update_info(accuracy_band=list(band))
    rows = [("base", "REINIT", 1.0, 0.7, ""), ("r1", "REINIT", 0.9, 0.7, ""), ("r2", "REINIT", 0.9, 0.7, "")]
    for i in range(n_pairs):
        rows += [(f"f{i}", "FWORK", f_share, 0.7, ""), (f"d{i}", "DATASET", d_share, 0.7, f"f{i}")]
    for name, cat, share, acc, twin in [*rows, *extra]:
        logits = {}
        for s in y:
            z = np.sqrt(share) * u0[s] + np.sqrt(1 - share) * rng.normal(size=n)
            pred = np.where(z < norm.ppf(acc), y[s], (y[s] + 1 + rng.integers(0, C - 1, n)) % C)
            lg = 0.5 * rng.normal(size=(n, C))
            lg[np.arange(n), pred] += 2.0
            logits[s] = lg
        meta = {"category": cat, "method": "toy", **({"twin": twin} if twin else {})}
        st.add_model(name, logits=logits, meta=meta)
    return st


def test_against_a_hand_computation(tmp_path):
    st = _store(tmp_path / "s", n=300, d_share=0.2, f_share=0.8)
    study = load_study(st.path)
    t = de.tables(study)
    res = de.data_effect(study, n_boot=50, chapter_tables=t)
    y = st.labels("test")
    ok = {m: [int(p == c) for p, c in zip(st.predictions(m, "test"), y, strict=True)] for m in st.model_names()}

    def ei(m):  # share of examples where exactly one of the base and m is right, by hand
        return sum(1 for a, b in zip(ok["base"], ok[m], strict=True) if a + b == 1) / len(y)

    def ens(m):  # the mean of the two calibrated probability vectors, its top-1 right
        p = (study.probs("base") + study.probs(m)) / 2
        return sum(int(np.argmax(row) == c) for row, c in zip(p, y, strict=True)) / len(y)

    diffs = [ei(f"d{i}") - ei(f"f{i}") for i in range(4)]
    assert t["pairs"][["dataset_model", "twin"]].values.tolist() == [[f"d{i}", f"f{i}"] for i in range(4)]
    assert res.effect == pytest.approx(np.mean(diffs), abs=1e-12)
    assert res.details["ensemble_difference"][0] == pytest.approx(
        np.mean([ens(f"d{i}") - ens(f"f{i}") for i in range(4)]), abs=1e-12
    )
    gap = np.mean([ei(f"d{i}") for i in range(4)]) - np.mean([ei("r1"), ei("r2")])
    assert res.details["dataset_minus_reinit"] == pytest.approx(gap, abs=1e-12)
    assert res.details["share"][0] == pytest.approx(np.mean(diffs) / gap, abs=1e-12)
    assert f"{res.effect:.3f}" in res.sentence and res.n_pairs == 4 and res.kind == de.KIND


def test_a_planted_data_effect_is_found(tmp_path):
    study = load_study(_store(tmp_path / "s", d_share=0.2, f_share=0.85).path)
    res = de.data_effect(study, n_boot=200)
    assert res.status == "reproduced" and res.low > 0, res.sentence
    share = res.details["share"]
    assert 0 < share[1] <= share[0] <= share[2]


def test_a_reversed_effect_is_the_opposite(tmp_path):
    study = load_study(_store(tmp_path / "s", d_share=0.85, f_share=0.2).path)
    res = de.data_effect(study, n_boot=200)
    assert res.status == "not reproduced" and res.high < 0, res.sentence


def test_twins_alike_in_distribution_are_undecided(tmp_path):
    study = load_study(_store(tmp_path / "s", d_share=0.5, f_share=0.5, seed=4).path)
    res = de.data_effect(study, n_boot=200)
    assert res.status == "inconclusive" and res.low < 0 < res.high, res.sentence


def test_too_few_pairs_are_not_testable(tmp_path):
    study = load_study(_store(tmp_path / "s", n_pairs=de.MIN_PAIRS - 1).path)
    res = de.data_effect(study, n_boot=50)
    assert res.status == "not testable" and res.n_pairs == de.MIN_PAIRS - 1 and "at least 4" in res.reason


def test_pairs_are_chosen_on_the_selection_split(tmp_path):
    """A pair whose Dataset model, or whose twin, is out of the band on the selection split is no unit;
    a Dataset model without a twin neither; the test split chooses nothing."""
    extra = [
        ("weak-twin", "FWORK", 0.3, 0.2, ""),
        ("d-weak-twin", "DATASET", 0.3, 0.7, "weak-twin"),
        ("d-no-twin", "DATASET", 0.3, 0.7, ""),
        ("d-weak", "DATASET", 0.3, 0.2, "f0"),
    ]
    st = _store(tmp_path / "s", band=(0.6, 0.8), extra=extra)
    study = load_study(st.path)
    assert de.twin_pairs(study) == [(f"d{i}", f"f{i}") for i in range(4)]
    why = dict(de.tables(study)["excluded"].values.tolist())
    assert why == {
        "d-weak-twin": "its twin weak-twin is out of the band",
        "d-no-twin": "records no Framework twin",
        "d-weak": "out of the band",
    }
    # shuffling the test labels changes every test number and no choice
    before = de.data_effect(study, n_boot=20).choices
    rng = np.random.default_rng(1)
    lg = {s: st.logits("d0", s) for s in ("calib", "test")}
    lg["test"] = lg["test"][rng.permutation(len(lg["test"]))]
    st.add_model(
        "d0", logits=lg, meta={**{k: st.meta("d0")[k] for k in ("category", "method", "twin")}}, overwrite=True
    )
    after = de.data_effect(load_study(st.path), n_boot=20)
    assert sorted(after.choices["pairs"]) == sorted(before["pairs"]) and after.choices["reinit"] == before["reinit"]


def test_the_verdict_reads_the_pairs_table(tmp_path):
    study = load_study(_store(tmp_path / "s").path)
    t = de.tables(study)
    res = de.data_effect(study, n_boot=20, chapter_tables=t)
    moved = {**t, "pairs": t["pairs"].assign(ei_difference=t["pairs"]["ei_difference"] + 0.25)}
    assert de.data_effect(study, n_boot=20, chapter_tables=moved).effect == pytest.approx(res.effect + 0.25)


def test_chapter_00_exercise_solutions_run_and_print_numbers(tmp_path, capsys):
    """Every solution code block of chapter 00 runs with the names the notebook defines, and prints."""
    import re

    from norep.notebooks import find_notebooks
    from norep.paper import ch00_zoo

    src = next(p for p in find_notebooks() if p.stem == "00_model_zoo").read_text()
    blocks = re.findall(r"<details>.*?```python\n(.*?)```.*?</details>", src, flags=re.S)
    assert len(blocks) >= 3
    st = _store(tmp_path / "s", extra=[("ctl", "ARCH", 0.3, 0.7, "")])
    study = load_study(st.path)
    t = ch00_zoo.tables(study)
    ns = dict(study=study, st=st, base=study.base, t=t, zoo=t["zoo"], split="test", calib_split="calib")
    for code in blocks:
        exec("\n".join(line.removeprefix("# ").removeprefix("#") for line in code.splitlines()), dict(ns))
        assert re.search(r"\d", capsys.readouterr().out), code


def test_twin_figure_on_a_store_without_twin_pairs_is_a_message():
    """A store whose Dataset models record no twin (a researcher's own) still gets chapter 00's figure."""
    import pandas as pd

    from norep import plots

    empty = pd.DataFrame(columns=["dataset_model", "twin", "ei_twin", "ei_dataset"])
    fig = plots.twin_pairs_plot(empty, reinit=None)
    assert "no in-band Dataset model" in " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
