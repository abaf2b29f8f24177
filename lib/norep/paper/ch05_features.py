"""Chapter 05, feature concatenation (Sec. 4.6, Fig. 6): linear probes of the base's and a partner's
embeddings and of their mixes under a fixed dimension budget, compression by the diversity heuristic, and
claims C7 (mixes beat the full embeddings) and C8 (divergent pairs need fewer dimensions)."""

from __future__ import annotations

import numpy as np

from norep import CATEGORIES
from norep.claims._core import (
    ClaimResult,
    cat_label,
    categories_of,
    check_positive_int,
    end_groups,
    fmt_interval,
    lead,
    not_testable,
    sign,
)
from norep.claims._features import (
    END_CATEGORIES,
    FEATURES_RESAMPLED,
    MIXED_RATES,
    TARGET_FRACTION,
    end_width,
    ends_check,
    matched_columns,
    mix_probes,
    probe_fn,
)
from norep.measures.stats import hierarchical_bootstrap_ci
from norep.paper._registry import claim, registered

CHAPTER = "05_feature_concatenation"


def tables(
    study,
    *,
    max_per_category: int | None = None,
    probe_Cs=(0.01, 0.1, 1.0, 10.0, 100.0),
    probe_max_iter: int = 200,
    device: str = "cpu",
    categories=None,
    rates=MIXED_RATES,
    n_points: int = 8,
    seed: int = 0,
    probe: str = "ridge",
) -> dict:
    """The chapter's tables, from the linear probes of :func:`norep.claims.mix_probes` (cached on the study).

    ``probe`` is ``"ridge"`` (default: :func:`norep.measures.features.ridge_probe`, a ridge classifier in closed
    form) or ``"logistic"`` (:func:`norep.measures.features.linear_probe`, L-BFGS); either way the penalty is
    chosen from ``probe_Cs`` on the validation rows. ``partners`` (category -> names: every in-band Reinit and
    Dataset partner with embeddings, and up to ``max_per_category`` of each other category, None: all; the most
    accurate on the selection split first); ``mix``, one row per probe (partner, category, rate, dims, validation
    and test accuracy); ``gains``, per partner, the mix and the full embedding chosen on validation and the test
    accuracy of the mix minus that of the full embedding (``gain``); and, when the store has enough Reinit and
    Dataset partners, the compression probes of ``[base | partner]`` ordered most diverse first, at the same
    fractions of each concatenation's width: ``compression`` (one row per prefix), ``target`` (fixed on
    validation), ``reach`` (per partner, the log2 fraction of its width where the test curve reaches the
    target, ``inf`` and ``censored`` when never, and the dimensions that makes; ``better_member``, the base or
    the partner, whichever full embedding has the better validation accuracy, and ``concat_gain``, the test
    accuracy of the whole concatenation minus that member's), ``member_correct`` (per partner, the better member's
    test correctness) and ``saturated`` (pairs at the target from the first prefix on validation).
    """
    import pandas as pd

    rates = mixed_rates(rates)
    n_points = check_positive_int("n_points", n_points, 2)
    if max_per_category is not None:
        max_per_category = check_positive_int("max_per_category", max_per_category)
    mp = mix_probes(
        study,
        max_per_category=max_per_category,
        probe_Cs=probe_Cs,
        probe_max_iter=probe_max_iter,
        device=device,
        seed=seed,
        categories=categories,
        rates=rates,
        probe=probe,
    )
    mix = pd.DataFrame(mp["rows"], columns=["partner", "category", "rate", "dims", "val_accuracy", "accuracy"])
    out = {"probes": mp, "partners": mp["partners"], "mix": mix, "gains": _gains(mix, rates)}
    parts = mp["partners"]
    if ends_check("C8", "", "", parts) is None:
        names = [n for c in CATEGORIES if c in parts for n in parts[c]]
        fit = probe_fn(mp["y"], probe_Cs=probe_Cs, probe_max_iter=probe_max_iter, device=device, probe=probe)
        target = TARGET_FRACTION * float(mp["base_val_accuracy"])
        curves, reach_rows, saturated = _compression_curves(
            study, names, mp["E"], mp["y"], fit, target=target, n_points=n_points, seed=seed
        )
        lf = _log_fraction_to_target(reach_rows, target, np.ones(mp["y"]["test"].shape[0]))
        totals = [r[3] for r in reach_rows]
        reach = pd.DataFrame(
            {
                "partner": names,
                "category": categories_of(study, names),
                "log2_dims": [v + np.log2(t) if np.isfinite(v) else np.nan for v, t in zip(lf, totals, strict=True)],
                "dims": [int(round(t * 2**v)) if np.isfinite(v) else None for v, t in zip(lf, totals, strict=True)],
                "total_dims": totals,
                "log2_fraction": lf,
                "censored": ~np.isfinite(lf),
            }
        )
        member_correct = _better_member_correct(mix, mp["correct"], names)
        full = np.array([r[2][-1].mean() for r in reach_rows])
        reach["better_member"] = [
            study.base if r == 1.0 else n for n, (r, _) in zip(names, member_correct, strict=True)
        ]
        reach["concat_gain"] = full - np.array([c.mean() for _, c in member_correct])
        out.update(compression=pd.DataFrame(curves), target=target, reach=reach, reach_rows=reach_rows)
        out["member_correct"] = [c for _, c in member_correct]
        out["saturated"] = saturated
    return out


def mixed_rates(rates) -> tuple[float, ...]:
    """The shares of ``rates`` strictly between 0 and 1 (1.0 and 0.0, the full embeddings, are always probed).

    Examples
    --------
    >>> mixed_rates([1.0, 0.75, 0.5, 0.0])
    (0.75, 0.5)
    """
    if not len(rates) or any(not 0.0 <= float(r) <= 1.0 for r in rates):
        raise ValueError(f"parameter rates={rates!r} must be shares in [0, 1]")
    mixed = tuple(float(r) for r in rates if 0.0 < float(r) < 1.0)
    if not mixed:
        raise ValueError("parameter rates must contain at least one share strictly between 0 and 1")
    return mixed


def _gains(mix, rates):
    """Per partner: the mix and the full embedding chosen on validation, and the test accuracy of the mix
    minus that of the full embedding."""
    import pandas as pd

    rows = []
    for n in dict.fromkeys(mix["partner"]):
        sub = mix[mix["partner"] == n]
        mixed = sub[sub["rate"].isin(list(rates))]
        r_mix = float(mixed.sort_values("val_accuracy", kind="stable")["rate"].iloc[-1])
        full = sub[sub["rate"].isin([0.0, 1.0])].set_index("rate")
        r_full = 1.0 if full.loc[1.0, "val_accuracy"] >= full.loc[0.0, "val_accuracy"] else 0.0
        acc = sub.set_index("rate")["accuracy"]
        rows.append(
            {
                "partner": n,
                "category": sub["category"].iloc[0],
                "mix_rate": r_mix,
                "full": "base" if r_full == 1.0 else "partner",
                "full_rate": r_full,
                "gain": float(acc[r_mix] - acc[r_full]),
            }
        )
    return pd.DataFrame(rows, columns=["partner", "category", "mix_rate", "full", "full_rate", "gain"])


@claim(
    "C7",
    chapter=CHAPTER,
    title="a mix of two embeddings beats either full embedding, more so for divergent pairs",
    paper=(
        "mixes (25/75, 50/50, 75/25) beat either full embedding, more for divergent pairs; best pair ResNet-50 + CLIP-S"
    ),
)
def c7_embedding_mixes(
    study,
    *,
    chapter_tables=None,
    max_per_category: int | None = None,
    probe_Cs=(0.01, 0.1, 1.0, 10.0, 100.0),
    probe_max_iter: int = 200,
    device: str = "cpu",
    categories=None,
    rates=MIXED_RATES,
    n_boot: int = 1000,
    seed: int = 0,
    probe: str = "ridge",
) -> ClaimResult:
    """C7 (Sec. 4.6, Fig. 6 left/center): a mix of two embeddings under a fixed dimension budget beats
    either full embedding under linear evaluation, and more so the more the training methods differ.

    Decision rule, fixed before any data. For the base and each partner (every in-band Reinit and Dataset
    partner with embeddings, at least :data:`MIN_PARTNERS_PER_END` per end, else *not testable*; the other
    categories, capped at ``max_per_category``, are drawn but not tested), probes (``probe``, the penalty chosen
    on validation) are fitted on the base's full embedding, the partner's full embedding and the mixes at
    ``rates`` (:func:`norep.measures.features.concat_at_rate`, budget = the base's dimension). On the
    *validation* split, the best mix and the better full embedding are chosen; on test, a pair's gain is the
    chosen mix's accuracy minus the chosen full embedding's. Two intervals (hierarchical bootstrap: partners
    within categories, then test examples):

    * *more so for divergent pairs* (decides): mean gain of the Dataset pairs minus that of the Reinit pairs;
    * *a mix beats the full embeddings*: mean gain of the Dataset pairs. Any two complementary embeddings
      (two Reinit runs as well) give a positive gain, so this part alone cannot tell training methods apart:
      it never lifts a verdict by itself.

    Verdict: *reproduced* when both intervals lie above 0; *partly reproduced* when only the contrast does;
    *not reproduced* when either lies below 0; else *inconclusive* (a positive gain with no category
    contrast is inconclusive).
    """
    title, paper = registered("C7")
    kw = dict(max_per_category=max_per_category, probe_Cs=probe_Cs, probe_max_iter=probe_max_iter, device=device)
    t = chapter_tables or tables(study, **kw, categories=categories, rates=rates, seed=seed, probe=probe)
    mp, parts = t["probes"], t["partners"]
    bad = ends_check("C7", title, paper, parts)
    if bad:
        return bad
    gains_t = t["gains"].set_index("partner")
    names = [n for c in parts for n in parts[c]]
    chosen = {n: {"mix_rate": gains_t.loc[n, "mix_rate"], "full": gains_t.loc[n, "full"]} for n in names}
    gain_rows = [
        mp["correct"][(n, gains_t.loc[n, "mix_rate"])].astype(np.float64)
        - mp["correct"][(n, gains_t.loc[n, "full_rate"])]
        for n in names
    ]
    G = np.array(gain_rows)
    cats, groups, i_lo, i_hi = end_groups(parts)
    groups, i_lo, i_hi = [groups[i_lo], groups[i_hi]], 0, 1  # only the tested ends are resampled

    def stat(members, w):
        g = G @ w / w.sum()
        return [g[members[i_hi]].mean(), g[members[i_hi]].mean() - g[members[i_lo]].mean()]

    ci = hierarchical_bootstrap_ci(stat, groups, G.shape[1], n_resamples=n_boot, seed=seed, small_sample=True)
    s1, s2 = sign(ci.low[0], ci.high[0]), sign(ci.low[1], ci.high[1])
    status = _c7_status(s1, s2)
    gains = {n: float(gains_t.loc[n, "gain"]) for n in names}
    by_cat = t["gains"].groupby("category")["gain"].mean()
    effect, more = float(by_cat["DATASET"]), float(by_cat["DATASET"] - by_cat["REINIT"])
    best = max(gains, key=gains.get)
    sentence = (
        f"{lead(status)}: the mix chosen on validation beats the full embedding chosen on validation by "
        f"{fmt_interval(effect, ci.low[0], ci.high[0], digits=1, scale=100, unit=' points')} for "
        f"the Dataset pairs; Dataset minus Reinit pairs "
        f"{fmt_interval(more, ci.low[1], ci.high[1], digits=1, scale=100, unit=' points')}; "
        f"largest gain for {best} ({cat_label(categories_of(study, [best])[0])}, "
        f"{100 * gains[best]:+.1f} points)."
    )
    return ClaimResult(
        "C7",
        title,
        status,
        effect,
        float(ci.low[0]),
        float(ci.high[0]),
        effect_name="test accuracy of the best mix minus the best full embedding (both chosen on "
        "validation), Dataset pairs",
        resampled=FEATURES_RESAMPLED,
        n_models=1 + len(names),
        n_pairs=len(names),
        sentence=sentence,
        paper=paper,
        checks={
            "mix_beats_full": f"interval {'above' if s1 > 0 else 'below' if s1 < 0 else 'includes'} 0",
            "more_for_divergent": fmt_interval(more, ci.low[1], ci.high[1]),
        },
        choices={"partners": parts, "chosen": chosen},
        details={"table": t["mix"], "gains": gains, "chosen": chosen},
    )


def _c7_status(gain: int, contrast: int) -> str:
    """C7's verdict from the signs of its intervals: the Dataset pairs' gain, then Dataset minus Reinit.

    Examples
    --------
    >>> [_c7_status(a, b) for a, b in [(1, 1), (0, 1), (1, 0), (0, 0), (-1, 1), (1, -1)]]
    ['reproduced', 'partly reproduced', 'inconclusive', 'inconclusive', 'not reproduced', 'not reproduced']
    """
    if gain < 0 or contrast < 0:
        return "not reproduced"
    if contrast > 0:
        return "reproduced" if gain > 0 else "partly reproduced"
    return "inconclusive"


@claim(
    "C8",
    chapter=CHAPTER,
    title="divergent pairs reach the target accuracy with fewer diverse dimensions",
    paper="dims to reach 76 % (multiples of 256): Reinit 2304, Hyper-parameters 2057, Architecture 1392, Dataset 512",
)
def c8_compression(
    study,
    *,
    chapter_tables=None,
    max_per_category: int | None = None,
    n_points: int = 8,
    probe_Cs=(0.01, 0.1, 1.0, 10.0, 100.0),
    probe_max_iter: int = 200,
    device: str = "cpu",
    categories=None,
    rates=MIXED_RATES,
    n_boot: int = 1000,
    seed: int = 0,
    probe: str = "ridge",
) -> ClaimResult:
    """C8 (Sec. 4.6, Fig. 6 right): ranking the concatenated dimensions by the diversity heuristic,
    divergently trained pairs reach the target accuracy with fewer dimensions.

    Decision rule, fixed before any data. For every Reinit and Dataset partner (all in-band partners with
    embeddings; at least :data:`MIN_PARTNERS_PER_END` per end, else *not testable*), the dimensions of
    ``[base | partner]`` are ordered most-diverse first (:func:`norep.measures.features.diversity_order`, fitted
    on the probes' training rows) and probes are fitted on ``n_points`` prefixes at the same fractions of the
    concatenation's width (1/64 to 1, geometric). Every partner is first cut to the narrowest end partner's
    width (a seeded random subset of its dimensions, :func:`norep.claims._features.matched_columns`), so that
    every compared concatenation has the same width: a narrower Dataset partner would otherwise need fewer
    dimensions (or, counted in fractions, more) by width alone. The target, fixed on the *validation* split,
    is :data:`TARGET_FRACTION` of the validation accuracy of the base's full embedding. A pair's cost is the
    fraction at which its *test* curve first reaches the target (log2, interpolated between the prefixes around
    the crossing); a pair that never reaches it is *censored* (its cost is only known to exceed the whole
    concatenation), never dropped. The effect is a concordance: the probability that a Dataset pair needs a
    smaller fraction than a Reinit pair, ties (two censored pairs) counting half, minus 1/2 (positive: Dataset
    pairs need fewer; 0: no difference). A partner that carries the base's information with less noise also
    reaches the target sooner, without being more diverse; so a second part asks that the Dataset pairs gain
    more from the concatenation: a pair's gain is the test accuracy of the whole concatenation minus that of its
    better member (the base's or the partner's full embedding, chosen on validation; the partner uncut), and
    the Dataset pairs' mean gain minus the Reinit pairs' must lie above 0. Intervals: hierarchical bootstrap
    (partners within categories, then test examples; the probes stay fixed; widened for few partners).

    Verdict: *reproduced* when both intervals lie above 0; *not reproduced* when the concordance's lies below
    0; else *inconclusive* (identical curves give 0: inconclusive, never not reproduced; Dataset pairs that
    reach the target sooner without gaining more from the concatenation than Reinit pairs: inconclusive).
    *Not testable* with too few partners per end, or when every pair already reaches the target at the first
    prefix on validation (the target saturates).
    """
    title, paper = registered("C8")
    kw = dict(max_per_category=max_per_category, probe_Cs=probe_Cs, probe_max_iter=probe_max_iter, device=device)
    kw["probe"] = probe
    t = chapter_tables or tables(study, **kw, categories=categories, rates=rates, n_points=n_points, seed=seed)
    parts = t["partners"]
    bad = ends_check("C8", title, paper, parts)
    if bad:
        return bad
    y, target, saturated, reach_rows = t["probes"]["y"], t["target"], t["saturated"], t["reach_rows"]
    reach = t["reach"]
    names = reach["partner"].tolist()
    if all(saturated):
        return not_testable(
            "C8",
            title,
            f"every pair reaches the target {target:.3f} ({TARGET_FRACTION:.0%} of the "
            "base embedding's validation accuracy) at the first prefix: the target saturates",
            paper=paper,
            n_models=1 + len(names),
            n_pairs=len(names),
        )
    cats, groups, i_lo, i_hi = end_groups(parts)  # groups index ``names`` (laid out category by category)
    groups, i_lo, i_hi = [groups[i_lo], groups[i_hi]], 0, 1  # only the tested ends are resampled

    def stat(members, w):
        lf = _log_fraction_to_target(reach_rows, target, w)
        return concordance(lf[members[i_hi]], lf[members[i_lo]])

    ci = hierarchical_bootstrap_ci(stat, groups, y["test"].shape[0], n_resamples=n_boot, seed=seed, small_sample=True)
    full = np.array([r[2][-1] for r in reach_rows])  # test correctness of each whole concatenation
    gain_rows = full - np.array(t["member_correct"], dtype=np.float64)

    def gain_stat(members, w):
        g = gain_rows @ w / w.sum()
        return float(g[members[i_hi]].mean() - g[members[i_lo]].mean())

    ci_g = hierarchical_bootstrap_ci(
        gain_stat, groups, y["test"].shape[0], n_resamples=n_boot, seed=seed, small_sample=True
    )
    gain = gain_stat([groups[0], groups[1]], np.ones(y["test"].shape[0]))
    lf = dict(zip(names, reach["log2_fraction"], strict=True))
    effect = concordance([lf[n] for n in parts["DATASET"]], [lf[n] for n in parts["REINIT"]])
    s, s_g = sign(ci.low, ci.high), sign(ci_g.low, ci_g.high)
    status = "reproduced" if s > 0 and s_g > 0 else "not reproduced" if s < 0 else "inconclusive"

    def share(c):
        vals = [lf[n] for n in parts[c]]
        fin = [2**v for v in vals if np.isfinite(v)]
        med = f"median {100 * float(np.median(fin)):.0f} % of its width" if fin else "none reaches it"
        return f"{cat_label(c)} {med} ({len(vals) - len(fin)} of {len(vals)} never)"

    sentence = (
        f"{lead(status)}: share of its own concatenated width a pair needs to reach {100 * target:.1f} % on test "
        f"({TARGET_FRACTION:.0%} of the base embedding's validation accuracy): {share('DATASET')}; {share('REINIT')}; "
        f"probability that a Dataset pair needs less than a Reinit pair, minus 1/2, "
        f"{fmt_interval(effect, ci.low, ci.high, digits=2)}; test accuracy of the whole concatenation over its "
        f"better member, Dataset minus Reinit pairs, "
        f"{fmt_interval(gain, ci_g.low, ci_g.high, digits=1, scale=100, unit=' points')}."
    )
    dims = dict(zip(names, reach["dims"], strict=True))
    return ClaimResult(
        "C8",
        title,
        status,
        effect,
        ci.low,
        ci.high,
        effect_name="P(a Dataset pair reaches the target at a smaller fraction of its width than a Reinit pair) - 1/2",
        resampled=FEATURES_RESAMPLED + " (probes fixed)",
        n_models=1 + len(names),
        n_pairs=len(names),
        sentence=sentence,
        paper=paper,
        checks={
            "target_from_validation": f"{target:.4f}",
            "saturated_pairs": int(sum(saturated)),
            "censored_pairs": int(reach["censored"].sum()),
            "dataset_pairs_gain_more_from_concatenation": fmt_interval(gain, ci_g.low, ci_g.high),
        },
        choices={"partners": parts, "target": round(target, 6)},
        details={"curves": t["compression"], "dims": dims, "log2_fraction": lf, "target": target},
    )


def _compression_curves(study, names, E, y, probe, *, target: float, n_points: int, seed: int = 0):
    """C8's probes: for each partner, probes of ``n_points`` prefixes of ``[base | partner]`` ordered most
    diverse first, each partner cut to the narrowest end partner's width
    (:func:`norep.claims._features.matched_columns`), at the same fractions of the concatenation's width (1/64
    to 1, geometric). Returns the curve rows, per pair ``(name, fractions, test correctness per prefix, total
    dimensions)``, and whether the first prefix already reaches ``target`` on validation."""
    from norep.measures.features import diversity_order

    fractions = np.geomspace(1 / 64, 1.0, n_points)
    parts = {c: [n for n in names if categories_of(study, [n])[0] == c] for c in END_CATEGORIES}
    width = end_width({n: E[n]["train"].shape[1] for n in names}, parts)
    curves, reach_rows, saturated = [], [], []
    for n in names:
        cols = matched_columns(E[n]["train"].shape[1], width, seed)
        En = {k: E[n][k][:, cols] for k in ("train", "val", "test")}
        X = {k: np.concatenate([E[study.base][k], En[k]], axis=1) for k in ("train", "val", "test")}
        order = diversity_order(E[study.base]["train"], En["train"])
        total = X["train"].shape[1]
        ks = np.maximum(1, np.round(fractions * total).astype(int))
        preds = []
        for f, k in zip(fractions, ks, strict=True):
            cols = np.sort(order[:k])
            res = probe({s: X[s][:, cols] for s in ("train", "val", "test")})
            pred = res.test_predictions if res.test_predictions is not None else res.predict(X["test"][:, cols])
            preds.append(pred == y["test"])
            curves.append(
                {
                    "partner": n,
                    "category": categories_of(study, [n])[0],
                    "dims": int(k),
                    "fraction": float(f),
                    "val_accuracy": res.val_accuracy,
                    "accuracy": res.test_accuracy,
                }
            )
        saturated.append(curves[-len(ks)]["val_accuracy"] >= target)
        reach_rows.append((n, fractions, np.array(preds, dtype=np.float64), total))
    return curves, reach_rows, saturated


def _better_member_correct(mix, correct, names) -> list:
    """Per partner, the rate of the better member of ``[base | partner]`` (1.0 the base, 0.0 the partner: the
    full embedding with the better validation accuracy, the base on ties) and its test correctness."""
    val = mix.set_index(["partner", "rate"])["val_accuracy"]
    out = []
    for n in names:
        r = 1.0 if val[(n, 1.0)] >= val[(n, 0.0)] else 0.0
        out.append((r, np.asarray(correct[(n, r)], dtype=np.float64)))
    return out


def _log_fraction_to_target(reach_rows, target: float, w) -> np.ndarray:
    """log2 of the fraction of its own width at which each test curve (examples weighted by ``w``) first reaches
    the target, interpolated linearly in log2 between the two prefixes around the crossing; ``inf`` (censored:
    more than the whole concatenation) when it never does."""
    out = []
    for _, fr, P, _total in reach_rows:
        acc = P @ w / w.sum()
        hit = np.flatnonzero(acc >= target - 1e-12)
        lf = np.log2(fr)
        if not hit.size:
            out.append(np.inf)
        elif hit[0] == 0:
            out.append(lf[0])
        else:
            i = hit[0]
            frac = (target - acc[i - 1]) / (acc[i] - acc[i - 1])
            out.append(lf[i - 1] + frac * (lf[i] - lf[i - 1]))
    return np.array(out)


def concordance(a, b) -> float:
    """The probability that a value of ``a`` is smaller than one of ``b``, ties counting half, minus 1/2
    (in [-1/2, 1/2]; ``inf`` values, censored, tie with each other and exceed every finite value).

    Examples
    --------
    >>> concordance([1.0, 2.0], [3.0, np.inf]), concordance([np.inf], [np.inf]), concordance([5.0], [1.0])
    (0.5, 0.0, -0.5)
    """
    a, b = np.asarray(a, dtype=np.float64)[:, None], np.asarray(b, dtype=np.float64)[None, :]
    return float(np.mean((a < b) + 0.5 * (a == b)) - 0.5)


__all__ = ["CHAPTER", "tables", "mixed_rates", "c7_embedding_mixes", "c8_compression"]
