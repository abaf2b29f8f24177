"""The per-category report of a zoo store and honest verdicts on claims C1-C3 (paper Secs. 4.1-4.2).

Every number compares a model with the store's base model on the evaluation split (``test``), with
calibrated probabilities (temperature fitted on ``calib``, Sec. 3.2). Category means carry percentile
bootstrap intervals over test examples (all models resampled together, :func:`norep.stats.bootstrap_ci`).
"""

from __future__ import annotations

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
    conversion rate). The verdicts follow the same rules as the book's chapters (:func:`norep.notebooks.verdict` on a
    95 % bootstrap interval over test examples: "reproduced" when the interval lies on the claimed
    side of zero, "not reproduced" when on the other, else "inconclusive"):

    * C1 (error inconsistency grows REINIT -> DATASET): the mean error inconsistency with the base of
      the most divergent category present minus that of the least divergent one; "reproduced" is
      lowered to "partly reproduced" when the category means are not monotone in between (the
      claim is an ordering). Spearman's rho of category order against per-model error
      inconsistency (and the both-correct / both-wrong fractions) is reported as description.
    * C2 (ensemble gain grows linearly with error inconsistency): Pearson's r between error
      inconsistency and ensemble gain across models, with its bootstrap interval; also the share
      of models whose ensemble with the base beats both members (the narrow band's "absolute gain").
    * C3 (conversion rate grows as methodology diverges): as C1, on the conversion rate, without
      the monotonicity condition (as the book's chapter).

    The intervals resample test examples only, not models or training seeds; the p-values of the
    correlation tests (models as units) are descriptive.

    Parameters
    ----------
    store : Store or path-like
    split : str, default "test"
    in_band_only : bool, default True
        Keep only models whose accuracy on ``test`` lies in the store's accuracy band (Sec. 3.2).
    n_resamples : int, default 1000
    confidence : float, default 0.95
    seed : int, default 0

    Returns
    -------
    ZooReport

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from norep.store import Store
    >>> from norep.zoo.embedded import zoo_report
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
    >>> list(rep.claims["claim"])
    ['C1', 'C2', 'C3']
    """
    import pandas as pd
    from scipy import stats as sps

    from norep.ensembles import conversion_rate, ensemble_accuracy, ensemble_gain
    from norep.metrics import accuracy_score, error_inconsistency, pair_outcomes
    from norep.stats import bootstrap_ci
    from norep.store import Store

    st = store if isinstance(store, Store) else Store.open(store)
    base = st.base_model
    if base is None or base not in st:
        raise ValueError(f"store {st.path} has no base model (info['base_model'] = {base!r})")
    band = st.accuracy_band
    y = np.asarray(st.labels(split))
    pb = st.probs(base, split)
    cb = pb.argmax(1) == y
    rows, excluded = [], []
    ca_cols, ce_cols = [], []
    for name in st.model_names():
        if name == base or not st.has_logits(name, split):
            continue
        m = st.meta(name)
        if m.get("category") not in CATEGORY_ORDER:
            continue
        p = st.probs(name, split)
        acc = accuracy_score(y, p.argmax(1))
        in_band = band is None or band[0] <= acc <= band[1]
        tier = m.get("tier") or ("band" if in_band else ("high" if acc > band[1] else "low"))
        if in_band_only and not in_band:
            excluded.append(dict(name=name, category=m["category"], tier=tier, accuracy=acc))
            continue
        out = pair_outcomes(y, p.argmax(1), pb.argmax(1))
        ens = (p + pb).argmax(1) == y
        rows.append(dict(
            name=name, category=m["category"], tier=tier, accuracy=acc,
            error_inconsistency=error_inconsistency(y, p.argmax(1), pb.argmax(1)),
            both_correct=out["both_correct"], both_wrong=out["both_wrong"],
            ensemble_accuracy=ensemble_accuracy(y, [p, pb]),
            ensemble_gain=ensemble_gain(y, p, pb),
            conversion_rate=conversion_rate(y, p, pb),
            beats_both=bool(ens.mean() > max(acc, cb.mean()))))
        ca_cols.append(p.argmax(1) == y)
        ce_cols.append(ens)
    per_model = pd.DataFrame(rows, columns=["name", "category", "tier", "accuracy", "error_inconsistency",
                                            "both_correct", "both_wrong", "ensemble_accuracy", "ensemble_gain",
                                            "conversion_rate", "beats_both"])
    per_model["order"] = [CATEGORY_ORDER.index(c) for c in per_model["category"]]
    per_model = per_model.sort_values(["order", "name"], kind="stable").reset_index(drop=True)
    cats = [c for c in CATEGORY_ORDER if (per_model["category"] == c).any()]

    # category means with one joint bootstrap over examples
    est = lo = hi = np.zeros(0)
    if rows:
        order = {r["name"]: i for i, r in enumerate(rows)}
        idx = np.array([order[n] for n in per_model["name"]])
        A = np.stack(ca_cols, 1)[:, idx].astype(np.float64)
        Ens = np.stack(ce_cols, 1)[:, idx].astype(np.float64)
        groups = [np.flatnonzero(per_model["category"].to_numpy() == c) for c in cats]

        def measure(a, e, b):
            incons = a != b[:, None]
            ei = incons.mean(0)
            gain = e.mean(0) - (a.mean(0) + b.mean()) / 2
            with np.errstate(invalid="ignore", divide="ignore"):
                conv = (e.astype(bool) & incons).sum(0) / incons.sum(0)
            conv_means = [np.nanmean(conv[g]) if np.isfinite(conv[g]).any() else np.nan for g in groups]
            ei_means = [ei[g].mean() for g in groups]
            # the claims: most minus least divergent category (C1, C3); r(EI, gain) across models (C2)
            with np.errstate(invalid="ignore", divide="ignore"):
                r = np.corrcoef(ei, gain)[0, 1] if ei.size >= 3 else np.nan
            return np.concatenate([ei_means, [gain[g].mean() for g in groups], conv_means,
                                   [ei_means[-1] - ei_means[0], conv_means[-1] - conv_means[0], r]])

        ci = bootstrap_ci(measure, A, Ens, cb.astype(np.float64), n_resamples=n_resamples,
                          confidence=confidence, seed=seed)
        est, lo, hi = (np.asarray(v, dtype=float) for v in ci)
    k = len(cats)
    cat_rows = []
    for i, c in enumerate(cats):
        sub = per_model[per_model["category"] == c]
        cat_rows.append(dict(
            category=c, n_models=len(sub), models=", ".join(sub["name"]),
            mean_accuracy=sub["accuracy"].mean(),
            error_inconsistency=est[i], ei_low=lo[i], ei_high=hi[i],
            ensemble_gain=est[k + i], gain_low=lo[k + i], gain_high=hi[k + i],
            conversion_rate=est[2 * k + i], conv_low=lo[2 * k + i], conv_high=hi[2 * k + i],
            both_correct=sub["both_correct"].mean(), both_wrong=sub["both_wrong"].mean()))
    per_category = pd.DataFrame(cat_rows)

    # claims: the same rules as the book's chapters (norep.notebooks.verdict on a 95 % interval)
    from norep.notebooks import verdict

    claims = []
    n_ok = k >= 2 and len(per_model) >= 3

    def ends(i):
        """Estimate and interval of claim statistic ``i`` (0: EI gap, 1: conversion gap, 2: r)."""
        if not n_ok:
            return np.nan, np.nan, np.nan
        return float(est[3 * k + i]), float(lo[3 * k + i]), float(hi[3 * k + i])

    def spearman(col):
        if not n_ok:
            return np.nan, np.nan
        rho, p = sps.spearmanr(per_model["order"], per_model[col])
        return float(rho), float(p)

    first, last = (cats[0], cats[-1]) if cats else ("-", "-")
    ends_text = f"{last} minus {first}"
    # C1
    e, l_, h = ends(0)
    rho, p = spearman("error_inconsistency")
    means = per_category["error_inconsistency"].to_numpy()
    monotone = bool(np.all(np.diff(means) >= 0)) if len(means) else False
    v = verdict(l_, h, ordered=monotone) if n_ok else "not testable"
    rho_bc, p_bc = spearman("both_correct")
    rho_bw, p_bw = spearman("both_wrong")
    claims.append(dict(
        claim="C1", test=f"mean error inconsistency with the base, {ends_text} (95% CI)",
        statistic=e, ci_low=l_, ci_high=h, verdict=v,
        detail=(f"category means {'monotone' if monotone else 'not monotone'} in the order {' < '.join(cats)}; "
                f"Spearman rho over models {rho:+.2f} (p={p:.3g}); both-correct rho {rho_bc:+.2f}, "
                f"both-wrong rho {rho_bw:+.2f}")))
    # C2
    if n_ok:
        r, l_, h = ends(2)
        _, p2 = sps.pearsonr(per_model["error_inconsistency"], per_model["ensemble_gain"])
        slope = float(np.polyfit(per_model["error_inconsistency"], per_model["ensemble_gain"], 1)[0])
        share = float(per_model["beats_both"].mean())
        claims.append(dict(claim="C2", test="Pearson r(error inconsistency, ensemble gain) across models (95% CI)",
                           statistic=r, ci_low=l_, ci_high=h, verdict=verdict(l_, h),
                           detail=f"{len(per_model)} models, p={p2:.3g}, slope {slope:.2f}; the ensemble with the "
                                  f"base beats both members for {share:.0%} of models"))
    else:
        claims.append(dict(claim="C2", test="Pearson r(error inconsistency, ensemble gain) across models (95% CI)",
                           statistic=np.nan, ci_low=np.nan, ci_high=np.nan, verdict="not testable",
                           detail="too few models or categories"))
    # C3
    e, l_, h = ends(1)
    rho3, p3 = spearman("conversion_rate")
    claims.append(dict(claim="C3", test=f"mean conversion rate, {ends_text} (95% CI)",
                       statistic=e, ci_low=l_, ci_high=h, verdict=verdict(l_, h) if n_ok else "not testable",
                       detail=f"Spearman rho over models {rho3:+.2f} (p={p3:.3g})"))
    missing = [c for c in CATEGORY_ORDER if c not in cats]
    if missing:
        for c in claims:
            c["detail"] += f"; no {'in-band ' if in_band_only else ''}models in {', '.join(missing)}"
    claims_df = pd.DataFrame(claims)

    excluded_df = pd.DataFrame(excluded, columns=["name", "category", "tier", "accuracy"])
    return ZooReport(base=base, band=band, split=split, in_band_only=in_band_only,
                     per_model=per_model.drop(columns="order"), per_category=per_category,
                     claims=claims_df, excluded=excluded_df)


def format_report(rep: ZooReport) -> str:
    """The report as text (what ``norep zoo report`` prints)."""
    band = "none" if rep.band is None else f"[{rep.band[0]:.4f}, {rep.band[1]:.4f}]"
    out = [f"base model: {rep.base}; accuracy band: {band}; split: {rep.split}; "
           f"{'in-band models only' if rep.in_band_only else 'all models'}", ""]
    out.append("per category (mean over models, vs the base; 95% bootstrap CI):")
    out.append(f"{'category':9s} {'n':>2s} {'acc':>6s}  {'error inconsistency':>24s}  {'ensemble gain':>26s}  "
               f"{'conversion rate':>24s}")
    for r in rep.per_category.itertuples():
        out.append(f"{r.category:9s} {r.n_models:2d} {r.mean_accuracy:6.4f}  "
                   f"{r.error_inconsistency:.4f} [{r.ei_low:.4f}, {r.ei_high:.4f}]  "
                   f"{r.ensemble_gain:+.4f} [{r.gain_low:+.4f}, {r.gain_high:+.4f}]  "
                   f"{r.conversion_rate:.4f} [{r.conv_low:.4f}, {r.conv_high:.4f}]")
    out += ["", "per model:"]
    out.append(f"{'model':24s} {'category':9s} {'acc':>6s} {'EI':>6s} {'gain':>7s} {'conv':>6s}")
    for r in rep.per_model.itertuples():
        out.append(f"{r.name:24s} {r.category:9s} {r.accuracy:6.4f} {r.error_inconsistency:6.4f} "
                   f"{r.ensemble_gain:+7.4f} {r.conversion_rate:6.4f}")
    if len(rep.excluded):
        out += ["", "outside the band (excluded):"]
        for r in rep.excluded.itertuples():
            out.append(f"  {r.name:24s} {r.category:9s} {r.tier:5s} acc {r.accuracy:.4f}")
    out += ["", "claims:"]
    for r in rep.claims.itertuples():
        stat = "n/a" if not np.isfinite(r.statistic) else f"{r.statistic:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}]"
        out.append(f"  {r.claim}: {r.verdict.upper()} -- {r.test}: {stat}; {r.detail}")
    return "\n".join(out)
