"""Chapter 04, low-accuracy models in greedy ensembles (Sec. 4.5, Fig. 5): greedy ensembles grown on the
selection split from high-accuracy starts with pools of low-accuracy models, and claim C6."""

from __future__ import annotations

import numpy as np

from norep.claims._core import (
    ClaimResult,
    _cache,
    cat_label,
    check_positive_int,
    fmt_interval,
    lead,
    not_testable,
    selection_accuracy,
    selection_band,
    sign,
)
from norep.measures.stats import hierarchical_bootstrap_ci
from norep.paper._registry import claim, registered

CHAPTER = "04_low_accuracy_greedy"

LOW_ACCURACY_ERROR_RATIO = 1.25
"""C6 pool rule, fixed in advance: a candidate for a start model has a selection-split error rate at
least this many times the start's (the paper: BiT-1k at 17.2 % error with models at >= 22.6 % error,
a ratio of 1.32; ResNet-50 with CLIP-S zero-shot, 1.54)."""

MIN_STARTS_C6 = 2
"""C6: start models with a pool of at least :data:`MIN_POOL_C6` candidates."""

MIN_POOL_C6 = 2
"""C6: candidates a start's pool must hold."""

ALPHA_C6 = 0.05
"""C6: one-sided level of the permutation test of the methodology part."""

N_PERMUTATIONS_C6 = 999
"""C6: permutations of the pool's category labels for the methodology part."""

PERMUTATION_BLOCK_C6 = 4
"""C6: the category labels are permuted only within blocks of this many candidates of neighbouring
selection-split accuracy (fixed in advance), so that under the null each category keeps its candidates'
accuracies."""


def greedy_runs(study, *, starts=None, steps: int = 3, max_starts: int = 6):
    """Greedy ensembles grown on the selection split from each start model (cached on the study).

    Starts: ``starts``, or the ``max_starts`` most accurate models on the selection split among those
    *above* the band's upper end (the paper's starts are its most accurate models). Each start's pool holds the
    models whose selection-split error is at least :data:`LOW_ACCURACY_ERROR_RATIO` times the start's. Returns a
    dict start -> ``{"pool", "result" (GreedyResult with test accuracies), "length"}`` where ``length`` is the
    number of additions (at least one) with the best selection-split accuracy.
    """
    from norep.allpairs import store_greedy_selection

    steps = check_positive_int("steps", steps)
    max_starts = check_positive_int("max_starts", max_starts)
    acc = selection_accuracy(study)
    names = [str(n) for n in study.table["name"]]
    if starts is None:
        cands = [n for n in names if acc[n] > selection_band(study)[1]]
        starts = sorted(cands, key=lambda n: -acc[n])[:max_starts]
    else:
        starts = [starts] if isinstance(starts, str) else list(starts)
        unknown = [s for s in starts if s not in names]
        if unknown:
            raise ValueError(f"starts names unknown models {unknown}")
    key = ("greedy", tuple(starts), steps)
    cache = _cache(study)
    if key in cache:
        return cache[key]
    runs = {}
    for s in starts:
        pool = [m for m in names if m != s and (1 - acc[m]) >= LOW_ACCURACY_ERROR_RATIO * (1 - acc[s])]
        if len(pool) < MIN_POOL_C6:
            continue
        res = store_greedy_selection(
            study.store,
            base=s,
            steps=min(steps, len(pool)),
            candidates=pool,
            selection_split=study.calib_split,
            eval_split=study.split,
        )
        length = 1 + int(np.argmax(res.accuracies[1:]))
        runs[s] = {"pool": pool, "result": res, "length": length}
    cache[key] = runs
    return runs


def tables(study, *, starts=None, steps: int = 3, max_starts: int = 6) -> dict:
    """The chapter's tables: ``runs`` (:func:`greedy_runs`); ``curves``, the test accuracy of each start's
    greedy ensemble after each step (the engine's, :mod:`norep.allpairs`); ``summary``, one row per start:
    its category and test accuracy, the first model added, the ensemble length chosen on the selection
    split, the test accuracy of the ensemble of that length (:func:`norep.measures.ensembles.ensemble_accuracy`)
    and its ``gain`` over the start; ``pool_top``, the best selection-split accuracy in any pool."""
    import pandas as pd

    from norep.measures import ensembles, metrics

    runs = greedy_runs(study, starts=starts, steps=steps, max_starts=max_starts)
    acc_sel, y = selection_accuracy(study), study.labels()
    curves, rows = [], []
    for s, r in runs.items():
        res = r["result"]
        for k, acc in enumerate(res.eval_accuracies):
            added = res.selected[k - 1] if k else None
            curves.append(
                {"start": s, "step": k, "accuracy": acc, "added": added,
                 "added_category": study.category(added) if added else "none"}
            )  # fmt: skip
        members = [s, *res.selected[: r["length"]]]
        start_acc = metrics.accuracy_score(y, study.probs(s).argmax(1))
        ens_acc = ensembles.ensemble_accuracy(y, [study.probs(m) for m in members])
        rows.append(
            {
                "start": s,
                "start_category": study.category(s),
                "start_accuracy": start_acc,
                "first_added": res.selected[0],
                "first_added_category": study.category(res.selected[0]),
                "first_added_calib_accuracy": acc_sel[res.selected[0]],
                "length_chosen_on_calib": r["length"],
                "accuracy_at_chosen_length": ens_acc,
                "gain": ens_acc - start_acc,
            }
        )
    pool_top = max((max(acc_sel[m] for m in r["pool"]) for r in runs.values()), default=float("nan"))
    out = {"runs": runs, "curves": pd.DataFrame(curves), "summary": pd.DataFrame(rows), "pool_top": pool_top}
    out["first_additions"] = _first_additions(study, runs)
    return out


def _first_additions(study, runs):
    """One row per start and candidate of its pool: the candidate's category, the accuracy of the two-model
    ensemble (start + candidate) on the selection split (``calib_accuracy``) and on test (``accuracy``), and the
    candidate's own accuracy on each (``candidate_calib_accuracy``, ``candidate_accuracy``)."""
    import pandas as pd

    from norep.measures.ensembles import ensemble_probs

    probs = {}

    def p(n, split):
        if (n, split) not in probs:
            probs[(n, split)] = study.probs(n, split)
        return probs[(n, split)]

    y_cal, y = np.asarray(study.labels(study.calib_split)), np.asarray(study.labels())

    def ens_acc(s, m, split, y_split):
        return float(np.mean(ensemble_probs([p(s, split), p(m, split)]).argmax(1) == y_split))

    def own_acc(m, split, y_split):
        return float(np.mean(p(m, split).argmax(1) == y_split))

    rows = []
    for s, r in runs.items():
        for m in r["pool"]:
            rows.append(
                {
                    "start": s,
                    "start_category": study.category(s),
                    "candidate": m,
                    "category": study.category(m),
                    "calib_accuracy": ens_acc(s, m, study.calib_split, y_cal),
                    "accuracy": ens_acc(s, m, None, y),
                    "candidate_calib_accuracy": own_acc(m, study.calib_split, y_cal),
                    "candidate_accuracy": own_acc(m, None, y),
                }
            )
    cols = ["start", "start_category", "candidate", "category", "calib_accuracy", "accuracy"]
    cols += ["candidate_calib_accuracy", "candidate_accuracy"]
    return pd.DataFrame(rows, columns=cols)


def accuracy_slope(first_additions, categories=None) -> float:
    """C6's adjustment: the pooled within-group least-squares slope of the two-model ensemble's selection-split
    accuracy on the candidate's own selection-split accuracy, a group being one start's candidates of one
    category (``categories``, one per row, replaces theirs), so that a difference between the categories does
    not enter the slope; 0 without the candidate accuracies or their spread.

    Examples
    --------
    >>> import pandas as pd
    >>> fa = pd.DataFrame({"start": list("sstt"), "category": list("AAAA"), "calib_accuracy": [0.8, 0.9, 0.5, 0.7],
    ...                    "candidate_calib_accuracy": [0.5, 0.6, 0.4, 0.6]})
    >>> round(accuracy_slope(fa), 6)
    1.0
    """
    import pandas as pd

    if "candidate_calib_accuracy" not in first_additions:
        return 0.0
    cat = np.asarray(first_additions["category"] if categories is None else categories)
    keys = [first_additions["start"].to_numpy(), cat]
    x = first_additions["candidate_calib_accuracy"].to_numpy(dtype=np.float64)
    a = first_additions["calib_accuracy"].to_numpy(dtype=np.float64)
    g = pd.DataFrame({"x": x, "a": a}).groupby(keys, sort=False)
    xc = x - g["x"].transform("mean").to_numpy()
    ac = a - g["a"].transform("mean").to_numpy()
    sxx = float(xc @ xc)
    return float(xc @ ac / sxx) if sxx > 1e-15 else 0.0


def methodology_contrast(first_additions, categories=None, *, return_picks=False, slope=None):
    """C6's methodology statistic, compared at a common candidate accuracy: each two-model ensemble's accuracy
    is adjusted by ``slope`` (default :func:`accuracy_slope` of the rows' own categories) times the candidate's
    own accuracy on the same split, so that a candidate that is simply more accurate is no better a complement.
    Over the starts whose pool holds candidates of the start's own category and of others, the mean of the
    adjusted test accuracy of the start with its best other-category candidate minus with its best
    same-category candidate, each chosen by the adjusted selection-split accuracy (ties: the first in pool
    order). Without the candidate accuracies (or their spread) the slope is 0 and the accuracies are compared
    as they are. Returns the statistic (``nan`` without such a start) and the number of starts it averages
    (and, with ``return_picks``, start -> (best same-category, best other-category candidate)). ``categories``
    (one per row of ``first_additions``) replaces the candidates' categories (a permutation; the slope stays
    the one given or that of the rows' own categories).

    Examples
    --------
    >>> import pandas as pd
    >>> fa = pd.DataFrame({"start": ["s"] * 3, "start_category": ["A"] * 3, "candidate": list("abc"),
    ...                    "category": ["A", "B", "B"], "calib_accuracy": [0.8, 0.7, 0.9],
    ...                    "accuracy": [0.8, 0.9, 0.85]})
    >>> methodology_contrast(fa, return_picks=True)
    (0.04999999999999993, 1, {'s': ('a', 'c')})
    """
    cat = np.asarray(first_additions["category"] if categories is None else categories)
    beta = accuracy_slope(first_additions) if slope is None else float(slope)
    a_all = first_additions["calib_accuracy"].to_numpy(dtype=np.float64)
    b_all = first_additions["accuracy"].to_numpy(dtype=np.float64)
    if beta != 0.0:
        a_all = a_all - beta * first_additions["candidate_calib_accuracy"].to_numpy(dtype=np.float64)
        b_all = b_all - beta * first_additions["candidate_accuracy"].to_numpy(dtype=np.float64)
    cand = first_additions["candidate"].to_numpy()
    diffs, picks = [], {}
    for s, idx in first_additions.groupby("start", sort=False).indices.items():
        same = cat[idx] == first_additions["start_category"].iloc[idx[0]]
        if same.all() or not same.any():
            continue
        a, b = a_all[idx], b_all[idx]
        i_same = np.flatnonzero(same)[np.argmax(a[same])]
        i_other = np.flatnonzero(~same)[np.argmax(a[~same])]
        diffs.append(b[i_other] - b[i_same])
        picks[s] = (str(cand[idx][i_same]), str(cand[idx][i_other]))
    stat = float(np.mean(diffs)) if diffs else float("nan")
    return (stat, len(diffs), picks) if return_picks else (stat, len(diffs))


def _permutation_p(
    first_additions,
    observed: float,
    *,
    n_permutations: int,
    seed: int,
    accuracy=None,
    block: int = PERMUTATION_BLOCK_C6,
) -> tuple[float, float]:
    """One-sided permutation p-values (upper, lower) of :func:`methodology_contrast`: the category labels of the
    candidates are permuted over the union of the pools, one permutation for all starts at once, so that starts
    sharing candidates stay dependent as they are; the accuracy slope (:func:`accuracy_slope`) is estimated once
    from the observed categories and held fixed. With ``accuracy`` (candidate -> selection-split accuracy) the
    labels are permuted only within consecutive blocks of ``block`` candidates in order of that accuracy, so that
    a category whose candidates are simply more (or less) accurate keeps that difference under the null, and
    where the categories do not overlap in accuracy the test cannot decide."""
    rng = np.random.default_rng(seed)
    models = list(dict.fromkeys(first_additions["candidate"]))
    cat_of = dict(zip(first_additions["candidate"], first_additions["category"], strict=False))
    labels = np.array([cat_of[m] for m in models])
    pos = np.array([models.index(m) for m in first_additions["candidate"]])
    if accuracy is None:
        blocks = [np.arange(len(models))]
    else:
        order = np.argsort([accuracy[m] for m in models], kind="stable")
        blocks = [order[i : i + int(block)] for i in range(0, len(models), int(block))]
    slope = accuracy_slope(first_additions)  # estimated once, from the observed categories, and held fixed
    hi = lo = n = 0
    for _ in range(n_permutations):
        perm = np.arange(len(models))
        for b in blocks:
            perm[b] = rng.permutation(b)
        t, k = methodology_contrast(first_additions, labels[perm][pos], slope=slope)
        if k == 0 or np.isnan(t):
            continue
        n += 1
        hi += t >= observed - 1e-12
        lo += t <= observed + 1e-12
    return (1 + hi) / (1 + n), (1 + lo) / (1 + n)


@claim(
    "C6",
    chapter=CHAPTER,
    title="low-accuracy models improve high-accuracy ones in greedy ensembles",
    paper=(
        "ResNet-50 76.2 % + CLIP-S-ZS 63.3 % = 77.7 %; BiT-1k 82.85 % + only models below 77.44 % = 86.66 %; "
        "the best first addition complements the start's methodology"
    ),
)
def c6_low_accuracy_greedy(
    study,
    *,
    starts=None,
    steps: int = 3,
    max_starts: int = 6,
    n_boot: int = 1000,
    seed: int = 0,
    chapter_tables=None,
    n_permutations: int = N_PERMUTATIONS_C6,
) -> ClaimResult:
    """C6 (Sec. 4.5, Fig. 5): low-accuracy, differently trained models improve a high-accuracy model
    when greedily added; the best first addition complements the start's methodology.

    Decision rule, fixed before any data. Starts: the models above the band on the selection split (see
    :func:`greedy_runs`; explicit ``starts`` inside or below the band are left out of the claim). Each start's
    pool is fixed by the error-rate rule (:data:`LOW_ACCURACY_ERROR_RATIO`); candidates are added greedily on
    the selection split and the length (at least one addition) is the best there. Read from the chapter's
    tables (``chapter_tables``, default :func:`tables`), two parts:

    * *low-accuracy models improve the start* (the gain): the mean over starts of the test accuracy of the
      greedy ensemble minus the start's alone. The starts share their pools, so they are not independent
      units: the interval resamples test examples only, the starts and pools fixed. Ensembles of calibrated,
      diverse models gain whatever the categories, so the gain never lifts a verdict by itself;
    * *the first addition complements the start's methodology* (decides): per start whose pool holds
      candidates of its own category and of others, the test accuracy of the start with its best other-category
      candidate minus with its best same-category candidate, both chosen on the selection split, compared at a
      common candidate accuracy (:func:`methodology_contrast`: each ensemble's accuracy less the pooled
      within-start-and-category slope on the candidate's own accuracy, :func:`accuracy_slope`, times that
      accuracy, so that a category whose candidates are simply more accurate, with no complementarity, gains
      nothing; the slope is estimated once and held fixed under the permutations); the mean over
      those starts is compared with its distribution when the candidates' category labels are permuted over
      the union of the pools (``n_permutations``, one permutation for all starts at once, so the pools' sharing is
      kept), which holds the number of candidates per category fixed: a category with more candidates has a
      better best candidate by chance, and the permutation null carries that advantage too. The labels are
      permuted only within blocks of :data:`PERMUTATION_BLOCK_C6` candidates of neighbouring selection-split
      accuracy, so a category whose candidates are simply more accurate keeps that advantage under the null
      too (where the categories do not overlap in accuracy, the part cannot decide).

    Verdict: *reproduced* when the gain's interval lies above 0 and the methodology contrast is positive with
    a one-sided permutation p-value below :data:`ALPHA_C6`; *partly reproduced* when only the methodology part
    holds; *not reproduced* when the gain's interval lies below 0 or the contrast is significantly negative
    (same-methodology additions better); else *inconclusive*. *Not testable* with fewer than
    :data:`MIN_STARTS_C6` starts above the band whose pool holds :data:`MIN_POOL_C6` candidates, or when no
    pool holds candidates of both the start's category and another.
    """
    title, paper = registered("C6")
    t = chapter_tables or tables(study, starts=starts, steps=steps, max_starts=max_starts)
    hi = selection_band(study)[1]
    acc = selection_accuracy(study)
    runs = {s: r for s, r in t["runs"].items() if acc[s] > hi}
    if len(runs) < MIN_STARTS_C6:
        return not_testable(
            "C6",
            title,
            f"{len(runs)} start model(s) above the band have at least {MIN_POOL_C6} candidates whose "
            f"selection-split error is {LOW_ACCURACY_ERROR_RATIO}x theirs; at least {MIN_STARTS_C6} "
            "are needed",
            paper=paper,
            n_models=len(runs),
        )
    summary = t["summary"][t["summary"]["start"].isin(list(runs))].reset_index(drop=True)
    fa = t["first_additions"][t["first_additions"]["start"].isin(list(runs))].reset_index(drop=True)
    contrast, n_cmp, picks = methodology_contrast(fa, return_picks=True)
    if n_cmp == 0:
        return not_testable(
            "C6",
            title,
            "no start's pool holds candidates of both the start's own category and another: the same- and "
            "different-methodology first additions cannot be compared",
            paper=paper,
            n_models=len(runs),
        )
    p_hi, p_lo = _permutation_p(fa, contrast, n_permutations=n_permutations, seed=seed, accuracy=acc)
    ci = _gain_ci(study, runs, n_boot=n_boot, seed=seed)
    effect = float(summary["gain"].mean())
    sg = sign(ci.low, ci.high)
    complements = contrast > 0 and p_hi < ALPHA_C6
    opposite = contrast < 0 and p_lo < ALPHA_C6
    if sg < 0 or opposite:
        status = "not reproduced"
    elif complements:
        status = "reproduced" if sg > 0 else "partly reproduced"
    else:
        status = "inconclusive"
    starts_l = summary["start"].tolist()
    cat = dict(zip(starts_l, summary["start_category"], strict=True))
    first_cat = dict(zip(starts_l, summary["first_added_category"], strict=True))
    other = int(sum(first_cat[s] != cat[s] for s in starts_l))
    best = summary.loc[int(np.argmax(summary["gain"].to_numpy()))]
    sentence = (
        f"{lead(status)}: from {len(runs)} starts above the band, greedy ensembles (pool: models with at least "
        f"{LOW_ACCURACY_ERROR_RATIO}x the start's selection-split error; length chosen on the selection split) "
        f"gain {fmt_interval(effect, ci.low, ci.high, digits=1, scale=100, unit=' points')} over their start on "
        f"test (best {best['start']} {100 * best['start_accuracy']:.1f} % -> "
        f"{100 * best['accuracy_at_chosen_length']:.1f} %); the best other-category first addition minus the best "
        f"same-category one at a common candidate accuracy: {100 * contrast:+.1f} points on test over {n_cmp} "
        f"start(s), permutation p = {p_hi:.3f} (category labels permuted within the pools among candidates of "
        f"similar accuracy); first addition from another category for "
        f"{other} of {len(runs)} starts."
    )
    return ClaimResult(
        "C6",
        title,
        status,
        effect,
        ci.low,
        ci.high,
        effect_name="test accuracy of the greedy ensemble minus its start, mean over starts above the band",
        resampled="test examples (the starts share their pools: not resampled as independent units)",
        n_models=len(set(starts_l) | {m for r in runs.values() for m in r["pool"]}),
        n_pairs=len(runs),
        sentence=sentence,
        paper=paper,
        checks={
            "methodology_contrast": f"{contrast:+.4f} over {n_cmp} start(s), permutation p = {p_hi:.3f}",
            "complements": bool(complements),
            "first_added_other_category": f"{other} of {len(runs)}",
        },
        choices={
            s: {"pool": r["pool"], "selected": r["result"].selected, "length": r["length"], "same_other": picks.get(s)}
            for s, r in runs.items()
        },
        details={
            "runs": runs,
            "gains": dict(zip(starts_l, summary["gain"].tolist(), strict=True)),
            "start_category": cat,
            "first_added_category": first_cat,
            "methodology_contrast": contrast,
            "p_value": p_hi,
            "pool_top_selection_accuracy": t["pool_top"],
            "labels": cat_label,
        },
    )


def _gain_ci(study, runs, *, n_boot: int, seed: int):
    """C6's interval: the mean over starts of the greedy ensemble's test accuracy minus the start's (test
    examples; the starts, which share pools, stay fixed)."""
    from norep.measures.ensembles import ensemble_probs

    y = np.asarray(study.labels())
    start_ok, ens_ok = [], []
    for s, r in runs.items():
        members = [s, *r["result"].selected[: r["length"]]]
        start_ok.append(study.probs(s).argmax(1) == y)
        ens_ok.append(ensemble_probs([study.probs(m) for m in members]).argmax(1) == y)
    start_ok, ens_ok = np.array(start_ok, dtype=np.float64), np.array(ens_ok, dtype=np.float64)

    def stat(members, w):
        g = (ens_ok @ w - start_ok @ w) / w.sum()
        return float(g[members[0]].mean())

    groups = [np.arange(len(runs))]
    return hierarchical_bootstrap_ci(stat, groups, y.shape[0], n_resamples=n_boot, seed=seed, resample_models=False)


__all__ = [
    "CHAPTER",
    "tables",
    "LOW_ACCURACY_ERROR_RATIO",
    "MIN_STARTS_C6",
    "MIN_POOL_C6",
    "ALPHA_C6",
    "N_PERMUTATIONS_C6",
    "PERMUTATION_BLOCK_C6",
    "greedy_runs",
    "methodology_contrast",
    "accuracy_slope",
    "c6_low_accuracy_greedy",
]
