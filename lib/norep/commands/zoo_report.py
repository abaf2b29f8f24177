"""The per-category report of a zoo store and its verdicts on claims C1-C3 (paper Secs. 4.1-4.2).

Every number compares a model with the store's base model on the evaluation split (``test``), with
calibrated probabilities (temperature fitted on ``calib``, Sec. 3.2) and ensembles built by
:mod:`norep.measures.ensembles` (through :func:`norep.claims.pair_data`). Which models enter (the accuracy band)
is decided on the selection split ``calib``. Category means carry hierarchical bootstrap intervals
(models within the category, then test examples). The verdicts are those of :mod:`norep.paper`,
the same functions the book's chapters call.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np

CATEGORY_ORDER = ("REINIT", "HPARAM", "ARCH", "FWORK", "DATASET")


@dataclass
class ZooReport:
    """Result of :func:`zoo_report`; every table is a pandas DataFrame."""

    base: str
    band: tuple[float, float] | None
    split: str
    in_band_only: bool
    per_model: object
    per_category: object
    claims: object
    excluded: object

    def to_text(self) -> str:
        return format_report(self)


def zoo_report(store, *, split="test", in_band_only=True, n_resamples=1000, confidence=0.95, seed=0):
    """Per-category error inconsistency, ensemble gain and conversion rate with the base, and C1-C3 verdicts.

    Paper Sec. 4.1 (Fig. 1: error inconsistency by category) and Sec. 4.2 (Fig. 2: ensemble gain and
    conversion rate). The verdicts are :func:`norep.paper.c1_error_inconsistency`,
    :func:`norep.paper.c2_ensemble_gain` and :func:`norep.paper.c3_conversion_rate` (models as
    units, selection on ``calib``); a store that lacks what a claim needs gets *not testable*.

    Parameters
    ----------
    store : Store or path-like
    split : str, default "test"
    in_band_only : bool, default True
        Keep only models whose accuracy on the selection split ``calib`` lies in the store's accuracy
        band (Sec. 3.2); False uses every model.
    n_resamples : int, default 1000
    confidence : float, default 0.95
        Coverage of the category intervals (the claims' intervals are 95 %).
    seed : int, default 0

    Returns
    -------
    ZooReport

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from norep.storage import Store
    >>> from norep.commands.zoo_report import zoo_report
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 3, 300)
    >>> st = Store.create(tempfile.mkdtemp() + "/s", dataset="toy", class_names=list("abc"),
    ...                   splits={"calib": y, "test": y}, info={"base_model": "base"})
    >>> for i, cat in enumerate(["REINIT", "REINIT", "ARCH", "DATASET"]):
    ...     lg = np.eye(3)[y] * 3 + rng.normal(scale=1 + i, size=(300, 3))
    ...     _ = st.add_model(["base", "r1", "a1", "d1"][i], logits={"calib": lg, "test": lg},
    ...                      meta={"category": cat, "method": "toy"})
    >>> rep = zoo_report(st, n_resamples=50, in_band_only=False)
    >>> list(rep.per_category["category"])
    ['REINIT', 'ARCH', 'DATASET']
    >>> list(rep.claims["claim"]), list(rep.claims["verdict"])
    (['C1', 'C2', 'C3'], ['not testable', 'not testable', 'not testable'])
    """
    import pandas as pd

    from norep import claims as C
    from norep.storage import Store

    st = store if isinstance(store, Store) else Store.open(store)
    base = st.base_model
    if base is None or base not in st:
        raise ValueError(f"store {st.path} has no base model (info['base_model'] = {base!r})")
    band = st.accuracy_band
    study = C.open_study(st.path, split=split, accuracy_band=None if in_band_only else (0.0, 1.0))
    sel_acc = C.selection_accuracy(study)
    sel_band = C.selection_band(study)
    partners, excluded = _partners(study, base, sel_acc, sel_band, in_band_only)
    excluded += _controls(study)
    d = C.pair_data(study, partners, split)
    per_model = _per_model_table(study, d, partners, sel_acc, sel_band)
    per_category = _per_category_table(per_model, d, partners, n_resamples, confidence, seed)
    claims_df = _claims_table(study, n_resamples, seed)
    excluded_df = pd.DataFrame(excluded, columns=["name", "category", "tier", "accuracy"])
    band = None if band is None else sel_band
    return ZooReport(
        base=base,
        band=band,
        split=split,
        in_band_only=in_band_only,
        per_model=per_model,
        per_category=per_category,
        claims=claims_df,
        excluded=excluded_df,
    )


def _controls(study) -> list[dict]:
    """The rows of the study's controls (untrained encoders, non-neural learners): listed, never in a category."""
    c = study.controls
    if c is None or not len(c):
        return []
    acc = f"{study.calib_split}_accuracy"
    return [
        dict(name=str(r["name"]), category=str(r["category"]), tier="control", accuracy=float(r[acc]))
        for _, r in c.iterrows()
    ]


def _partners(study, base, sel_acc, sel_band, in_band_only):
    """The models compared with the base (in the band on the selection split, or all), and the rows of
    those left out."""
    from norep import claims as C

    names = [str(n) for n in study.table["name"] if n != base and study.category(n) in CATEGORY_ORDER]
    partners = C.band_partners(study) if in_band_only else names
    partners = [n for n in partners if n in names]
    lo, hi = sel_band
    excluded = [
        dict(name=n, category=study.category(n), tier="low" if sel_acc[n] < lo else "high", accuracy=sel_acc[n])
        for n in names
        if n not in partners
    ]
    return partners, excluded


_PER_MODEL_COLUMNS = [
    "name",
    "category",
    "tier",
    "accuracy",
    "selection_accuracy",
    "error_inconsistency",
    "both_correct",
    "both_wrong",
    "ensemble_accuracy",
    "ensemble_gain",
    "conversion_rate",
    "beats_both",
]


def _per_model_table(study, d, partners, sel_acc, sel_band):
    """One row per partner: accuracy, error inconsistency, ensemble gain and conversion rate with the base."""
    import pandas as pd

    lo, hi = sel_band
    incons = d.correct != d.base_correct[None]
    base_acc = float(d.base_correct.mean())
    rows = []
    for i, n in enumerate(partners):
        acc = float(d.correct[i].mean())
        ens = float(d.ensemble_correct[i].mean())
        inc = incons[i]
        rows.append(
            dict(
                name=n,
                category=study.category(n),
                tier="band" if lo <= sel_acc[n] <= hi else ("high" if sel_acc[n] > hi else "low"),
                accuracy=acc,
                selection_accuracy=sel_acc[n],
                error_inconsistency=float(inc.mean()),
                both_correct=float((d.correct[i] & d.base_correct).mean()),
                both_wrong=float((~d.correct[i] & ~d.base_correct).mean()),
                ensemble_accuracy=ens,
                ensemble_gain=ens - (acc + base_acc) / 2,
                conversion_rate=float((d.ensemble_correct[i] & inc).sum() / inc.sum()) if inc.any() else float("nan"),
                beats_both=bool(ens > max(acc, base_acc)),
            )
        )
    per_model = pd.DataFrame(rows, columns=_PER_MODEL_COLUMNS)
    per_model["order"] = [CATEGORY_ORDER.index(c) for c in per_model["category"]]
    return per_model.sort_values(["order", "name"], kind="stable").drop(columns="order").reset_index(drop=True)


def _category_measures(d):
    """Error inconsistency, ensemble gain and conversion rate of every partner under example weights ``w``."""
    incons = d.correct != d.base_correct[None]
    conv_hit = (d.ensemble_correct & incons).astype(np.float64)
    inc_f = incons.astype(np.float64)
    return {
        "ei": lambda w: d.weighted(inc_f, w),
        "gain": lambda w: (
            d.weighted(d.ensemble_correct, w) - (d.weighted(d.correct, w) + float(d.base_correct @ w / w.sum())) / 2
        ),
        "conv": lambda w: np.where(inc_f @ w > 0, (conv_hit @ w) / np.maximum(inc_f @ w, 1e-300), np.nan),
    }


def _per_category_table(per_model, d, partners, n_resamples, confidence, seed):
    """Category means with hierarchical bootstrap intervals (models within the category, then examples)."""
    import pandas as pd

    from norep.measures.stats import hierarchical_bootstrap_ci

    cats = [c for c in CATEGORY_ORDER if (per_model["category"] == c).any()]
    pos = {n: i for i, n in enumerate(partners)}

    def category_ci(values_fn, idx):
        def stat(members, w):
            return float(np.nanmean(values_fn(w)[members[0]]))

        return hierarchical_bootstrap_ci(
            stat, [idx], d.y.shape[0], n_resamples=n_resamples, confidence=confidence, seed=seed
        )

    measures = _category_measures(d)
    cat_rows = []
    for c in cats:
        sub = per_model[per_model["category"] == c]
        idx = np.array([pos[n] for n in sub["name"]])
        ci = {k: category_ci(f, idx) for k, f in measures.items()}
        cat_rows.append(
            dict(
                category=c,
                n_models=len(sub),
                models=", ".join(sub["name"]),
                mean_accuracy=sub["accuracy"].mean(),
                error_inconsistency=ci["ei"].estimate,
                ei_low=ci["ei"].low,
                ei_high=ci["ei"].high,
                ensemble_gain=ci["gain"].estimate,
                gain_low=ci["gain"].low,
                gain_high=ci["gain"].high,
                conversion_rate=ci["conv"].estimate,
                conv_low=ci["conv"].low,
                conv_high=ci["conv"].high,
                both_correct=sub["both_correct"].mean(),
                both_wrong=sub["both_wrong"].mean(),
            )
        )
    return pd.DataFrame(cat_rows)


def _claims_table(study, n_resamples, seed):
    """The verdicts on claims C1-C3 of :mod:`norep.paper`, one row each."""
    import pandas as pd

    from norep.paper import run_claims

    results = run_claims(study, ["C1", "C2", "C3"], n_boot=n_resamples, seed=seed)
    return pd.DataFrame(
        [
            dict(
                claim=r.claim,
                test=r.effect_name or r.title,
                statistic=r.effect,
                ci_low=r.low,
                ci_high=r.high,
                verdict=r.status,
                n_models=r.n_models,
                n_pairs=r.n_pairs,
                resampled=r.resampled,
                detail=r.sentence,
            )
            for r in results
        ]
    )


def format_report(rep: ZooReport) -> str:
    """The report as text (what ``norep zoo report`` prints)."""
    band = "none" if rep.band is None else f"[{rep.band[0]:.4f}, {rep.band[1]:.4f}]"
    out = [
        f"base model: {rep.base}; accuracy band: {band} (membership on calib); split: {rep.split}; "
        f"{'in-band models only' if rep.in_band_only else 'all models'}",
        "",
    ]
    out.append("per category (mean over models, vs the base; 95% CI resampling models, then examples):")
    out.append(
        f"{'category':9s} {'n':>2s} {'acc':>6s}  {'error inconsistency':>24s}  {'ensemble gain':>26s}  "
        f"{'conversion rate':>24s}"
    )
    for r in rep.per_category.itertuples():
        out.append(
            f"{r.category:9s} {r.n_models:2d} {r.mean_accuracy:6.4f}  "
            f"{r.error_inconsistency:.4f} [{r.ei_low:.4f}, {r.ei_high:.4f}]  "
            f"{r.ensemble_gain:+.4f} [{r.gain_low:+.4f}, {r.gain_high:+.4f}]  "
            f"{r.conversion_rate:.4f} [{r.conv_low:.4f}, {r.conv_high:.4f}]"
        )
    out += ["", "per model:"]
    out.append(f"{'model':24s} {'category':9s} {'acc':>6s} {'EI':>6s} {'gain':>7s} {'conv':>6s}")
    for r in rep.per_model.itertuples():
        out.append(
            f"{r.name:24s} {r.category:9s} {r.accuracy:6.4f} {r.error_inconsistency:6.4f} "
            f"{r.ensemble_gain:+7.4f} {r.conversion_rate:6.4f}"
        )
    if len(rep.excluded):
        out += ["", "outside the band on calib, or controls (excluded):"]
        for r in rep.excluded.itertuples():
            out.append(f"  {r.name:24s} {r.category:9s} {r.tier:7s} calib acc {r.accuracy:.4f}")
    out += ["", "claims (norep.paper):"]
    for r in rep.claims.itertuples():
        stat = "n/a" if not np.isfinite(r.statistic) else f"{r.statistic:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
        out.append(
            f"  {r.claim}: {r.verdict.upper()} -- {r.test}: {stat}; {r.n_models} models, {r.n_pairs} pairs"
            f"{'; resampled: ' + r.resampled if r.resampled else ''}"
        )
        out.append(f"      {r.detail}")
    return "\n".join(out)


HELP = "print the per-category report of a store"
DESCRIPTION = """\
Per category (REINIT -> DATASET): mean error inconsistency with the base model, ensemble gain and
conversion rate, with percentile-bootstrap 95% intervals over test examples, using in-band models
only (unless --all-models), then a verdict for each of the paper's claims C1-C3 and the test behind it.

examples:
  norep zoo report stores/fashion
  norep zoo report stores/fashion --all-models --csv report.csv
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="store directory")
    parser.add_argument("--split", default="test", help="evaluation split (default test)")
    parser.add_argument("--all-models", action="store_true", help="include models outside the accuracy band")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--csv", metavar="FILE", help="also write the per-model table as CSV")


def run(args: argparse.Namespace) -> int:
    from norep.storage import Store

    try:
        st = Store.open(args.store)
        rep = zoo_report(
            st, split=args.split, in_band_only=not args.all_models, n_resamples=args.resamples, seed=args.seed
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"norep: {exc}", file=sys.stderr)
        return 1
    print(format_report(rep))
    if args.csv:
        rep.per_model.to_csv(args.csv, index=False)
    return 0
