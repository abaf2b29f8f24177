"""Claims on specialization: C4 (the angle theta separates by who is correct) and C5 (class-group
structure of the specialization)."""

from __future__ import annotations

import math

import numpy as np

from norep.claims._core import (
    MODELS_AND_EXAMPLES,
    ClaimResult,
    _cache,
    band_partners,
    by_category,
    cat_label,
    count_models,
    fmt_interval,
    lead,
    not_testable,
    pair_data,
    sign,
)
from norep.claims._pairs import MIN_MODELS_PER_END, _ends
from norep.measures.stats import hierarchical_bootstrap_ci

ALPHA = 0.05
"""Level of the C5 permutation tests."""

MIN_CLASSES_C5 = 4
"""C5: classes (in the class groups) needed for the class-permutation test."""

MIN_PERMUTATIONS_C5 = 40
"""C5: distinct assignments of classes to groups needed (so that p < ALPHA is reachable)."""


def _thetas(study, names, split):
    """(M, N) specialization angle of the base (A) against each partner (B), degrees."""
    from norep.measures.specialization import theta

    key = ("theta", tuple(names), split)
    cache = _cache(study)
    if key not in cache:
        pb = study.probs(study.base, split)
        cache[key] = np.array([theta(pb, study.probs(n, split)) for n in names]).reshape(len(names), -1)
    return cache[key]


def c4_specialization_angle(study, *, n_boot: int = 1000, seed: int = 0) -> ClaimResult:
    """C4 (Sec. 4.3, Fig. 3): each model is more confident where only it is correct, strongest for
    Dataset pairs and absent for Reinit pairs.

    For a pair (A = base, B = partner) the *separation* is the mean angle
    theta = atan2(conf_A, conf_B) over the examples only A gets right minus the mean over those
    only B gets right (degrees; positive when each model is the more confident one where it alone
    is right). Two parts, on the evaluation split, over every in-band partner (band on the
    selection split):

    * *strongest for Dataset*: mean separation of the Dataset pairs minus that of the Reinit pairs
      (hierarchical bootstrap: models within categories, then test examples) above 0;
    * *absent for Reinit*: the Reinit pairs' mean separation has an interval that includes 0.

    Verdict: *reproduced* when both hold; *partly reproduced* when the first holds only;
    *not reproduced* when the difference lies below 0; else *inconclusive*. *Not testable* with
    fewer than :data:`MIN_MODELS_PER_END` in-band Reinit or Dataset models.
    """
    title = "specialization angle separates by outcome, strongest for Dataset, absent for Reinit"
    paper = "theta separates by who is correct: strongest for Dataset (CLIP-S), absent for Reinit"
    partners = band_partners(study)
    groups, bad = _ends(study, partners, "C4", title, paper)
    if bad:
        return bad
    d = pair_data(study, partners, study.split)
    th = _thetas(study, partners, study.split)
    only_a = (~d.correct & d.base_correct[None]).astype(np.float64)
    only_b = (d.correct & ~d.base_correct[None]).astype(np.float64)
    cats = list(groups)
    i_lo, i_hi = cats.index("REINIT"), cats.index("DATASET")

    def sep(w):
        with np.errstate(invalid="ignore", divide="ignore"):
            return ((th * only_a) @ w) / (only_a @ w) - ((th * only_b) @ w) / (only_b @ w)

    def stat(members, w):
        s = sep(w)
        return [np.nanmean(s[members[i_hi]]) - np.nanmean(s[members[i_lo]]), np.nanmean(s[members[i_lo]])]

    ci = hierarchical_bootstrap_ci(stat, [groups[c] for c in cats], d.y.shape[0], n_resamples=n_boot, seed=seed)
    s_all = sep(np.ones(d.y.shape[0]))
    means = {c: float(np.nanmean(s_all[groups[c]])) for c in cats}
    s = sign(ci.low[0], ci.high[0])
    reinit_absent = sign(ci.low[1], ci.high[1]) == 0
    if s > 0:
        status = "reproduced" if reinit_absent else "partly reproduced"
    else:
        status = "not reproduced" if s < 0 else "inconclusive"
    sentence = (
        f"{lead(status)}: separation of the angle by outcome, Dataset minus Reinit pairs = "
        f"{fmt_interval(ci.estimate[0], ci.low[0], ci.high[0], digits=1, unit=' deg')}; Reinit pairs alone "
        f"{fmt_interval(ci.estimate[1], ci.low[1], ci.high[1], digits=1, unit=' deg')} "
        f"({'absent' if reinit_absent else 'present'}, the paper: absent); category means "
        + ", ".join(f"{cat_label(c)} {means[c]:.1f} deg" for c in cats)
        + "."
    )
    return ClaimResult(
        "C4",
        title,
        status,
        float(ci.estimate[0]),
        float(ci.low[0]),
        float(ci.high[0]),
        effect_name="mean separation (degrees), Dataset minus Reinit pairs",
        resampled=MODELS_AND_EXAMPLES,
        n_models=count_models(study, partners),
        n_pairs=len(partners),
        sentence=sentence,
        paper=paper,
        checks={
            "stronger_for_dataset": f"interval {'above' if s > 0 else 'below' if s < 0 else 'includes'} 0",
            "absent_for_reinit": reinit_absent,
        },
        choices={"partners": partners},
        details={
            "separation": dict(zip(partners, s_all.tolist(), strict=True)),
            "category_means": means,
            "reinit": (float(ci.estimate[1]), float(ci.low[1]), float(ci.high[1])),
        },
    )


def _group_labels(study, class_groups):
    groups = class_groups if class_groups is not None else study.store.class_groups
    if not isinstance(groups, dict):
        raise ValueError(f"class_groups={class_groups!r} must be a dict group -> class ids")
    classes, labels, seen = [], [], set()
    for g, (_, ids) in enumerate(groups.items()):
        for c in ids:
            c = int(c)
            if c in seen:
                continue  # a class in several groups counts for the first
            seen.add(c)
            classes.append(c)
            labels.append(g)
    return list(groups), np.array(classes, dtype=np.int64), np.array(labels, dtype=np.int64)


def _n_assignments(labels) -> int:
    counts = np.bincount(labels)
    n = math.factorial(int(labels.size))
    for k in counts:
        n //= math.factorial(int(k))
    return n


def c5_class_groups(
    study, *, class_groups=None, n_boot: int = 1000, n_permutations: int = 999, seed: int = 0
) -> ClaimResult:
    """C5 (Sec. 4.4, Fig. 4): Dataset pairs specialise along groups of classes; Architecture pairs
    specialise without class structure.

    For a pair (A = base, B = partner) and a class c, ``d_c = (only_A - only_B) / (only_A + only_B)``
    over the class's examples where exactly one model is right: who wins the disagreements, which
    is normalised by the pair's error inconsistency and does not depend on the two accuracies'
    gap in the way a raw accuracy difference does. The *group structure* of a pair is the
    between-group variance of ``d_c`` (weighted by the disagreements of each class). The null
    permutes the classes between groups (the same permutation for every pair of a category);
    the p-value of a category is that of the mean structure of its in-band pairs (band on the
    selection split). The effect is the structure in excess of the null mean, Dataset pairs minus
    Architecture pairs (hierarchical bootstrap: models within categories, then test examples).

    Verdict: *reproduced* when the Dataset pairs are structured (p < :data:`ALPHA`) and the
    Architecture pairs are not; *partly reproduced* when both are; *not reproduced* when only the
    Architecture pairs are; *inconclusive* when neither is. *Not testable* without an in-band
    Dataset and Architecture partner, with fewer than two class groups or
    :data:`MIN_CLASSES_C5` grouped classes, or too few distinct assignments
    (:data:`MIN_PERMUTATIONS_C5`).
    """
    title = "Dataset pairs specialise by class group; Architecture pairs without structure"
    paper = (
        "CLIP-S better on anthropogenic classes (ids ~500-900), ResNet-50 on nature (ids ~0-300); "
        "Architecture pairs specialise without class structure"
    )
    partners = band_partners(study)
    groups = by_category(study, partners)
    names_g, classes, labels = _group_labels(study, class_groups)
    untestable = _c5_untestable(study, partners, groups, classes, labels, title, paper)
    if untestable is not None:
        return untestable
    idx = {c: groups[c] for c in ("ARCH", "DATASET")}
    names = [partners[i] for i in idx["ARCH"] + idx["DATASET"]]
    d = pair_data(study, names, study.split)
    y = d.y
    only_a = (~d.correct & d.base_correct[None]).astype(np.float64)
    only_b = (d.correct & ~d.base_correct[None]).astype(np.float64)
    class_counts = _class_counter(y, classes)

    rng = np.random.default_rng(seed)
    perms = [rng.permutation(labels) for _ in range(int(n_permutations))]
    ones = np.ones(y.shape[0])
    a_c, b_c = class_counts(only_a, ones), class_counts(only_b, ones)
    obs = _group_structure(a_c, b_c, labels)
    null = np.array([_group_structure(a_c, b_c, p) for p in perms])  # (K, P)
    local = {"ARCH": np.arange(len(idx["ARCH"])), "DATASET": len(idx["ARCH"]) + np.arange(len(idx["DATASET"]))}
    pvals = _category_pvalues(obs, null, local)
    few = perms[:50]

    def stat(members, w):
        ac, bc = class_counts(only_a, w), class_counts(only_b, w)
        exc = _group_structure(ac, bc, labels) - np.mean([_group_structure(ac, bc, p) for p in few], axis=0)
        return float(exc[members[1]].mean() - exc[members[0]].mean())

    ci = hierarchical_bootstrap_ci(stat, [local["ARCH"], local["DATASET"]], y.shape[0], n_resamples=n_boot, seed=seed)
    status = _c5_status(pvals["DATASET"] < ALPHA, pvals["ARCH"] < ALPHA)
    dc_group = _dataset_wins_by_group(a_c, b_c, labels, names_g, local["DATASET"])
    partner_best = min(dc_group, key=lambda g: dc_group[g]) if dc_group else ""
    sentence = (
        f"{lead(status)}: class-group structure of who wins the disagreements (class-permutation test): "
        f"Dataset pairs p = {pvals['DATASET']:.3f}, Architecture pairs p = {pvals['ARCH']:.3f}; "
        f"structure beyond the null, Dataset minus Architecture = "
        f"{fmt_interval(ci.estimate, ci.low, ci.high, digits=4)}; the Dataset partners win most on "
        f"group '{partner_best}'."
    )
    return ClaimResult(
        "C5",
        title,
        status,
        ci.estimate,
        ci.low,
        ci.high,
        effect_name="class-group structure beyond the permutation null, Dataset minus Architecture pairs",
        resampled=(
            "classes between groups (permutation p-values); models within categories, then test examples (interval)"
        ),
        n_models=count_models(study, names),
        n_pairs=len(names),
        sentence=sentence,
        paper=paper,
        checks={
            "dataset_structured": f"p = {pvals['DATASET']:.3f}",
            "architecture_unstructured": f"p = {pvals['ARCH']:.3f}",
        },
        choices={
            "dataset_partners": [partners[i] for i in idx["DATASET"]],
            "architecture_partners": [partners[i] for i in idx["ARCH"]],
        },
        details={
            "p_values": pvals,
            "structure": dict(zip(names, obs.tolist(), strict=True)),
            "dataset_wins_by_group": dc_group,
            "groups": names_g,
        },
    )


def _class_counter(y, classes):
    """``counts(arr, w)``: the per-class sums of ``arr`` (pairs x examples) weighted by ``w``, over the
    examples whose label is one of ``classes`` (in that order)."""
    pos = {c: i for i, c in enumerate(classes.tolist())}
    keep = np.array([pos.get(int(c), -1) for c in y])
    mask = keep >= 0
    k_idx = keep[mask]

    def class_counts(arr, w):
        return _class_counts(arr, w, mask, k_idx, classes.size)

    return class_counts


def _category_pvalues(obs, null, local) -> dict[str, float]:
    """Permutation p-value of each category's mean group structure (``obs``: per pair; ``null``:
    permutations x pairs; ``local``: category -> the pairs' positions)."""
    pvals = {}
    for cat, li in local.items():
        o = obs[li].mean()
        pvals[cat] = float((1 + np.count_nonzero(null[:, li].mean(axis=1) >= o - 1e-12)) / (1 + null.shape[0]))
    return pvals


def _c5_status(dataset_structured: bool, arch_structured: bool) -> str:
    """C5's verdict: Dataset pairs structured and Architecture pairs not."""
    ds, ar = dataset_structured, arch_structured
    return (
        "reproduced"
        if ds and not ar
        else "partly reproduced"
        if ds and ar
        else "not reproduced"
        if ar
        else "inconclusive"
    )


def _c5_untestable(study, partners, groups, classes, labels, title: str, paper: str) -> ClaimResult | None:
    """C5's *not testable* result when a category, the class groups or the assignments are too few."""
    for cat in ("DATASET", "ARCH"):
        if cat not in groups:
            return not_testable(
                "C5",
                title,
                f"no in-band {cat_label(cat)} partner on the selection split",
                paper=paper,
                n_models=count_models(study, partners),
                n_pairs=len(partners),
            )
    if len(set(labels.tolist())) < 2 or classes.size < MIN_CLASSES_C5:
        return not_testable(
            "C5",
            title,
            f"{len(set(labels.tolist()))} class group(s) over {classes.size} classes; "
            f"at least 2 groups over {MIN_CLASSES_C5} classes are needed",
            paper=paper,
            n_models=count_models(study, partners),
            n_pairs=len(partners),
        )
    if _n_assignments(labels) < MIN_PERMUTATIONS_C5:
        return not_testable(
            "C5",
            title,
            f"only {_n_assignments(labels)} distinct assignments of the {classes.size} "
            f"classes to groups; at least {MIN_PERMUTATIONS_C5} are needed",
            paper=paper,
            n_models=count_models(study, partners),
            n_pairs=len(partners),
        )
    return None


def _class_counts(arr, w, mask, k_idx, n_classes: int) -> np.ndarray:
    """(P, classes) weighted counts of ``arr`` (P, N) per grouped class (examples weighted by ``w``)."""
    ww = w[mask]
    return np.stack([np.bincount(k_idx, weights=arr[m][mask] * ww, minlength=n_classes) for m in range(arr.shape[0])])


def _group_structure(a_c, b_c, lab) -> np.ndarray:
    """(P,) between-group variance of d_c for group labels ``lab`` of the grouped classes."""
    n = a_c + b_c
    with np.errstate(invalid="ignore", divide="ignore"):
        dc = np.where(n > 0, (a_c - b_c) / np.where(n > 0, n, 1), 0.0)
    tot = n.sum(axis=1, keepdims=True)
    overall = (n * dc).sum(axis=1, keepdims=True) / np.where(tot > 0, tot, 1)
    out = np.zeros(a_c.shape[0])
    for g in np.unique(lab):
        sel = lab == g
        ng = n[:, sel].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mg = np.where(ng > 0, (n[:, sel] * dc[:, sel]).sum(axis=1) / np.where(ng > 0, ng, 1), 0.0)
        out += ng * (mg - overall[:, 0]) ** 2
    return out / np.where(tot[:, 0] > 0, tot[:, 0], 1)


def _dataset_wins_by_group(a_c, b_c, labels, names_g, rows) -> dict[str, float]:
    """Per class group, ``d`` of the Dataset pairs (``rows``) pooled: below 0 where the partner wins."""
    dc_group = {}
    n_all = a_c + b_c
    for g, gname in enumerate(names_g):
        sel = labels == g
        if not sel.any():
            continue
        tot = n_all[rows][:, sel].sum()
        dc_group[gname] = float((a_c[rows][:, sel].sum() - b_c[rows][:, sel].sum()) / tot) if tot else float("nan")
    return dc_group


__all__ = [
    "ALPHA",
    "MIN_CLASSES_C5",
    "MIN_PERMUTATIONS_C5",
    "MIN_MODELS_PER_END",
    "c4_specialization_angle",
    "c5_class_groups",
]
