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

import numpy as np

from norep.measures._validation import check_pred, check_preds, check_y_true

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
    y = check_y_true(y_true)
    return check_pred(pred, y, name="pred") == y


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
    y = check_y_true(y_true)
    return check_pred(pred_a, y, name="pred_a") == y, check_pred(pred_b, y, name="pred_b") == y


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
    y = check_y_true(y_true)
    return y, check_preds(preds, y) == y[None, :]


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
