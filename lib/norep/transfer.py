"""Downstream transfer: PASCAL VOC 2007 11-point mAP and a multi-label linear probe.

Implements paper Section 4.7 ("Downstream task performance", Fig. 7): frozen embeddings (or
pairwise concatenations of them, "stacked generalization") are linearly evaluated on a
multi-label task with one-vs-rest L2 logistic regression, as in Kornblith et al. (2019), and
scored by the PASCAL VOC 2007 **11-point interpolated average precision** (Everingham et al.,
2010), averaged over classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from norep._validation import check_2d, check_binary, check_Cs, check_scores
from norep.features import DEFAULT_CS

__all__ = [
    "MultilabelProbeResult",
    "multilabel_probe",
    "voc07_average_precision",
    "voc07_mean_average_precision",
]


# ----------------------------------------------------------------------------------------------
# 11-point interpolated AP
# ----------------------------------------------------------------------------------------------


def _voc07_ap_columns(Y: np.ndarray, S: np.ndarray, D: np.ndarray | None) -> np.ndarray:
    """11-point AP of every column; Y, D bool (N, K), S float (N, K); no checks."""
    order = np.argsort(-S, axis=0, kind="stable")  # descending, ties keep input order
    Ys = np.take_along_axis(Y, order, axis=0)
    if D is None:
        keep = np.ones_like(Ys)
    else:
        keep = ~np.take_along_axis(D, order, axis=0)
    tp = np.cumsum(Ys & keep, axis=0, dtype=np.int64)
    fp = np.cumsum(~Ys & keep, axis=0, dtype=np.int64)
    npos = tp[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        prec = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    # interpolated precision at rank i = max precision at any rank >= i (recall is monotone)
    p_interp = np.maximum.accumulate(prec[::-1], axis=0)[::-1]
    cols = np.arange(Y.shape[1])
    total = np.zeros(Y.shape[1])
    for k in range(11):
        # first rank whose recall tp / npos >= k / 10, compared exactly in integers
        first = np.count_nonzero(10 * tp < k * npos, axis=0)
        total += p_interp[np.minimum(first, Y.shape[0] - 1), cols]
    return total / 11.0


def voc07_average_precision(y_true, scores, *, difficult=None):
    """PASCAL VOC 2007 11-point interpolated average precision of one class.

    Paper Section 4.7 ("measured by 11-point mAP ... according to the definition in
    Everingham et al. (2010)"). Examples are ranked by decreasing score; at every rank the
    precision ``TP / (TP + FP)`` and recall ``TP / n_pos`` of the top of the ranking are
    computed, and

    ``AP = (1/11) * sum_{t in 0, 0.1, ..., 1} max{precision at ranks whose recall >= t}``.

    Every ``t`` is reached (the full ranking has recall 1), so no term is empty.

    **Ties** are handled as in the VOC devkit (``VOCevalcls.m``: ``[~, si] = sort(-confidence)``,
    cumulative TP/FP): tied examples are ranked one at a time, in their input order (a stable
    sort). The value can therefore depend on the order of tied examples; scikit-learn's
    ``average_precision_score`` instead treats a block of ties as one threshold.
    **Thresholds** ``t = k/10`` are compared exactly (``10 * TP >= k * n_pos`` in integers), so
    a recall of exactly 0.3, 0.6 or 0.7 counts; code that builds ``t`` as ``0.1 * k`` in
    floating point (``np.arange(0, 1.1, 0.1)`` gives 0.30000000000000004) misses those cases.
    Unlike scikit-learn's (non-interpolated) average precision, the 11-point value uses the
    interpolated precision, and can lie above or below it; both are 1 for a perfect ranking.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        1 (or True) for positives, 0 for negatives.
    scores : array-like of shape (n_samples,)
        Higher means more likely positive (probabilities, logits, decision values).
    difficult : array-like of bool, shape (n_samples,), optional
        Examples to ignore (VOC's "difficult" objects): they count neither as true nor as false
        positives, exactly as if they were removed.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If there is no positive (the recall, hence AP, is undefined; VOC 2007 has positives
        for every class).

    Examples
    --------
    >>> y = [1, 0, 1, 0, 0, 1]
    >>> s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    >>> ap = voc07_average_precision(y, s)   # (4 * 1 + 3 * 2/3 + 4 * 1/2) / 11 = 8/11
    >>> round(ap, 4)
    0.7273
    """
    y = check_binary("y_true", y_true, 1)
    s = check_scores("scores", scores, y.shape)
    d = None
    if difficult is not None:
        d = check_binary("difficult", difficult, 1)
        if d.shape != y.shape:
            raise ValueError(f"difficult must have shape {y.shape}, got {d.shape}")
        d = d[:, None]
    npos = int((y & ~d[:, 0]).sum()) if d is not None else int(y.sum())
    if npos == 0:
        raise ValueError("y_true has no (non-difficult) positive example: AP is undefined")
    return float(_voc07_ap_columns(y[:, None], s[:, None], d)[0])


def voc07_mean_average_precision(Y_true, S, *, difficult=None):
    """Mean over classes of the VOC 2007 11-point AP (:func:`voc07_average_precision`).

    Paper Section 4.7 (Fig. 7). Vectorised over classes.

    Parameters
    ----------
    Y_true : array-like of shape (n_samples, n_classes)
        Multi-hot labels (0/1).
    S : array-like of shape (n_samples, n_classes)
        Scores, one column per class.
    difficult : array-like of bool, shape (n_samples, n_classes), optional
        Entries to ignore for their class.

    Returns
    -------
    mean_ap : float
        Unweighted mean of the per-class APs.
    per_class : ndarray of shape (n_classes,)

    Raises
    ------
    ValueError
        If a class has no positive example (named by its column index).

    Examples
    --------
    >>> Y = [[1, 0], [0, 1], [1, 1], [0, 0]]
    >>> S = [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.1, 0.2]]
    >>> m, per_class = voc07_mean_average_precision(Y, S)
    >>> per_class.round(3).tolist(), round(m, 3)
    ([1.0, 1.0], 1.0)
    """
    Y = check_binary("Y_true", Y_true, 2)
    Ss = check_scores("S", S, Y.shape)
    D = None
    if difficult is not None:
        D = check_binary("difficult", difficult, 2)
        if D.shape != Y.shape:
            raise ValueError(f"difficult must have shape {Y.shape}, got {D.shape}")
    npos = (Y & ~D).sum(axis=0) if D is not None else Y.sum(axis=0)
    if (npos == 0).any():
        bad = np.flatnonzero(npos == 0).tolist()
        raise ValueError(f"Y_true has no positive example for class column(s) {bad}: "
                         "AP is undefined")
    per_class = _voc07_ap_columns(Y, Ss, D)
    return float(per_class.mean()), per_class


# ----------------------------------------------------------------------------------------------
# multi-label probe
# ----------------------------------------------------------------------------------------------


@dataclass
class MultilabelProbeResult:
    """Outcome of :func:`multilabel_probe`.

    Attributes
    ----------
    best_C : float
        Chosen inverse regularisation strength (scikit-learn's ``C``), shared by all classes.
    val_map : float
        Validation 11-point mAP of the training-split fit at ``best_C``.
    test_map : float or None
        Test 11-point mAP of the final fit (None without test labels).
    per_class_ap : ndarray of shape (n_classes,) or None
        Test AP of every class.
    test_scores : ndarray of shape (n_test, n_classes) or None
        Decision values of the final fit on the test split.
    coef : ndarray of shape (n_classes, n_features)
        Final weights, in the original input space.
    intercept : ndarray of shape (n_classes,)
    refit : str
        ``"train+val"`` or ``"train"``: what the final fit was trained on.
    val_scores : pandas.DataFrame
        One row per ``C``: ``C``, ``val_map``, ``n_not_converged`` (classes that hit
        ``max_iter``).
    """

    best_C: float
    val_map: float
    test_map: float | None
    per_class_ap: np.ndarray | None
    test_scores: np.ndarray | None
    coef: np.ndarray
    intercept: np.ndarray
    refit: str
    val_scores: Any = field(repr=False)

    def decision_function(self, X) -> np.ndarray:
        """Per-class decision values ``X @ coef.T + intercept``."""
        X = check_2d("X", X)
        if X.shape[1] != self.coef.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, the probe was fitted on "
                             f"{self.coef.shape[1]}")
        return np.asarray(X, dtype=np.float64) @ self.coef.T + self.intercept


def _fit_ovr(X, Y, C, models, max_iter):
    """Fit (or warm-refit) one binary LogisticRegression per column; returns #not converged."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    n_bad = 0
    for k, m in enumerate(models):
        m.set_params(C=float(C))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            m.fit(X, Y[:, k])
        n_bad += int(np.max(m.n_iter_) >= max_iter)
    return n_bad


def multilabel_probe(X_train, Y_train, X_val, Y_val, X_test=None, Y_test=None, *, Cs=None,
                     refit="train+val", standardize=True, max_iter=1000, seed=0):
    """One-vs-rest L2 logistic-regression probe for a multi-label task, scored by 11-point mAP.

    Paper Section 4.7 (Fig. 7), following Kornblith et al. (2019): for each ``C`` of the sweep,
    one binary scikit-learn ``LogisticRegression(C=C, solver="lbfgs")`` per class is fitted on
    the training split (warm-started from the previous ``C``); the ``C`` maximising the
    validation 11-point mAP (:func:`voc07_mean_average_precision`; ties go to the smaller
    ``C``) is kept. With ``refit="train+val"`` (default, as Kornblith et al. retrain on
    train + validation before testing) the probe is then refitted at that ``C`` on the union of
    the two splits; with ``refit="train"`` the training-split fit is used as is. The final fit
    scores the test split. Features are standardised with the statistics of the data each fit
    is trained on; the returned ``coef``/``intercept`` apply to raw inputs.

    Parameters
    ----------
    X_train, X_val, X_test : array-like of shape (n, n_features)
        Frozen embeddings (or concatenations of two models' embeddings).
    Y_train, Y_val, Y_test : array-like of shape (n, n_classes)
        Multi-hot 0/1 labels. Every class needs positives and negatives in ``Y_train`` and
        positives in ``Y_val`` (and ``Y_test``).
    Cs : sequence of float, optional
        Sweep of ``C``; default ``norep.features.DEFAULT_CS`` (1e-4 ... 1e4).
    refit : {"train+val", "train"}, default "train+val"
        What the final probe is trained on.
    standardize : bool, default True
        Standardise features (mean 0, population std 1; constant features left unscaled).
    max_iter : int, default 1000
        L-BFGS iterations per class and ``C``.
    seed : int, default 0
        ``random_state`` passed to scikit-learn (lbfgs is deterministic; kept for symmetry).

    Returns
    -------
    MultilabelProbeResult

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.random((300, 3)) < 0.4
    >>> X = Y @ rng.normal(size=(3, 5)) * 3 + rng.normal(size=(300, 5))
    >>> res = multilabel_probe(X[:150], Y[:150], X[150:220], Y[150:220], X[220:], Y[220:],
    ...                        Cs=[0.1, 1.0])
    >>> res.test_map > 0.9, res.test_scores.shape
    (True, (80, 3))
    """
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    Xtr = check_2d("X_train", X_train)
    Ytr = check_binary("Y_train", Y_train, 2)
    Xva = check_2d("X_val", X_val)
    Yva = check_binary("Y_val", Y_val, 2)
    for nameX, X, nameY, Y in (("X_train", Xtr, "Y_train", Ytr), ("X_val", Xva, "Y_val", Yva)):
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"{nameX} has {X.shape[0]} rows but {nameY} has {Y.shape[0]}")
    if Xva.shape[1] != Xtr.shape[1]:
        raise ValueError(f"X_val has {Xva.shape[1]} features, X_train has {Xtr.shape[1]}")
    if Yva.shape[1] != Ytr.shape[1]:
        raise ValueError(f"Y_val has {Yva.shape[1]} classes, Y_train has {Ytr.shape[1]}")
    if (X_test is None) != (Y_test is None):
        raise ValueError("X_test and Y_test must be given together")
    if X_test is not None:
        Xte = check_2d("X_test", X_test)
        Yte = check_binary("Y_test", Y_test, 2)
        if Xte.shape[0] != Yte.shape[0]:
            raise ValueError(f"X_test has {Xte.shape[0]} rows but Y_test has {Yte.shape[0]}")
        if Xte.shape[1] != Xtr.shape[1]:
            raise ValueError(f"X_test has {Xte.shape[1]} features, X_train has {Xtr.shape[1]}")
        if Yte.shape[1] != Ytr.shape[1]:
            raise ValueError(f"Y_test has {Yte.shape[1]} classes, Y_train has {Ytr.shape[1]}")
    one_sided = np.flatnonzero(Ytr.all(axis=0) | ~Ytr.any(axis=0)).tolist()
    if one_sided:
        raise ValueError(f"Y_train needs positives and negatives for every class; "
                         f"class column(s) {one_sided} have only one label")
    if refit not in ("train+val", "train"):
        raise ValueError(f"refit must be 'train+val' or 'train', got {refit!r}")
    Cs = check_Cs(Cs, DEFAULT_CS)
    K = Ytr.shape[1]

    def scaler(X):
        X = np.asarray(X, dtype=np.float64)
        if not standardize:
            return np.zeros(X.shape[1]), np.ones(X.shape[1])
        mu, sd = X.mean(axis=0), X.std(axis=0)
        return mu, np.where(sd > 0, sd, 1.0)

    def make_models():
        return [LogisticRegression(C=1.0, max_iter=int(max_iter), warm_start=True,
                                   random_state=seed) for _ in range(K)]

    def stacked(models, mu, sd):
        W = np.stack([m.coef_[0] for m in models]) / sd
        b = np.array([m.intercept_[0] for m in models]) - W @ mu
        return W, b

    mu, sd = scaler(Xtr)
    Ztr = (np.asarray(Xtr, dtype=np.float64) - mu) / sd
    models = make_models()
    rows, best = [], None
    for C in Cs:
        n_bad = _fit_ovr(Ztr, Ytr, C, models, int(max_iter))
        W, b = stacked(models, mu, sd)
        val_map, _ = voc07_mean_average_precision(Yva, np.asarray(Xva, dtype=np.float64) @ W.T + b)
        rows.append({"C": float(C), "val_map": val_map, "n_not_converged": n_bad})
        if best is None or val_map > best[1]:
            best = (float(C), val_map, W, b)
    best_C, val_map, W, b = best
    if refit == "train+val":
        Xall = np.concatenate([np.asarray(Xtr, dtype=np.float64),
                               np.asarray(Xva, dtype=np.float64)])
        Yall = np.concatenate([Ytr, Yva])
        mu, sd = scaler(Xall)
        models = make_models()
        _fit_ovr((Xall - mu) / sd, Yall, best_C, models, int(max_iter))
        W, b = stacked(models, mu, sd)
    test_scores = test_map = per_class = None
    if X_test is not None:
        test_scores = np.asarray(Xte, dtype=np.float64) @ W.T + b
        test_map, per_class = voc07_mean_average_precision(Yte, test_scores)
    return MultilabelProbeResult(best_C=best_C, val_map=val_map, test_map=test_map,
                                 per_class_ap=per_class, test_scores=test_scores, coef=W,
                                 intercept=b, refit=refit, val_scores=pd.DataFrame(rows))
