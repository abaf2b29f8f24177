"""Chapter 01, error correlation (Sec. 4.1, Figs. 1 and 8): the outcomes of every in-band model paired with
the base, the all-pairs matrices, and claim C1."""

from __future__ import annotations

import numpy as np

from norep import CATEGORIES
from norep.claims._core import (
    MODELS_AND_EXAMPLES,
    ClaimResult,
    band_partners,
    cat_label,
    count_models,
    fmt_interval,
    lead,
    pair_data,
    require_ends,
    sign,
)
from norep.measures.stats import hierarchical_bootstrap_ci
from norep.paper._registry import claim, registered

CHAPTER = "01_error_correlation"

MEASURES = ("error_inconsistency", "both_correct", "both_wrong", "kappa")
"""The pair measures whose category means the chapter shows."""


def tables(study, *, all_pairs: bool = False) -> dict:
    """The chapter's tables, every number from :mod:`norep.measures.metrics`.

    ``pairs``: one row per in-band partner of the base (band on the selection split): its category,
    the four joint outcomes, error inconsistency, Cohen's kappa and the dominance probability.
    ``means``: the category means of :data:`MEASURES` (categories in the paper's order).
    With ``all_pairs``: ``names`` (base first), ``categories``, and the all-pairs matrices
    ``error_inconsistency_matrix`` and ``kappa_matrix``.
    """
    import pandas as pd

    from norep.measures import metrics

    st, base, y = study.store, study.base, study.labels()
    partners = band_partners(study)
    pred_base = st.predictions(base, study.split)
    rows = []
    for name in partners:
        pred = st.predictions(name, study.split)
        rows.append(
            {
                "name": name,
                "category": study.category(name),
                **metrics.pair_outcomes(y, pred_base, pred),
                "error_inconsistency": metrics.error_inconsistency(y, pred_base, pred),
                "kappa": metrics.error_consistency_kappa(y, pred_base, pred),
                "dominance": metrics.dominance_probability(y, pred_base, pred),
            }
        )
    cols = ["name", "category", "both_correct", "only_a", "only_b", "both_wrong", *MEASURES[:1], "kappa", "dominance"]
    pairs = pd.DataFrame(rows, columns=cols)
    out = {"pairs": pairs, "means": category_means(pairs, MEASURES)}
    if all_pairs:
        names = [base, *partners]
        P = study.predictions(names)
        out.update(
            names=names,
            categories=[study.category(n) for n in names],
            error_inconsistency_matrix=metrics.pairwise_error_inconsistency(y, P),
            kappa_matrix=metrics.pairwise_error_consistency_kappa(y, P),
        )
    return out


def category_means(table, columns):
    """The mean of ``columns`` per category of ``table``, categories in the paper's order."""
    cats = [c for c in CATEGORIES if c in set(table["category"])]
    return table.groupby("category")[list(columns)].mean().reindex(cats)


def end_gap(table, column: str) -> float:
    """The mean of ``column`` over the Dataset rows of ``table`` minus that over its Reinit rows."""
    m = table.groupby("category")[column].mean()
    return float(m["DATASET"] - m["REINIT"])


@claim(
    "C1",
    chapter=CHAPTER,
    title="error inconsistency grows with methodology divergence",
    paper="error inconsistency with ResNet-50: Reinit 0.085, Dataset 0.125-0.230; both-correct and both-wrong shrink",
)
def c1_error_inconsistency(study, *, n_boot: int = 1000, seed: int = 0, chapter_tables=None) -> ClaimResult:
    """C1 (Sec. 4.1, Figs. 1 and 8): error inconsistency with the base grows as methodology diverges.

    Read from the chapter's ``pairs`` table (``chapter_tables``, default :func:`tables`): the effect
    is the mean error inconsistency with the base of the Dataset partners minus that of the Reinit
    partners on the evaluation split; its interval is a hierarchical bootstrap (models within
    categories, then test examples). The claim's other parts, from the same table: the category means
    are ordered along Reinit < Hyper-parameters < Architecture < Framework < Dataset, and the
    both-correct and both-wrong shares fall from Reinit to Dataset.

    Verdict: *reproduced* when the interval lies above 0 and the other parts hold; *partly
    reproduced* when the interval lies above 0 but the order in between or the both-correct /
    both-wrong shares do not follow; *not reproduced* when it lies below 0; *inconclusive*
    otherwise (an interval touching 0 included). *Not testable* with fewer than
    :data:`norep.claims.MIN_MODELS_PER_END` in-band Reinit or Dataset models.
    """
    title, paper = registered("C1")
    t = chapter_tables or tables(study)
    pairs = t["pairs"]
    partners = pairs["name"].tolist()
    groups, bad = require_ends(study, partners, "C1", title, paper)
    if bad:
        return bad
    ci = _c1_interval(study, partners, groups, n_boot=n_boot, seed=seed)
    effect, bc_gap, bw_gap = (end_gap(pairs, c) for c in ("error_inconsistency", "both_correct", "both_wrong"))
    means = t["means"]["error_inconsistency"].to_dict()
    cats = list(means)
    monotone = bool(np.all(np.diff([means[c] for c in cats]) >= 0))
    bc_falls, bw_falls = bool(bc_gap < 0), bool(bw_gap < 0)
    s = sign(ci.low[0], ci.high[0])
    if s > 0:
        status = "reproduced" if (monotone and bc_falls and bw_falls) else "partly reproduced"
    else:
        status = "not reproduced" if s < 0 else "inconclusive"
    order = " < ".join(cat_label(c) for c in cats)
    sentence = (
        f"{lead(status)}: mean error inconsistency with the base, Dataset minus Reinit = "
        f"{fmt_interval(effect, ci.low[0], ci.high[0])}; category means "
        + ", ".join(f"{cat_label(c)} {means[c]:.3f}" for c in cats)
        + f" ({'ordered' if monotone else 'not ordered'} as {order}); both-correct "
        f"{'falls' if bc_falls else 'does not fall'} ({bc_gap:+.3f}), both-wrong "
        f"{'falls' if bw_falls else 'does not fall'} ({bw_gap:+.3f}) from Reinit to Dataset."
    )
    return ClaimResult(
        "C1",
        title,
        status,
        effect,
        float(ci.low[0]),
        float(ci.high[0]),
        effect_name="mean error inconsistency with the base, Dataset minus Reinit",
        resampled=MODELS_AND_EXAMPLES,
        n_models=count_models(study, partners),
        n_pairs=len(partners),
        sentence=sentence,
        paper=paper,
        checks={
            "ends": f"interval {'above' if s > 0 else 'below' if s < 0 else 'includes'} 0",
            "ordered": monotone,
            "both_correct_falls": bc_falls,
            "both_wrong_falls": bw_falls,
        },
        choices={"partners": partners},
        details={"category_means": means, "both_correct_gap": bc_gap, "both_wrong_gap": bw_gap},
    )


def _c1_interval(study, partners, groups, *, n_boot: int, seed: int):
    """C1's interval: the Dataset-minus-Reinit gaps of error inconsistency, both-correct and both-wrong
    (models within categories, then test examples)."""
    d = pair_data(study, partners, study.split)
    incons = d.correct != d.base_correct[None]
    both_c = d.correct & d.base_correct[None]
    both_w = ~d.correct & ~d.base_correct[None]
    cats = list(groups)
    i_lo, i_hi = cats.index("REINIT"), cats.index("DATASET")

    def stat(members, w):
        ei, bc, bw = (d.weighted(a, w) for a in (incons, both_c, both_w))
        return [
            ei[members[i_hi]].mean() - ei[members[i_lo]].mean(),
            bc[members[i_hi]].mean() - bc[members[i_lo]].mean(),
            bw[members[i_hi]].mean() - bw[members[i_lo]].mean(),
        ]

    return hierarchical_bootstrap_ci(stat, [groups[c] for c in cats], d.y.shape[0], n_resamples=n_boot, seed=seed)


__all__ = ["CHAPTER", "MEASURES", "tables", "category_means", "end_gap", "c1_error_inconsistency"]
