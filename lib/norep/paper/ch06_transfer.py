"""Chapter 06, transfer (Sec. 4.7, Fig. 7): single and concatenated embeddings probed on a multi-label
downstream task, and claim C9."""

from __future__ import annotations

import numpy as np

from norep import CATEGORIES
from norep.claims._core import (
    ClaimResult,
    _cache,
    band_partners,
    categories_of,
    end_groups,
    fmt_interval,
    lead,
    not_testable,
    selection_accuracy,
    sign,
)
from norep.claims._features import FEATURES_RESAMPLED, ends_check
from norep.measures.stats import hierarchical_bootstrap_ci
from norep.paper._registry import claim, registered

CHAPTER = "06_voc_transfer"

DOWN_SPLITS = ("down_train", "down_val", "down_test")
"""The downstream train, validation and test splits."""


def transfer_probes(
    study,
    *,
    down_splits=("down_train", "down_val", "down_test"),
    probe_Cs=(0.1, 1.0, 10.0),
    probe_refit="train",
    max_per_category=2,
    categories=None,
    device="cpu",
):
    """Multi-label probes of every model with downstream embeddings and of the base paired with partners
    (up to ``max_per_category`` per category of ``categories``, default all; cached on the study).
    ``device`` is the torch device of the probes (``"auto"``: a GPU when present)."""
    from norep.measures.transfer import multilabel_probe

    categories = tuple(c for c in CATEGORIES if c in (categories or CATEGORIES))
    key = ("transfer", tuple(down_splits), tuple(probe_Cs), probe_refit, max_per_category, categories, device)
    cache = _cache(study)
    if key in cache:
        return cache[key]
    st = study.store
    tr, va, te = down_splits
    models = [str(n) for n in study.table["name"] if all(st.has_embeddings(n, s) for s in down_splits)]
    Y = {s: np.asarray(st.labels(s)) for s in down_splits}

    def emb(n):
        return [np.asarray(st.embeddings(n, s), dtype=np.float32) for s in down_splits]

    def probe(Xs):
        return multilabel_probe(
            Xs[0], Y[tr], Xs[1], Y[va], Xs[2], Y[te], Cs=list(probe_Cs), refit=probe_refit, device=device
        )

    singles = {}
    for n in models:
        r = probe(emb(n))
        singles[n] = {"val_map": r.val_map, "test_map": r.test_map, "scores": r.test_scores}
    parts = _transfer_partners(study, models, categories, max_per_category)
    pairs = {}
    eb = emb(study.base) if study.base in models else None
    for names in parts.values():
        for n in names:
            r = probe([np.concatenate([a, b], axis=1) for a, b in zip(eb, emb(n), strict=True)])
            pairs[n] = {"val_map": r.val_map, "test_map": r.test_map, "scores": r.test_scores}
    out = {"models": models, "singles": singles, "pairs": pairs, "partners": parts, "Y": Y[te]}
    cache[key] = out
    return out


def _transfer_partners(study, models, categories, max_per_category) -> dict[str, list[str]]:
    """Per category, up to ``max_per_category`` in-band partners among ``models``, the most accurate on the
    selection split first (none when the base lacks downstream embeddings)."""
    parts = {}
    if study.base in models:
        acc = selection_accuracy(study)
        partners = [n for n in band_partners(study) if n in models]
        for c in categories:
            names = [n for n, k in zip(partners, categories_of(study, partners), strict=True) if k == c]
            if names:
                parts[c] = sorted(names, key=lambda n: -acc[n])[:max_per_category]
    return parts


def tables(
    study,
    *,
    down_splits=DOWN_SPLITS,
    probe_Cs=(0.1, 1.0, 10.0),
    probe_refit: str = "train",
    max_per_category: int = 2,
    categories=None,
    device: str = "cpu",
    top_k: int | None = None,
) -> dict:
    """The chapter's tables, from the probes of :func:`transfer_probes` (cached on the study).

    ``singles``: per model with downstream embeddings, its selection-split accuracy upstream and its
    downstream validation and test mAP; ``pairs``: per partner of the base, its upstream error
    inconsistency with the base (:func:`norep.measures.metrics.error_inconsistency`), the member of the pair
    with the better validation mAP and the pair's test mAP minus that member's (``pair_gain``);
    ``best``: the best upstream model (selection split), the best transfer model (validation mAP) and
    the test mAP of the latter minus the former. With ``top_k``: ``top`` (the ``top_k`` models by
    validation mAP) and ``pair_map``, the test mAP of each pair of them concatenated.
    """
    import pandas as pd

    from norep.measures.metrics import error_inconsistency

    _check_down_splits(study, down_splits, probe_refit)
    tp = transfer_probes(
        study,
        down_splits=tuple(down_splits),
        probe_Cs=tuple(probe_Cs),
        probe_refit=probe_refit,
        max_per_category=max_per_category,
        categories=categories,
        device=device,
    )
    acc, sg, st = selection_accuracy(study), tp["singles"], study.store
    singles = pd.DataFrame(
        [
            {"name": n, "category": study.category(n), "upstream_accuracy": acc[n],
             "downstream_val_map": sg[n]["val_map"], "downstream_map": sg[n]["test_map"]}
            for n in tp["models"]
        ],
        columns=["name", "category", "upstream_accuracy", "downstream_val_map", "downstream_map"],
    )  # fmt: skip
    y, base = study.labels(), study.base
    rows = []
    for n, res in tp["pairs"].items():
        better = base if sg[base]["val_map"] >= sg[n]["val_map"] else n
        pred_n, pred_b = st.predictions(n, study.split), st.predictions(base, study.split)
        rows.append(
            {"name": n, "category": study.category(n), "better_member": better,
             "error_inconsistency": error_inconsistency(y, pred_b, pred_n),
             "pair_gain": res["test_map"] - sg[better]["test_map"]}
        )  # fmt: skip
    pairs = pd.DataFrame(rows, columns=["name", "category", "better_member", "error_inconsistency", "pair_gain"])
    out = {"probes": tp, "singles": singles, "pairs": pairs, "best": _best_models(singles)}
    if top_k is not None:
        out.update(_top_pairs(study, tp, singles, down_splits, probe_Cs, probe_refit, device, top_k))
    return out


def _check_down_splits(study, down_splits, probe_refit) -> None:
    """The chapter's downstream parameters, checked (multi-label splits are checked by the claim)."""
    if len(down_splits) != 3:
        raise ValueError(f"parameter down_splits={down_splits!r} must name the train, validation and test splits")
    if probe_refit not in ("train", "train+val"):
        raise ValueError(f"parameter probe_refit={probe_refit!r} must be 'train' or 'train+val'")


def _best_models(singles) -> dict:
    """The best upstream model (selection split), the best transfer model (validation mAP), and the test mAP
    of the latter minus the former."""
    if not len(singles):
        return {}
    t = singles.set_index("name")
    up, down = str(t["upstream_accuracy"].idxmax()), str(t["downstream_val_map"].idxmax())
    return {
        "upstream": up,
        "downstream": down,
        "map_gain": float(t.loc[down, "downstream_map"] - t.loc[up, "downstream_map"]),
    }


def _top_pairs(study, tp, singles, down_splits, probe_Cs, probe_refit, device, top_k: int) -> dict:
    """Every pair of the ``top_k`` models by validation mAP, concatenated and probed: their test mAP."""
    import itertools

    import pandas as pd

    from norep.measures.transfer import multilabel_probe

    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 2:
        raise ValueError(f"parameter top_k={top_k!r} must be an integer >= 2")
    st = study.store
    Y = [np.asarray(st.labels(s)) for s in down_splits]
    top = singles.sort_values("downstream_val_map", ascending=False)["name"].head(top_k).tolist()
    pair_map = pd.DataFrame(np.nan, index=top, columns=top)
    for a in top:
        pair_map.loc[a, a] = tp["singles"][a]["test_map"]
    for a, b in itertools.combinations(top, 2):
        X = [
            np.concatenate([np.asarray(st.embeddings(a, s)), np.asarray(st.embeddings(b, s))], axis=1)
            for s in down_splits
        ]
        X = [x.astype(np.float32) for x in X]
        res = multilabel_probe(X[0], Y[0], X[1], Y[1], X[2], Y[2], Cs=list(probe_Cs), refit=probe_refit, device=device)
        pair_map.loc[a, b] = pair_map.loc[b, a] = res.test_map
    return {"top": top, "pair_map": pair_map}


@claim(
    "C9",
    chapter=CHAPTER,
    title="best upstream model is not the best transfer model; concatenation helps divergent pairs most",
    paper=(
        "best ImageNet model (MPL) is not the best transfer model; "
        "a pair reaches 91.4 % mAP vs 90.7 % for its best member"
    ),
)
def c9_transfer(
    study,
    *,
    chapter_tables=None,
    down_splits=DOWN_SPLITS,
    probe_Cs=(0.1, 1.0, 10.0),
    probe_refit: str = "train",
    max_per_category: int = 2,
    categories=None,
    n_boot: int = 1000,
    seed: int = 0,
    device: str = "cpu",
) -> ClaimResult:
    """C9 (Sec. 4.7, Fig. 7): the best upstream model is not the best transfer model, and concatenating two
    models' embeddings helps most for the most differently trained pairs.

    Probes: one-vs-rest logistic regression on each model's downstream embedding, and on the base's
    embedding concatenated with each partner's (up to ``max_per_category`` in-band partners per
    category, the most accurate on the selection split); every pair holds the base, so pairs are
    compared with pairs at matched dimensions (when the partners' widths match), not with single
    models of half the width. Everything is chosen on validation splits and reported on
    ``down_test`` (11-point mAP). Two parts:

    * *pairs help most for divergent partners* (the effect): a pair's gain is its test mAP minus
      the test mAP of the member with the better validation mAP; mean gain of the Dataset pairs minus
      that of the Reinit pairs (hierarchical bootstrap: partners within categories, then test examples);
    * *best upstream is not best downstream*: the model with the best selection-split accuracy versus
      the model with the best validation mAP; test mAP of the latter minus the former above 0
      (bootstrap over test examples; the same model gives 0, and the part fails).

    Verdict: *reproduced* when both hold; *partly reproduced* when one does; *not reproduced* when the
    first interval lies below 0; else *inconclusive*. *Not testable* without the downstream splits,
    or without Reinit and Dataset partners with downstream embeddings.
    """
    title, paper = registered("C9")
    st = study.store
    missing = [s for s in down_splits if s not in st.splits() or not st.is_multilabel(s)]
    if missing:
        return not_testable("C9", title, f"the store has no multi-label downstream split(s) {missing}", paper=paper)
    t = chapter_tables or tables(
        study,
        down_splits=down_splits,
        probe_Cs=probe_Cs,
        probe_refit=probe_refit,
        max_per_category=max_per_category,
        categories=categories,
        device=device,
    )
    tp = t["probes"]
    parts = tp["partners"]
    bad = ends_check("C9", title, paper, parts)
    if bad:
        return bad
    names = [n for c in CATEGORIES if c in parts for n in parts[c]]
    singles, pairs = tp["singles"], tp["pairs"]
    pt = t["pairs"].set_index("name")
    better = {n: str(pt.loc[n, "better_member"]) for n in names}
    ci = _pair_gain_ci(tp, parts, names, better, n_boot=n_boot, seed=seed)
    by_cat = t["pairs"].groupby("category")["pair_gain"].mean()
    effect = float(by_cat["DATASET"] - by_cat["REINIT"])
    models, best = tp["models"], t["best"]
    up_best, down_best = best["upstream"], best["downstream"]
    ci_a = _upstream_vs_downstream_ci(tp, up_best, down_best, n_boot=n_boot, seed=seed)
    s1, s2 = sign(ci.low, ci.high), sign(ci_a.low, ci_a.high)
    status = _c9_status(s1, s2)
    g_all = {n: float(pt.loc[n, "pair_gain"]) for n in names}
    dims = {n: int(np.asarray(st.embeddings(n, down_splits[0])).shape[1]) for n in [study.base, *names]}
    matched = len({dims[n] for n in names}) == 1
    sentence = (
        f"{lead(status)}: mAP gain of the base's embedding concatenated with a partner's over the better member "
        f"(chosen on validation), Dataset minus Reinit pairs = "
        f"{fmt_interval(effect, ci.low, ci.high, digits=1, scale=100, unit=' points')}"
        f"{'' if matched else ' (partners of different widths: dimensions not matched)'}; the best upstream "
        f"model on the selection split, {up_best}, is {'also' if up_best == down_best else 'not'} the best "
        f"transfer model on validation ({down_best}; test mAP difference "
        f"{fmt_interval(best['map_gain'], ci_a.low, ci_a.high, digits=1, scale=100, unit=' points')})."
    )
    return ClaimResult(
        "C9",
        title,
        status,
        effect,
        ci.low,
        ci.high,
        effect_name="downstream mAP gain of a pair over its better member, Dataset minus Reinit pairs",
        resampled=FEATURES_RESAMPLED + " (downstream test examples)",
        n_models=len(models),
        n_pairs=len(names),
        sentence=sentence,
        paper=paper,
        checks={
            "pairs_help_divergent": f"interval {'above' if s1 > 0 else 'below' if s1 < 0 else 'includes'} 0",
            "best_upstream_not_best_downstream": up_best != down_best and s2 > 0,
        },
        choices={"partners": parts, "better_member": better, "best_upstream": up_best, "best_downstream": down_best},
        details={
            "pair_gain": g_all,
            "singles": {n: {k: v for k, v in s.items() if k != "scores"} for n, s in singles.items()},
            "pairs": {n: {k: v for k, v in s.items() if k != "scores"} for n, s in pairs.items()},
            "matched_dims": matched,
        },
    )


def _pair_gain_ci(tp, parts, names, better, *, n_boot: int, seed: int):
    """C9's interval: each pair's test mAP minus its better member's, Dataset minus Reinit pairs (hierarchical
    bootstrap: partners within categories, then test examples)."""
    from norep.measures.transfer import voc07_map_resampler

    Y, singles, pairs = tp["Y"], tp["singles"], tp["pairs"]
    pair_member_map = voc07_map_resampler(
        Y, [pairs[n]["scores"] for n in names] + [singles[better[n]]["scores"] for n in names]
    )

    def gains(counts=None):  # every pair's mAP minus its better member's (test examples drawn counts times)
        m = pair_member_map(counts)
        return m[: len(names)] - m[len(names) :]

    cats, groups, i_lo, i_hi = end_groups(parts)

    def stat(members, w):
        g = gains(w)
        return float(g[members[i_hi]].mean() - g[members[i_lo]].mean())

    return hierarchical_bootstrap_ci(stat, groups, Y.shape[0], n_resamples=n_boot, seed=seed)


def _upstream_vs_downstream_ci(tp, up_best: str, down_best: str, *, n_boot: int, seed: int):
    """The interval of the best transfer model's test mAP minus the best upstream model's (bootstrap over
    test examples)."""
    from norep.measures.transfer import voc07_map_resampler

    down_up_map = voc07_map_resampler(tp["Y"], [tp["singles"][down_best]["scores"], tp["singles"][up_best]["scores"]])

    def up_down(members, w):
        m = down_up_map(w)
        return float(m[0] - m[1])

    return hierarchical_bootstrap_ci(up_down, [np.arange(1)], tp["Y"].shape[0], n_resamples=n_boot, seed=seed)


def _c9_status(s1: int, s2: int) -> str:
    """C9's verdict from the signs of its two parts' intervals (the pair gain's, then the upstream one's)."""
    if s1 > 0 and s2 > 0:
        return "reproduced"
    if s1 < 0:
        return "not reproduced"
    if s1 > 0 or s2 > 0:
        return "partly reproduced"
    return "inconclusive"


__all__ = ["CHAPTER", "DOWN_SPLITS", "tables", "transfer_probes", "c9_transfer"]
