"""Chapter 02, ensembles (Sec. 4.2, Fig. 2): every in-band model ensembled with the base, the line of gain on
error inconsistency, the all-pairs scatter, and claims C2 (ensemble gain) and C3 (conversion rate)."""

from __future__ import annotations

import numpy as np

from norep import CATEGORIES
from norep.claims._core import (
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
from norep.measures.stats import bootstrap_ci, hierarchical_bootstrap_ci
from norep.paper._registry import claim, registered
from norep.paper.ch01_error_correlation import adjusted_end_gap, category_means, end_gap

CHAPTER = "02_ensembles"

MIN_PAIRS_C2 = 5
"""C2: pairs with the base needed to describe the line of gain on error inconsistency; C2's decision
needs more (:data:`norep.claims.MIN_MODELS_PER_END` Reinit and Dataset partners each)."""


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
    title="divergent partners make better ensembles; an absolute gain in the band",
    paper="gain grows linearly with error inconsistency; ResNet-50 76.5 % + ALIGN-ZS 75.5 % = 83.4 % (+~7 points)",
)
def c2_ensemble_gain(study, *, n_boot: int = 1000, seed: int = 0, chapter_tables=None) -> ClaimResult:
    """C2 (Sec. 4.2, Fig. 2 left/center): ensembles with more divergent partners are better, and with
    members in a narrow band the best one is an absolute gain.

    Verdict rule (fixed before any data are read). For the base paired with each in-band partner (band
    on the selection split), on the evaluation split:

    * *category contrast* (the effect): mean accuracy of the ensemble with the base, Dataset partners
      minus Reinit partners, at a common partner accuracy (each end's mean moved along the pooled
      within-category slope of ensemble accuracy on partner accuracy:
      :func:`norep.claims._core.accuracy_adjusted_means`); 95 % two-level interval (models within
      categories, then test examples, widened for few models). It compares absolute accuracies, so a
      zoo whose categories all behave alike has no effect here, and Dataset partners that merely sit
      higher in the band than Reinit partners do not make one;
    * *best pair*: the partner whose ensemble with the base is the most accurate on the *selection*
      split; the part holds when it is a Dataset partner and, on test, its ensemble beats the member
      better on the selection split (95 % interval over test examples above 0).

    *Reproduced* when the contrast's interval lies above 0 and the best pair holds; *partly reproduced*
    when the contrast's interval lies above 0 only; *not reproduced* when it lies below 0; else
    *inconclusive* (whatever the best pair: with no category effect, a Dataset partner is the best by
    chance in proportion to its share of the partners). *Not testable* with fewer than
    :data:`norep.claims.MIN_MODELS_PER_END` in-band Reinit or Dataset models.

    Description only: the slope of the gain (over the members' mean accuracy) on error inconsistency
    across pairs (the line of the chapter's figure, ``fit``; interval over pairs, then test examples),
    beside the identity gain ~= error inconsistency x (conversion rate - 1/2), by which any calibrated
    zoo has a positive slope, so the slope cannot decide the claim. Estimates are read from the
    chapter's tables (``chapter_tables``, default :func:`tables`).
    """
    title, paper = registered("C2")
    t = chapter_tables or tables(study)
    pairs = t["pairs"]
    partners = pairs["name"].tolist() if "name" in pairs else []
    groups, bad = require_ends(study, partners, "C2", title, paper)
    if bad:
        return bad
    fit, best = t["fit"], t["best"]
    d = pair_data(study, partners, study.split)
    ens = _ensemble_contrast_ci(d, groups, n_boot=n_boot, seed=seed)
    effect = adjusted_end_gap(pairs, "ensemble_accuracy")
    slope = _gain_slope_ci(d, n_boot=n_boot, seed=seed)
    abs_ci = _absolute_gain_ci(d, partners.index(best["partner"]), best["better_member"] != study.base, n_boot, seed)
    identity = float(np.mean(pairs["error_inconsistency"] * (pairs["conversion_rate"] - 0.5)))
    mean_gain = float(np.mean(pairs["gain"]))
    s_ens = sign(ens.low, ens.high)
    best_holds = best["category"] == "DATASET" and sign(abs_ci.low, abs_ci.high) > 0
    status = two_part_status(s_ens, 1 if best_holds else 0) if s_ens != 0 else "inconclusive"
    gain = best["absolute_gain"]
    sentence = (
        f"{lead(status)}: accuracy of the ensemble with the base, Dataset minus Reinit partners at a common "
        f"partner accuracy = "
        f"{fmt_interval(effect, ens.low, ens.high, digits=1, scale=100, unit=' points')}; best partner chosen "
        f"on the selection split, {best['partner']} ({cat_label(best['category'])}): its ensemble with the base "
        f"beats the better member (on the selection split) by "
        f"{fmt_interval(gain, abs_ci.low, abs_ci.high, digits=1, scale=100, unit=' points')} on test. "
        f"Described, not tested: slope of the gain on error inconsistency "
        f"{fmt_interval(fit['slope'], slope.low, slope.high, digits=2)} over {len(partners)} pairs "
        f"(r = {fit['r']:.2f}); mean gain {100 * mean_gain:.2f} points against mean error inconsistency x "
        f"(conversion rate - 1/2) {100 * identity:.2f} points, the identity by which the slope is positive "
        f"whenever conversion exceeds one half."
    )
    return ClaimResult(
        "C2",
        title,
        status,
        effect,
        float(ens.low),
        float(ens.high),
        effect_name="accuracy of the ensemble with the base, Dataset minus Reinit partners at a common partner "
        "accuracy",
        resampled=MODELS_AND_EXAMPLES + " (contrast); test examples (the best pair's absolute gain); "
        "pairs with the base, then test examples (the slope, described)",
        n_models=count_models(study, partners),
        n_pairs=len(partners),
        sentence=sentence,
        paper=paper,
        checks={
            "category_contrast": f"interval {side(ens.low, ens.high)}",
            "best_pair_dataset": best["category"] == "DATASET",
            "absolute_gain": fmt_interval(gain, abs_ci.low, abs_ci.high),
            "slope (described)": fmt_interval(fit["slope"], slope.low, slope.high),
        },
        choices={"partners": partners, "best_partner": best["partner"]},
        details={
            "absolute_gain": (gain, float(abs_ci.low), float(abs_ci.high)),
            "slope": (fit["slope"], float(slope.low), float(slope.high)),
            "r": fit["r"],
            "best_partner": best["partner"],
            "best_category": best["category"],
            "mean_gain": mean_gain,
            "identity_gain": identity,
            "slope_mean_conversion": float(np.nanmean(pairs["conversion_rate"])) - 0.5,
            "category_means": t["means"]["ensemble_accuracy"].to_dict(),
        },
    )


def _ensemble_contrast_ci(d, groups, *, n_boot: int, seed: int):
    """C2's decision: mean ensemble accuracy with the base, Dataset minus Reinit partners at a common partner
    accuracy (models within categories, then test examples, widened for few models)."""

    def stat(members, w):
        m = accuracy_adjusted_means(d.weighted(d.ensemble_correct, w), d.weighted(d.correct, w), members)
        return float(m[1] - m[0])

    return hierarchical_bootstrap_ci(
        stat, [groups["REINIT"], groups["DATASET"]], d.y.shape[0], n_resamples=n_boot, seed=seed, small_sample=True
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
    within categories, then test examples, widened for few models:
    :func:`norep.measures.stats.hierarchical_bootstrap_ci` with ``small_sample=True``).

    Verdict rule (fixed before any data are read): *reproduced* / *not reproduced* when the 95 %
    interval lies above / below 0, else *inconclusive*; *not testable* with fewer than
    :data:`norep.claims.MIN_MODELS_PER_END` in-band Reinit or Dataset models. A zoo whose partners all
    have informative confidence converts alike in every category and gets no decision.
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

    return hierarchical_bootstrap_ci(
        stat, [groups[c] for c in cats], d.y.shape[0], n_resamples=n_boot, seed=seed, small_sample=True
    )


__all__ = ["CHAPTER", "MIN_PAIRS_C2", "tables", "line_fit", "c2_ensemble_gain", "c3_conversion_rate"]
