"""Chapter 03, specialization (Secs. 4.3-4.4, Figs. 3-4): the angle theta by outcome, who wins the
disagreements class by class, and claims C4 (the angle separates by who is correct) and C5 (class-group
structure of the specialization)."""

from __future__ import annotations

import math
import warnings

import numpy as np

from norep import CATEGORIES
from norep.claims._core import (
    MIN_MODELS_PER_END,
    MODELS_AND_EXAMPLES,
    ClaimResult,
    _cache,
    band_partners,
    by_category,
    cat_label,
    count_models,
    equivalence,
    fmt_interval,
    lead,
    not_testable,
    pair_data,
    require_ends,
    side,
    sign,
)
from norep.measures.stats import hierarchical_bootstrap_ci
from norep.paper._registry import claim, registered

CHAPTER = "03_specialization"

ALPHA = 0.05
"""Level of the C5 class-permutation tests (described beside the verdict, not deciding it)."""

MIN_CLASSES_C5 = 4
"""C5: classes (in the class groups) needed for the class-permutation test."""

MIN_PERMUTATIONS_C5 = 40
"""C5: distinct assignments of classes to groups needed (so that p < ALPHA is reachable)."""


def tables(study, *, pair_models=None, class_groups=None, bins: int = 18) -> dict:
    """The chapter's tables, every number from :mod:`norep.measures.specialization`.

    ``chosen``: the pairs the figures show (category -> partner: ``pair_models``, else the most accurate
    in-band partner on the selection split, see :meth:`norep.study.Study.pick`); ``hists``: their
    histograms of theta by outcome over the examples where any shown pair disagrees. ``separation``: for
    every in-band partner (band on the selection split), the mean angle where only the base is right
    minus where only the partner is right (degrees); ``separation_means``: its category means.
    ``classes``: for every in-band Architecture and Dataset partner and every class of ``class_groups``
    (default: the store's), the disagreements won by the base (``only_a``) and by the partner
    (``only_b``), and ``d = (only_a - only_b) / (only_a + only_b)``; ``class_wins`` and ``group_wins``:
    ``d`` pooled over the pairs of each category, per class and per class group (below 0 where the
    partners win). ``groups``: the class groups.
    """
    import pandas as pd

    from norep.measures import specialization

    groups = class_groups if class_groups is not None else study.store.class_groups
    if not isinstance(groups, dict):
        raise ValueError(f"parameter class_groups={class_groups!r} must be a dict group -> class ids")
    if not isinstance(bins, int) or isinstance(bins, bool) or bins < 2:
        raise ValueError(f"parameter bins={bins!r} must be an integer >= 2")
    chosen = _chosen_pairs(study, pair_models)
    y, pb = study.labels(), study.probs(study.base)
    probs = {cat: study.probs(name) for cat, name in chosen.items()}
    disagree = specialization.any_inconsistent(y, [(pb, p) for p in probs.values()]) if probs else None
    hists = {
        f"{study.base} vs {name} ({cat})": specialization.theta_histogram(y, pb, probs[cat], bins=bins, mask=disagree)
        for cat, name in chosen.items()
    }
    everything = {"all classes": list(range(len(study.store.class_names)))}
    sep_rows, class_rows = [], []
    group_of: dict[int, str] = {}
    for g, ids in groups.items():
        for c in ids:
            group_of.setdefault(int(c), g)  # a class in several groups counts for the first, as in C5
    for name in band_partners(study):
        cat = study.category(name)
        per_class = specialization.per_class_specialization(y, pb, study.probs(name))
        s = specialization.class_group_summary(per_class, everything).iloc[0]
        sep_rows.append(
            {"name": name, "category": cat, "separation_deg": s["mean_theta_only_a"] - s["mean_theta_only_b"]}
        )
        if cat in ("ARCH", "DATASET") and groups:
            class_rows.append(_disagreements(per_class, name, cat, group_of, study.store.class_names))
    separation = pd.DataFrame(sep_rows, columns=["name", "category", "separation_deg"])
    cats = [c for c in CATEGORIES if c in set(separation["category"])]
    classes = pd.concat(class_rows, ignore_index=True) if class_rows else pd.DataFrame(columns=_CLASS_COLUMNS)
    return {
        "chosen": chosen,
        "hists": hists,
        "separation": separation,
        "separation_means": separation.groupby("category")["separation_deg"].mean().reindex(cats),
        "classes": classes,
        "class_wins": _pooled(classes, ["category", "class_id", "class_name", "group"]),
        "group_wins": _pooled(classes, ["category", "group"]),
        "groups": groups,
    }


_CLASS_COLUMNS = ["name", "category", "class_id", "class_name", "group", "only_a", "only_b", "d"]


def _chosen_pairs(study, pair_models) -> dict:
    """The pairs the figures show: ``pair_models`` (checked), else one per category chosen on the selection split."""
    if pair_models is None:
        chosen = {cat: study.pick(cat) for cat in ("REINIT", "ARCH", "DATASET")}
        chosen = {cat: name for cat, name in chosen.items() if name is not None}
    elif not isinstance(pair_models, dict) or not pair_models:
        raise ValueError(f"parameter pair_models={pair_models!r} must be a dict category -> model name")
    else:
        chosen = dict(pair_models)
    missing = [n for n in chosen.values() if n not in set(study.table["name"])]
    if missing:
        raise ValueError(f"parameter pair_models names unknown models {missing}")
    return chosen  # empty when the store has no Reinit, Architecture or Dataset partner: no figure pairs


def _disagreements(per_class, name, cat, group_of, class_names):
    """Per grouped class of one pair: the disagreements each model wins (counts) and ``d``."""
    t = per_class[per_class["class_id"].isin(list(group_of))]
    n = t["n"].to_numpy(np.float64)
    a = np.rint(t["only_a"].to_numpy(np.float64) * n)
    b = np.rint(t["only_b"].to_numpy(np.float64) * n)
    a, b = np.where(n > 0, a, 0.0), np.where(n > 0, b, 0.0)
    import pandas as pd

    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(a + b > 0, (a - b) / np.where(a + b > 0, a + b, 1), np.nan)
    ids = t["class_id"].astype(int).tolist()
    return pd.DataFrame(
        {
            "name": name,
            "category": cat,
            "class_id": ids,
            "class_name": [str(class_names[i]) for i in ids],
            "group": [group_of[i] for i in ids],
            "only_a": a,
            "only_b": b,
            "d": d,
        }
    )


def _pooled(classes, by):
    """``d`` pooled over the rows of each ``by`` group: (sum only_a - sum only_b) / (sum of both)."""
    g = classes.groupby(by, sort=False)[["only_a", "only_b"]].sum().reset_index()
    with np.errstate(invalid="ignore", divide="ignore"):
        g["d"] = (g["only_a"] - g["only_b"]) / (g["only_a"] + g["only_b"])
    return g


def _thetas(study, names, split):
    """(M, N) specialization angle of the base (A) against each partner (B), degrees."""
    from norep.measures.specialization import theta

    key = ("theta", tuple(names), split)
    cache = _cache(study)
    if key not in cache:
        pb = study.probs(study.base, split)
        cache[key] = np.array([theta(pb, study.probs(n, split)) for n in names]).reshape(len(names), -1)
    return cache[key]


C4_ABSENT_RATIO = 0.25
"""C4, "absent for Reinit": the Reinit pairs' mean separation is called absent when the 95 % interval of
its ratio to the Dataset pairs' mean separation lies inside (-0.25, 0.25), i.e. less than a quarter of
the Dataset effect either way (an equivalence margin fixed before any data were read)."""


@claim(
    "C4",
    chapter=CHAPTER,
    title="specialization angle separates by outcome, strongest for Dataset, absent for Reinit",
    paper="theta separates by who is correct: strongest for Dataset (CLIP-S), absent for Reinit",
)
def c4_specialization_angle(study, *, n_boot: int = 1000, seed: int = 0, chapter_tables=None) -> ClaimResult:
    """C4 (Sec. 4.3, Fig. 3): each model is more confident where only it is correct, strongest for
    Dataset pairs and absent for Reinit pairs.

    For a pair (A = base, B = partner) the *separation* is the mean angle
    theta = atan2(conf_A, conf_B) over the examples only A gets right minus the mean over those
    only B gets right (degrees; positive when each model is the more confident one where it alone
    is right). Any calibrated model is more confident where it alone is right, so a positive
    separation is expected of every pair; the claim is about its size by category.

    Verdict rule (fixed before any data are read). Two parts, on the evaluation split, over every
    in-band partner (band on the selection split), 95 % two-level intervals (models within categories,
    then test examples, widened for few models):

    * *strongest for Dataset* (the effect): mean separation of the Dataset pairs minus that of the
      Reinit pairs, interval above 0;
    * *absent for Reinit*: an equivalence test: the ratio of the Reinit pairs' mean separation to the
      Dataset pairs' has its interval inside (-:data:`C4_ABSENT_RATIO`, :data:`C4_ABSENT_RATIO`). An
      interval that merely includes 0 is not absence.

    *Reproduced* when both hold; *partly reproduced* when the first holds only; *not reproduced* when
    the difference's interval lies below 0; else *inconclusive*. *Not testable* with fewer than
    :data:`norep.claims.MIN_MODELS_PER_END` in-band Reinit or Dataset models. Estimates are read from
    the chapter's ``separation`` table (``chapter_tables``, default :func:`tables`).
    """
    title, paper = registered("C4")
    t = chapter_tables or tables(study)
    sep_table = t["separation"]
    partners = sep_table["name"].tolist()
    groups, bad = require_ends(study, partners, "C4", title, paper)
    if bad:
        return bad
    d = pair_data(study, partners, study.split)
    th = _thetas(study, partners, study.split)
    only_a = (~d.correct & d.base_correct[None]).astype(np.float64)
    only_b = (d.correct & ~d.base_correct[None]).astype(np.float64)
    ends = {c: groups[c] for c in ("REINIT", "DATASET")}

    def sep(w):
        with np.errstate(invalid="ignore", divide="ignore"):
            return ((th * only_a) @ w) / (only_a @ w) - ((th * only_b) @ w) / (only_b @ w)

    def stat(members, w):
        s = sep(w)
        with warnings.catch_warnings():  # a resample with no example only one model gets right: nan
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanmean(s[members[0]]), np.nanmean(s[members[1]])
            return [hi - lo, lo, lo / hi]

    ci = hierarchical_bootstrap_ci(
        stat, [ends["REINIT"], ends["DATASET"]], d.y.shape[0], n_resamples=n_boot, seed=seed, small_sample=True
    )
    means = {c: float(v) for c, v in t["separation_means"].items()}
    cats = list(means)
    reinit = float(means["REINIT"])
    effect = float(means["DATASET"]) - reinit
    ratio = (float(ci.estimate[2]), float(ci.low[2]), float(ci.high[2]))
    s = sign(ci.low[0], ci.high[0])
    absence = equivalence(ratio[1], ratio[2], C4_ABSENT_RATIO)
    reinit_absent = absence == "equivalent"
    if s > 0:
        status = "reproduced" if reinit_absent else "partly reproduced"
    else:
        status = "not reproduced" if s < 0 else "inconclusive"
    word = {"equivalent": "absent", "present": "present", "undecided": "neither shown absent nor present"}[absence]
    sentence = (
        f"{lead(status)}: separation of the angle by outcome, Dataset minus Reinit pairs = "
        f"{fmt_interval(effect, ci.low[0], ci.high[0], digits=1, unit=' deg')}; Reinit pairs alone "
        f"{fmt_interval(reinit, ci.low[1], ci.high[1], digits=1, unit=' deg')}, as a share of the Dataset "
        f"pairs' {fmt_interval(*ratio, digits=2)}: {word} (absent means inside +-{C4_ABSENT_RATIO}; the paper: "
        f"absent); category means " + ", ".join(f"{cat_label(c)} {means[c]:.1f} deg" for c in cats) + "."
    )
    return ClaimResult(
        "C4",
        title,
        status,
        effect,
        float(ci.low[0]),
        float(ci.high[0]),
        effect_name="mean separation (degrees), Dataset minus Reinit pairs",
        resampled=MODELS_AND_EXAMPLES,
        n_models=count_models(study, partners),
        n_pairs=len(partners),
        sentence=sentence,
        paper=paper,
        checks={
            "stronger_for_dataset": f"interval {side(ci.low[0], ci.high[0])}",
            "absent_for_reinit": reinit_absent,
            "reinit_share_of_dataset": fmt_interval(*ratio, digits=2),
        },
        choices={"partners": partners},
        details={
            "separation": dict(zip(partners, sep_table["separation_deg"].tolist(), strict=True)),
            "category_means": means,
            "reinit": (reinit, float(ci.low[1]), float(ci.high[1])),
            "reinit_ratio": ratio,
            "reinit_absence": absence,
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


C5_WITHOUT_RATIO = 0.25
"""C5, "Architecture pairs without class structure": called so when the 95 % interval of the Architecture
pairs' mean directed group contrast, as a share of the Dataset pairs', lies inside (-0.25, 0.25) (an
equivalence margin fixed before any data were read)."""


@claim(
    "C5",
    chapter=CHAPTER,
    title="Dataset pairs specialise by class group; Architecture pairs without structure",
    paper=(
        "CLIP-S better on anthropogenic classes (ids ~500-900), ResNet-50 on nature (ids ~0-300); "
        "Architecture pairs specialise without class structure"
    ),
)
def c5_class_groups(
    study,
    *,
    class_groups=None,
    n_boot: int = 1000,
    n_permutations: int = 999,
    seed: int = 0,
    chapter_tables=None,
) -> ClaimResult:
    """C5 (Sec. 4.4, Fig. 4): Dataset pairs specialise along groups of classes; Architecture pairs
    specialise without class structure.

    For a pair (A = base, B = partner) and a set of classes, ``d = (only_A - only_B) / (only_A + only_B)``
    pooled over the set's examples where exactly one model is right: who wins the disagreements
    (normalised by the pair's error inconsistency, so not a raw accuracy gap).

    Verdict rule (fixed before any data are read):

    * *direction* of a category, fixed on the selection split: the class group ``g*`` on which its
      in-band partners (pooled) win the largest share of their disagreements with the base (one for the
      Dataset partners, one for the Architecture partners);
    * *directed contrast* of a pair on the evaluation split: ``d`` over the other grouped classes minus
      ``d`` over the classes of its category's ``g*`` (positive when the partner is relatively better on
      ``g*``, as on the selection split). Partners specialised in opposite directions cancel here, and
      the direction chosen on one split is tested on the other, so chance structure does not count;
    * the effect: mean directed contrast of the Dataset pairs minus that of the Architecture pairs
      (95 % two-level interval: models within categories, then test examples, widened for few models);
      beside it the Dataset pairs' mean alone, and the Architecture pairs' mean as a share of the
      Dataset pairs' (an equivalence test with margin :data:`C5_WITHOUT_RATIO`: "without structure" is
      never read off a non-significant result).

    *Reproduced* when the Dataset pairs' interval and the Dataset-minus-Architecture interval both lie
    above 0 and the Architecture share is inside the margin; *partly reproduced* when those two intervals
    lie above 0 but the Architecture share is not shown inside the margin; *not reproduced* when the
    Dataset pairs' or the Dataset-minus-Architecture interval lies below 0; else *inconclusive*. The
    Dataset pairs' interval alone never decides: a base better on one class group makes every partner win
    its disagreements on the other group, whatever its category, so only the contrast with the
    Architecture pairs is about methodology. *Not testable* with fewer than
    :data:`norep.claims.MIN_MODELS_PER_END` in-band
    Architecture or Dataset partners, fewer than two class groups or :data:`MIN_CLASSES_C5` grouped
    classes, or too few distinct assignments of classes to groups (:data:`MIN_PERMUTATIONS_C5`).

    Described, not deciding: the class-permutation p-value of each category's between-group variance of
    the per-class ``d`` (the null permutes classes between groups; :data:`ALPHA`). The per-class counts
    are the chapter's ``classes`` table (``chapter_tables``, default :func:`tables`), which its per-class
    figure draws.
    """
    title, paper = registered("C5")
    t = chapter_tables or tables(study, class_groups=class_groups)
    partners = t["separation"]["name"].tolist()
    groups = by_category(study, partners)
    names_g, classes, labels = _group_labels(study, class_groups)
    untestable = _c5_untestable(study, partners, groups, classes, labels, title, paper)
    if untestable is not None:
        return untestable
    idx = {c: groups[c] for c in ("ARCH", "DATASET")}
    names = [partners[i] for i in idx["ARCH"] + idx["DATASET"]]
    local = {"ARCH": np.arange(len(idx["ARCH"])), "DATASET": len(idx["ARCH"]) + np.arange(len(idx["DATASET"]))}

    star = _c5_directions(study, names, classes, labels, local)  # on the selection split only
    d = pair_data(study, names, study.split)
    only_a = (~d.correct & d.base_correct[None]).astype(np.float64)
    only_b = (d.correct & ~d.base_correct[None]).astype(np.float64)
    class_counts = _class_counter(d.y, classes)

    def stat(members, w):
        ac, bc = class_counts(only_a, w), class_counts(only_b, w)
        arch = np.nanmean(_directed(ac, bc, labels == star["ARCH"])[members[0]])
        data = np.nanmean(_directed(ac, bc, labels == star["DATASET"])[members[1]])
        with np.errstate(invalid="ignore", divide="ignore"):
            return [data - arch, data, arch / data]

    ci = hierarchical_bootstrap_ci(
        stat, [local["ARCH"], local["DATASET"]], d.y.shape[0], n_resamples=n_boot, seed=seed, small_sample=True
    )
    est, low, high = (np.asarray(v, dtype=np.float64) for v in ci)
    share = equivalence(low[2], high[2], C5_WITHOUT_RATIO)
    status = _c5_status(sign(low[1], high[1]), sign(low[0], high[0]), share)
    obs, pvals = _c5_pvalues(t["classes"], names, classes, labels, local, n_permutations, seed)  # described
    wins = t["group_wins"]
    wins = wins[wins["category"] == "DATASET"]
    dc_group = {str(g): float(v) for g, v in zip(wins["group"], wins["d"], strict=True)}
    arch_word = {"equivalent": "without structure", "present": "structured", "undecided": "undecided"}[share]
    sentence = (
        f"{lead(status)}: directions chosen on the selection split: the Dataset partners win most on group "
        f"'{names_g[star['DATASET']]}', the Architecture partners on '{names_g[star['ARCH']]}'. On test, who "
        f"wins the disagreements, other groups minus that group, Dataset minus Architecture pairs = "
        f"{fmt_interval(est[0], low[0], high[0])}; Dataset pairs alone "
        f"{fmt_interval(est[1], low[1], high[1])}; Architecture pairs as a share of the Dataset pairs "
        f"{fmt_interval(est[2], low[2], high[2], digits=2)}: {arch_word} (without structure means inside "
        f"+-{C5_WITHOUT_RATIO}). Described: class-permutation p-values, Dataset {pvals['DATASET']:.3f}, "
        f"Architecture {pvals['ARCH']:.3f}."
    )
    return ClaimResult(
        "C5",
        title,
        status,
        float(est[0]),
        float(low[0]),
        float(high[0]),
        effect_name=(
            "directed group contrast of who wins the disagreements (direction fixed on the selection split), "
            "Dataset minus Architecture pairs"
        ),
        resampled=MODELS_AND_EXAMPLES + " (intervals); classes between groups (described p-values)",
        n_models=count_models(study, names),
        n_pairs=len(names),
        sentence=sentence,
        paper=paper,
        checks={
            "dataset_structured": f"interval {side(low[1], high[1])}",
            "dataset_minus_architecture": f"interval {side(low[0], high[0])}",
            "architecture_without_structure": share,
            "dataset_p (described)": f"p = {pvals['DATASET']:.3f}",
            "architecture_p (described)": f"p = {pvals['ARCH']:.3f}",
        },
        choices={
            "dataset_partners": [partners[i] for i in idx["DATASET"]],
            "architecture_partners": [partners[i] for i in idx["ARCH"]],
            "direction_group": names_g[star["DATASET"]],
            "architecture_direction_group": names_g[star["ARCH"]],
        },
        details={
            "p_values": pvals,
            "structure": dict(zip(names, obs.tolist(), strict=True)),
            "dataset_wins_by_group": dc_group,
            "groups": names_g,
            "direction_group": names_g[star["DATASET"]],
            "dataset": (float(est[1]), float(low[1]), float(high[1])),
            "architecture_share": (float(est[2]), float(low[2]), float(high[2])),
        },
    )


def _c5_status(s_data: int, s_diff: int, share: str) -> str:
    """C5's verdict from the signs of the Dataset pairs' and the Dataset-minus-Architecture intervals and
    the Architecture share's equivalence outcome (see :func:`c5_class_groups`)."""
    if s_data < 0 or s_diff < 0:
        return "not reproduced"
    if s_data > 0 and s_diff > 0:
        return "reproduced" if share == "equivalent" else "partly reproduced"
    return "inconclusive"


def _c5_directions(study, names, classes, labels, local) -> dict:
    """Per category (``local``: category -> positions in ``names``), the class group its partners win most
    on, read on the selection split only (:func:`_direction`)."""
    dsel = pair_data(study, names, study.calib_split)
    sel_a, sel_b = (
        _class_counter(dsel.y, classes)(arr.astype(np.float64), np.ones(dsel.y.shape[0]))
        for arr in (~dsel.correct & dsel.base_correct[None], dsel.correct & ~dsel.base_correct[None])
    )
    return {cat: _direction(sel_a[li], sel_b[li], labels) for cat, li in local.items()}


def _c5_pvalues(classes_table, names, classes, labels, local, n_permutations: int, seed: int):
    """C5's described class-permutation test on the chapter's ``classes`` table: each pair's between-group
    variance of ``d_c`` and each category's p-value (classes permuted between groups)."""
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(labels) for _ in range(int(n_permutations))]
    a_c, b_c = _table_counts(classes_table, names, classes)
    obs = _group_structure(a_c, b_c, labels)
    null = np.array([_group_structure(a_c, b_c, p) for p in perms])  # (K, P)
    return obs, _category_pvalues(obs, null, local)


def _direction(a_c, b_c, labels) -> int:
    """The class group on which the partners of ``a_c``/``b_c`` (pairs x grouped classes, pooled over
    pairs) win the largest share of their disagreements with the base: the lowest pooled ``d``."""
    best, g_star = np.inf, int(labels[0])
    for g in np.unique(labels):
        a, b = a_c[:, labels == g].sum(), b_c[:, labels == g].sum()
        if a + b > 0 and (a - b) / (a + b) < best:
            best, g_star = (a - b) / (a + b), int(g)
    return g_star


def _directed(a_c, b_c, in_star) -> np.ndarray:
    """(P,) ``d`` over the grouped classes outside ``in_star`` minus ``d`` over those in it, per pair."""

    def pooled(sel):
        a, b = a_c[:, sel].sum(axis=1), b_c[:, sel].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(a + b > 0, (a - b) / np.where(a + b > 0, a + b, 1), np.nan)

    return pooled(~in_star) - pooled(in_star)


def _table_counts(table, names, classes) -> tuple[np.ndarray, np.ndarray]:
    """(pairs, classes) disagreements won by the base and by the partner, read from the ``classes`` table,
    rows in the order of ``names`` and columns in the order of ``classes``."""
    out = []
    for col in ("only_a", "only_b"):
        wide = table.pivot(index="name", columns="class_id", values=col)
        out.append(wide.reindex(index=list(names), columns=classes.tolist()).fillna(0.0).to_numpy(np.float64))
    return out[0], out[1]


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


def _c5_untestable(study, partners, groups, classes, labels, title: str, paper: str) -> ClaimResult | None:
    """C5's *not testable* result when a category, the class groups or the assignments are too few."""
    for cat in ("DATASET", "ARCH"):
        if len(groups.get(cat, [])) < MIN_MODELS_PER_END:
            return not_testable(
                "C5",
                title,
                f"only {len(groups.get(cat, []))} in-band {cat_label(cat)} partner(s) on the selection split; "
                f"at least {MIN_MODELS_PER_END} are needed to treat models as units",
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


__all__ = [
    "ALPHA",
    "C4_ABSENT_RATIO",
    "C5_WITHOUT_RATIO",
    "MIN_CLASSES_C5",
    "MIN_PERMUTATIONS_C5",
    "CHAPTER",
    "tables",
    "c4_specialization_angle",
    "c5_class_groups",
]


# ------------------------------------------------------------------- figure tables (Figs. 3 left and 4)


def confidence_pairs(study, chosen: dict):
    """The paper's Fig. 3 (left) as a table: for each pair ``chosen`` shows (category -> partner of the
    base), every evaluation example where exactly one of the two models is right, with the confidence
    (top-1 probability) of the base (``conf_a``) and of the partner (``conf_b``) and who is right
    (``outcome``: ``only_a`` or ``only_b``). The angle theta of an example is ``atan2(conf_a, conf_b)``.

    Examples
    --------
    A pair where the base is right on the first example and the partner on the second:

    >>> import numpy as np
    >>> class S:
    ...     base = "a"
    ...     def labels(self): return np.array([0, 1, 0])
    ...     def probs(self, n): return {"a": np.array([[.9, .1], [.8, .2], [.6, .4]]),
    ...                                 "b": np.array([[.3, .7], [.4, .6], [.7, .3]])}[n]
    >>> confidence_pairs(S(), {"ARCH": "b"})[["outcome", "conf_a", "conf_b"]].values.tolist()
    [['only_a', 0.9, 0.7], ['only_b', 0.8, 0.6]]
    """
    import pandas as pd

    from norep.measures import specialization

    y, pa = study.labels(), study.probs(study.base)
    rows = []
    for cat, name in chosen.items():
        pb = study.probs(name)
        outcome = specialization.outcome_labels(y, pa.argmax(1), pb.argmax(1))
        keep = np.isin(outcome, ["only_a", "only_b"])
        rows.append(
            pd.DataFrame(
                {
                    "pair": f"{study.base} vs {name} ({cat_label(cat)})",
                    "category": cat,
                    "outcome": outcome[keep],
                    "conf_a": pa.max(1)[keep],
                    "conf_b": pb.max(1)[keep],
                }
            )
        )
    cols = ["pair", "category", "outcome", "conf_a", "conf_b"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)


def class_theta_histograms(study, chosen: dict, *, bins: int = 18) -> dict:
    """The paper's Fig. 4 as tables: for each pair ``chosen`` shows (category -> partner of the base), a
    class-by-angle histogram of the evaluation examples where exactly one of the two is right.

    Returns a dict pair title -> DataFrame with one row per class (index: class name, in class-id order)
    and one column per theta bin (its left edge, degrees), holding the share of the pair's disagreements
    that fall in that class and bin (the whole table sums to 1; 0 where the pair never disagrees).

    Examples
    --------
    >>> import numpy as np
    >>> class Store: class_names = ["x", "y"]
    >>> class S:
    ...     base, store = "a", Store()
    ...     def labels(self): return np.array([0, 1, 0])
    ...     def probs(self, n): return {"a": np.array([[.9, .1], [.8, .2], [.6, .4]]),
    ...                                 "b": np.array([[.3, .7], [.4, .6], [.7, .3]])}[n]
    >>> h = class_theta_histograms(S(), {"ARCH": "b"}, bins=2)["a vs b (Architecture)"]
    >>> h.values.tolist()  # class x: theta 52 (> 45); class y: theta 53
    [[0.0, 0.5], [0.0, 0.5]]
    """
    import pandas as pd

    from norep.measures import specialization

    y, pa = study.labels(), study.probs(study.base)
    names = [str(c) for c in study.store.class_names]
    edges = np.linspace(0.0, 90.0, bins + 1)
    out = {}
    for cat, name in chosen.items():
        pb = study.probs(name)
        outcome = specialization.outcome_labels(y, pa.argmax(1), pb.argmax(1))
        keep = np.isin(outcome, ["only_a", "only_b"])
        th = specialization.theta(pa, pb)[keep]
        counts, _, _ = np.histogram2d(y[keep], th, bins=[np.arange(len(names) + 1) - 0.5, edges])
        total = counts.sum()
        share = counts / total if total > 0 else counts
        out[f"{study.base} vs {name} ({cat_label(cat)})"] = pd.DataFrame(share, index=names, columns=edges[:-1])
    return out


__all__ += ["confidence_pairs", "class_theta_histograms"]
