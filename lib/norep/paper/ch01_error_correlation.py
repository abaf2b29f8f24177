"""Chapter 01, error correlation (Sec. 4.1, Figs. 1 and 8): the outcomes of every in-band model paired with
the base, the all-pairs matrices, and claim C1."""

from __future__ import annotations

import numpy as np

from norep import CATEGORIES
from norep.claims._core import (
    MIN_MODELS_PER_END,
    MODELS_AND_EXAMPLES,
    ClaimResult,
    accuracy_adjusted_means,
    band_partners,
    cat_label,
    count_models,
    fmt_interval,
    lead,
    pair_data,
    require_ends,
    side,
    sign,
    two_part_status,
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


def adjusted_end_gap(table, column: str, accuracy: str = "accuracy", cats=("REINIT", "DATASET")) -> float:
    """:func:`end_gap` at a common partner accuracy: the Dataset-minus-Reinit gap of ``column`` after
    moving each category's mean along the slope of ``column`` on ``accuracy`` pooled within the
    categories ``cats`` (:func:`norep.claims._core.accuracy_adjusted_means`; nan when no category's
    accuracies vary)."""
    from norep.claims._core import accuracy_adjusted_means

    cats, cat_of = list(cats), table["category"].to_numpy()
    members = [np.flatnonzero(cat_of == c) for c in cats]
    m = accuracy_adjusted_means(table[column].to_numpy(float), table[accuracy].to_numpy(float), members)
    return float(m[cats.index("DATASET")] - m[cats.index("REINIT")])


FAMILY_LEVEL = 0.05
"""C1: each of the two parts that decide the claim (Dataset minus Reinit, and the trend over the ordered
categories) is a 95 % interval, one-sided 2.5 % in the claim's direction. The order is one trend test,
not one test per adjacent pair. *Reproduced* needs both parts (an intersection-union test: at most 2.5 %
one-sided under a null); *partly reproduced* needs either (at most 5 % under a null of both, Bonferroni)."""


@claim(
    "C1",
    chapter=CHAPTER,
    title="error inconsistency grows with methodology divergence",
    paper="error inconsistency with ResNet-50: Reinit 0.085, Dataset 0.125-0.230; both-correct and both-wrong shrink",
)
def c1_error_inconsistency(study, *, n_boot: int = 1000, seed: int = 0, chapter_tables=None) -> ClaimResult:
    """C1 (Sec. 4.1, Figs. 1 and 8): error inconsistency with the base grows as methodology diverges.

    Verdict rule (fixed before any data are read). Two parts, both on the evaluation split over the
    in-band partners of the base (band on the selection split), each with a 95 % two-level interval
    (models within categories, then test examples, widened for few models:
    :func:`norep.measures.stats.hierarchical_bootstrap_ci` with ``small_sample=True``):

    * *ends*: mean error inconsistency of the Dataset partners minus that of the Reinit partners
      (the effect), at a common partner accuracy (each category's mean moved along the slope of error
      inconsistency on partner accuracy pooled within the categories compared:
      :func:`norep.claims._core.accuracy_adjusted_means`), so partners that merely sit lower in the band
      than others make no effect;
    * *order*: one trend test over the ordered categories Reinit < Hyper-parameters < Architecture <
      Framework < Dataset: the least-squares slope of the (accuracy-adjusted) category means of error
      inconsistency on the category's rank (a linear contrast; categories with fewer than
      :data:`norep.claims.MIN_MODELS_PER_END` in-band models are left out of it and named).

    *Reproduced* when both intervals lie above 0; *partly reproduced* when one does and the other is
    undecided or below 0 while the ends are not; *not reproduced* when the ends' interval lies below 0
    (or it is undecided and the trend's lies below 0); else *inconclusive*. The both-correct and
    both-wrong shares are reported as *implied* parts: with equal accuracies they follow from error
    inconsistency (both-correct = accuracy - EI / 2), so they do not vote. *Not testable* with fewer than
    :data:`norep.claims.MIN_MODELS_PER_END` in-band Reinit or Dataset models.

    The estimates are read from the chapter's ``pairs`` table (``chapter_tables``, default :func:`tables`).
    """
    title, paper = registered("C1")
    t = chapter_tables or tables(study)
    pairs = t["pairs"]
    partners = pairs["name"].tolist()
    groups, bad = require_ends(study, partners, "C1", title, paper)
    if bad:
        return bad
    used = {c: g for c, g in groups.items() if len(g) >= MIN_MODELS_PER_END}
    left_out = [c for c in groups if c not in used]
    ci = _c1_interval(study, partners, used, n_boot=n_boot, seed=seed)
    bc_gap, bw_gap = (end_gap(pairs, c) for c in ("both_correct", "both_wrong"))
    with_acc = pairs.assign(accuracy=pairs["both_correct"] + pairs["only_b"])
    effect = adjusted_end_gap(with_acc, "error_inconsistency", cats=list(used))
    means = t["means"]["error_inconsistency"].to_dict()
    trend = float(ci.estimate[1])
    s_end, s_trend = sign(ci.low[0], ci.high[0]), sign(ci.low[1], ci.high[1])
    status = two_part_status(s_end, s_trend)
    order = " < ".join(cat_label(c) for c in used)
    sentence = (
        f"{lead(status)}: mean error inconsistency with the base, Dataset minus Reinit at a common partner accuracy = "
        f"{fmt_interval(effect, ci.low[0], ci.high[0])}; trend over the ordered categories ({order}), "
        f"per category step = {fmt_interval(trend, ci.low[1], ci.high[1], digits=4)}"
        + (f" ({', '.join(cat_label(c) for c in left_out)} left out: too few models)" if left_out else "")
        + "; category means "
        + ", ".join(f"{cat_label(c)} {means[c]:.3f}" for c in means)
        + f". Implied by error inconsistency and the accuracies: both-correct {bc_gap:+.3f}, both-wrong "
        f"{bw_gap:+.3f} from Reinit to Dataset."
    )
    return ClaimResult(
        "C1",
        title,
        status,
        effect,
        float(ci.low[0]),
        float(ci.high[0]),
        effect_name="mean error inconsistency with the base, Dataset minus Reinit at a common partner accuracy",
        resampled=MODELS_AND_EXAMPLES,
        n_models=count_models(study, partners),
        n_pairs=len(partners),
        sentence=sentence,
        paper=paper,
        checks={
            "ends": f"interval {side(ci.low[0], ci.high[0])}",
            "trend": f"interval {side(ci.low[1], ci.high[1])}",
            "ordered": s_trend > 0,
            "both_correct_falls (implied)": bool(bc_gap < 0),
            "both_wrong_falls (implied)": bool(bw_gap < 0),
        },
        choices={"partners": partners},
        details={
            "category_means": means,
            "trend": (trend, float(ci.low[1]), float(ci.high[1])),
            "trend_categories": list(used),
            "both_correct_gap": (bc_gap, float(ci.low[2]), float(ci.high[2])),
            "both_wrong_gap": (bw_gap, float(ci.low[3]), float(ci.high[3])),
        },
    )


def trend_weights(cats) -> np.ndarray:
    """Weights of the linear contrast over ``cats`` (a subset of the paper's order): the least-squares slope
    of the category means on their rank in :data:`norep.CATEGORIES` is ``weights @ means``.

    Examples
    --------
    >>> trend_weights(["REINIT", "ARCH", "DATASET"]).round(3).tolist()
    [-0.25, 0.0, 0.25]
    """
    r = np.array([CATEGORIES.index(c) for c in cats], dtype=np.float64)
    c = r - r.mean()
    return c / (c @ c)


def _c1_interval(study, partners, groups, *, n_boot: int, seed: int):
    """C1's intervals: the Dataset-minus-Reinit gap of error inconsistency and the trend over the categories
    of ``groups`` (both at a common partner accuracy), and the gaps of both-correct and both-wrong (models
    within categories, then test examples, widened for few models)."""
    d = pair_data(study, partners, study.split)
    incons = d.correct != d.base_correct[None]
    both_c = d.correct & d.base_correct[None]
    both_w = ~d.correct & ~d.base_correct[None]
    cats = list(groups)
    i_lo, i_hi = cats.index("REINIT"), cats.index("DATASET")
    wts = trend_weights(cats)

    def stat(members, w):
        ei, bc, bw = (d.weighted(a, w) for a in (incons, both_c, both_w))
        adj = accuracy_adjusted_means(ei, d.weighted(d.correct, w), members)
        return [
            adj[i_hi] - adj[i_lo],
            float(wts @ adj),
            bc[members[i_hi]].mean() - bc[members[i_lo]].mean(),
            bw[members[i_hi]].mean() - bw[members[i_lo]].mean(),
        ]

    return hierarchical_bootstrap_ci(
        stat, [groups[c] for c in cats], d.y.shape[0], n_resamples=n_boot, seed=seed, small_sample=True
    )


__all__ = [
    "CHAPTER",
    "FAMILY_LEVEL",
    "MEASURES",
    "tables",
    "category_means",
    "end_gap",
    "trend_weights",
    "c1_error_inconsistency",
]
