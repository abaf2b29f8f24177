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


def _verdict_order(rho, p, ends_separate, expect_positive=True):
    ok_sign = (rho > 0) if expect_positive else (rho < 0)
    if ok_sign and p < 0.05 and ends_separate:
        return "reproduced"
    if ok_sign and (p < 0.05 or ends_separate):
        return "partly reproduced"
    return "not reproduced"


def zoo_report(store, *, split="test", in_band_only=True, n_resamples=1000, confidence=0.95, seed=0):
    """Per-category error inconsistency, ensemble gain and conversion rate with the base, and C1-C3 verdicts.

    Paper Sec. 4.1 (Fig. 1: error inconsistency by category) and Sec. 4.2 (Fig. 2: ensemble gain and
    conversion rate). The tests behind the verdicts:

    * C1 (error inconsistency grows REINIT -> DATASET): Spearman rank correlation between the
      category's position (0-4) and the per-model error inconsistency with the base; "reproduced"
      when rho > 0, p < 0.05 and the bootstrap intervals of the first and last present categories'
      means do not overlap; "partly" when the sign is right and one of the two holds. The same test
      is reported for the both-correct and both-wrong fractions (expected to shrink).
    * C2 (ensemble gain grows linearly with error inconsistency): Pearson correlation across models
      between error inconsistency and ensemble gain (rho > 0, p < 0.05); also the share of models
      whose ensemble with the base beats both members (the "absolute gain" of the narrow band).
    * C3 (conversion rate grows as methodology diverges): as C1, on the conversion rate.

    Models are the units of the correlation tests (they are not independent draws: read p as a
    descriptive guide).

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
            return np.concatenate([[ei[g].mean() for g in groups], [gain[g].mean() for g in groups],
                                   [np.nanmean(conv[g]) if np.isfinite(conv[g]).any() else np.nan
                                    for g in groups]])

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

    # claims
    claims = []

    def order_test(col, lo_col, hi_col, expect_positive=True):
        if len(cats) < 2 or len(per_model) < 3:
            return np.nan, np.nan, False, "too few categories/models"
        rho, p = sps.spearmanr(per_model["order"], per_model[col])
        first, last = per_category.iloc[0], per_category.iloc[-1]
        if lo_col is None:
            sep = False
        elif expect_positive:
            sep = bool(last[lo_col] > first[hi_col])
        else:
            sep = bool(last[hi_col] < first[lo_col])
        return float(rho), float(p), sep, f"{first['category']} vs {last['category']} intervals " + \
            ("separate" if sep else "overlap")

    rho, p, sep, note = order_test("error_inconsistency", "ei_low", "ei_high")
    rho_bc, p_bc, _, _ = order_test("both_correct", None, None)
    rho_bw, p_bw, _, _ = order_test("both_wrong", None, None)
    claims.append(dict(
        claim="C1", test="Spearman(category order, per-model error inconsistency) + end-category CIs",
        statistic=rho, p_value=p,
        verdict=_verdict_order(rho, p, sep) if np.isfinite(rho) else "not testable",
        detail=f"{note}; both-correct rho={rho_bc:.2f} (p={p_bc:.3f}), both-wrong rho={rho_bw:.2f} (p={p_bw:.3f})"))
    if len(per_model) >= 3:
        r, p2 = sps.pearsonr(per_model["error_inconsistency"], per_model["ensemble_gain"])
        slope = float(np.polyfit(per_model["error_inconsistency"], per_model["ensemble_gain"], 1)[0])
        share = float(per_model["beats_both"].mean())
        verdict = "reproduced" if (r > 0 and p2 < 0.05) else ("partly reproduced" if r > 0 else "not reproduced")
        claims.append(dict(claim="C2", test="Pearson(error inconsistency, ensemble gain) across models",
                           statistic=float(r), p_value=float(p2), verdict=verdict,
                           detail=f"slope {slope:.2f}; ensemble with the base beats both members for "
                                  f"{share:.0%} of models"))
    else:
        claims.append(dict(claim="C2", test="Pearson(error inconsistency, ensemble gain) across models",
                           statistic=np.nan, p_value=np.nan, verdict="not testable", detail="too few models"))
    rho3, p3, sep3, note3 = order_test("conversion_rate", "conv_low", "conv_high")
    claims.append(dict(claim="C3", test="Spearman(category order, per-model conversion rate) + end-category CIs",
                       statistic=rho3, p_value=p3,
                       verdict=_verdict_order(rho3, p3, sep3) if np.isfinite(rho3) else "not testable",
                       detail=note3))
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
        stat = "n/a" if not np.isfinite(r.statistic) else f"{r.statistic:+.3f} (p={r.p_value:.3g})"
        out.append(f"  {r.claim}: {r.verdict.upper()} -- {r.test}: {stat}; {r.detail}")
    return "\n".join(out)
