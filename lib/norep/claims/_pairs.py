"""Claims on pairs with the base model: C1 (error inconsistency), C2 (ensemble gain), C3 (conversion
rate) and the method check C10 (temperature scaling)."""

from __future__ import annotations

import numpy as np

from norep import CATEGORIES
from norep.claims._core import (
    MODELS_AND_EXAMPLES,
    ClaimResult,
    band_partners,
    by_category,
    cat_label,
    count_models,
    fmt_band,
    fmt_interval,
    lead,
    not_testable,
    pair_data,
    selection_accuracy,
    selection_band,
    sign,
    two_part_status,
)
from norep.measures.stats import bootstrap_ci, hierarchical_bootstrap_ci

MIN_MODELS_PER_END = 2
"""C1, C3 (and C4): in-band models needed in each end category (Reinit and Dataset), so that models
can be resampled within categories."""

MIN_PAIRS_C2 = 5
"""C2: pairs with the base (in-band partners) needed to fit a line of gain on error inconsistency."""

MIN_MODELS_C10 = 2
"""C10: models with a temperature fitted on the selection split."""


def _ends(study, partners, claim, title, paper):
    """Category groups of the partners, or a not-testable result naming what is missing."""
    groups = by_category(study, partners)
    for end in ("REINIT", "DATASET"):
        if end not in groups:
            return None, not_testable(
                claim,
                title,
                f"no model of the {cat_label(end)} category lies in the "
                f"accuracy band {fmt_band(selection_band(study))} on the selection split",
                paper=paper,
                n_models=count_models(study, partners),
                n_pairs=len(partners),
            )
        if len(groups[end]) < MIN_MODELS_PER_END:
            return None, not_testable(
                claim,
                title,
                f"only {len(groups[end])} in-band {cat_label(end)} model(s); "
                f"at least {MIN_MODELS_PER_END} are needed to treat models as units",
                paper=paper,
                n_models=count_models(study, partners),
                n_pairs=len(partners),
            )
    return groups, None


def c1_error_inconsistency(study, *, n_boot: int = 1000, seed: int = 0) -> ClaimResult:
    """C1 (Sec. 4.1, Figs. 1 and 8): error inconsistency with the base grows as methodology diverges.

    Partners are the models whose *selection-split* accuracy lies in the band. The effect is the
    mean error inconsistency with the base of the Dataset models minus that of the Reinit models
    on the evaluation split, with a hierarchical bootstrap (models within categories, then test
    examples). The claim's other parts are checked too: the category means are ordered along
    Reinit < Hyper-parameters < Architecture < Framework < Dataset, and the both-correct and
    both-wrong shares fall from Reinit to Dataset.

    Verdict: *reproduced* when the interval lies above 0 and the other parts hold; *partly
    reproduced* when the interval lies above 0 but the order in between or the both-correct /
    both-wrong shares do not follow; *not reproduced* when it lies below 0; *inconclusive*
    otherwise (an interval touching 0 included). *Not testable* with fewer than
    :data:`MIN_MODELS_PER_END` in-band Reinit or Dataset models.
    """
    title = "error inconsistency grows with methodology divergence"
    paper = "error inconsistency with ResNet-50: Reinit 0.085, Dataset 0.125-0.230; both-correct and both-wrong shrink"
    partners = band_partners(study)
    groups, bad = _ends(study, partners, "C1", title, paper)
    if bad:
        return bad
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

    ci = hierarchical_bootstrap_ci(stat, [groups[c] for c in cats], d.y.shape[0], n_resamples=n_boot, seed=seed)
    ei_m = d.weighted(incons, None)
    means = {c: float(ei_m[groups[c]].mean()) for c in cats}
    monotone = bool(np.all(np.diff([means[c] for c in cats]) >= 0))
    bc_falls, bw_falls = bool(ci.estimate[1] < 0), bool(ci.estimate[2] < 0)
    s = sign(ci.low[0], ci.high[0])
    if s > 0:
        status = "reproduced" if (monotone and bc_falls and bw_falls) else "partly reproduced"
    else:
        status = "not reproduced" if s < 0 else "inconclusive"
    order = " < ".join(cat_label(c) for c in cats)
    sentence = (
        f"{lead(status)}: mean error inconsistency with the base, Dataset minus Reinit = "
        f"{fmt_interval(ci.estimate[0], ci.low[0], ci.high[0])}; category means "
        + ", ".join(f"{cat_label(c)} {means[c]:.3f}" for c in cats)
        + f" ({'ordered' if monotone else 'not ordered'} as {order}); both-correct "
        f"{'falls' if bc_falls else 'does not fall'} ({ci.estimate[1]:+.3f}), both-wrong "
        f"{'falls' if bw_falls else 'does not fall'} ({ci.estimate[2]:+.3f}) from Reinit to Dataset."
    )
    return ClaimResult(
        "C1",
        title,
        status,
        float(ci.estimate[0]),
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
        details={
            "category_means": means,
            "both_correct_gap": float(ci.estimate[1]),
            "both_wrong_gap": float(ci.estimate[2]),
        },
    )


def c2_ensemble_gain(study, *, n_boot: int = 1000, seed: int = 0) -> ClaimResult:
    """C2 (Sec. 4.2, Fig. 2 left/center): the ensemble gain grows linearly with error inconsistency,
    and with members in a narrow band it is an absolute gain.

    Two parts, both on the evaluation split, for the base paired with each in-band partner
    (band membership on the selection split):

    * *linear growth*: the least-squares slope of the gain over the members' mean accuracy on error
      inconsistency, across pairs (bootstrap: pairs, then test examples). Since
      gain ~= error inconsistency x (conversion rate - 1/2), a positive slope follows from any
      conversion rate above one half; it is reported, but cannot decide the claim alone;
    * *absolute gain*: the partner whose ensemble with the base is the most accurate on the
      *selection* split; on test, its ensemble accuracy minus the accuracy of the member that is
      better on the selection split (bootstrap over test examples). This part can fail.

    Verdict: *reproduced* when both intervals lie above 0; *partly reproduced* when one does;
    *not reproduced* when the slope's (or, with an undecided slope, the absolute gain's) interval
    lies below 0; else *inconclusive*. *Not testable* with fewer than :data:`MIN_PAIRS_C2` pairs.
    """
    title = "ensemble gain grows with error inconsistency; an absolute gain in the band"
    paper = "gain grows linearly with error inconsistency; ResNet-50 76.5 % + ALIGN-ZS 75.5 % = 83.4 % (+~7 points)"
    partners = band_partners(study)
    if len(partners) < MIN_PAIRS_C2:
        return not_testable(
            "C2",
            title,
            f"{len(partners)} in-band pair(s) with the base; at least {MIN_PAIRS_C2} are needed to fit a line",
            paper=paper,
            n_models=count_models(study, partners),
            n_pairs=len(partners),
        )
    d = pair_data(study, partners, study.split)
    incons = d.correct != d.base_correct[None]
    slope = _gain_slope_ci(d, incons, n_boot=n_boot, seed=seed)
    best, abs_ci = _absolute_gain_ci(study, partners, d, n_boot=n_boot, seed=seed)
    ei_m, gain_m = d.weighted(incons, None), None
    acc_m = d.correct.mean(axis=1)
    gain_m = d.ensemble_correct.mean(axis=1) - (acc_m + d.base_correct.mean()) / 2
    r = float(np.corrcoef(ei_m, gain_m)[0, 1]) if np.ptp(ei_m) > 0 and np.ptp(gain_m) > 0 else float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        conv = (d.ensemble_correct & incons).sum(axis=1) / incons.sum(axis=1)
    s1, s2 = sign(slope.low, slope.high), sign(abs_ci.low, abs_ci.high)
    status = two_part_status(s1, s2)
    cat = by_category(study, [best])
    sentence = (
        f"{lead(status)}: slope of the ensemble gain on error inconsistency "
        f"{fmt_interval(slope.estimate, slope.low, slope.high, digits=2)} over {len(partners)} pairs "
        f"(r = {r:.2f}; mean conversion rate {np.nanmean(conv):.3f}: a slope near conversion - 1/2 "
        f"follows from the definitions); best partner chosen on the selection split, {best} "
        f"({cat_label(next(iter(cat)))}): its ensemble with the base beats the better member "
        f"(on the selection split) by "
        f"{fmt_interval(abs_ci.estimate, abs_ci.low, abs_ci.high, digits=1, scale=100, unit=' points')} on test."
    )
    return ClaimResult(
        "C2",
        title,
        status,
        float(slope.estimate),
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
            "absolute_gain": fmt_interval(abs_ci.estimate, abs_ci.low, abs_ci.high),
        },
        choices={"partners": partners, "best_partner": best},
        details={
            "absolute_gain": tuple(abs_ci),
            "r": r,
            "best_partner": best,
            "slope_mean_conversion": float(np.nanmean(conv)) - 0.5,
        },
    )


def _gain_slope_ci(d, incons, *, n_boot: int, seed: int):
    """C2's first part: the slope of the ensemble gain over the members' mean accuracy on error
    inconsistency, across the pairs of ``d`` (bootstrap: pairs, then test examples)."""

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


def _absolute_gain_ci(study, partners, d, *, n_boot: int, seed: int):
    """C2's second part: the partner whose ensemble with the base is the most accurate on the selection
    split, and its ensemble's test accuracy minus the better member's (chosen on the selection split;
    bootstrap over test examples)."""
    sel = pair_data(study, partners, study.calib_split)
    j = int(np.argmax(sel.ensemble_correct.mean(axis=1)))
    best = partners[j]

    # the better member is also chosen on the selection split (a max over test accuracies would be biased)
    member_ok = d.correct[j] if sel.correct[j].mean() > sel.base_correct.mean() else d.base_correct

    def absolute(e, m):
        return float(e.mean() - m.mean())

    return best, bootstrap_ci(absolute, d.ensemble_correct[j], member_ok, n_resamples=n_boot, seed=seed)


def c3_conversion_rate(study, *, n_boot: int = 1000, seed: int = 0) -> ClaimResult:
    """C3 (Sec. 4.2, Fig. 2 right): the conversion rate grows as methodology diverges.

    The conversion rate of a pair is the share of the examples with exactly one correct member
    that the ensemble gets right. The effect is the mean conversion rate of the Dataset partners
    minus that of the Reinit partners (in-band on the selection split), on the evaluation split,
    with a hierarchical bootstrap (models within categories, then test examples).

    Verdict: *reproduced* / *not reproduced* when the interval lies above / below 0, else
    *inconclusive*; *not testable* with fewer than :data:`MIN_MODELS_PER_END` in-band Reinit or
    Dataset models.
    """
    title = "conversion rate grows with methodology divergence"
    paper = "conversion rate grows as methodology diverges (Fig. 2 right; no number given)"
    partners = band_partners(study)
    groups, bad = _ends(study, partners, "C3", title, paper)
    if bad:
        return bad
    d = pair_data(study, partners, study.split)
    incons = d.correct != d.base_correct[None]
    conv_hit = d.ensemble_correct & incons
    cats = list(groups)
    i_lo, i_hi = cats.index("REINIT"), cats.index("DATASET")

    def stat(members, w):
        with np.errstate(invalid="ignore", divide="ignore"):
            conv = (conv_hit.astype(np.float64) @ w) / (incons.astype(np.float64) @ w)
        return float(np.mean(conv[members[i_hi]]) - np.mean(conv[members[i_lo]]))

    ci = hierarchical_bootstrap_ci(stat, [groups[c] for c in cats], d.y.shape[0], n_resamples=n_boot, seed=seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        conv = conv_hit.sum(1) / incons.sum(1)
    means = {c: float(np.mean(conv[groups[c]])) for c in cats}
    s = sign(ci.low, ci.high)
    status = {1: "reproduced", -1: "not reproduced", 0: "inconclusive"}[s]
    sentence = (
        f"{lead(status)}: mean conversion rate, Dataset minus Reinit = "
        f"{fmt_interval(ci.estimate, ci.low, ci.high)}; category means "
        + ", ".join(f"{cat_label(c)} {means[c]:.3f}" for c in cats)
        + "."
    )
    return ClaimResult(
        "C3",
        title,
        status,
        ci.estimate,
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


def c10_temperature_scaling(study, *, n_boot: int = 1000, seed: int = 0) -> ClaimResult:
    """C10 (Sec. 3.2), a method check: every model is calibrated by temperature scaling (fitted on
    the selection split) before ensembling, and the main analyses use in-band models only.

    Checked: every model's temperature was fitted on the selection split (the store records
    ``temperature_fitted_on``); the effect is the mean over models of the expected calibration
    error (15 bins) on the evaluation split before minus after scaling, with a hierarchical bootstrap
    (models, then test examples: an example's weight enters every bin sum of the ECE). *Reproduced*
    (the method step is in place and lowers the ECE) when the interval lies above 0, *not reproduced* below 0, else
    *inconclusive*; *not testable* when fewer than :data:`MIN_MODELS_C10` models have a
    temperature fitted on the selection split.
    """
    from norep.measures.calibration import expected_calibration_error

    title = "temperature scaling before ensembling (method check)"
    paper = "every model is temperature-scaled before ensembling; temperatures 0.01-1.70; analyses in the 74-78 % band"
    names = [str(n) for n in study.table["name"]]
    fitted = [n for n in names if study.store.meta(n).get("temperature_fitted_on") == study.calib_split]
    if len(fitted) < MIN_MODELS_C10:
        return not_testable(
            "C10",
            title,
            f"{len(fitted)} model(s) have a temperature fitted on the selection split "
            f"{study.calib_split!r}; at least {MIN_MODELS_C10} are needed",
            paper=paper,
            n_models=len(fitted),
            kind="method check",
        )
    y = study.labels()
    delta = np.array(
        [
            expected_calibration_error(y, study.probs(n, calibrated=False))
            - expected_calibration_error(y, study.probs(n))
            for n in fitted
        ]
    )
    parts = [(_ece_terms(y, study.probs(n, calibrated=False)), _ece_terms(y, study.probs(n))) for n in fitted]

    def stat(members, w):
        per_model = np.array([_weighted_ece(*before, w) - _weighted_ece(*after, w) for before, after in parts])
        return float(per_model[members[0]].mean())

    ci = hierarchical_bootstrap_ci(stat, [np.arange(len(fitted))], y.shape[0], n_resamples=n_boot, seed=seed)
    temps = [float(study.store.meta(n)["temperature"]) for n in fitted]
    s = sign(ci.low, ci.high)
    status = {1: "reproduced", -1: "not reproduced", 0: "inconclusive"}[s]
    n_band = len(band_partners(study)) + 1
    acc = selection_accuracy(study)
    sentence = (
        f"Method check. {lead(status)}: all {len(fitted)} of {len(names)} models carry a temperature fitted on "
        f"the selection split ({min(temps):.2f} to {max(temps):.2f}); scaling lowers the mean ECE on test by "
        f"{fmt_interval(ci.estimate, ci.low, ci.high)}; {n_band} models (base included) lie in the band "
        f"{fmt_band(selection_band(study))} on the selection split (accuracies "
        f"{min(acc.values()):.3f}-{max(acc.values()):.3f})."
    )
    if len(fitted) < len(names):
        sentence = sentence.replace(f"all {len(fitted)} of", f"{len(fitted)} of")
    return ClaimResult(
        "C10",
        title,
        status,
        ci.estimate,
        ci.low,
        ci.high,
        effect_name="mean ECE before minus after temperature scaling, over models",
        resampled="models, then test examples (hierarchical bootstrap)",
        n_models=len(fitted),
        n_pairs=0,
        sentence=sentence,
        paper=paper,
        kind="method check",
        checks={"fitted_on_selection_split": f"{len(fitted)} of {len(names)}"},
        details={
            "ece_reduction": dict(zip(fitted, delta.tolist(), strict=True)),
            "temperatures": dict(zip(fitted, temps, strict=True)),
        },
    )


def _ece_terms(y, probs, n_bins: int = 15) -> tuple[np.ndarray, np.ndarray, int]:
    """Each example's confidence bin and accuracy-minus-confidence, the parts of a weighted ECE."""
    p = np.asarray(probs, dtype=np.float64)
    conf = p.max(axis=1)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    return bins, (p.argmax(axis=1) == np.asarray(y)) - conf, n_bins


def _weighted_ece(bins: np.ndarray, gap: np.ndarray, n_bins: int, w: np.ndarray) -> float:
    """``sum_b |sum_{i in b} w_i (correct_i - conf_i)| / sum_i w_i``: the ECE with example weights
    (bootstrap counts); equal to :func:`norep.measures.calibration.expected_calibration_error` when all are 1."""
    return float(np.abs(np.bincount(bins, weights=w * gap, minlength=n_bins)).sum() / w.sum())


__all__ = [
    "MIN_MODELS_PER_END",
    "MIN_PAIRS_C2",
    "MIN_MODELS_C10",
    "c1_error_inconsistency",
    "c2_ensemble_gain",
    "c3_conversion_rate",
    "c10_temperature_scaling",
    "CATEGORIES",
]
