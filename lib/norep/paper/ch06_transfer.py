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
from norep.claims._features import (
    END_CATEGORIES,
    FEATURES_RESAMPLED,
    PROBES,
    end_width,
    ends_check,
    matched_columns,
)
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
    max_per_category=None,
    categories=None,
    device="cpu",
    probe="ridge",
    seed=0,
):
    """Multi-label probes of every model with downstream embeddings and of the base paired with partners
    (cached on the study).

    ``probe``: ``"ridge"`` (default, :func:`norep.measures.transfer.multilabel_ridge_probe`, closed form) or
    ``"logistic"`` (:func:`norep.measures.transfer.multilabel_probe`, L-BFGS on ``device``); the penalty is chosen
    on the validation split from ``probe_Cs`` either way. Partners: every in-band Reinit and Dataset model with
    downstream embeddings and up to ``max_per_category`` (None: all) of each other category of ``categories``.
    Each pair is ``[base | partner]`` with the partner cut to ``width`` dimensions (a seeded random subset; the
    narrowest end partner's width), so that pairs of Reinit and Dataset partners have the same width.
    """
    from norep.measures.transfer import multilabel_probe, multilabel_ridge_probe

    if probe not in PROBES:
        raise ValueError(f"parameter probe={probe!r} must be one of {PROBES}")
    categories = tuple(c for c in CATEGORIES if c in (categories or CATEGORIES))
    key = ("transfer", tuple(down_splits), tuple(probe_Cs), probe_refit, max_per_category, categories, device, probe)
    key += (seed,)
    cache = _cache(study)
    if key in cache:
        return cache[key]
    st = study.store
    tr, va, te = down_splits
    models = [str(n) for n in study.table["name"] if all(st.has_embeddings(n, s) for s in down_splits)]
    Y = {s: np.asarray(st.labels(s)) for s in down_splits}
    embs = {}

    def emb(n):
        if n not in embs:
            embs[n] = [np.asarray(st.embeddings(n, s), dtype=np.float32) for s in down_splits]
        return embs[n]

    def fit(Xs):
        args = (Xs[0], Y[tr], Xs[1], Y[va], Xs[2], Y[te])
        if probe == "ridge":
            return multilabel_ridge_probe(*args, Cs=list(probe_Cs), refit=probe_refit)
        return multilabel_probe(*args, Cs=list(probe_Cs), refit=probe_refit, device=device)

    def result(r):
        return {"val_map": r.val_map, "test_map": r.test_map, "scores": r.test_scores}

    singles = {n: result(fit(emb(n))) for n in models}
    parts = _transfer_partners(study, models, categories, max_per_category)
    widths = {n: emb(n)[0].shape[1] for n in models}
    width = end_width(widths, parts)
    pairs = {}
    for names in parts.values():
        for n in names:
            cut = _cut(emb(n), width, seed)
            pr = result(fit([np.concatenate([a, b], axis=1) for a, b in zip(emb(study.base), cut, strict=True)]))
            pairs[n] = {**pr, "dims": widths[study.base] + cut[0].shape[1]}
    out = {"models": models, "singles": singles, "pairs": pairs, "partners": parts, "Y": Y[te], "width": width}
    out["widths"], out["fit"], out["emb"] = widths, fit, emb
    cache[key] = out
    return out


def _cut(X, width, seed):
    """The splits ``X`` restricted to ``width`` of their columns (:func:`norep.claims._features.matched_columns`:
    a seeded random subset, the same in every split; all of them when ``width`` is None or not smaller)."""
    cols = matched_columns(X[0].shape[1], width, seed)
    return X if cols.size == X[0].shape[1] else [x[:, cols] for x in X]


def _transfer_partners(study, models, categories, max_per_category) -> dict[str, list[str]]:
    """Per category, the in-band partners among ``models`` (every one of the end categories, up to
    ``max_per_category`` of the others), the most accurate on the selection split first (none when the base
    lacks downstream embeddings)."""
    parts = {}
    if study.base in models:
        acc = selection_accuracy(study)
        partners = [n for n in band_partners(study) if n in models]
        for c in categories:
            names = [n for n, k in zip(partners, categories_of(study, partners), strict=True) if k == c]
            if names:
                cap = None if c in END_CATEGORIES or max_per_category is None else int(max_per_category)
                parts[c] = sorted(names, key=lambda n: -acc[n])[:cap]
    return parts


def tables(
    study,
    *,
    down_splits=DOWN_SPLITS,
    probe_Cs=(0.1, 1.0, 10.0),
    probe_refit: str = "train",
    max_per_category: int | None = None,
    categories=None,
    device: str = "cpu",
    top_k: int | None = None,
    probe: str = "ridge",
    seed: int = 0,
) -> dict:
    """The chapter's tables, from the probes of :func:`transfer_probes` (cached on the study).

    ``singles``: per model with downstream embeddings, its selection-split accuracy upstream and its
    downstream validation and test mAP; ``pairs``: per partner of the base, its upstream error
    inconsistency with the base (:func:`norep.measures.metrics.error_inconsistency`), the pair's width
    (``pair_dims``: the base's and ``width`` of the partner's dimensions), the member of the pair with the better
    validation mAP and the pair's test mAP minus that member's (``pair_gain``); ``best``: the best upstream
    model (selection split), the best transfer model (validation mAP) and the test mAP of the latter minus the
    former, the in-band Dataset partners (``divergent``) and Reinit partners (``reinit``) each probed against
    the best upstream model at the smaller of their widths (``divergent_dims``, ``divergent_gains``, their mean
    ``divergent_map_gain``; the same with ``reinit_``; ``divergent_contrast``: Dataset minus Reinit mean), and the
    best pair against the best single model (both chosen on validation; ``pair_vs_single``). With ``top_k``:
    ``top`` (the ``top_k`` models by validation mAP) and ``pair_map``, the test mAP of each pair of them
    concatenated.
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
        probe=probe,
        seed=seed,
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
            {"name": n, "category": study.category(n), "better_member": better, "pair_dims": res["dims"],
             "error_inconsistency": error_inconsistency(y, pred_b, pred_n),
             "pair_gain": res["test_map"] - sg[better]["test_map"]}
        )  # fmt: skip
    cols = ["name", "category", "better_member", "pair_dims", "error_inconsistency", "pair_gain"]
    pairs = pd.DataFrame(rows, columns=cols)
    best = _best_models(singles)
    if best:
        best.update(_divergent_at_matched_width(study, tp, best["upstream"], seed))
        best.update(_pair_vs_single(tp))
    out = {"probes": tp, "singles": singles, "pairs": pairs, "best": best}
    if top_k is not None:
        out.update(_top_pairs(tp, singles, top_k))
    return out


def _divergent_at_matched_width(study, tp, up: str, seed: int) -> dict:
    """Each in-band Dataset and Reinit partner probed at the best upstream model's width or its own, the smaller,
    against the best upstream model probed at that same width (the wider embedding cut to a seeded random
    subset). Per category, each model's test mAP margin over the best upstream model (``divergent_gains``,
    ``reinit_gains``), their means (``divergent_map_gain``, ``reinit_map_gain``), the widths (``divergent_dims``,
    ``reinit_dims``) and the test scores of both probes per model (``divergent_scores``, ``reinit_scores``);
    ``divergent_contrast``: the Dataset mean minus the Reinit mean. Empty without a Dataset or a Reinit partner
    other than the best upstream model."""
    widths, fit, emb = tp["widths"], tp["fit"], tp["emb"]
    cands = {k: [n for n in tp["partners"].get(c, []) if n != up] for k, c in MARGIN_GROUPS.items()}
    if not all(cands.values()):
        return {}
    up_at, out = {}, {}
    for k, names in cands.items():
        scores, gains, dims = {}, {}, {}
        for d in names:
            w = min(widths[up], widths[d])
            if w not in up_at:
                up_at[w] = fit(_cut(emb(up), w, seed))
            rd = fit(_cut(emb(d), w, seed))
            dims[d], scores[d] = int(w), (rd.test_scores, up_at[w].test_scores)
            gains[d] = float(rd.test_map - up_at[w].test_map)
        out |= {
            k: names,
            f"{k}_dims": dims,
            f"{k}_gains": gains,
            f"{k}_map_gain": float(np.mean(list(gains.values()))),
            f"{k}_scores": scores,
        }
    out["divergent_contrast"] = out["divergent_map_gain"] - out["reinit_map_gain"]
    return out


MARGIN_GROUPS = {"divergent": "DATASET", "reinit": "REINIT"}
"""The two categories compared by C9's second part (key prefix in :func:`tables`' ``best`` -> category)."""


def _pair_vs_single(tp) -> dict:
    """The pair and the single model with the best validation mAP, and the test mAP of the pair minus the
    single model's (empty without pairs)."""
    pairs, singles = tp["pairs"], tp["singles"]
    if not pairs:
        return {}
    p = max(pairs, key=lambda n: pairs[n]["val_map"])
    m = max(singles, key=lambda n: singles[n]["val_map"])
    return {
        "best_pair": p,
        "best_single": m,
        "pair_vs_single": float(pairs[p]["test_map"] - singles[m]["test_map"]),
        "pair_single_scores": (pairs[p]["scores"], singles[m]["scores"]),
    }


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


def _top_pairs(tp, singles, top_k: int) -> dict:
    """Every pair of the ``top_k`` models by validation mAP, concatenated in full and probed: their test mAP."""
    import itertools

    import pandas as pd

    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 2:
        raise ValueError(f"parameter top_k={top_k!r} must be an integer >= 2")
    fit, emb = tp["fit"], tp["emb"]
    top = singles.sort_values("downstream_val_map", ascending=False)["name"].head(top_k).tolist()
    pair_map = pd.DataFrame(np.nan, index=top, columns=top)
    for a in top:
        pair_map.loc[a, a] = tp["singles"][a]["test_map"]
    for a, b in itertools.combinations(top, 2):
        res = fit([np.concatenate([x, z], axis=1) for x, z in zip(emb(a), emb(b), strict=True)])
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
    max_per_category: int | None = None,
    categories=None,
    n_boot: int = 1000,
    seed: int = 0,
    device: str = "cpu",
    probe: str = "ridge",
) -> ClaimResult:
    """C9 (Sec. 4.7, Fig. 7): the best upstream model is not the best transfer model, and concatenating two
    models' embeddings helps most for the most differently trained pairs.

    Decision rule, fixed before any data. Probes (``probe``, the penalty chosen on the downstream validation
    split) of each model's downstream embedding and of ``[base | partner]`` for every in-band Reinit and Dataset
    partner (at least :data:`MIN_PARTNERS_PER_END` per end, else *not testable*), each partner cut to the same
    number of dimensions (a seeded random subset of the narrowest end partner's width), so every compared pair
    has the same width. Everything is chosen on validation splits and reported on ``down_test`` (11-point
    mAP). Three parts:

    * *pairs help most for divergent partners* (the effect): a pair's gain is its test mAP minus the test mAP of
      the member with the better validation mAP; mean gain of the Dataset pairs minus that of the Reinit pairs
      (hierarchical bootstrap: partners within categories, then test examples);
    * *divergent models transfer better than non-divergent ones at matched width*: each in-band Dataset and
      Reinit partner probed at the width of the best upstream model (selection split) or its own, the smaller,
      against the best upstream model probed at that same width (the wider cut to a seeded random subset); a
      model's margin is its test mAP minus the best upstream model's; the Dataset models' mean margin minus the
      Reinit models' above 0 (hierarchical bootstrap: models within the two categories, then test examples,
      widened for few models). Only a category contrast at matched width counts: a wider model, a lucky
      Dataset model, or Dataset models that transfer better only as much as Reinit models do, does not;
    * *the best pair beats the best single model*: the pair and the single model with the best validation
      mAP; test mAP difference above 0 (test examples). More dimensions help any pair, so this part only
      completes a verdict, never lifts one.

    Verdict: *reproduced* when all three intervals lie above 0; *not reproduced* when the first or second
    lies below 0; *partly reproduced* when the first or second lies above 0; else *inconclusive*. *Not
    testable* without the downstream splits, with too few partners per end, or without a Dataset and a Reinit
    model other than the best upstream model.
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
        probe=probe,
        seed=seed,
    )
    tp = t["probes"]
    parts = tp["partners"]
    bad = ends_check("C9", title, paper, parts)
    if bad:
        return bad
    best = t["best"]
    if "divergent" not in best:
        return not_testable(
            "C9", title, "no Dataset and Reinit partner other than the best upstream model to compare", paper=paper
        )
    names = [n for c in CATEGORIES if c in parts for n in parts[c]]
    pt = t["pairs"].set_index("name")
    better = {n: str(pt.loc[n, "better_member"]) for n in names}
    ends = {c: parts[c] for c in END_CATEGORIES}  # only the compared pairs are resampled
    ci = _pair_gain_ci(tp, ends, [n for c in ends for n in ends[c]], better, n_boot=n_boot, seed=seed)
    by_cat = t["pairs"].groupby("category")["pair_gain"].mean()
    effect = float(by_cat["DATASET"] - by_cat["REINIT"])
    ci_d = _divergent_ci(tp["Y"], best["divergent_scores"], best["reinit_scores"], n_boot=n_boot, seed=seed)
    ci_p = _difference_ci(tp["Y"], *best["pair_single_scores"], n_boot=n_boot, seed=seed)
    s1, s2, s3 = sign(ci.low, ci.high), sign(ci_d.low, ci_d.high), sign(ci_p.low, ci_p.high)
    status = _c9_status(s1, s2, s3)
    up = best["upstream"]
    dims = sorted(set(best["divergent_dims"].values()) | set(best["reinit_dims"].values()))
    sentence = (
        f"{lead(status)}: mAP gain of the base's embedding concatenated with a partner's ({tp['width']} of its "
        f"dimensions, so every pair has the same width) over the better member (chosen on validation), Dataset "
        f"minus Reinit pairs = {fmt_interval(effect, ci.low, ci.high, digits=1, scale=100, unit=' points')}; "
        f"test mAP margin over the best upstream model, {up}, each model and {up} probed at the same width "
        f"({', '.join(map(str, dims))} dimensions): the {len(best['divergent'])} Dataset models "
        f"{100 * best['divergent_map_gain']:.1f} points, the {len(best['reinit'])} Reinit models "
        f"{100 * best['reinit_map_gain']:.1f} points, Dataset minus Reinit "
        f"{fmt_interval(best['divergent_contrast'], ci_d.low, ci_d.high, digits=1, scale=100, unit=' points')}; "
        f"best pair ({study.base} + {best['best_pair']}) minus best single model "
        f"({best['best_single']}): "
        f"{fmt_interval(best['pair_vs_single'], ci_p.low, ci_p.high, digits=1, scale=100, unit=' points')}."
    )

    def where(sg):
        return f"interval {'above' if sg > 0 else 'below' if sg < 0 else 'includes'} 0"

    return ClaimResult(
        "C9",
        title,
        status,
        effect,
        ci.low,
        ci.high,
        effect_name="downstream mAP gain of a pair over its better member, Dataset minus Reinit pairs (equal widths)",
        resampled=FEATURES_RESAMPLED + " (downstream test examples)",
        n_models=len(tp["models"]),
        n_pairs=len(names),
        sentence=sentence,
        paper=paper,
        checks={
            "pairs_help_divergent": where(s1),
            "divergent_transfer_better_at_matched_width": fmt_interval(best["divergent_contrast"], ci_d.low, ci_d.high),
            "best_pair_beats_best_single": fmt_interval(best["pair_vs_single"], ci_p.low, ci_p.high),
        },
        choices={
            "partners": parts,
            "better_member": better,
            "best_upstream": up,
            "best_downstream": best["downstream"],
            "best_pair": best["best_pair"],
            "best_single": best["best_single"],
        },
        details={
            "pair_gain": {n: float(pt.loc[n, "pair_gain"]) for n in names},
            "singles": {n: {k: v for k, v in x.items() if k != "scores"} for n, x in tp["singles"].items()},
            "pairs": {n: {k: v for k, v in x.items() if k != "scores"} for n, x in tp["pairs"].items()},
            "matched_dims": True,
            "width": tp["width"],
        },
    )


def _pair_gain_ci(tp, parts, names, better, *, n_boot: int, seed: int):
    """C9's interval: each pair's test mAP minus its better member's, Dataset minus Reinit pairs (hierarchical
    bootstrap: partners within categories, then test examples)."""
    from norep.measures.transfer import voc07_map_resampler

    Y, singles, pairs = tp["Y"], tp["singles"], tp["pairs"]
    members = list(dict.fromkeys(better[n] for n in names))  # the better members, each scored once
    pair_member_map = voc07_map_resampler(
        Y, [pairs[n]["scores"] for n in names] + [singles[m]["scores"] for m in members]
    )
    at = np.array([len(names) + members.index(better[n]) for n in names])

    cats, groups, i_lo, i_hi = end_groups(parts)
    groups, i_lo, i_hi = [groups[i_lo], groups[i_hi]], 0, 1  # only the tested ends are resampled

    def stat(members, w):  # only the drawn pairs and their better members are scored
        drawn = np.unique(np.concatenate([members[i_hi], members[i_lo]]))
        need = np.unique(np.concatenate([drawn, at[drawn]]))
        m = dict(zip(need.tolist(), pair_member_map(w, which=need), strict=True))
        g = {i: m[i] - m[int(at[i])] for i in drawn.tolist()}
        return float(np.mean([g[i] for i in members[i_hi]]) - np.mean([g[i] for i in members[i_lo]]))

    return hierarchical_bootstrap_ci(stat, groups, Y.shape[0], n_resamples=n_boot, seed=seed, small_sample=True)


def _divergent_ci(Y, scores: dict, reinit_scores: dict, *, n_boot: int, seed: int):
    """The interval of the mean over Dataset models of their test mAP minus the best upstream model's at the same
    width, minus that mean over Reinit models (hierarchical bootstrap: models within the two categories, then
    test examples; widened for few models)."""
    from norep.measures.transfer import voc07_map_resampler

    names = list(scores) + list(reinit_scores)
    both = {**scores, **reinit_scores}
    ups = list({id(b): b for _, b in both.values()}.values())  # the upstream probes, one per width
    at = np.array([len(names) + next(i for i, u in enumerate(ups) if u is both[n][1]) for n in names])
    maps = voc07_map_resampler(Y, [both[n][0] for n in names] + ups)
    groups = [np.arange(len(scores), len(names)), np.arange(len(scores))]  # Reinit, Dataset

    def stat(members, w):  # only the drawn models and their upstream probes are scored
        drawn = np.unique(np.concatenate(members))
        need = np.unique(np.concatenate([drawn, at[drawn]]))
        m = dict(zip(need.tolist(), maps(w, which=need), strict=True))
        margin = [np.mean([m[int(i)] - m[int(at[i])] for i in g]) for g in members]
        return float(margin[1] - margin[0])

    return hierarchical_bootstrap_ci(stat, groups, Y.shape[0], n_resamples=n_boot, seed=seed, small_sample=True)


def _difference_ci(Y, scores_a, scores_b, *, n_boot: int, seed: int):
    """The interval of the test mAP of ``scores_a`` minus that of ``scores_b`` (bootstrap over test examples)."""
    from norep.measures.transfer import voc07_map_resampler

    both = voc07_map_resampler(Y, [scores_a, scores_b])

    def diff(members, w):
        m = both(w)
        return float(m[0] - m[1])

    return hierarchical_bootstrap_ci(diff, [np.arange(1)], Y.shape[0], n_resamples=n_boot, seed=seed)


def _c9_status(s1: int, s2: int, s3: int) -> str:
    """C9's verdict from the signs of its three intervals: the pair contrast, the Dataset-minus-Reinit
    margin over the best upstream model at matched width, the best pair against the best single model.

    Examples
    --------
    >>> [_c9_status(*x) for x in [(1, 1, 1), (1, 1, 0), (0, 1, 1), (0, 0, 1)]]
    ['reproduced', 'partly reproduced', 'partly reproduced', 'inconclusive']
    >>> [_c9_status(*x) for x in [(-1, 1, 1), (1, -1, 1), (0, 0, 0)]]
    ['not reproduced', 'not reproduced', 'inconclusive']
    """
    if s1 < 0 or s2 < 0:
        return "not reproduced"
    if s1 > 0 and s2 > 0 and s3 > 0:
        return "reproduced"
    if s1 > 0 or s2 > 0:
        return "partly reproduced"
    return "inconclusive"


__all__ = ["CHAPTER", "DOWN_SPLITS", "tables", "transfer_probes", "c9_transfer"]
