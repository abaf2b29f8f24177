"""Chapter 02, ensembles (Sec. 4.2, Fig. 2): every in-band model ensembled with the base, the line of gain on
error inconsistency, the all-pairs scatter, and claims C2 (ensemble gain) and C3 (conversion rate)."""

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
    not_testable,
    pair_data,
    require_ends,
    sign,
    two_part_status,
)
from norep.measures.stats import bootstrap_ci, hierarchical_bootstrap_ci
from norep.paper._registry import claim, registered
from norep.paper.ch01_error_correlation import category_means, end_gap

CHAPTER = "02_ensembles"

MIN_PAIRS_C2 = 5
"""C2: pairs with the base (in-band partners) needed to fit a line of gain on error inconsistency."""


def tables(study, *, all_pairs: bool = False) -> dict:
    """The chapter's tables, every number from :mod:`norep.measures.metrics` and :mod:`norep.measures.ensembles`.

    ``pairs``: one row per in-band partner of the base (band on the selection split): accuracy,
    ensemble accuracy, ensemble gain, error inconsistency and conversion rate on the evaluation split,
    and accuracy and ensemble accuracy on the selection split (``sel_accuracy``,
    ``sel_ensemble_accuracy``). ``fit``: the least-squares line of ``gain`` on ``error_inconsistency``
    over those rows (``slope``, ``intercept``, ``r``); ``means``: category means of the gain, the
    ensemble accuracy and the conversion rate; ``best``: the partner whose ensemble with the base is
    the most accurate on the selection split, its ensemble's test accuracy minus the test accuracy of
    the member better on the selection split (``absolute_gain``). ``base_accuracy`` (evaluation split).
    With ``all_pairs``: ``allpairs``, one row per pair of in-band models (base included) with the pair's
    error inconsistency and ensemble gain (:mod:`norep.allpairs`), and its line ``allpairs_fit``.
    """
    import pandas as pd

    from norep.measures import ensembles, metrics

    y, ys, base = study.labels(), study.labels(study.calib_split), study.base
    pb, pbs = study.probs(base), study.probs(base, study.calib_split)
    pred_base = study.store.predictions(base, study.split)
    rows = []
    for name in band_partners(study):
        pm, pred = study.probs(name), study.store.predictions(name, study.split)
        pms = study.probs(name, study.calib_split)
        rows.append(
            {
                "name": name,
                "category": study.category(name),
                "accuracy": metrics.accuracy_score(y, pred),
                "ensemble_accuracy": ensembles.ensemble_accuracy(y, [pb, pm]),
                "gain": ensembles.ensemble_gain(y, pb, pm),
                "error_inconsistency": metrics.error_inconsistency(y, pred_base, pred),
                "conversion_rate": ensembles.conversion_rate(y, pb, pm),
                "sel_accuracy": metrics.accuracy_score(ys, pms.argmax(1)),
                "sel_ensemble_accuracy": ensembles.ensemble_accuracy(ys, [pbs, pms]),
            }
        )
    pairs = pd.DataFrame(rows, columns=list(rows[0]) if rows else ["name", "category"])
    out = {
        "pairs": pairs,
        "base_accuracy": metrics.accuracy_score(y, pred_base),
        "fit": line_fit(pairs, "error_inconsistency", "gain"),
        "means": category_means(pairs, ["gain", "ensemble_accuracy", "conversion_rate"]) if rows else None,
        "best": _best_pair(study, pairs) if rows else None,
    }
    if all_pairs:
        out.update(_all_pairs(study, [base, *pairs["name"]]))
    return out


def line_fit(table, x: str, y: str) -> dict:
    """The least-squares line of ``y`` on ``x`` over the rows of ``table``: ``slope``, ``intercept`` and
    the correlation ``r`` (nan where ``x`` or ``y`` is constant or fewer than two rows)."""
    if len(table) < 2 or np.ptp(table[x].to_numpy(float)) == 0:
        return {"slope": float("nan"), "intercept": float("nan"), "r": float("nan")}
    xs, ys = table[x].to_numpy(float), table[y].to_numpy(float)
    slope, intercept = np.polyfit(xs, ys, 1)
    r = float(np.corrcoef(xs, ys)[0, 1]) if np.ptp(ys) > 0 else float("nan")
    return {"slope": float(slope), "intercept": float(intercept), "r": r}


def _best_pair(study, pairs) -> dict:
    """C2's second part, chosen on the selection split: the partner with the most accurate ensemble, and the
    test accuracy of its ensemble minus the test accuracy of the member better on the selection split."""
    from norep.measures.metrics import accuracy_score

    row = pairs.loc[int(np.argmax(pairs["sel_ensemble_accuracy"].to_numpy()))]
    base_sel = accuracy_score(study.labels(study.calib_split), study.probs(study.base, study.calib_split).argmax(1))
    partner_better = bool(row["sel_accuracy"] > base_sel)
    base_test = accuracy_score(study.labels(), study.store.predictions(study.base, study.split))
    member = float(row["accuracy"]) if partner_better else base_test
    return {
        "partner": str(row["name"]),
        "category": str(row["category"]),
        "better_member": str(row["name"]) if partner_better else study.base,
        "ensemble_accuracy": float(row["ensemble_accuracy"]),
        "absolute_gain": float(row["ensemble_accuracy"]) - member,
    }


def _all_pairs(study, names) -> dict:
    """Every pair of ``names``: its error inconsistency and ensemble gain (from :mod:`norep.allpairs`)."""
    import pandas as pd

    from norep.allpairs import store_pairwise_analysis

    res = store_pairwise_analysis(study.store, split=study.split, names=names, theta=False)
    iu = np.triu_indices(len(names), k=1)
    cats = [study.category(n) for n in names]
    table = pd.DataFrame(
        {
            "name": [f"{names[i]} + {names[j]}" for i, j in zip(*iu, strict=True)],
            "category": [max(cats[i], cats[j], key=CATEGORIES.index) for i, j in zip(*iu, strict=True)],
            "error_inconsistency": res.error_inconsistency[iu],
            "gain": res.ensemble_gain[iu],
        }
    )
    return {"allpairs": table, "allpairs_fit": line_fit(table, "error_inconsistency", "gain")}


@claim(
    "C2",
    chapter=CHAPTER,
    title="ensemble gain grows with error inconsistency; an absolute gain in the band",
    paper="gain grows linearly with error inconsistency; ResNet-50 76.5 % + ALIGN-ZS 75.5 % = 83.4 % (+~7 points)",
)
def c2_ensemble_gain(study, *, n_boot: int = 1000, seed: int = 0, chapter_tables=None) -> ClaimResult:
    """C2 (Sec. 4.2, Fig. 2 left/center): the ensemble gain grows linearly with error inconsistency,
    and with members in a narrow band it is an absolute gain.

    Two parts, read from the chapter's tables (``chapter_tables``, default :func:`tables`), for the
    base paired with each in-band partner (band membership on the selection split):

    * *linear growth*: the slope of the line drawn in the chapter's figure (``fit``: least squares of
      the gain over the members' mean accuracy on error inconsistency, across pairs); its interval
      resamples pairs, then test examples. Since gain ~= error inconsistency x (conversion rate - 1/2),
      a positive slope follows from any conversion rate above one half; it is reported, but cannot
      decide the claim alone;
    * *absolute gain* (``best``): the partner whose ensemble with the base is the most accurate on the
      *selection* split; on test, its ensemble accuracy minus the accuracy of the member that is
      better on the selection split (bootstrap over test examples). This part can fail.

    Verdict: *reproduced* when both intervals lie above 0; *partly reproduced* when one does;
    *not reproduced* when the slope's (or, with an undecided slope, the absolute gain's) interval
    lies below 0; else *inconclusive*. *Not testable* with fewer than :data:`MIN_PAIRS_C2` pairs.
    """
    title, paper = registered("C2")
    t = chapter_tables or tables(study)
    pairs = t["pairs"]
    partners = pairs["name"].tolist()
    if len(partners) < MIN_PAIRS_C2:
        return not_testable(
            "C2",
            title,
            f"{len(partners)} in-band pair(s) with the base; at least {MIN_PAIRS_C2} are needed to fit a line",
            paper=paper,
            n_models=count_models(study, partners),
            n_pairs=len(partners),
        )
    fit, best = t["fit"], t["best"]
    d = pair_data(study, partners, study.split)
    slope = _gain_slope_ci(d, n_boot=n_boot, seed=seed)
    abs_ci = _absolute_gain_ci(d, partners.index(best["partner"]), best["better_member"] != study.base, n_boot, seed)
    conv = float(np.nanmean(pairs["conversion_rate"]))
    s1, s2 = sign(slope.low, slope.high), sign(abs_ci.low, abs_ci.high)
    status = two_part_status(s1, s2)
    gain = best["absolute_gain"]
    sentence = (
        f"{lead(status)}: slope of the ensemble gain on error inconsistency "
        f"{fmt_interval(fit['slope'], slope.low, slope.high, digits=2)} over {len(partners)} pairs "
        f"(r = {fit['r']:.2f}; mean conversion rate {conv:.3f}: a slope near conversion - 1/2 "
        f"follows from the definitions); best partner chosen on the selection split, {best['partner']} "
        f"({cat_label(best['category'])}): its ensemble with the base beats the better member "
        f"(on the selection split) by "
        f"{fmt_interval(gain, abs_ci.low, abs_ci.high, digits=1, scale=100, unit=' points')} on test."
    )
    return ClaimResult(
        "C2",
        title,
        status,
        fit["slope"],
        float(slope.low),
        float(slope.high),
        effect_name="slope of ensemble gain on error inconsistency across pairs with the base",
        resampled="pairs with the base, then test examples (slope); test examples (absolute gain of the pair "
        "chosen on the selection split)",
        n_models=count_models(study, partners),
        n_pairs=len(partners),
        sentence=sentence,
        paper=paper,
        checks={
            "slope": f"interval {'above' if s1 > 0 else 'below' if s1 < 0 else 'includes'} 0",
            "absolute_gain": fmt_interval(gain, abs_ci.low, abs_ci.high),
        },
        choices={"partners": partners, "best_partner": best["partner"]},
        details={
            "absolute_gain": (gain, float(abs_ci.low), float(abs_ci.high)),
            "r": fit["r"],
            "best_partner": best["partner"],
            "slope_mean_conversion": conv - 0.5,
        },
    )


def _gain_slope_ci(d, *, n_boot: int, seed: int):
    """C2's first part: the interval of the slope of the ensemble gain over the members' mean accuracy on
    error inconsistency, across the pairs of ``d`` (bootstrap: pairs, then test examples)."""
    incons = d.correct != d.base_correct[None]

    def fit(members, w):
        m = members[0]
        ei = d.weighted(incons, w)[m]
        acc = d.weighted(d.correct, w)[m]
        base = float(d.base_correct @ w / w.sum())
        gain = d.weighted(d.ensemble_correct, w)[m] - (acc + base) / 2
        if np.ptp(ei) == 0:
            return np.nan
        return float(np.polyfit(ei, gain, 1)[0])

    return hierarchical_bootstrap_ci(fit, [np.arange(d.correct.shape[0])], d.y.shape[0], n_resamples=n_boot, seed=seed)


def _absolute_gain_ci(d, j: int, partner_better: bool, n_boot: int, seed: int):
    """C2's second part: the interval of pair ``j``'s ensemble test accuracy minus the test accuracy of its
    member better on the selection split (bootstrap over test examples)."""
    member_ok = d.correct[j] if partner_better else d.base_correct

    def absolute(e, m):
        return float(e.mean() - m.mean())

    return bootstrap_ci(absolute, d.ensemble_correct[j], member_ok, n_resamples=n_boot, seed=seed)


@claim(
    "C3",
    chapter=CHAPTER,
    title="conversion rate grows with methodology divergence",
    paper="conversion rate grows as methodology diverges (Fig. 2 right; no number given)",
)
def c3_conversion_rate(study, *, n_boot: int = 1000, seed: int = 0, chapter_tables=None) -> ClaimResult:
    """C3 (Sec. 4.2, Fig. 2 right): the conversion rate grows as methodology diverges.

    The conversion rate of a pair is the share of the examples with exactly one correct member
    that the ensemble gets right. Read from the chapter's ``pairs`` table: the effect is the mean
    conversion rate of the Dataset partners minus that of the Reinit partners (in-band on the
    selection split), on the evaluation split; its interval is a hierarchical bootstrap (models
    within categories, then test examples).

    Verdict: *reproduced* / *not reproduced* when the interval lies above / below 0, else
    *inconclusive*; *not testable* with fewer than :data:`norep.claims.MIN_MODELS_PER_END` in-band
    Reinit or Dataset models.
    """
    title, paper = registered("C3")
    t = chapter_tables or tables(study)
    pairs = t["pairs"]
    partners = pairs["name"].tolist()
    groups, bad = require_ends(study, partners, "C3", title, paper)
    if bad:
        return bad
    ci = _conversion_gap_ci(study, partners, groups, n_boot=n_boot, seed=seed)
    effect = end_gap(pairs, "conversion_rate")
    means = t["means"]["conversion_rate"].to_dict()
    s = sign(ci.low, ci.high)
    status = {1: "reproduced", -1: "not reproduced", 0: "inconclusive"}[s]
    sentence = (
        f"{lead(status)}: mean conversion rate, Dataset minus Reinit = "
        f"{fmt_interval(effect, ci.low, ci.high)}; category means "
        + ", ".join(f"{cat_label(c)} {v:.3f}" for c, v in means.items())
        + "."
    )
    return ClaimResult(
        "C3",
        title,
        status,
        effect,
        ci.low,
        ci.high,
        effect_name="mean conversion rate, Dataset minus Reinit",
        resampled=MODELS_AND_EXAMPLES,
        n_models=count_models(study, partners),
        n_pairs=len(partners),
        sentence=sentence,
        paper=paper,
        choices={"partners": partners},
        details={"category_means": means},
    )


def _conversion_gap_ci(study, partners, groups, *, n_boot: int, seed: int):
    """C3's interval: the Dataset-minus-Reinit gap of the mean conversion rate (models within categories,
    then test examples)."""
    d = pair_data(study, partners, study.split)
    incons = d.correct != d.base_correct[None]
    conv_hit = d.ensemble_correct & incons
    cats = list(groups)
    i_lo, i_hi = cats.index("REINIT"), cats.index("DATASET")

    def stat(members, w):
        with np.errstate(invalid="ignore", divide="ignore"):
            conv = (conv_hit.astype(np.float64) @ w) / (incons.astype(np.float64) @ w)
        return float(np.mean(conv[members[i_hi]]) - np.mean(conv[members[i_lo]]))

    return hierarchical_bootstrap_ci(stat, [groups[c] for c in cats], d.y.shape[0], n_resamples=n_boot, seed=seed)


__all__ = ["CHAPTER", "MIN_PAIRS_C2", "tables", "line_fit", "c2_ensemble_gain", "c3_conversion_rate"]
