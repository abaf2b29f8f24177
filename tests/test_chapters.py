"""The chapters of norep.paper: every verdict states the numbers of the tables its chapter's figures draw,
one accuracy band (chosen on the calibration split) everywhere, and thin notebooks."""

from __future__ import annotations

import re

import numpy as np
import pytest

from claims_stores import build, feature_specs, greedy_specs, group_specs, pair_specs
from norep import paper
from norep.claims import STATUSES
from norep.notebooks import find_notebooks
from norep.study import load_study

N_BOOT = 50
FEATURE_KW = {"probe_Cs": (0.1, 10.0), "probe_max_iter": 50, "max_per_category": 1, "categories": ("REINIT", "DATASET")}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    from norep.study import limit_threads

    limit_threads(1)


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = tmp_path_factory.mktemp("chapters")
    made = {}

    def get(which):
        if which not in made:
            specs = {"pairs": pair_specs, "groups": group_specs, "greedy": greedy_specs, "features": feature_specs}
            extra = {"groups": {"n": 1500}, "features": {"down": True, "band": (0.0, 1.0)}}.get(which, {})
            build(root / which, specs[which]("planted"), **extra)
            made[which] = load_study(root / which)
        return made[which]

    return get


def _gap(table, column, hi="DATASET", lo="REINIT"):
    """Mean of ``column`` over the ``hi`` rows minus over the ``lo`` rows, computed here from the table."""
    return table.loc[table["category"] == hi, column].mean() - table.loc[table["category"] == lo, column].mean()


def _ancova(table, column, accuracy, cats):
    """Per-category coefficients of a least-squares fit with a common slope on ``accuracy`` (one dummy per
    category of ``cats``, no intercept), solved with numpy's lstsq: the categories' means at a common accuracy."""
    rows = table[table["category"].isin(cats)]
    design = np.column_stack([(rows["category"] == c).to_numpy(float) for c in cats] + [rows[accuracy].to_numpy(float)])
    return dict(zip(cats, np.linalg.lstsq(design, rows[column].to_numpy(float), rcond=None)[0][:-1], strict=True))


def _states(sentence: str, value: float, fmt: str) -> bool:
    return format(value, fmt) in sentence


def _shifted(t: dict, key: str, column: str, category: str, by: float) -> dict:
    """A copy of the chapter tables ``t`` with ``column`` of table ``key`` moved by ``by`` for ``category``."""
    table = t[key].copy()
    table.loc[table["category"] == category, column] += by
    return {**t, key: table}


# ------------------------------------------------------------------------- verdicts read their tables


def test_c10_reads_the_zoo_table(studies):
    study = studies("pairs")
    t = paper.ch00_zoo.tables(study)
    zoo = t["zoo"]
    res = paper.c10_temperature_scaling(study, n_boot=N_BOOT, chapter_tables=t)
    fitted = zoo[zoo["fitted_on_selection"]]
    effect = float((fitted["ece_before"] - fitted["ece_after"]).mean())
    assert res.effect == pytest.approx(effect, abs=1e-12) and res.low <= res.effect <= res.high
    assert _states(res.sentence, effect, ".3f")
    assert f"{int(zoo['in_band'].sum())} models (base included) lie in the band" in res.sentence
    assert f"({fitted['temperature'].min():.2f} to {fitted['temperature'].max():.2f})" in res.sentence
    # the verdict moves with the table (it is not recomputed elsewhere)
    moved = {**t, "zoo": zoo.assign(ece_before=zoo["ece_before"] + 0.25)}
    assert paper.c10_temperature_scaling(study, n_boot=N_BOOT, chapter_tables=moved).effect == pytest.approx(
        effect + 0.25
    )


def test_c1_reads_the_pairs_table(studies):
    study = studies("pairs")
    t = paper.ch01_error_correlation.tables(study)
    res = paper.c1_error_inconsistency(study, n_boot=N_BOOT, chapter_tables=t)
    with_acc = t["pairs"].assign(accuracy=t["pairs"]["both_correct"] + t["pairs"]["only_b"])
    adjusted = _ancova(with_acc, "error_inconsistency", "accuracy", list(t["means"].index))
    effect = adjusted["DATASET"] - adjusted["REINIT"]  # at a common partner accuracy
    assert res.effect == pytest.approx(effect, abs=1e-12) and res.low <= res.effect <= res.high
    for cat, mean in t["pairs"].groupby("category")["error_inconsistency"].mean().items():
        assert f"{paper.ch01_error_correlation.cat_label(cat)} {mean:.3f}" in res.sentence
    assert f"both-correct {_gap(t['pairs'], 'both_correct'):+.3f}" in res.sentence
    # the trend is the least-squares slope of the category means on their rank (an independent fit)
    from norep import CATEGORIES

    ranks = [CATEGORIES.index(c) for c in adjusted]
    assert res.details["trend"][0] == pytest.approx(np.polyfit(ranks, list(adjusted.values()), 1)[0], abs=1e-12)
    moved = _shifted(t, "pairs", "error_inconsistency", "DATASET", 0.1)
    moved["means"] = paper.ch01_error_correlation.category_means(moved["pairs"], ["error_inconsistency"])
    assert paper.c1_error_inconsistency(study, n_boot=N_BOOT, chapter_tables=moved).effect == pytest.approx(
        effect + 0.1
    )


def test_c2_reads_the_pairs_table_and_describes_the_drawn_line(studies):
    from scipy.stats import linregress

    study = studies("pairs")
    t = paper.ch02_ensembles.tables(study)
    pairs = t["pairs"]
    res = paper.c2_ensemble_gain(study, n_boot=N_BOOT, chapter_tables=t)
    adjusted = _ancova(pairs, "ensemble_accuracy", "accuracy", ["REINIT", "DATASET"])
    effect = adjusted["DATASET"] - adjusted["REINIT"]  # at a common partner accuracy
    assert res.effect == pytest.approx(effect, abs=1e-12) and _states(res.sentence, 100 * effect, ".1f")
    fit = linregress(pairs["error_inconsistency"], pairs["gain"])  # an independent fit of the drawn points
    assert res.details["slope"][0] == pytest.approx(t["fit"]["slope"], abs=1e-12) == pytest.approx(fit.slope, rel=1e-9)
    assert t["fit"]["intercept"] == pytest.approx(fit.intercept, rel=1e-9, abs=1e-12)
    assert _states(res.sentence, fit.slope, ".2f") and f"r = {fit.rvalue:.2f}" in res.sentence
    best = t["best"]
    assert best["partner"] == pairs.loc[pairs["sel_ensemble_accuracy"].idxmax(), "name"]
    assert f"{best['partner']} (" in res.sentence and _states(res.sentence, 100 * best["absolute_gain"], ".1f")
    identity = float(np.mean(pairs["error_inconsistency"] * (pairs["conversion_rate"] - 0.5)))
    assert f"{100 * identity:.2f} points, the identity" in res.sentence
    moved = _shifted(t, "pairs", "ensemble_accuracy", "DATASET", 0.1)
    assert paper.c2_ensemble_gain(study, n_boot=N_BOOT, chapter_tables=moved).effect == pytest.approx(effect + 0.1)


def test_c3_reads_the_pairs_table(studies):
    study = studies("pairs")
    t = paper.ch02_ensembles.tables(study)
    res = paper.c3_conversion_rate(study, n_boot=N_BOOT, chapter_tables=t)
    effect = _gap(t["pairs"], "conversion_rate")
    assert res.effect == pytest.approx(effect, abs=1e-12) and _states(res.sentence, effect, ".3f")
    moved = _shifted(t, "pairs", "conversion_rate", "REINIT", -0.05)
    moved["means"] = paper.ch01_error_correlation.category_means(moved["pairs"], ["conversion_rate"])
    assert paper.c3_conversion_rate(study, n_boot=N_BOOT, chapter_tables=moved).effect == pytest.approx(effect + 0.05)


def test_c4_reads_the_separation_table(studies):
    study = studies("pairs")
    t = paper.ch03_specialization.tables(study)
    res = paper.c4_specialization_angle(study, n_boot=N_BOOT, chapter_tables=t)
    sep = t["separation"]
    assert res.effect == pytest.approx(_gap(sep, "separation_deg"), abs=1e-9)
    reinit = sep.loc[sep["category"] == "REINIT", "separation_deg"].mean()
    assert f"Reinit pairs alone {reinit:.1f} deg" in res.sentence
    # the separation of a pair is the mean angle where only the base is right minus where only the partner is
    from norep.measures.specialization import outcome_labels, theta

    name = sep["name"].iloc[0]
    pa, pb, y = study.probs(study.base), study.probs(name), study.labels()
    th, out = theta(pa, pb), outcome_labels(y, pa, pb)
    ref = th[out == "only_a"].mean() - th[out == "only_b"].mean()
    assert sep["separation_deg"].iloc[0] == pytest.approx(ref, rel=1e-9)


def test_c5_reads_the_disagreements_the_figure_draws(studies):
    study = studies("groups")
    t = paper.ch03_specialization.tables(study)
    res = paper.c5_class_groups(study, n_boot=20, n_permutations=99, chapter_tables=t)
    classes, wins = t["classes"], t["group_wins"]
    dataset = wins[wins["category"] == "DATASET"].set_index("group")["d"]
    assert res.details["dataset_wins_by_group"] == pytest.approx(dataset.to_dict())
    assert f"win most on group '{dataset.idxmin()}'" in res.sentence  # the same group on calib and test here
    # the bars are who wins the disagreements, counted here from the predictions
    name = classes["name"].iloc[0]
    y, pa, pb = study.labels(), study.predictions([study.base])[0], study.predictions([name])[0]
    only_a = np.bincount(y[(pa == y) & (pb != y)], minlength=10)
    only_b = np.bincount(y[(pb == y) & (pa != y)], minlength=10)
    rows = classes[classes["name"] == name].set_index("class_id")
    assert np.array_equal(rows["only_a"].to_numpy(), only_a[rows.index]) and np.array_equal(
        rows["only_b"].to_numpy(), only_b[rows.index]
    )
    # the class-level structure the claim tests moves with the table
    flipped = classes.copy()
    flipped[["only_a", "only_b"]] = flipped[["only_b", "only_a"]].to_numpy()
    moved = {**t, "classes": flipped, "group_wins": paper.ch03_specialization._pooled(flipped, ["category", "group"])}
    res2 = paper.c5_class_groups(study, n_boot=20, n_permutations=99, chapter_tables=moved)
    assert res2.details["dataset_wins_by_group"] == pytest.approx((-dataset).to_dict())


def test_c6_reads_the_summary_table(studies):
    from norep.measures.ensembles import ensemble_accuracy

    study = studies("greedy")
    t = paper.ch04_greedy.tables(study)
    res = paper.c6_low_accuracy_greedy(study, n_boot=N_BOOT, chapter_tables=t)
    s = t["summary"]
    assert res.effect == pytest.approx(s["gain"].mean(), abs=1e-12)
    best = s.loc[s["gain"].idxmax()]
    assert f"best {best['start']} {100 * best['start_accuracy']:.1f} %" in res.sentence
    # the summary's ensemble is the greedy run's, at the length chosen on the selection split
    run = t["runs"][best["start"]]
    members = [best["start"], *run["result"].selected[: run["length"]]]
    ref = ensemble_accuracy(study.labels(), [study.probs(m) for m in members])
    assert best["accuracy_at_chosen_length"] == pytest.approx(ref, abs=1e-12)
    assert best["accuracy_at_chosen_length"] == pytest.approx(run["result"].eval_accuracies[run["length"]], abs=1e-9)


def test_every_claim_is_registered_with_its_chapter():
    assert list(paper.CLAIMS) == [f"C{i}" for i in range(1, 11)]
    for chapter, module in paper.MODULES.items():
        assert callable(module.tables) and module.CHAPTER == chapter
        for cid in paper.claims_of(chapter):
            fn = paper.REGISTRY[cid].fn
            assert fn.__module__ == module.__name__, cid  # defined, and registered, in its chapter's module
            assert "chapter_tables" in fn.__code__.co_varnames, cid
    assert sorted(c for ch in paper.CHAPTERS for c in paper.claims_of(ch)) == sorted(paper.REGISTRY)


# ------------------------------------------------------------------------------------- one band


def test_one_band_chosen_on_the_calibration_split(tmp_path, capsys):
    """What a chapter prints as outside the band, the band tier of chapter 00 and the partners of every
    claim are one set: the models whose calibration-split accuracy lies in the band."""
    band = (0.655, 0.705)
    specs = pair_specs("planted", per_cat=8)
    for sp in specs[1:]:
        sp.acc = 0.66 + 0.006 * int(sp.name.rsplit("_", 1)[1])  # most in the band, some at its edges
    build(tmp_path / "s", specs, band=band)
    study = load_study(tmp_path / "s")
    printed = capsys.readouterr().out
    st, names = study.store, [str(n) for n in study.table["name"]]
    acc = {s: {n: float(np.mean(st.predictions(n, s) == st.labels(s))) for n in names} for s in ("calib", "test")}
    inside = {s: {n for n in names if band[0] <= acc[s][n] <= band[1]} - {study.base} for s in acc}
    assert inside["calib"] != inside["test"], "the store must tell the two splits apart"
    line = next(ln for ln in printed.splitlines() if ln.startswith("Outside the accuracy band"))
    assert "on the selection split 'calib'" in line
    assert set(re.findall(r"\b[a-z]+_\d\b", line)) == set(names) - inside["calib"] - {study.base}
    zoo = paper.ch00_zoo.tables(study)["zoo"]
    assert set(zoo.loc[zoo["tier"] == "band", "name"]) - {study.base} == inside["calib"]
    assert set(paper.ch01_error_correlation.tables(study)["pairs"]["name"]) == inside["calib"]
    assert set(paper.ch02_ensembles.tables(study)["pairs"]["name"]) == inside["calib"]
    assert set(paper.ch03_specialization.tables(study)["separation"]["name"]) == inside["calib"]
    for cid in ("C1", "C2", "C3", "C4"):
        res = paper.REGISTRY[cid](study, n_boot=20)
        assert res.status != "not testable" and set(res.choices["partners"]) == inside["calib"], cid


# ------------------------------------------------------------------------------- thin notebooks


def _code_lines(source: str) -> int:
    return sum(1 for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#"))


@pytest.mark.parametrize("src", find_notebooks(), ids=lambda p: p.stem)
def test_notebooks_are_thin(src):
    """At most 60 code lines per notebook (exercise solutions are Markdown), no hidden cell over 12 lines, and
    no statistics of its own: the chapter's tables and claims come from its module of norep.paper."""
    import jupytext

    nb = jupytext.read(src)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert sum(_code_lines(c.source) for c in code) <= 60
    hidden = {"remove-cell", "remove-input", "hide-input", "hide-cell"}
    for c in code:
        if hidden & set(c.metadata.get("tags", [])):
            assert _code_lines(c.source) <= 12, c.source
    text = "\n".join(c.source for c in code)
    module = paper.MODULES[src.stem].__name__.rsplit(".", 1)[1]
    assert f"from norep.paper import {module} as chapter" in text and "chapter.tables(study" in text
    for cid in paper.claims_of(src.stem):
        assert re.search(rf"chapter\.{paper.REGISTRY[cid].fn.__name__}\(study, .*chapter_tables=t\)", text), cid
    assert not re.search(r"^import (numpy|scipy)|^from (numpy|scipy)", text, re.M)
    assert not re.search(r"\b(metrics|ensembles|specialization|calibration)\.", text)


# ------------------------------------------------------------------------------------------ words


@pytest.mark.parametrize("status", list(STATUSES))
def test_a_chapter_prints_the_claims_page_words(monkeypatch, status):
    """Under a verdict a chapter prints, in bold, the words the claims page prints for that status and no
    other status's words; *inconclusive* never reads as "does not reproduce"."""
    import IPython.display

    from norep.claims import ClaimResult, lead
    from norep.plots._overview import status_words

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj.data))
    paper.report_claim(ClaimResult("C1", "t", status, sentence="s", paper="p"))
    first = shown[0].split("\n")[0]
    assert f"**{status_words(status)}**" in first
    others = set(STATUSES) - {status}
    assert not any(f"**{status_words(o)}**" in first for o in others), first
    assert "does not reproduce" not in shown[0] and "reproduces" not in shown[0]
    assert lead(status).lower() == status_words(status)
