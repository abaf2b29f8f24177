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


def greedy_runs(study, *, starts=None, steps: int = 3, max_starts: int = 6):
    """Greedy ensembles grown on the selection split from each start model (cached on the study).

    Starts: ``starts``, or the ``max_starts`` most accurate models on the selection split among those
    at or above the band's lower end. Each start's pool holds the models whose selection-split error
    is at least :data:`LOW_ACCURACY_ERROR_RATIO` times the start's. Returns a dict start ->
    ``{"pool", "result" (GreedyResult with test accuracies), "length"}`` where ``length`` is the
    number of additions (at least one) with the best selection-split accuracy.
    """
    from norep.allpairs import store_greedy_selection

    steps = check_positive_int("steps", steps)
    max_starts = check_positive_int("max_starts", max_starts)
    acc = selection_accuracy(study)
    names = [str(n) for n in study.table["name"]]
    if starts is None:
        cands = [n for n in names if acc[n] >= selection_band(study)[0]]
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
    return {"runs": runs, "curves": pd.DataFrame(curves), "summary": pd.DataFrame(rows), "pool_top": pool_top}


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
) -> ClaimResult:
    """C6 (Sec. 4.5, Fig. 5): low-accuracy, differently trained models improve a high-accuracy model
    when greedily added; the best first addition complements the start's methodology.

    For several start models (see :func:`greedy_runs`), candidates are added greedily on the
    selection split from a pool fixed by the error-rate rule (:data:`LOW_ACCURACY_ERROR_RATIO`);
    the ensemble length (at least one addition) is the best on the selection split. Read from the
    chapter's ``summary`` table (``chapter_tables``, default :func:`tables`), the effect is
    the mean over starts of the test accuracy of that ensemble minus the start's alone
    (bootstrap: starts, then test examples). The second part: the first addition comes from
    another category than the start for most starts.

    Verdict: *reproduced* when the interval lies above 0 and the second part holds; *partly
    reproduced* when only the interval does; *not reproduced* when it lies below 0; else
    *inconclusive*. *Not testable* with fewer than :data:`MIN_STARTS_C6` starts whose pool holds
    :data:`MIN_POOL_C6` candidates.
    """
    title, paper = registered("C6")
    t = chapter_tables or tables(study, starts=starts, steps=steps, max_starts=max_starts)
    runs, summary = t["runs"], t["summary"]
    if len(runs) < MIN_STARTS_C6:
        return not_testable(
            "C6",
            title,
            f"{len(runs)} start model(s) have at least {MIN_POOL_C6} candidates whose "
            f"selection-split error is {LOW_ACCURACY_ERROR_RATIO}x theirs; at least {MIN_STARTS_C6} "
            "are needed",
            paper=paper,
            n_models=len(runs),
        )
    ci = _gain_ci(study, runs, n_boot=n_boot, seed=seed)
    starts_l = summary["start"].tolist()
    cat = dict(zip(starts_l, summary["start_category"], strict=True))
    first_cat = dict(zip(starts_l, summary["first_added_category"], strict=True))
    other = int(sum(first_cat[s] != cat[s] for s in starts_l))
    complements = other > len(starts_l) / 2
    effect = float(summary["gain"].mean())
    sg = sign(ci.low, ci.high)
    if sg > 0:
        status = "reproduced" if complements else "partly reproduced"
    else:
        status = "not reproduced" if sg < 0 else "inconclusive"
    best = summary.loc[int(np.argmax(summary["gain"].to_numpy()))]
    sentence = (
        f"{lead(status)}: greedy ensembles (pool: models with at least {LOW_ACCURACY_ERROR_RATIO}x the "
        f"start's selection-split error; length chosen on the selection split) gain "
        f"{fmt_interval(effect, ci.low, ci.high, digits=1, scale=100, unit=' points')} over their start "
        f"on test, mean over {len(runs)} starts; best {best['start']} {100 * best['start_accuracy']:.1f} % "
        f"-> {100 * best['accuracy_at_chosen_length']:.1f} %; first addition from another category for "
        f"{other} of {len(runs)} starts."
    )
    return ClaimResult(
        "C6",
        title,
        status,
        effect,
        ci.low,
        ci.high,
        effect_name="test accuracy of the greedy ensemble minus its start, mean over starts",
        resampled="start models, then test examples",
        n_models=len(set(starts_l) | {m for r in runs.values() for m in r["pool"]}),
        n_pairs=len(runs),
        sentence=sentence,
        paper=paper,
        checks={"complements": f"{other} of {len(runs)} first additions from another category"},
        choices={
            s: {"pool": r["pool"], "selected": r["result"].selected, "length": r["length"]} for s, r in runs.items()
        },
        details={
            "runs": runs,
            "gains": dict(zip(starts_l, summary["gain"].tolist(), strict=True)),
            "start_category": cat,
            "first_added_category": first_cat,
            "pool_top_selection_accuracy": t["pool_top"],
            "labels": cat_label,
        },
    )


def _gain_ci(study, runs, *, n_boot: int, seed: int):
    """C6's interval: the mean over starts of the greedy ensemble's test accuracy minus the start's
    (starts, then test examples)."""
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

    return hierarchical_bootstrap_ci(stat, [np.arange(len(runs))], y.shape[0], n_resamples=n_boot, seed=seed)


__all__ = [
    "CHAPTER",
    "tables",
    "LOW_ACCURACY_ERROR_RATIO",
    "MIN_STARTS_C6",
    "MIN_POOL_C6",
    "greedy_runs",
    "c6_low_accuracy_greedy",
]
