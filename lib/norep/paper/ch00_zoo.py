"""Chapter 00, the model zoo (Tables 1-4, Sec. 3.2): the table of every model and the method check C10
(temperature scaling before ensembling)."""

from __future__ import annotations

import numpy as np

from norep.claims._core import (
    ClaimResult,
    band_partners,
    fmt_band,
    fmt_interval,
    lead,
    not_testable,
    selection_band,
    side,
    sign,
)
from norep.measures.stats import hierarchical_bootstrap_ci
from norep.paper._registry import claim, registered

CHAPTER = "00_model_zoo"

MIN_MODELS_C10 = 2
"""C10: models with a temperature fitted on the selection split, and in-band partners of the base with one
(the ensembles whose change the claim tests)."""


def tables(study) -> dict:
    """The chapter's tables: ``zoo``, one row per model of the study: its category, method, tier and
    ``in_band`` (accuracy band on the selection split, the set every claim uses), temperature and where
    it was fitted, accuracy on the evaluation and selection splits, error inconsistency with the base
    and accuracy of its ensemble with the base (:mod:`norep.measures.metrics`, :mod:`norep.measures.ensembles`), and the
    expected calibration error before and after temperature scaling (:mod:`norep.measures.calibration`);
    ``controls``, the same columns for the study's controls (untrained encoders, non-neural learners:
    reference points outside every category); ``tiers``, the count of models per category and tier (the
    controls on a row of their own); ``band``, the band on the selection split."""
    import pandas as pd

    zoo = _with_measures(study, study.table)
    controls = _with_measures(study, study.controls) if study.controls is not None and len(study.controls) else None
    tiers = zoo.groupby("category", sort=False)["tier"].value_counts().unstack(fill_value=0)
    if controls is not None:
        row = controls["tier"].value_counts().rename("controls (no category)").to_frame().T
        tiers = pd.concat([tiers, row]).fillna(0).astype(int)
    if controls is None:
        controls = zoo.iloc[:0]
    return {"zoo": zoo, "controls": controls, "tiers": tiers, "band": selection_band(study)}


def _with_measures(study, table):
    """``table`` (rows of models) with temperature, error inconsistency and ensemble accuracy with the
    base, and ECE before and after scaling, on the evaluation split."""
    import pandas as pd

    from norep.measures import calibration, ensembles, metrics

    st, base, y = study.store, study.base, study.labels()
    pred_base, probs_base = st.predictions(base, study.split), study.probs(base)
    rows = []
    for name in table["name"]:
        pred, probs, meta = st.predictions(name, study.split), study.probs(name), st.meta(name)
        rows.append(
            {
                "name": name,
                "temperature": float(meta.get("temperature", np.nan)),
                "fitted_on_selection": meta.get("temperature_fitted_on") == study.calib_split,
                "error_inconsistency": metrics.error_inconsistency(y, pred_base, pred),
                "ensemble_accuracy": ensembles.ensemble_accuracy(y, [probs_base, probs]),
                "ece_before": calibration.expected_calibration_error(y, study.probs(name, calibrated=False)),
                "ece_after": calibration.expected_calibration_error(y, probs),
            }
        )
    keep = [c for c in table.columns if c != "temperature"]
    cols = ["name", "temperature", "fitted_on_selection", "error_inconsistency", "ensemble_accuracy"]
    return table[keep].merge(pd.DataFrame(rows, columns=[*cols, "ece_before", "ece_after"]), on="name")


COMPACT_COLUMNS = ("name", "category", "tier", "accuracy_calib", "accuracy_test", "error_inconsistency", "ensemble")
"""The columns of the chapter's compact model table (:func:`compact_table`)."""


def compact_table(zoo, *, split: str = "test", calib_split: str = "calib"):
    """The chapter's model table, compact: :data:`COMPACT_COLUMNS` (accuracies on the selection and
    evaluation splits, error inconsistency and ensemble accuracy with the base), plus ``method``,
    ``head``, ``temperature`` and the ECEs before and after scaling, which the book folds under each
    model's name (:func:`norep.plots.model_table`). Renames only; every number is the ``zoo`` table's."""
    names = {
        f"{calib_split}_accuracy": "accuracy_calib",
        f"{split}_accuracy": "accuracy_test",
        "ensemble_accuracy": "ensemble",
    }
    t = zoo.rename(columns=names)
    details = [c for c in ("method", "head", "temperature", "ece_before", "ece_after") if c in t.columns]
    return t[[c for c in COMPACT_COLUMNS if c in t.columns] + details]


def design(study) -> list[str]:
    """What the chapter prints about a store trained by ``norep zoo train``: its preset, training images,
    split sizes, the base's accuracy, the band (as set, and on the selection split, where its members
    are chosen) and the downstream task; one line saying so for any other store."""
    st, info = study.store, study.store.info
    if not info.get("preset"):
        return ["this store was not trained by norep zoo train: no design to show"]
    lo, hi = selection_band(study)
    base_acc = st.meta(study.base)["accuracy"]
    lines = [
        f"preset {info['preset']!r}{' (quick)' if info.get('quick') else ''}: {info.get('n_train', 'all')} "
        f"training images per model; {study.calib_split} {st.n_examples(study.calib_split)} and {study.split} "
        f"{st.n_examples(study.split)} examples",
        f"base {study.base}: {study.split} accuracy {base_acc[study.split]:.4f}, {study.calib_split} accuracy "
        f"{base_acc.get(study.calib_split, float('nan')):.4f}; band {study.band[0]:.4f}-{study.band[1]:.4f} "
        f"(half-width {info.get('band_halfwidth')}), on the selection split {study.calib_split!r} {lo:.4f}-{hi:.4f}: "
        f"{int(study.table['in_band'].sum())} models in it, the base included",
    ]
    if info.get("downstream"):
        lines.append(f"downstream task: {info['downstream']}")
    return lines


@claim(
    "C10",
    chapter=CHAPTER,
    title="temperature scaling before ensembling (method check)",
    paper="every model is temperature-scaled before ensembling; temperatures 0.01-1.70; analyses in the 74-78 % band",
    kind="method check",
)
def c10_temperature_scaling(study, *, n_boot: int = 1000, seed: int = 0, chapter_tables=None) -> ClaimResult:
    """C10 (Sec. 3.2), a method check: every model is calibrated by temperature scaling (fitted on
    the selection split) before ensembling, and the main analyses use in-band models only.

    Verdict rule (fixed before any data are read). Two parts, on the evaluation split:

    * *calibration* (the effect): the mean over the models whose temperature was fitted on the
      selection split of the expected calibration error (15 bins) before minus after scaling; 95 %
      interval resampling models, then test examples (an example's weight enters every bin sum of the
      ECE). A temperature fitted by NLL nearly always lowers the ECE, so this part alone says little;
    * *better ensembles*, the paper's reason for the step: for the base ensembled with each in-band
      partner (both with fitted temperatures), the ensemble's mean negative log-likelihood with the raw
      probabilities (T = 1) minus that with the fitted temperatures; 95 % interval resampling partners,
      then test examples (widened for few partners). The change in ensemble accuracy is reported beside
      it.

    *Reproduced* when both intervals lie above 0; *partly reproduced* when one does and the other
    includes 0; *not reproduced* when either lies below 0 (scaling makes calibration or ensembles worse);
    else *inconclusive*. *Not testable* when fewer than :data:`MIN_MODELS_C10` models have a temperature
    fitted on the selection split, or fewer than :data:`MIN_MODELS_C10` in-band partners of the base
    (with the base's own temperature fitted there). Read from the chapter's ``zoo`` table
    (``chapter_tables``, default :func:`tables`): the fitted models, their temperatures and ECEs and the
    in-band set.
    """
    title, paper = registered("C10")
    zoo = (chapter_tables or tables(study))["zoo"]
    fitted_rows = zoo[zoo["fitted_on_selection"]]
    fitted = [str(n) for n in fitted_rows["name"]]
    partners = [n for n in band_partners(study) if n in set(fitted)] if study.base in set(fitted) else []
    if len(fitted) < MIN_MODELS_C10 or len(partners) < MIN_MODELS_C10:
        what = (
            f"{len(fitted)} model(s) have a temperature fitted on the selection split {study.calib_split!r}"
            if len(fitted) < MIN_MODELS_C10
            else f"{len(partners)} in-band partner(s) of the base have a temperature fitted on the selection "
            f"split {study.calib_split!r}" + ("" if study.base in set(fitted) else " (the base has none)")
        )
        return not_testable(
            "C10",
            title,
            f"{what}; at least {MIN_MODELS_C10} are needed",
            paper=paper,
            n_models=len(fitted),
            kind="method check",
        )
    delta = (fitted_rows["ece_before"] - fitted_rows["ece_after"]).to_numpy()
    ci = _ece_reduction_ci(study, fitted, n_boot=n_boot, seed=seed)
    ens = _ensemble_effect_ci(study, partners, n_boot=n_boot, seed=seed)
    effect = float(delta.mean())
    temps = fitted_rows["temperature"].to_numpy()
    s_ece, s_nll = sign(ci.low, ci.high), sign(ens.low[0], ens.high[0])
    if s_ece < 0 or s_nll < 0:
        status = "not reproduced"
    elif s_ece > 0 and s_nll > 0:
        status = "reproduced"
    else:
        status = "partly reproduced" if (s_ece > 0 or s_nll > 0) else "inconclusive"
    acc = zoo[f"{study.calib_split}_accuracy"]
    sentence = (
        f"Method check. {lead(status)}: all {len(fitted)} of {len(zoo)} models carry a temperature fitted on "
        f"the selection split ({temps.min():.2f} to {temps.max():.2f}); scaling lowers the mean ECE on test by "
        f"{fmt_interval(effect, ci.low, ci.high)}; the ensembles of the base with its {len(partners)} in-band "
        f"partners: NLL with T = 1 minus with the fitted temperatures "
        f"{fmt_interval(ens.estimate[0], ens.low[0], ens.high[0], digits=4)}, accuracy change "
        f"{fmt_interval(ens.estimate[1], ens.low[1], ens.high[1], digits=2, scale=100, unit=' points')}; "
        f"{int(zoo['in_band'].sum())} models (base included) lie in the band {fmt_band(selection_band(study))} "
        f"on the selection split (accuracies {acc.min():.3f}-{acc.max():.3f})."
    )
    if len(fitted) < len(zoo):
        sentence = sentence.replace(f"all {len(fitted)} of", f"{len(fitted)} of")
    return ClaimResult(
        "C10",
        title,
        status,
        effect,
        ci.low,
        ci.high,
        effect_name="mean ECE before minus after temperature scaling, over models",
        resampled="models, then test examples (hierarchical bootstrap; ECE and ensembles with the base)",
        n_models=len(fitted),
        n_pairs=len(partners),
        sentence=sentence,
        paper=paper,
        kind="method check",
        checks={
            "fitted_on_selection_split": f"{len(fitted)} of {len(zoo)}",
            "ece_lowered": f"interval {side(ci.low, ci.high)}",
            "ensemble_nll_lowered": f"interval {side(ens.low[0], ens.high[0])}",
        },
        choices={"ensemble_partners": partners},
        details={
            "ece_reduction": dict(zip(fitted, delta.tolist(), strict=True)),
            "temperatures": dict(zip(fitted, temps.tolist(), strict=True)),
            "ensemble_nll_reduction": (float(ens.estimate[0]), float(ens.low[0]), float(ens.high[0])),
            "ensemble_accuracy_change": (float(ens.estimate[1]), float(ens.low[1]), float(ens.high[1])),
        },
    )


def _ensemble_effect_ci(study, partners, *, n_boot: int, seed: int):
    """C10's second part: over the ensembles of the base with ``partners`` (equal-weight mean of
    probabilities), the mean NLL with raw probabilities minus with the fitted temperatures, and the mean
    accuracy with the fitted temperatures minus with raw probabilities (partners, then test examples,
    widened for few partners)."""
    from norep.measures.ensembles import ensemble_probs

    y = np.asarray(study.labels())
    rows = np.arange(y.shape[0])
    nll_gain, acc_gain = [], []
    raw_b, cal_b = study.probs(study.base, calibrated=False), study.probs(study.base)
    for n in partners:
        raw = ensemble_probs([raw_b, study.probs(n, calibrated=False)])
        cal = ensemble_probs([cal_b, study.probs(n)])
        nll = [-np.log(np.clip(p[rows, y], 1e-12, None)) for p in (raw, cal)]
        nll_gain.append(nll[0] - nll[1])
        acc_gain.append((cal.argmax(1) == y).astype(np.float64) - (raw.argmax(1) == y))
    nll_gain, acc_gain = np.array(nll_gain), np.array(acc_gain)

    def stat(members, w):
        m = members[0]
        return [float((nll_gain[m] @ w).mean() / w.sum()), float((acc_gain[m] @ w).mean() / w.sum())]

    return hierarchical_bootstrap_ci(
        stat, [np.arange(len(partners))], y.shape[0], n_resamples=n_boot, seed=seed, small_sample=True
    )


def _ece_reduction_ci(study, fitted, *, n_boot: int, seed: int):
    """C10's interval: the mean ECE reduction over ``fitted``, resampling models, then test examples."""
    y = study.labels()
    parts = [(_ece_terms(y, study.probs(n, calibrated=False)), _ece_terms(y, study.probs(n))) for n in fitted]

    def stat(members, w):
        per_model = np.array([_weighted_ece(*before, w) - _weighted_ece(*after, w) for before, after in parts])
        return float(per_model[members[0]].mean())

    return hierarchical_bootstrap_ci(stat, [np.arange(len(fitted))], y.shape[0], n_resamples=n_boot, seed=seed)


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
    "CHAPTER",
    "MIN_MODELS_C10",
    "COMPACT_COLUMNS",
    "tables",
    "compact_table",
    "design",
    "c10_temperature_scaling",
]
