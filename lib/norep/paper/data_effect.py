"""The data effect, beyond the paper (chapter 00): how much of the Dataset category's error
inconsistency with the base comes from the data itself.

The paper's Dataset models (CLIP and ALIGN probes, JFT models) differ from the base in their data *and*
in how they reach the task (a frozen representation read by a new head). The embedded study separates
the two: every Dataset model records (metadata ``twin``) a Framework twin with the same encoder,
objective, initial weights, head and optimiser steps, pretrained on the training images instead of a
corpus of other data. A twin pair differs by its data only, so the mean over pairs of

    error inconsistency(base, Dataset model) - error inconsistency(base, its Framework twin)

is the part of the Dataset effect that is data; the rest of the Dataset-minus-Reinit gap is the head
and the encoder. Models (twin pairs) are the units: the interval is a hierarchical bootstrap over twin
pairs (and over Reinit models for the share), then test examples.

Not a claim of the paper, so not in :data:`norep.paper.REGISTRY`; its result is a
:class:`norep.claims.ClaimResult` of kind :data:`KIND`, shown by :func:`report_data_effect` (which,
unlike :func:`norep.paper.report_claim`, does not tag it for the paper's claims page).
"""

from __future__ import annotations

import numpy as np

from norep.claims._core import ClaimResult, fmt_interval, not_testable, selection_band, sign
from norep.measures.stats import hierarchical_bootstrap_ci

RESULT_ID = "D1"
"""The id of the data effect's result (not one of the paper's claims C1-C10)."""

KIND = "beyond the paper"
"""The result's kind: a question the paper does not ask."""

TITLE = "the data's share of the Dataset effect (Dataset model minus its Framework twin)"

PAPER = (
    "not separated: the paper's Dataset models (CLIP and ALIGN probes, JFT models) differ from the base by "
    "their data and by a frozen representation with a new head, and no peer separates the two"
)

MIN_PAIRS = 4
"""Twin pairs (both members in the band) needed for a verdict."""

MIN_REINIT = 2
"""In-band Reinit models besides the base needed for the share of the Dataset-minus-Reinit gap."""


def twin_pairs(study) -> list[tuple[str, str]]:
    """(Dataset model, its Framework twin) for every Dataset model of ``study`` that records a twin,
    both in the accuracy band on the selection split (the band's members are chosen there, once): the
    units of the data effect. In store order."""
    t = study.table.set_index("name")
    out = []
    for name in t.index[(t["category"] == "DATASET") & t["in_band"]]:
        twin = study.store.meta(str(name)).get("twin")
        if twin and twin in t.index and t.loc[twin, "category"] == "FWORK" and bool(t.loc[twin, "in_band"]):
            out.append((str(name), str(twin)))
    return out


def _indicators(study, names):
    """Per model of ``names``: (error-inconsistency indicator with the base, correctness of the
    ensemble with the base) on the evaluation split, one 0/1 float per test example."""
    y = study.labels()
    base_ok = study.store.predictions(study.base, study.split) == y
    p_base = study.probs(study.base)
    out = {}
    for n in names:
        ok = study.store.predictions(n, study.split) == y
        ens_ok = ((p_base + study.probs(n)) / 2).argmax(axis=1) == y
        out[n] = ((ok != base_ok).astype(float), ens_ok.astype(float))
    return out


def tables(study) -> dict:
    """The data effect's tables: ``pairs``, one row per twin pair (the Dataset model, its twin, their
    data and test error inconsistency and ensemble accuracy with the base, and the differences);
    ``reinit``, the in-band Reinit models' error inconsistency with the base; ``excluded``, the
    Dataset models left out and why."""
    import pandas as pd

    pairs = twin_pairs(study)
    reinit = [n for n in study.band_models() if study.category(n) == "REINIT"]
    ind = _indicators(study, sorted({n for p in pairs for n in p} | set(reinit)))
    rows = []
    for d, f in pairs:
        rows.append(
            {
                "dataset_model": d,
                "twin": f,
                "data": study.store.meta(d).get("data", ""),
                "ei_dataset": ind[d][0].mean(),
                "ei_twin": ind[f][0].mean(),
                "ens_dataset": ind[d][1].mean(),
                "ens_twin": ind[f][1].mean(),
            }
        )
    cols = ["dataset_model", "twin", "data", "ei_dataset", "ei_twin", "ens_dataset", "ens_twin"]
    pt = pd.DataFrame(rows, columns=cols)
    pt["ei_difference"] = pt["ei_dataset"] - pt["ei_twin"]
    pt["ens_difference"] = pt["ens_dataset"] - pt["ens_twin"]
    rt = pd.DataFrame({"name": reinit, "ei": [ind[n][0].mean() for n in reinit]}, columns=["name", "ei"])
    paired = {d for d, _ in pairs}
    t = study.table
    excluded = [
        (str(n), _why_left_out(study, str(n), bool(b)))
        for n, b in zip(t["name"], t["in_band"], strict=True)
        if study.category(str(n)) == "DATASET" and str(n) not in paired
    ]
    return {
        "pairs": pt,
        "reinit": rt,
        "excluded": pd.DataFrame(excluded, columns=["name", "reason"]),
        "_indicators": ind,
    }


def _why_left_out(study, name: str, in_band: bool) -> str:
    """Why Dataset model ``name`` is in no twin pair."""
    twin = study.store.meta(name).get("twin")
    if not in_band:
        return "out of the band"
    if not twin:
        return "records no Framework twin"
    if twin not in set(study.table["name"]):
        return f"its twin {twin} is not in the study"
    return f"its twin {twin} is out of the band"


def data_effect(study, *, n_boot: int = 1000, seed: int = 0, chapter_tables=None) -> ClaimResult:
    """The data effect: mean over twin pairs of the Dataset model's error inconsistency with the base
    minus its Framework twin's, on the evaluation split, with the ensemble-accuracy difference and the
    share of the Dataset-minus-Reinit gap that is data.

    The pairs are chosen on the selection split (both members in the band, :func:`twin_pairs`). The
    interval is a hierarchical bootstrap (:func:`norep.measures.stats.hierarchical_bootstrap_ci`): twin
    pairs, and the in-band Reinit models for the share, then test examples. *Reproduced* (the data adds
    error inconsistency: the Dataset models disagree with the base more than their twins) when the
    interval lies above 0, *not reproduced* when below (the twins disagree more), else *inconclusive*;
    *not testable* with fewer than :data:`MIN_PAIRS` pairs. The share (gap of the pairs' Dataset models
    over the Reinit mean, the part of it that is data) needs :data:`MIN_REINIT` Reinit models besides
    the base, else it is reported as not available.
    """
    t = chapter_tables or tables(study)
    pt, rt, ind = t["pairs"], t["reinit"], t["_indicators"]
    n = len(pt)
    if n < MIN_PAIRS:
        return not_testable(
            RESULT_ID,
            TITLE,
            f"{n} twin pair(s) (a Dataset model and its Framework twin, both in the band "
            f"{_band(study)} on the selection split); at least {MIN_PAIRS} are needed to treat pairs as units",
            paper=PAPER,
            n_models=2 * n,
            n_pairs=n,
            kind=KIND,
            choices={"pairs": list(zip(pt["dataset_model"], pt["twin"], strict=True))},
        )
    names_d, names_f, names_r = list(pt["dataset_model"]), list(pt["twin"]), list(rt["name"])
    ei_d = np.stack([ind[m][0] for m in names_d])
    ei_f = np.stack([ind[m][0] for m in names_f])
    en_d = np.stack([ind[m][1] for m in names_d])
    en_f = np.stack([ind[m][1] for m in names_f])
    ei_r = np.stack([ind[m][0] for m in names_r]) if names_r else np.zeros((0, ei_d.shape[1]))
    with_share = len(names_r) >= MIN_REINIT

    def mean_rows(x, w):
        return x @ w / w.sum()

    def ei_diff(members, w):
        return float(mean_rows(ei_d - ei_f, w)[members[0]].mean())

    def ens_diff(members, w):
        return float(mean_rows(en_d - en_f, w)[members[0]].mean())

    def share(members, w):
        gap = mean_rows(ei_d, w)[members[0]].mean() - mean_rows(ei_r, w)[members[1]].mean()
        return float(mean_rows(ei_d - ei_f, w)[members[0]].mean() / gap) if gap > 0 else float("nan")

    groups = [np.arange(n)] + ([np.arange(len(names_r))] if with_share else [])
    y_n = ei_d.shape[1]
    ci = hierarchical_bootstrap_ci(ei_diff, groups[:1], y_n, n_resamples=n_boot, seed=seed)
    ci_ens = hierarchical_bootstrap_ci(ens_diff, groups[:1], y_n, n_resamples=n_boot, seed=seed)
    effect = float(pt["ei_difference"].mean())  # the table's numbers (== ci.estimate)
    ens = float(pt["ens_difference"].mean())
    gap = float(pt["ei_dataset"].mean() - rt["ei"].mean()) if with_share else float("nan")
    sh = hierarchical_bootstrap_ci(share, groups, y_n, n_resamples=n_boot, seed=seed) if with_share else None
    s = sign(ci.low, ci.high)
    status = {1: "reproduced", -1: "not reproduced", 0: "inconclusive"}[s]
    reading = {
        1: "the data adds error inconsistency beyond the head and encoder",
        -1: "the twins trained on the training images disagree with the base more",
        0: "no data effect can be told apart from none at this scale",
    }[s]
    share_text = (
        f"of the Dataset-minus-Reinit gap of {gap:.3f}, the data accounts for "
        f"{fmt_interval(sh.estimate, sh.low, sh.high, digits=0, scale=100, unit=' %')}"
        if with_share
        else f"the share of the Dataset-minus-Reinit gap is not available (fewer than {MIN_REINIT} Reinit models "
        "besides the base in the band)"
    )
    sentence = (
        f"Beyond the paper. Over {n} twin pairs (both members in the band {_band(study)} on the selection split), "
        f"a Dataset model's error inconsistency with the base minus its Framework twin's is "
        f"{fmt_interval(effect, ci.low, ci.high)}: {reading}; the accuracy of its ensemble with the base "
        "minus its twin's is "
        f"{fmt_interval(ens, ci_ens.low, ci_ens.high, digits=1, scale=100, unit=' points')}; "
        f"{share_text}."
    )
    return ClaimResult(
        RESULT_ID,
        TITLE,
        status,
        effect,
        ci.low,
        ci.high,
        effect_name="mean over twin pairs of error inconsistency with the base, Dataset model minus its Framework twin",
        resampled="twin pairs (and Reinit models for the share), then test examples (hierarchical bootstrap)",
        n_models=len(set(names_d) | set(names_f)) + 1,
        n_pairs=n,
        sentence=sentence,
        paper=PAPER,
        kind=KIND,
        checks={
            "ensemble_accuracy_difference": fmt_interval(ens, ci_ens.low, ci_ens.high),
            "share_of_dataset_minus_reinit": fmt_interval(sh.estimate, sh.low, sh.high) if sh else "not available",
        },
        choices={"pairs": list(zip(names_d, names_f, strict=True)), "reinit": names_r},
        details={
            "ensemble_difference": (ens, ci_ens.low, ci_ens.high),
            "share": (sh.estimate, sh.low, sh.high) if sh else None,
            "dataset_minus_reinit": gap,
        },
    )


def _band(study) -> str:
    lo, hi = selection_band(study)
    return f"{lo:.3f}-{hi:.3f}"


def report_data_effect(result: ClaimResult) -> None:
    """Show the data effect's verdict as Markdown (like :func:`norep.paper.report_claim`, but not tagged
    for the paper's claims page: it is not one of the paper's claims)."""
    from IPython.display import Markdown, display

    lead = {
        "reproduced": "This run **finds a data effect**: the interval lies above 0.",
        "not reproduced": "This run finds the **opposite** of a data effect: the interval lies below 0.",
        "inconclusive": "This run is **inconclusive**: the interval includes no effect.",
        "not testable": "This store **cannot test** the data effect.",
    }[result.status]
    rests = f"{result.n_models} models, {result.n_pairs} twin pairs"
    if result.status != "not testable":
        rests += f"; resampled: {result.resampled}"
    text = (
        f"**{result.claim}, {KIND}.** {lead}\n\n- Paper: {result.paper}\n- This run: {result.sentence}\n"
        f"- Rests on: {rests}\n"
    )
    display(Markdown(text))


__all__ = ["RESULT_ID", "KIND", "MIN_PAIRS", "MIN_REINIT", "twin_pairs", "tables", "data_effect", "report_data_effect"]
