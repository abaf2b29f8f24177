"""Claim on downstream transfer: C9 (single and concatenated embeddings probed on a multi-label task)."""

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
from norep.claims._features import FEATURES_RESAMPLED, _ends_check
from norep.measures.stats import hierarchical_bootstrap_ci


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


def c9_transfer(
    study,
    *,
    down_splits=("down_train", "down_val", "down_test"),
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
    title = "best upstream model is not the best transfer model; concatenation helps divergent pairs most"
    paper = (
        "best ImageNet model (MPL) is not the best transfer model; "
        "a pair reaches 91.4 % mAP vs 90.7 % for its best member"
    )
    st = study.store
    missing = [s for s in down_splits if s not in st.splits() or not st.is_multilabel(s)]
    if missing:
        return not_testable("C9", title, f"the store has no multi-label downstream split(s) {missing}", paper=paper)
    tp = transfer_probes(
        study,
        down_splits=down_splits,
        probe_Cs=probe_Cs,
        probe_refit=probe_refit,
        max_per_category=max_per_category,
        categories=categories,
        device=device,
    )
    parts = tp["partners"]
    bad = _ends_check("C9", title, paper, parts)
    if bad:
        return bad
    names = [n for c in CATEGORIES if c in parts for n in parts[c]]
    singles, pairs = tp["singles"], tp["pairs"]
    better = {n: (study.base if singles[study.base]["val_map"] >= singles[n]["val_map"] else n) for n in names}
    ci, gains = _pair_gain_ci(tp, parts, names, better, n_boot=n_boot, seed=seed)
    models = tp["models"]
    up_best, down_best, ci_a = _upstream_vs_downstream(study, tp, n_boot=n_boot, seed=seed)
    s1, s2 = sign(ci.low, ci.high), sign(ci_a.low, ci_a.high)
    status = _c9_status(s1, s2)
    g_all = dict(zip(names, gains().tolist(), strict=True))
    dims = {n: int(np.asarray(st.embeddings(n, down_splits[0])).shape[1]) for n in [study.base, *names]}
    matched = len({dims[n] for n in names}) == 1
    sentence = (
        f"{lead(status)}: mAP gain of the base's embedding concatenated with a partner's over the better member "
        f"(chosen on validation), Dataset minus Reinit pairs = "
        f"{fmt_interval(ci.estimate, ci.low, ci.high, digits=1, scale=100, unit=' points')}"
        f"{'' if matched else ' (partners of different widths: dimensions not matched)'}; the best upstream "
        f"model on the selection split, {up_best}, is {'also' if up_best == down_best else 'not'} the best "
        f"transfer model on validation ({down_best}; test mAP difference "
        f"{fmt_interval(ci_a.estimate, ci_a.low, ci_a.high, digits=1, scale=100, unit=' points')})."
    )
    return ClaimResult(
        "C9",
        title,
        status,
        ci.estimate,
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
    """C9's effect: each pair's test mAP minus its better member's, Dataset minus Reinit pairs (hierarchical
    bootstrap: partners within categories, then test examples), and the function that gives every pair's gain
    (on the whole test set when called without counts)."""
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

    ci = hierarchical_bootstrap_ci(stat, groups, Y.shape[0], n_resamples=n_boot, seed=seed)
    return ci, gains


def _upstream_vs_downstream(study, tp, *, n_boot: int, seed: int):
    """The best upstream model (selection-split accuracy), the best transfer model (validation mAP) and the
    interval of the latter's test mAP minus the former's (bootstrap over test examples)."""
    from norep.measures.transfer import voc07_map_resampler

    Y, singles, models = tp["Y"], tp["singles"], tp["models"]
    acc = selection_accuracy(study)
    up_best = max(models, key=lambda n: acc[n])
    down_best = max(models, key=lambda n: singles[n]["val_map"])

    down_up_map = voc07_map_resampler(Y, [singles[down_best]["scores"], singles[up_best]["scores"]])

    def up_down(members, w):
        m = down_up_map(w)
        return float(m[0] - m[1])

    ci_a = hierarchical_bootstrap_ci(up_down, [np.arange(1)], Y.shape[0], n_resamples=n_boot, seed=seed)
    return up_best, down_best, ci_a


def _c9_status(s1: int, s2: int) -> str:
    """C9's verdict from the signs of its two parts' intervals (the pair gain's, then the upstream one's)."""
    if s1 > 0 and s2 > 0:
        return "reproduced"
    if s1 < 0:
        return "not reproduced"
    if s1 > 0 or s2 > 0:
        return "partly reproduced"
    return "inconclusive"


__all__ = ["transfer_probes", "c9_transfer"]
