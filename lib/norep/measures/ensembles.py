"""Ensembles of calibrated classifiers (paper Sec. 4.2, Fig. 2, and Sec. 4.5, Fig. 5).

An **ensemble** is the (optionally weighted) mean of its members' probabilities; the paper
averages temperature-calibrated probabilities (Sec. 3.2-3.3), so pass ``store.probs(name, split)``
(calibrated by default). The ensemble's prediction is the argmax of the mean, with ties going to
the first maximal class as everywhere in :mod:`norep` (see :mod:`norep.measures.metrics`).

The mean is accumulated in float64 in member order and divided by the total weight once, with
the same arithmetic in every function here, so that :func:`pairwise_ensemble_accuracy` and
:func:`greedy_selection` agree exactly with :func:`ensemble_accuracy` on the same members.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from norep.measures._validation import (
    check_candidates,
    check_probs,
    check_probs_stack,
    check_weights,
    check_y_true,
)

__all__ = [
    "GreedyResult",
    "ensemble_probs",
    "ensemble_accuracy",
    "ensemble_gain",
    "conversion_rate",
    "pairwise_ensemble_accuracy",
    "pairwise_ensemble_gain",
    "pairwise_conversion_rate",
    "greedy_selection",
]

# Upper bound on the number of float64 elements materialised at once by the pairwise loops.
_CHUNK_ELEMENTS = 2**24


def _mean_probs(members: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    total = np.zeros(members[0].shape, dtype=np.float64)
    if weights is None:
        for p in members:
            total += p
        total /= len(members)
    else:
        for p, w in zip(members, weights, strict=True):
            total += w * np.asarray(p, dtype=np.float64)
        total /= float(np.sum(weights))
    return total


def ensemble_probs(probs_list, weights=None) -> np.ndarray:
    """Mean (or weighted mean) of the members' probabilities (Sec. 4.2).

    Parameters
    ----------
    probs_list : list of (N, C) arrays, or an (M, N, C) array
        Calibrated probabilities of the M members (rows on the simplex).
    weights : array-like of shape (M,), optional
        Non-negative member weights; normalised to sum to one. Default: equal weights.

    Returns
    -------
    ndarray of shape (N, C), float64
        The ensemble's probabilities.

    Examples
    --------
    >>> pa = [[0.9, 0.1], [0.4, 0.6]]
    >>> pb = [[0.3, 0.7], [0.2, 0.8]]
    >>> ensemble_probs([pa, pb])
    array([[0.6, 0.4],
           [0.3, 0.7]])
    >>> ensemble_probs([pa, pb], weights=[3, 1]).round(2)
    array([[0.75, 0.25],
           [0.35, 0.65]])
    """
    members = check_probs_stack(probs_list, None, name="probs_list")
    return _mean_probs(members, check_weights(weights, len(members)))


def ensemble_accuracy(y_true, probs_list, weights=None) -> float:
    """Top-1 accuracy of the mean-probability ensemble (Sec. 4.2, Fig. 2 center).

    Parameters
    ----------
    y_true : array-like of shape (N,)
        Integer class ids.
    probs_list : list of (N, C) arrays, or an (M, N, C) array
        Calibrated probabilities of the members. One member gives that model's accuracy.
    weights : array-like of shape (M,), optional
        Member weights (see :func:`ensemble_probs`).

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    A is right on example 0 only, B on example 1 only; averaged, each confident member wins:

    >>> y = [0, 1, 1]
    >>> pa = [[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]]
    >>> pb = [[0.4, 0.6], [0.1, 0.9], [0.7, 0.3]]
    >>> ensemble_accuracy(y, [pa, pb])
    0.6666666666666666
    """
    y = check_y_true(y_true)
    members = check_probs_stack(probs_list, y, name="probs_list")
    mean = _mean_probs(members, check_weights(weights, len(members)))
    return float(np.mean(np.argmax(mean, axis=1) == y))


def _two(y_true, probs_a, probs_b):
    y = check_y_true(y_true)
    pa = check_probs(probs_a, y, name="probs_a")
    pb = check_probs(probs_b, y, name="probs_b")
    if pa.shape[1] != pb.shape[1]:
        raise ValueError(f"probs_a has {pa.shape[1]} classes but probs_b has {pb.shape[1]}")
    ca = np.argmax(pa, axis=1) == y
    cb = np.argmax(pb, axis=1) == y
    ce = np.argmax(_mean_probs([pa, pb]), axis=1) == y
    return ca, cb, ce


def ensemble_gain(y_true, probs_a, probs_b) -> float:
    """Ensemble accuracy minus the mean accuracy of its two members (Sec. 4.2, Fig. 2 left).

    Parameters
    ----------
    y_true : array-like of shape (N,)
    probs_a, probs_b : array-like of shape (N, C)
        Calibrated probabilities of the two members.

    Returns
    -------
    float
        ``acc(ensemble) - (acc(A) + acc(B)) / 2``; positive when the pair ensembles well.

    Examples
    --------
    >>> y = [0, 1, 1]
    >>> pa = [[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]]
    >>> pb = [[0.4, 0.6], [0.1, 0.9], [0.7, 0.3]]
    >>> round(ensemble_gain(y, pa, pb), 4)  # 2/3 - (1/3 + 1/3) / 2
    0.3333
    """
    ca, cb, ce = _two(y_true, probs_a, probs_b)
    return float(np.mean(ce) - (np.mean(ca) + np.mean(cb)) / 2.0)


def conversion_rate(y_true, probs_a, probs_b) -> float:
    """Share of the examples with exactly one correct member that the ensemble gets right.

    The paper's conversion rate (Sec. 4.2, Fig. 2 right): among the error-inconsistent examples
    (only A or only B correct), the fraction on which the two-model mean-probability ensemble
    predicts the label, i.e. on which the correct member's confidence "wins". Symmetric in A
    and B. Returns ``nan`` when no example has exactly one correct member (the rate is then
    undefined); :func:`norep.measures.stats.bootstrap_ci` ignores such resamples.

    Parameters
    ----------
    y_true : array-like of shape (N,)
    probs_a, probs_b : array-like of shape (N, C)
        Calibrated probabilities of the two members.

    Returns
    -------
    float in [0, 1], or nan

    Examples
    --------
    Examples 0 and 1 are inconsistent; the ensemble converts example 0 only:

    >>> y = [0, 0, 1]
    >>> pa = [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]
    >>> pb = [[0.4, 0.6], [0.6, 0.4], [0.4, 0.6]]
    >>> conversion_rate(y, pa, pb)
    0.5
    """
    ca, cb, ce = _two(y_true, probs_a, probs_b)
    inconsistent = ca != cb
    n = int(np.count_nonzero(inconsistent))
    if n == 0:
        return float("nan")
    return float(np.count_nonzero(ce & inconsistent) / n)


def _pairwise_ensemble_correct(y: np.ndarray, members: list[np.ndarray]):
    """Yield ``(i, j_start, correct)`` with ``correct[k]`` the (N,) correctness of the
    ensemble of members i and j_start + k, for all j >= i, vectorised over j in chunks."""
    m = len(members)
    n, c = members[0].shape
    chunk = max(1, _CHUNK_ELEMENTS // (n * c))
    stack = members  # list of (N, C) arrays, possibly float16/float32 memory maps
    for i in range(m):
        pi = np.asarray(stack[i], dtype=np.float64)
        for j0 in range(i, m, chunk):
            j1 = min(m, j0 + chunk)
            block = np.stack([np.asarray(stack[j], dtype=np.float64) for j in range(j0, j1)])
            block += pi[None]  # pi + pj, as _mean_probs adds (0 + pi) + pj
            block /= 2.0
            yield i, j0, np.argmax(block, axis=2) == y[None, :]


def pairwise_ensemble_accuracy(y_true, probs) -> np.ndarray:
    """Accuracy of the two-model ensemble of every pair of M models (Sec. 4.2, full matrix).

    Entry ``[i, j]`` equals ``ensemble_accuracy(y_true, [probs[i], probs[j]])``; the matrix is
    symmetric and its diagonal holds the single models' accuracies. Loops over the first model
    and vectorises over the second (in memory-bounded chunks). For paper-scale stores, see the
    chunked all-pairs engine :mod:`norep.allpairs`.

    Parameters
    ----------
    y_true : array-like of shape (N,)
    probs : (M, N, C) array or list of M (N, C) arrays
        Calibrated probabilities.

    Returns
    -------
    ndarray of shape (M, M)

    Examples
    --------
    >>> y = [0, 1, 1]
    >>> pa = [[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]]
    >>> pb = [[0.4, 0.6], [0.1, 0.9], [0.7, 0.3]]
    >>> pairwise_ensemble_accuracy(y, [pa, pb]).round(3)
    array([[0.333, 0.667],
           [0.667, 0.333]])
    """
    y = check_y_true(y_true)
    members = check_probs_stack(probs, y, name="probs")
    m = len(members)
    out = np.empty((m, m))
    for i, j0, correct in _pairwise_ensemble_correct(y, members):
        acc = correct.mean(axis=1)
        out[i, j0 : j0 + acc.shape[0]] = acc
        out[j0 : j0 + acc.shape[0], i] = acc
    return out


def pairwise_ensemble_gain(y_true, probs) -> np.ndarray:
    """:func:`ensemble_gain` for every pair: ensemble accuracy minus the members' mean accuracy.

    Parameters
    ----------
    y_true : array-like of shape (N,)
    probs : (M, N, C) array or list of M (N, C) arrays

    Returns
    -------
    ndarray of shape (M, M)
        Symmetric, zero diagonal.

    Examples
    --------
    >>> y = [0, 1, 1]
    >>> pa = [[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]]
    >>> pb = [[0.4, 0.6], [0.1, 0.9], [0.7, 0.3]]
    >>> pairwise_ensemble_gain(y, [pa, pb]).round(3)
    array([[0.   , 0.333],
           [0.333, 0.   ]])
    """
    acc = pairwise_ensemble_accuracy(y_true, probs)
    single = np.diagonal(acc).copy()
    return acc - (single[:, None] + single[None, :]) / 2.0


def pairwise_conversion_rate(y_true, probs) -> np.ndarray:
    """:func:`conversion_rate` for every pair of M models (Sec. 4.2, full matrix).

    Parameters
    ----------
    y_true : array-like of shape (N,)
    probs : (M, N, C) array or list of M (N, C) arrays
        Calibrated probabilities.

    Returns
    -------
    ndarray of shape (M, M)
        Symmetric. ``nan`` where a pair has no example with exactly one correct member,
        in particular on the diagonal.

    Examples
    --------
    >>> y = [0, 0, 1]
    >>> pa = [[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]]
    >>> pb = [[0.4, 0.6], [0.6, 0.4], [0.4, 0.6]]
    >>> pairwise_conversion_rate(y, [pa, pb])
    array([[nan, 0.5],
           [0.5, nan]])
    """
    y = check_y_true(y_true)
    members = check_probs_stack(probs, y, name="probs")
    m = len(members)
    k = np.stack([np.argmax(p, axis=1) == y for p in members])  # (M, N) member correctness
    out = np.full((m, m), np.nan)
    for i, j0, correct in _pairwise_ensemble_correct(y, members):
        j1 = j0 + correct.shape[0]
        inconsistent = k[i][None, :] != k[j0:j1]
        n_inc = inconsistent.sum(axis=1)
        converted = (correct & inconsistent).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = np.where(n_inc > 0, converted / n_inc, np.nan)
        out[i, j0:j1] = rate
        out[j0:j1, i] = rate
    return out


@dataclass(frozen=True)
class GreedyResult:
    """Result of :func:`greedy_selection`.

    Attributes
    ----------
    selected : list of str
        Names of the added candidates, in the order they were added.
    accuracies : list of float
        Selection-split accuracy of the ensemble after each step; index 0 is the base alone,
        index k the base plus ``selected[:k]``.
    eval_accuracies : list of float or None
        The same ensembles' accuracies on the evaluation split, when one was given.
    """

    selected: list[str]
    accuracies: list[float]
    eval_accuracies: list[float] | None = None

    @property
    def best_step(self) -> int:
        """Number of added models at the highest selection-split accuracy (first on ties)."""
        return int(np.argmax(self.accuracies))


def greedy_selection(
    y_true,
    base_probs,
    candidates: Mapping[str, np.ndarray],
    steps: int,
    *,
    eval_y_true=None,
    eval_base_probs=None,
    eval_candidates: Mapping[str, np.ndarray] | None = None,
    replace: bool = False,
) -> GreedyResult:
    """Greedily grow an ensemble from a base model by adding the most helpful candidates (Sec. 4.5).

    The paper's Fig. 5 procedure: start from one (high-accuracy) base model and, at each of
    ``steps`` steps, add the candidate (from a pool of lower-accuracy models) whose addition
    gives the highest ensemble accuracy on the *selection* split. Ensembles are equal-weight
    means of calibrated probabilities (:func:`ensemble_probs`). Selection uses only the
    selection split (conventionally ``calib``); pass the evaluation split (``test``) through the
    ``eval_*`` arguments to report the chosen ensembles there without letting it influence the
    choice.

    Ties between candidates are broken by the iteration order of ``candidates`` (the first
    best one wins), so the result is deterministic. By default a candidate is added at most once
    (``replace=False``), as in Fig. 5 where the added models are distinct; with ``replace=True``
    a candidate may be re-added, which raises its weight in the mean. Every step adds a model
    even if accuracy drops (the paper plots the whole path); :attr:`GreedyResult.best_step`
    gives the best length.

    Parameters
    ----------
    y_true : array-like of shape (N,)
        Labels of the selection split.
    base_probs : array-like of shape (N, C)
        Calibrated probabilities of the base model on the selection split.
    candidates : mapping of str to (N, C) arrays
        Candidate models' calibrated probabilities on the selection split.
    steps : int
        Number of candidates to add (at most ``len(candidates)`` unless ``replace=True``).
    eval_y_true : array-like of shape (N2,), optional
        Labels of the evaluation split.
    eval_base_probs : array-like of shape (N2, C), optional
        Base model's probabilities on the evaluation split.
    eval_candidates : mapping of str to (N2, C) arrays, optional
        Candidates' probabilities on the evaluation split; must hold every candidate name.
    replace : bool, default False
        Allow a candidate to be selected more than once.

    Returns
    -------
    GreedyResult
        ``selected`` (names in order), ``accuracies`` (selection split, index 0 = base alone),
        ``eval_accuracies`` (evaluation split, or None).

    Examples
    --------
    >>> y = [0, 1, 2]
    >>> base = [[0.8, 0.1, 0.1], [0.5, 0.4, 0.1], [0.5, 0.1, 0.4]]
    >>> cands = {"c1": [[0.4, 0.3, 0.3], [0.1, 0.8, 0.1], [0.4, 0.3, 0.3]],
    ...          "c2": [[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.1, 0.1, 0.8]]}
    >>> res = greedy_selection(y, base, cands, 2)
    >>> res.selected
    ['c1', 'c2']
    >>> [round(a, 3) for a in res.accuracies]
    [0.333, 0.667, 1.0]
    """
    y = check_y_true(y_true)
    base = check_probs(base_probs, y, name="base_probs")
    cands = check_candidates(candidates, y, name="candidates")
    for key, p in cands.items():
        if p.shape[1] != base.shape[1]:
            raise ValueError(f"candidates[{key!r}] has {p.shape[1]} classes but base_probs has {base.shape[1]}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not replace and steps > len(cands):
        raise ValueError(
            f"steps={steps} exceeds the number of candidates ({len(cands)}); "
            "pass replace=True to allow re-adding a candidate"
        )
    if steps > 0 and not cands:
        raise ValueError("candidates is empty")

    has_eval = any(v is not None for v in (eval_y_true, eval_base_probs, eval_candidates))
    if has_eval:
        if eval_y_true is None or eval_base_probs is None or eval_candidates is None:
            raise ValueError("eval_y_true, eval_base_probs and eval_candidates must be given together")
        ey = check_y_true(eval_y_true, name="eval_y_true")
        ebase = check_probs(eval_base_probs, ey, name="eval_base_probs")
        if not isinstance(eval_candidates, Mapping):
            raise ValueError("eval_candidates must be a mapping from model name to probabilities")
        missing = [k for k in cands if k not in {str(e) for e in eval_candidates}]
        if missing:
            raise ValueError(f"eval_candidates lacks the candidates {missing}")
        ecands_raw = {str(k): v for k, v in eval_candidates.items()}

    names = list(cands)
    total = np.zeros(base.shape, dtype=np.float64)
    total += base
    members = 1
    accuracies = [float(np.mean(np.argmax(total, axis=1) == y))]
    selected: list[str] = []
    available = list(names)
    for _ in range(steps):
        best_name, best_acc = None, -1.0
        for name in available:
            trial = total + cands[name]
            trial /= members + 1
            acc = float(np.mean(np.argmax(trial, axis=1) == y))
            if acc > best_acc:
                best_name, best_acc = name, acc
        total += cands[best_name]
        members += 1
        selected.append(best_name)
        accuracies.append(best_acc)
        if not replace:
            available.remove(best_name)

    eval_accuracies = None
    if has_eval:
        checked: dict[str, np.ndarray] = {}
        for name in selected:
            if name not in checked:
                p = check_probs(ecands_raw[name], ey, name=f"eval_candidates[{name!r}]")
                if p.shape[1] != ebase.shape[1]:
                    raise ValueError(
                        f"eval_candidates[{name!r}] has {p.shape[1]} classes but eval_base_probs has {ebase.shape[1]}"
                    )
                checked[name] = p
        etotal = np.zeros(ebase.shape, dtype=np.float64)
        etotal += ebase
        eval_accuracies = [float(np.mean(np.argmax(etotal, axis=1) == ey))]
        for k, name in enumerate(selected, start=2):
            etotal += checked[name]
            eval_accuracies.append(float(np.mean(np.argmax(etotal / k, axis=1) == ey)))

    return GreedyResult(selected=selected, accuracies=accuracies, eval_accuracies=eval_accuracies)
