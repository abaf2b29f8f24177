"""Claims on features: C7 (mixes of two embeddings) and C8 (compression by the diversity heuristic); the
linear probes, partners and checks they share with C9 (:mod:`norep.claims._transfer`)."""

from __future__ import annotations

import numpy as np

from norep import CATEGORIES
from norep.claims._core import (
    ClaimResult,
    _cache,
    band_partners,
    cat_label,
    categories_of,
    check_positive_int,
    end_groups,
    fmt_interval,
    lead,
    not_testable,
    selection_accuracy,
    sign,
    two_part_status,
)
from norep.measures.stats import hierarchical_bootstrap_ci

MIN_PARTNERS_PER_END = 1
"""C7, C8, C9: partners with embeddings needed in each end category (Reinit and Dataset). With one,
only the examples can be resampled within a category; the result says so."""

MIXED_RATES = (0.75, 0.5, 0.25)
"""C7: the base model's shares of the fixed dimension budget (the paper's 75/25, 50/50, 25/75)."""

TARGET_FRACTION = 0.98
"""C8: the target is this fraction of the validation accuracy of the base's full embedding (fixed on the
validation split; the paper's 76 % is just under its ResNet-50's accuracy). Slightly below 1 so that
the full concatenation, which holds the base's embedding, reaches it on test despite sampling noise."""

FEATURES_RESAMPLED = "partners within categories (where a category has several), then test examples"


def feature_partners(study, *, splits, max_per_category: int = 2, categories=None) -> dict[str, list[str]]:
    """Per category (default: all), up to ``max_per_category`` in-band partners with embeddings on ``splits``,
    the most accurate on the *selection* split first."""
    acc = selection_accuracy(study)
    partners = band_partners(study, embeddings_on=splits)
    out = {}
    for c in categories or CATEGORIES:
        names = [n for n, k in zip(partners, categories_of(study, partners), strict=True) if k == c]
        if names:
            out[c] = sorted(names, key=lambda n: -acc[n])[:max_per_category]
    return out


def probe_splits(study, *, seed: int = 0):
    """Train / validation / test rows for the linear probes: the store's ``train`` split (when every model
    has embeddings there) / the selection split / the evaluation split; else the selection split is
    halved (seeded) into train and validation."""
    st = study.store
    names = [str(n) for n in study.table["name"]]
    if (
        "train" in st.splits()
        and not st.is_multilabel("train")
        and all(st.has_embeddings(n, "train") for n in names if st.has_embeddings(n, study.split))
    ):
        return {
            "train": ("train", slice(None)),
            "val": (study.calib_split, slice(None)),
            "test": (study.split, slice(None)),
        }
    n_cal = st.n_examples(study.calib_split)
    perm = np.random.default_rng(seed).permutation(n_cal)
    return {
        "train": (study.calib_split, np.sort(perm[: n_cal // 2])),
        "val": (study.calib_split, np.sort(perm[n_cal // 2 :])),
        "test": (study.split, slice(None)),
    }


def _emb(study, name, take):
    return {k: np.asarray(study.store.embeddings(name, s))[i].astype(np.float32) for k, (s, i) in take.items()}


def _labels(study, take):
    return {k: np.asarray(study.store.labels(s))[i] for k, (s, i) in take.items()}


def _ends_check(claim, title, paper, parts):
    for end in ("REINIT", "DATASET"):
        if len(parts.get(end, [])) < MIN_PARTNERS_PER_END:
            return not_testable(
                claim,
                title,
                f"no in-band {cat_label(end)} partner with embeddings on the selection split",
                paper=paper,
                n_models=1 + sum(map(len, parts.values())),
                n_pairs=sum(map(len, parts.values())),
            )
    return None


def mix_probes(
    study,
    *,
    max_per_category=2,
    probe_Cs=(0.01, 0.1, 1.0, 10.0, 100.0),
    probe_max_iter=200,
    device="cpu",
    seed=0,
    rates=MIXED_RATES,
    categories=None,
):
    """Linear probes of the base's and each partner's full embedding and of their mixes (cached).

    Returns a dict with ``partners`` (category -> names), ``rows`` (one per probe: partner, category,
    rate, dims, val and test accuracy), ``correct`` ((partner, rate) -> test correctness; rate 1.0
    is the base's full embedding, 0.0 the partner's full embedding), ``y`` and ``take``.
    """
    splits = [study.split, study.calib_split]
    categories = tuple(c for c in CATEGORIES if c in (categories or CATEGORIES))
    rates = tuple(float(r) for r in rates)
    if not rates or any(not 0.0 < r < 1.0 for r in rates):
        raise ValueError(
            f"rates={rates!r} must be shares strictly between 0 and 1 (the full embeddings are always probed)"
        )
    key = ("mix", max_per_category, tuple(probe_Cs), probe_max_iter, seed, rates, categories)
    cache = _cache(study)
    if key in cache:
        return cache[key]
    parts = feature_partners(study, splits=splits, max_per_category=max_per_category, categories=categories)
    if not study.store.has_embeddings(study.base, study.split) or not study.store.has_embeddings(
        study.base, study.calib_split
    ):
        parts = {}
    take = probe_splits(study, seed=seed)
    y = _labels(study, take)
    probe = _probe_fn(y, probe_Cs=probe_Cs, probe_max_iter=probe_max_iter, device=device)
    rows, correct = [], {}
    out = {"partners": parts, "rows": rows, "correct": correct, "y": y, "take": take}
    if not parts:
        cache[key] = out
        return out
    E = {study.base: _emb(study, study.base, take)}
    res = probe(E[study.base])
    base_row = _probe_row(study.base, "base", 1.0, E[study.base], res)
    base_correct = res.predict(E[study.base]["test"]) == y["test"]
    for cat, names in parts.items():
        for other in names:
            E[other] = _emb(study, other, take)
            rows.append({**base_row, "partner": other, "category": cat})
            correct[(other, 1.0)] = base_correct
            for r, X, pr in _partner_probes(E[study.base], E[other], probe, rates=rates, seed=seed):
                correct[(other, r)] = pr.predict(X["test"]) == y["test"]
                rows.append(_probe_row(other, cat, r, X, pr))
    out["E"] = E
    out["base_val_accuracy"] = base_row["val_accuracy"]
    cache[key] = out
    return out


def _probe_fn(y, *, probe_Cs, probe_max_iter, device):
    """A linear probe of embeddings ``X`` (split -> rows) on the labels ``y`` (the same splits)."""
    from norep.measures.features import linear_probe

    def probe(X):
        return linear_probe(
            X["train"],
            y["train"],
            X["val"],
            y["val"],
            X["test"],
            y["test"],
            Cs=list(probe_Cs),
            device=device,
            max_iter=probe_max_iter,
        )

    return probe


def _partner_probes(E_base, E_other, probe, *, rates, seed):
    """Probes of the base's and a partner's embeddings mixed at each of ``rates``, then of the partner's full
    embedding (rate 0.0), in that order: ``(rate, embeddings, probe result)`` each."""
    from norep.measures.features import concat_at_rate

    for r in rates:
        X = {k: concat_at_rate(E_base[k], E_other[k], float(r), seed=seed)[0] for k in E_other}
        yield float(r), X, probe(X)
    yield 0.0, E_other, probe(E_other)  # 0/100: the partner's full embedding


def _probe_row(partner, category, rate, X, res) -> dict:
    """One row of :func:`mix_probes`' table."""
    return {
        "partner": partner,
        "category": category,
        "rate": rate,
        "dims": X["train"].shape[1],
        "val_accuracy": res.val_accuracy,
        "accuracy": res.test_accuracy,
    }


def c7_embedding_mixes(
    study,
    *,
    max_per_category: int = 2,
    probe_Cs=(0.01, 0.1, 1.0, 10.0, 100.0),
    probe_max_iter: int = 200,
    device: str = "cpu",
    categories=None,
    rates=MIXED_RATES,
    n_boot: int = 1000,
    seed: int = 0,
) -> ClaimResult:
    """C7 (Sec. 4.6, Fig. 6 left/center): a mix of two embeddings under a fixed dimension budget beats
    either full embedding under linear evaluation, and more so the more the training methods differ.

    For the base and each partner (up to ``max_per_category`` in-band partners per category with
    embeddings, the most accurate on the selection split), linear probes are fitted on the base's
    full embedding, the partner's full embedding and the mixes at :data:`MIXED_RATES`
    (:func:`norep.measures.features.concat_at_rate`, budget = the base's dimension). On the *validation*
    split, the best mix and the better full embedding are chosen; on test, a pair's gain is the
    chosen mix's accuracy minus the chosen full embedding's. Two parts:

    * *a mix beats the full embeddings*: mean gain of the Dataset pairs above 0 (the effect);
    * *more so for divergent pairs*: mean gain of the Dataset pairs minus that of the Reinit pairs
      above 0.

    Intervals: hierarchical bootstrap (partners within categories, then test examples). Verdict:
    *reproduced* when both intervals lie above 0; *not reproduced* when the first lies below 0, or
    when it includes 0 and the second lies below 0 (the order reversed); *partly reproduced* when one
    lies above 0; else *inconclusive*. *Not testable* without
    :data:`MIN_PARTNERS_PER_END` Reinit and Dataset partners with embeddings.
    """
    title = "a mix of two embeddings beats either full embedding, more so for divergent pairs"
    paper = (
        "mixes (25/75, 50/50, 75/25) beat either full embedding, more for divergent pairs; best pair ResNet-50 + CLIP-S"
    )
    mp = mix_probes(
        study,
        max_per_category=max_per_category,
        probe_Cs=probe_Cs,
        probe_max_iter=probe_max_iter,
        device=device,
        seed=seed,
        categories=categories,
        rates=tuple(float(r) for r in rates),
    )
    parts = mp["partners"]
    bad = _ends_check("C7", title, paper, parts)
    if bad:
        return bad
    import pandas as pd

    rows = pd.DataFrame(mp["rows"])
    names = [n for c in parts for n in parts[c]]
    chosen, gain_rows = {}, []
    for n in names:
        sub = rows[rows["partner"] == n]
        mixed = sub[sub["rate"].isin([float(r) for r in rates])]
        r_mix = float(mixed.sort_values("val_accuracy", kind="stable")["rate"].iloc[-1])
        full = sub[sub["rate"].isin([0.0, 1.0])].set_index("rate")["val_accuracy"]
        r_full = 1.0 if full[1.0] >= full[0.0] else 0.0
        chosen[n] = {"mix_rate": r_mix, "full": "base" if r_full == 1.0 else "partner"}
        gain_rows.append(mp["correct"][(n, r_mix)].astype(np.float64) - mp["correct"][(n, r_full)])
    G = np.array(gain_rows)
    cats, groups, i_lo, i_hi = end_groups(parts)

    def stat(members, w):
        g = G @ w / w.sum()
        return [g[members[i_hi]].mean(), g[members[i_hi]].mean() - g[members[i_lo]].mean()]

    ci = hierarchical_bootstrap_ci(stat, groups, G.shape[1], n_resamples=n_boot, seed=seed)
    s1, s2 = sign(ci.low[0], ci.high[0]), sign(ci.low[1], ci.high[1])
    status = two_part_status(s1, s2)
    gains = dict(zip(names, G.mean(axis=1).tolist(), strict=True))
    best = max(gains, key=gains.get)
    sentence = (
        f"{lead(status)}: the mix chosen on validation beats the full embedding chosen on validation by "
        f"{fmt_interval(ci.estimate[0], ci.low[0], ci.high[0], digits=1, scale=100, unit=' points')} for "
        f"the Dataset pairs; Dataset minus Reinit pairs "
        f"{fmt_interval(ci.estimate[1], ci.low[1], ci.high[1], digits=1, scale=100, unit=' points')}; "
        f"largest gain for {best} ({cat_label(categories_of(study, [best])[0])}, "
        f"{100 * gains[best]:+.1f} points)."
    )
    return ClaimResult(
        "C7",
        title,
        status,
        float(ci.estimate[0]),
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
            "more_for_divergent": fmt_interval(ci.estimate[1], ci.low[1], ci.high[1]),
        },
        choices={"partners": parts, "chosen": chosen},
        details={"table": rows, "gains": gains, "chosen": chosen},
    )


def c8_compression(
    study,
    *,
    max_per_category: int = 2,
    n_points: int = 8,
    probe_Cs=(0.01, 0.1, 1.0, 10.0, 100.0),
    probe_max_iter: int = 200,
    device: str = "cpu",
    categories=None,
    rates=MIXED_RATES,
    n_boot: int = 1000,
    seed: int = 0,
) -> ClaimResult:
    """C8 (Sec. 4.6, Fig. 6 right): ranking the concatenated dimensions by the diversity heuristic,
    divergently trained pairs reach the target accuracy with fewer dimensions.

    For each partner of C7, the dimensions of ``[base | partner]`` are ordered most-diverse first
    (:func:`norep.measures.features.diversity_order`, fitted on the probes' training rows) and probes are
    fitted on ``n_points`` prefixes spaced geometrically from 1/64 of the concatenation to all of
    it. The target, fixed on the *validation* split, is :data:`TARGET_FRACTION` of the validation
    accuracy of the base's full embedding (the paper's 76 % is about its ResNet-50's accuracy); a
    pair's cost is the smallest prefix whose *test* accuracy reaches it, interpolated in log2
    dimensions between the prefixes around the crossing (a pair that never does is counted at twice
    the full concatenation, and said so). The effect is the mean log2 dimensions of the Reinit pairs minus
    that of the Dataset pairs (positive: Dataset pairs need fewer), hierarchical bootstrap
    (partners within categories, then test examples; the probes stay fixed).

    Verdict: *reproduced* / *not reproduced* when the interval lies above / below 0, else
    *inconclusive* (equal dimensions give an interval at 0: inconclusive, never not reproduced).
    *Not testable* without Reinit and Dataset partners, or when every pair already reaches the
    target at the first prefix on validation (the target saturates).
    """
    title = "divergent pairs reach the target accuracy with fewer diverse dimensions"
    paper = "dims to reach 76 % (multiples of 256): Reinit 2304, Hyper-parameters 2057, Architecture 1392, Dataset 512"
    n_points = check_positive_int("n_points", n_points, 2)
    mp = mix_probes(
        study,
        max_per_category=max_per_category,
        probe_Cs=probe_Cs,
        probe_max_iter=probe_max_iter,
        device=device,
        seed=seed,
        categories=categories,
        rates=tuple(float(r) for r in rates),
    )
    parts = mp["partners"]
    bad = _ends_check("C8", title, paper, parts)
    if bad:
        return bad
    y, E = mp["y"], mp["E"]
    target = TARGET_FRACTION * float(mp["base_val_accuracy"])
    names = [n for c in CATEGORIES if c in parts for n in parts[c]]
    probe = _probe_fn(y, probe_Cs=probe_Cs, probe_max_iter=probe_max_iter, device=device)
    curves, reach_rows, saturated = _compression_curves(study, names, E, y, probe, target=target, n_points=n_points)
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
    cats, groups, i_lo, i_hi = end_groups(parts)

    def stat(members, w):
        ld = _log_dims_to_target(reach_rows, target, w)
        return float(ld[members[i_lo]].mean() - ld[members[i_hi]].mean())

    ci = hierarchical_bootstrap_ci(stat, groups, y["test"].shape[0], n_resamples=n_boot, seed=seed)
    ld = _log_dims_to_target(reach_rows, target, np.ones(y["test"].shape[0]))
    dims = {n: (int(round(2**v)) if 2**v <= r[3] else None) for n, v, r in zip(names, ld, reach_rows, strict=True)}
    s = sign(ci.low, ci.high)
    status = {1: "reproduced", -1: "not reproduced", 0: "inconclusive"}[s]
    per_cat = {c: [dims[names[i]] for i in groups[k]] for k, c in enumerate(cats)}
    sentence = (
        f"{lead(status)}: dimensions to reach {100 * target:.1f} % ({TARGET_FRACTION:.0%} of the base "
        f"embedding's validation accuracy) "
        f"on test: "
        + "; ".join(
            f"{cat_label(c)} " + ", ".join("never" if v is None else str(v) for v in vals)
            for c, vals in per_cat.items()
        )
        + f"; mean log2 dimensions, Reinit minus Dataset = {fmt_interval(ci.estimate, ci.low, ci.high, digits=2)}."
    )
    import pandas as pd

    return ClaimResult(
        "C8",
        title,
        status,
        ci.estimate,
        ci.low,
        ci.high,
        effect_name="mean log2 dimensions to reach the target, Reinit minus Dataset pairs",
        resampled=FEATURES_RESAMPLED + " (probes fixed)",
        n_models=1 + len(names),
        n_pairs=len(names),
        sentence=sentence,
        paper=paper,
        checks={"target_from_validation": f"{target:.4f}", "saturated_pairs": int(sum(saturated))},
        choices={"partners": parts, "target": round(target, 6)},
        details={"curves": pd.DataFrame(curves), "dims": dims, "target": target},
    )


def _compression_curves(study, names, E, y, probe, *, target: float, n_points: int):
    """C8's probes: for each partner, probes of ``n_points`` prefixes of ``[base | partner]`` ordered most
    diverse first. Returns the curve rows, per pair ``(name, prefix sizes, test correctness per prefix,
    total dimensions)``, and whether the first prefix already reaches ``target`` on validation."""
    from norep.measures.features import diversity_order

    curves, reach_rows, saturated = [], [], []
    for n in names:
        X = {k: np.concatenate([E[study.base][k], E[n][k]], axis=1) for k in ("train", "val", "test")}
        order = diversity_order(E[study.base]["train"], E[n]["train"])
        total = X["train"].shape[1]
        ks = np.unique(np.round(np.geomspace(max(1, total / 64), total, n_points)).astype(int))
        preds = []
        for k in ks:
            cols = np.sort(order[:k])
            res = probe({s: X[s][:, cols] for s in ("train", "val", "test")})
            preds.append(res.predict(X["test"][:, cols]) == y["test"])
            curves.append(
                {
                    "partner": n,
                    "category": categories_of(study, [n])[0],
                    "dims": int(k),
                    "val_accuracy": res.val_accuracy,
                    "accuracy": res.test_accuracy,
                }
            )
        saturated.append(curves[-len(ks)]["val_accuracy"] >= target)
        reach_rows.append((n, ks, np.array(preds, dtype=np.float64), total))
    return curves, reach_rows, saturated


def _log_dims_to_target(reach_rows, target: float, w) -> np.ndarray:
    """log2 of the dimensions where each test curve first reaches the target, interpolated linearly
    in log2(dims) between the two prefixes around the crossing (twice the total when never)."""
    out = []
    for _, ks, P, total in reach_rows:
        acc = P @ w / w.sum()
        hit = np.flatnonzero(acc >= target - 1e-12)
        lk = np.log2(ks.astype(np.float64))
        if not hit.size:
            out.append(np.log2(2 * total))
        elif hit[0] == 0:
            out.append(lk[0])
        else:
            i = hit[0]
            frac = (target - acc[i - 1]) / (acc[i] - acc[i - 1])
            out.append(lk[i - 1] + frac * (lk[i] - lk[i - 1]))
    return np.array(out)


__all__ = [
    "MIN_PARTNERS_PER_END",
    "MIXED_RATES",
    "TARGET_FRACTION",
    "feature_partners",
    "probe_splits",
    "mix_probes",
    "c7_embedding_mixes",
    "c8_compression",
]
