"""Error-correlation measures between classifiers (paper Sec. 4.1, Fig. 1 and Fig. 8).

For a pair of models A and B evaluated on the same N examples with labels ``y``, every example
falls in exactly one of four outcomes: both models correct, only A correct, only B correct, or
both wrong. The paper's **error inconsistency** is the fraction of examples where exactly one
model is correct (``only_a + only_b``); it complements the error consistency of Geirhos et al.
(2020), of which :func:`error_consistency_kappa` is the chance-corrected (Cohen's kappa) version.
:func:`dominance_probability` gives the conditional view of Mania et al. (2019).

Conventions shared by every measure in ``norep``
-------------------------------------------------
* ``y_true`` is a 1-D array of non-negative integer class ids.
* A prediction (``pred``, ``pred_a``, ...) is either a 1-D array of class ids or an (N, C) array of
  scores (probabilities or logits); scores are turned into class ids by ``argmax`` over the last
  axis. Ties go to the **first** maximal class (numpy's ``argmax`` convention) everywhere in the
  package, so the outcome of a tie never depends on anything but the column order.
* A stack of M predictions (``preds``) is an (M, N) array of class ids, an (M, N, C) array of
  scores, or a list of M per-model predictions of either kind.
* Invalid input (wrong shape, NaN/Inf, negative or out-of-range labels, mismatched lengths)
  raises :class:`ValueError` naming the offending argument.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "OUTCOMES",
    "accuracy_score",
    "correctness",
    "pair_outcomes",
    "error_inconsistency",
    "pairwise_outcomes",
    "pairwise_error_inconsistency",
    "error_consistency_kappa",
    "pairwise_error_consistency_kappa",
    "dominance_probability",
    "pairwise_dominance_probability",
]

OUTCOMES = ("both_correct", "only_a", "only_b", "both_wrong")
"""The four outcomes of a pair of classifiers on one example, in the order used everywhere."""


# ---------------------------------------------------------------------------------------------
# Shared private input validation (also used by norep.ensembles and norep.specialization).
# ---------------------------------------------------------------------------------------------


def _as_class_ids(values, *, name: str) -> np.ndarray:
    """Validate a 1-D array of class ids and return it as int64."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class ids, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise ValueError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or Inf")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must hold integer class ids, got non-integral values")
    arr = arr.astype(np.int64, copy=False)
    if arr.min() < 0:
        raise ValueError(f"{name} contains a negative class id ({int(arr.min())})")
    return arr


def _check_y_true(y_true, *, name: str = "y_true") -> np.ndarray:
    """Validate labels: 1-D, non-empty, non-negative integer class ids."""
    return _as_class_ids(y_true, name=name)


def _check_length(arr: np.ndarray, n: int, *, name: str, ref: str = "y_true") -> None:
    if arr.shape[0] != n:
        raise ValueError(
            f"{name} has {arr.shape[0]} examples but {ref} has {n}"
        )


def _check_label_range(y_true: np.ndarray, n_classes: int, *, name: str) -> None:
    top = int(y_true.max())
    if top >= n_classes:
        raise ValueError(
            f"y_true contains class id {top} but {name} has only {n_classes} columns (classes)"
        )


def _check_finite(arr: np.ndarray, *, name: str) -> None:
    if not np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf")


def _check_pred(pred, y_true: np.ndarray, *, name: str) -> np.ndarray:
    """Validate one prediction (class ids or (N, C) scores) and return (N,) int64 class ids."""
    arr = np.asarray(pred)
    if arr.ndim == 1:
        ids = _as_class_ids(arr, name=name)
        _check_length(ids, y_true.shape[0], name=name)
        return ids
    if arr.ndim == 2:
        _check_length(arr, y_true.shape[0], name=name)
        if arr.shape[1] == 0:
            raise ValueError(f"{name} has no columns (classes)")
        _check_finite(arr, name=name)
        _check_label_range(y_true, arr.shape[1], name=name)
        return np.argmax(arr, axis=1).astype(np.int64, copy=False)
    raise ValueError(
        f"{name} must be 1-D class ids (N,) or 2-D scores (N, C), got shape {arr.shape}"
    )


def _check_preds(preds, y_true: np.ndarray, *, name: str = "preds") -> np.ndarray:
    """Validate a stack of M predictions and return (M, N) int64 class ids."""
    if isinstance(preds, np.ndarray) and preds.ndim in (2, 3):
        if preds.ndim == 2:
            if preds.shape[1] != y_true.shape[0]:
                raise ValueError(
                    f"{name} must be (M, N) class ids with N = len(y_true) = {y_true.shape[0]}, "
                    f"got shape {preds.shape}"
                )
            if preds.shape[0] == 0:
                raise ValueError(f"{name} holds no models")
            return _as_class_ids(preds.ravel(), name=name).reshape(preds.shape)
        items = list(preds)
    elif isinstance(preds, np.ndarray):
        raise ValueError(
            f"{name} must be (M, N) class ids, (M, N, C) scores or a list, got shape {preds.shape}"
        )
    elif isinstance(preds, Sequence) or hasattr(preds, "__iter__"):
        items = list(preds)
    else:
        raise ValueError(f"{name} must be an array or a list of predictions")
    if len(items) == 0:
        raise ValueError(f"{name} holds no models")
    return np.stack([_check_pred(p, y_true, name=f"{name}[{i}]") for i, p in enumerate(items)])


def _probs_tolerance(dtype: np.dtype) -> float:
    eps = float(np.finfo(dtype).eps) if np.issubdtype(dtype, np.floating) else 0.0
    return max(1e-4, 4.0 * eps)


def _check_probs(probs, y_true: np.ndarray | None, *, name: str, n: int | None = None) -> np.ndarray:
    """Validate an (N, C) array of probabilities (rows on the simplex); returned as given (no copy).

    Rows must be non-negative and sum to one within a tolerance that fits the dtype
    (1e-4, or 4 machine epsilons for float16), so that logits passed by mistake are refused.
    """
    arr = np.asarray(probs)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of probabilities (N, C), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name} must be floating-point probabilities, got dtype {arr.dtype}")
    if y_true is not None:
        _check_length(arr, y_true.shape[0], name=name)
    elif n is not None:
        _check_length(arr, n, name=name, ref="the other inputs")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has no columns (classes)")
    _check_finite(arr, name=name)
    tol = _probs_tolerance(arr.dtype)
    if arr.min() < 0:
        raise ValueError(
            f"{name} contains negative values: pass probabilities (e.g. "
            "norep.calibration.softmax(logits, temperature)), not logits"
        )
    sums = arr.sum(axis=1, dtype=np.float64)
    worst = float(np.max(np.abs(sums - 1.0)))
    if worst > tol:
        raise ValueError(
            f"{name} rows must sum to 1 (largest deviation {worst:.3g}): pass probabilities "
            "(e.g. norep.calibration.softmax(logits, temperature)), not logits or scores"
        )
    if y_true is not None:
        _check_label_range(y_true, arr.shape[1], name=name)
    return arr


def _check_probs_stack(probs, y_true: np.ndarray | None, *, name: str = "probs") -> list[np.ndarray]:
    """Validate M probability arrays given as (M, N, C) or a list; returns a list of (N, C) views."""
    if isinstance(probs, np.ndarray):
        if probs.ndim != 3:
            raise ValueError(
                f"{name} must be (M, N, C) probabilities or a list of (N, C) arrays, "
                f"got shape {probs.shape}"
            )
        items = list(probs)
    elif hasattr(probs, "__iter__") and not isinstance(probs, (str, bytes, dict)):
        items = list(probs)
    else:
        raise ValueError(f"{name} must be (M, N, C) probabilities or a list of (N, C) arrays")
    if len(items) == 0:
        raise ValueError(f"{name} holds no models")
    out = []
    n = None if y_true is None else y_true.shape[0]
    for i, p in enumerate(items):
        arr = _check_probs(p, y_true, name=f"{name}[{i}]", n=n)
        n = arr.shape[0]
        if out and arr.shape[1] != out[0].shape[1]:
            raise ValueError(
                f"{name}[{i}] has {arr.shape[1]} classes but {name}[0] has {out[0].shape[1]}"
            )
        out.append(arr)
    return out


# ---------------------------------------------------------------------------------------------
# Single-model and pairwise measures
# ---------------------------------------------------------------------------------------------


def correctness(y_true, pred) -> np.ndarray:
    """Per-example correctness of one model's top-1 prediction.

    Parameters
    ----------
    y_true : array-like of shape (N,)
        Integer class ids.
    pred : array-like of shape (N,) or (N, C)
        Predicted class ids, or scores whose argmax (first maximum on ties) is the prediction.

    Returns
    -------
    ndarray of bool, shape (N,)

    Examples
    --------
    >>> correctness([0, 1, 2], [0, 2, 2])
    array([ True, False,  True])
    >>> correctness([1, 0], [[0.2, 0.8], [0.5, 0.5]])  # tie -> first class
    array([ True,  True])
    """
    y = _check_y_true(y_true)
    return _check_pred(pred, y, name="pred") == y


def accuracy_score(y_true, pred) -> float:
    """Top-1 accuracy: the fraction of examples whose prediction equals the label.

    Parameters
    ----------
    y_true : array-like of shape (N,)
        Integer class ids.
    pred : array-like of shape (N,) or (N, C)
        Predicted class ids, or (N, C) scores (probabilities or logits) reduced by argmax
        (the first maximal class wins a tie).

    Returns
    -------
    float
        Accuracy in [0, 1].

    Examples
    --------
    >>> accuracy_score([0, 1, 2, 2], [0, 1, 1, 2])
    0.75
    >>> accuracy_score([1, 0], [[0.1, 0.9], [0.3, 0.7]])
    0.5
    """
    return float(np.mean(correctness(y_true, pred)))


def _outcome_counts(ca: np.ndarray, cb: np.ndarray) -> dict[str, int]:
    both = int(np.count_nonzero(ca & cb))
    only_a = int(np.count_nonzero(ca & ~cb))
    only_b = int(np.count_nonzero(~ca & cb))
    return {
        "both_correct": both,
        "only_a": only_a,
        "only_b": only_b,
        "both_wrong": ca.shape[0] - both - only_a - only_b,
    }


def _pair_correctness(y_true, pred_a, pred_b) -> tuple[np.ndarray, np.ndarray]:
    y = _check_y_true(y_true)
    return _check_pred(pred_a, y, name="pred_a") == y, _check_pred(pred_b, y, name="pred_b") == y


def pair_outcomes(y_true, pred_a, pred_b) -> dict[str, float]:
    """Fractions of the four joint outcomes of two classifiers (paper Sec. 4.1, Fig. 1).

    Parameters
    ----------
    y_true : array-like of shape (N,)
        Integer class ids.
    pred_a, pred_b : array-like of shape (N,) or (N, C)
        Predictions of models A and B (class ids, or scores reduced by argmax).

    Returns
    -------
    dict
        ``{"both_correct", "only_a", "only_b", "both_wrong"}`` mapped to fractions of the N
        examples; they sum to 1.

    See Also
    --------
    error_inconsistency : ``only_a + only_b``.
    pairwise_outcomes : the same for every pair of M models at once.

    Examples
    --------
    >>> y = [0, 1, 2, 3]
    >>> pair_outcomes(y, [0, 1, 0, 0], [0, 0, 2, 0])
    {'both_correct': 0.25, 'only_a': 0.25, 'only_b': 0.25, 'both_wrong': 0.25}
    """
    ca, cb = _pair_correctness(y_true, pred_a, pred_b)
    n = ca.shape[0]
    return {k: v / n for k, v in _outcome_counts(ca, cb).items()}


def error_inconsistency(y_true, pred_a, pred_b) -> float:
    """Error inconsistency: the fraction of examples where exactly one model is correct.

    The paper's measure of error (de)correlation (Sec. 4.1, Fig. 1; "Observed error
    inconsistency"): ``only_a + only_b`` of :func:`pair_outcomes`. Higher means less correlated
    errors. Symmetric in A and B.

    Parameters
    ----------
    y_true : array-like of shape (N,)
    pred_a, pred_b : array-like of shape (N,) or (N, C)

    Returns
    -------
    float in [0, 1]

    Examples
    --------
    >>> error_inconsistency([0, 1, 2, 3], [0, 1, 0, 0], [0, 0, 2, 0])
    0.5
    """
    ca, cb = _pair_correctness(y_true, pred_a, pred_b)
    return float(np.mean(ca != cb))


def _correctness_matrix(y_true, preds) -> tuple[np.ndarray, np.ndarray]:
    y = _check_y_true(y_true)
    return y, _check_preds(preds, y) == y[None, :]


def _pairwise_counts(k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Outcome counts of all pairs from an (M, N) boolean correctness matrix.

    One matrix product of the correctness indicators gives the both-correct counts; the other
    three outcomes follow from the per-model totals. float32 products are exact while every
    partial sum is an integer below 2**24; beyond that float64 is used.
    """
    n = k.shape[1]
    dtype = np.float32 if n < 2**24 else np.float64
    kf = k.astype(dtype)
    both = np.rint(kf @ kf.T).astype(np.int64)
    n_correct = k.sum(axis=1, dtype=np.int64)
    only_a = n_correct[:, None] - both
    only_b = only_a.T
    both_wrong = n - both - only_a - only_b
    return both, only_a, only_b, both_wrong


def pairwise_outcomes(y_true, preds) -> dict[str, np.ndarray]:
    """The four outcome fractions for every ordered pair of M models (Sec. 4.1, full matrix).

    Entry ``[i, j]`` of each matrix is the :func:`pair_outcomes` value with A = model i and
    B = model j, so ``both_correct`` and ``both_wrong`` are symmetric and ``only_b`` is the
    transpose of ``only_a``. Computed with a single product of the (M, N) correctness
    indicators, without a loop over pairs.

    Parameters
    ----------
    y_true : array-like of shape (N,)
    preds : (M, N) class ids, (M, N, C) scores, or a list of M predictions

    Returns
    -------
    dict
        ``{"both_correct", "only_a", "only_b", "both_wrong"}`` mapped to (M, M) float arrays.

    Examples
    --------
    >>> out = pairwise_outcomes([0, 1, 2, 3], [[0, 1, 0, 0], [0, 0, 2, 0]])
    >>> out["only_a"]
    array([[0.  , 0.25],
           [0.25, 0.  ]])
    >>> out["both_correct"].diagonal()  # a model with itself: its accuracy
    array([0.5, 0.5])
    """
    y, k = _correctness_matrix(y_true, preds)
    n = y.shape[0]
    counts = _pairwise_counts(k)
    return {name: c / n for name, c in zip(OUTCOMES, counts, strict=True)}


def pairwise_error_inconsistency(y_true, preds) -> np.ndarray:
    """Error inconsistency (``only_a + only_b``) for every pair of M models (Sec. 4.1).

    Parameters
    ----------
    y_true : array-like of shape (N,)
    preds : (M, N) class ids, (M, N, C) scores, or a list of M predictions

    Returns
    -------
    ndarray of shape (M, M)
        Symmetric, zero diagonal.

    Examples
    --------
    >>> pairwise_error_inconsistency([0, 1, 2, 3], [[0, 1, 0, 0], [0, 0, 2, 0], [0, 1, 2, 3]])
    array([[0. , 0.5, 0.5],
           [0.5, 0. , 0.5],
           [0.5, 0.5, 0. ]])
    """
    y, k = _correctness_matrix(y_true, preds)
    _, only_a, only_b, _ = _pairwise_counts(k)
    return (only_a + only_b) / y.shape[0]


def _kappa(incons, acc_a, acc_b):
    # c_exp = p_a p_b + (1 - p_a)(1 - p_b), so 1 - c_exp = p_a + p_b - 2 p_a p_b and
    # c_obs - c_exp = (1 - c_exp) - incons: kappa = 1 - incons / (1 - c_exp).
    expected_incons = acc_a + acc_b - 2.0 * acc_a * acc_b
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = 1.0 - np.asarray(incons, dtype=np.float64) / expected_incons
    return np.where(expected_incons > 0, kappa, np.nan)


def error_consistency_kappa(y_true, pred_a, pred_b) -> float:
    """Error consistency of Geirhos et al. (2020): Cohen's kappa of the two correctness vectors.

    ``kappa = (c_obs - c_exp) / (1 - c_exp)`` where ``c_obs`` is the fraction of examples on
    which both models are correct or both wrong (``1 -`` :func:`error_inconsistency`) and
    ``c_exp = p_a p_b + (1 - p_a)(1 - p_b)`` is the agreement expected from two independent
    models with accuracies ``p_a`` and ``p_b``. 1 means identical error patterns, 0 chance level,
    negative less consistent than chance. The paper (Sec. 4) names its error inconsistency as
    the complement of this measure. Returns ``nan`` when ``c_exp == 1`` (both models always
    correct, or both always wrong), where kappa is undefined. Symmetric in A and B.

    Geirhos, Meding and Wichmann, "Beyond accuracy: quantifying trial-by-trial behaviour of CNNs
    and humans by measuring error consistency", NeurIPS 2020.

    Parameters
    ----------
    y_true : array-like of shape (N,)
    pred_a, pred_b : array-like of shape (N,) or (N, C)

    Returns
    -------
    float in [-1, 1], or nan

    Examples
    --------
    Accuracies 0.5 and 0.5 give ``c_exp = 0.5``; the models agree on correctness on 2 of 4
    examples, so ``c_obs = 0.5`` and kappa is 0:

    >>> error_consistency_kappa([0, 1, 2, 3], [0, 1, 0, 0], [0, 0, 2, 0])
    0.0
    >>> error_consistency_kappa([0, 1, 2, 3], [0, 1, 0, 0], [0, 1, 0, 0])
    1.0
    """
    ca, cb = _pair_correctness(y_true, pred_a, pred_b)
    return float(_kappa(np.mean(ca != cb), np.mean(ca), np.mean(cb)))


def pairwise_error_consistency_kappa(y_true, preds) -> np.ndarray:
    """:func:`error_consistency_kappa` (Geirhos et al. 2020) for every pair of M models.

    Parameters
    ----------
    y_true : array-like of shape (N,)
    preds : (M, N) class ids, (M, N, C) scores, or a list of M predictions

    Returns
    -------
    ndarray of shape (M, M)
        Symmetric; the diagonal is 1 (``nan`` for a model that is always right or always wrong).

    Examples
    --------
    >>> pairwise_error_consistency_kappa([0, 1, 2, 3], [[0, 1, 0, 0], [0, 0, 2, 0], [0, 1, 2, 0]])
    array([[1. , 0. , 0.5],
           [0. , 1. , 0.5],
           [0.5, 0.5, 1. ]])
    """
    y, k = _correctness_matrix(y_true, preds)
    n = y.shape[0]
    _, only_a, only_b, _ = _pairwise_counts(k)
    acc = k.mean(axis=1)
    return _kappa((only_a + only_b) / n, acc[:, None], acc[None, :])


def dominance_probability(y_true, pred_a, pred_b, *, conditional: bool = True) -> float:
    """Probability that model B is correct on an example that model A gets wrong.

    Mania et al. (2019) compare a higher-accuracy model A with a lower-accuracy model B through
    how often B classifies correctly the examples that A misclassifies ("high-accuracy models
    rarely make mistakes that low-accuracy models predict correctly", paper Sec. 1-2;
    Andreassen et al. 2021 report the same quantity for contrastive models). We define it
    precisely as the conditional probability

    ``P(B correct | A wrong) = only_b / (only_b + both_wrong)``

    with the fractions of :func:`pair_outcomes`. A small value means A *dominates* B: B adds
    almost nothing where A fails. It is directional (not symmetric); pass the higher-accuracy
    model as A to follow the papers. With ``conditional=False`` the joint probability
    ``P(B correct and A wrong) = only_b`` is returned instead. ``nan`` when A is never wrong
    (conditional form only).

    Mania, Miller, Schmidt, Hardt and Recht, "Model similarity mitigates test set overuse",
    NeurIPS 2019. Andreassen, Bahri, Neyshabur and Roelofs, "The evolution of out-of-distribution
    robustness throughout fine-tuning", 2021.

    Parameters
    ----------
    y_true : array-like of shape (N,)
    pred_a : array-like of shape (N,) or (N, C)
        The reference (usually higher-accuracy) model.
    pred_b : array-like of shape (N,) or (N, C)
        The model that may be correct where A is wrong.
    conditional : bool, default True
        Return ``P(B correct | A wrong)``; if False, ``P(B correct and A wrong)``.

    Returns
    -------
    float in [0, 1], or nan

    Examples
    --------
    A is wrong on examples 2 and 3; B is right on one of them:

    >>> y = [0, 1, 2, 3]
    >>> dominance_probability(y, [0, 1, 0, 0], [0, 0, 2, 0])
    0.5
    >>> dominance_probability(y, [0, 1, 0, 0], [0, 0, 2, 0], conditional=False)
    0.25
    """
    ca, cb = _pair_correctness(y_true, pred_a, pred_b)
    c = _outcome_counts(ca, cb)
    if not conditional:
        return c["only_b"] / ca.shape[0]
    wrong_a = c["only_b"] + c["both_wrong"]
    return c["only_b"] / wrong_a if wrong_a else float("nan")


def pairwise_dominance_probability(y_true, preds, *, conditional: bool = True) -> np.ndarray:
    """:func:`dominance_probability` for every ordered pair: entry ``[i, j]`` has A = i, B = j.

    Parameters
    ----------
    y_true : array-like of shape (N,)
    preds : (M, N) class ids, (M, N, C) scores, or a list of M predictions
    conditional : bool, default True
        ``P(j correct | i wrong)``; if False, ``P(j correct and i wrong)``.

    Returns
    -------
    ndarray of shape (M, M)
        Not symmetric. The diagonal is 0 (``nan`` for a model that is never wrong).

    Examples
    --------
    >>> pairwise_dominance_probability([0, 1, 2, 3], [[0, 1, 0, 0], [0, 0, 2, 0]])
    array([[0. , 0.5],
           [0.5, 0. ]])
    """
    y, k = _correctness_matrix(y_true, preds)
    n = y.shape[0]
    _, _, only_b, both_wrong = _pairwise_counts(k)
    if not conditional:
        return only_b / n
    wrong_a = only_b + both_wrong
    with np.errstate(divide="ignore", invalid="ignore"):
        out = only_b / wrong_a
    return np.where(wrong_a > 0, out, np.nan)
