"""Linear probes: multinomial logistic regression fitted by full-batch L-BFGS in torch, and a ridge classifier
in closed form.

:func:`linear_probe` is the linear evaluation of paper Sections 3 and 4.6 ("L-BFGS linear evaluation"), used by
:mod:`norep.measures.features` (which re-exports :func:`linear_probe`, :class:`ProbeResult` and
``DEFAULT_CS``; import them from there), by the multi-label probe of :mod:`norep.measures.transfer` (which
shares the device and standardisation helpers) and by the ``l-bfgs`` heads of :mod:`norep.zoo.zeroshot`.
:func:`ridge_probe` (re-exported by :mod:`norep.measures.features`) and :class:`RidgePath` (shared with
:func:`norep.measures.transfer.multilabel_ridge_probe`) fit every penalty of a sweep from one
eigendecomposition, in milliseconds: the feature chapters' default probe.

Importing this module does not import torch; :func:`linear_probe` imports it when called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from norep.measures._validation import check_2d, check_class_ids, check_Cs

__all__ = ["DEFAULT_CS", "ProbeResult", "RidgePath", "linear_probe", "ridge_probe"]

#: Default regularisation sweep of :func:`linear_probe` (scikit-learn's ``C``, inverse strength):
#: one value per decade from 1e-4 to 1e4.
DEFAULT_CS = tuple(10.0 ** np.arange(-4, 5))


@dataclass
class ProbeResult:
    """Outcome of :func:`linear_probe`.

    Attributes
    ----------
    best_C : float
        The chosen inverse regularisation strength (scikit-learn's ``C``).
    val_accuracy : float
        Validation accuracy of the chosen fit.
    test_accuracy : float or None
        Test accuracy of the chosen fit (None without a test split).
    coef : ndarray of shape (n_classes, n_features)
        Weights in the *original* (unstandardised) input space.
    intercept : ndarray of shape (n_classes,)
        Biases in the original input space.
    classes : ndarray of shape (n_classes,)
        The class ids of the training labels, in column order of ``coef``.
    val_scores : pandas.DataFrame
        One row per ``C`` (ascending): ``C``, ``train_accuracy``, ``val_accuracy``,
        ``val_log_loss`` (NaN when the validation split has classes unseen in training),
        ``n_iter`` (L-BFGS iterations used for that ``C``).
    device : str
        Where the fit ran.
    test_predictions : ndarray or None
        The predicted classes of the test split, when the probe kept them (:func:`ridge_probe` does).
    """

    best_C: float
    val_accuracy: float
    test_accuracy: float | None
    coef: np.ndarray
    intercept: np.ndarray
    classes: np.ndarray
    val_scores: Any = field(repr=False)
    device: str = "cpu"
    test_predictions: np.ndarray | None = field(default=None, repr=False)

    def decision_function(self, X) -> np.ndarray:
        """Logits ``X @ coef.T + intercept`` (float64), shape (n_samples, n_classes)."""
        X = check_2d("X", X)
        if X.shape[1] != self.coef.shape[1]:
            raise ValueError(f"X has {X.shape[1]} features, the probe was fitted on {self.coef.shape[1]}")
        return np.asarray(X, dtype=np.float64) @ self.coef.T + self.intercept

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (softmax of the logits), columns in ``classes`` order."""
        z = self.decision_function(X)
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)
        return z

    def predict(self, X) -> np.ndarray:
        """Predicted class ids."""
        return self.classes[np.argmax(self.decision_function(X), axis=1)]


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} requested but CUDA is not available")
    return str(device)


def linear_probe(
    X_train,
    y_train,
    X_val,
    y_val,
    X_test=None,
    y_test=None,
    *,
    Cs=None,
    device="cpu",
    max_iter=500,
    tol=1e-6,
    standardize=True,
    dtype="float32",
    history_size=20,
    seed=0,
):
    """Linear evaluation: multinomial logistic regression with an L2 sweep chosen on validation.

    Paper Sections 4.6 and 3 ("L-BFGS linear evaluation"). For every ``C`` of the sweep, the
    full-batch objective

    ``mean_i CE(x_i W^T + b, y_i) + ||W||^2 / (2 C N)``

    (scikit-learn's ``C * sum_i CE + ||W||^2 / 2`` divided by ``C N``, same minimiser; the
    intercept is not penalised, as in scikit-learn's ``lbfgs``) is minimised by
    ``torch.optim.LBFGS`` with a strong-Wolfe line search, from zero weights for the smallest
    ``C`` and warm-started from the previous solution along the ascending sweep. The fit uses
    the training split only; the ``C`` with the highest validation accuracy is kept (ties go to
    the smaller ``C``, i.e. the stronger regularisation) and evaluated on the test split. There
    is no refit on train + validation. Vectorised over classes (one ``(N, D) @ (D, K)``
    product per evaluation), so it scales to ImageNet-sized probes (50k x 2048 x 1000) on a GPU.

    Parameters
    ----------
    X_train, X_val, X_test : array-like of shape (n, n_features)
        Features of each split (``X_test`` optional).
    y_train, y_val, y_test : array-like of int, shape (n,)
        Class ids. Classes absent from ``y_train`` are never predicted.
    Cs : sequence of float, optional
        Inverse regularisation strengths (scikit-learn's ``C``); default ``DEFAULT_CS``
        (1e-4 ... 1e4, one per decade).
    device : str, default "cpu"
        Torch device; ``"auto"`` picks ``"cuda"`` when available.
    max_iter : int, default 500
        L-BFGS iterations per ``C``.
    tol : float, default 1e-6
        Stop when the largest absolute gradient entry of the (mean) objective is below this.
    standardize : bool, default True
        Standardise each feature with the training split's mean and population std (constant
        features are left unscaled). ``coef``/``intercept`` are mapped back to the raw inputs.
    dtype : {"float32", "float64"}, default "float32"
        Precision of the fit.
    history_size : int, default 20
        L-BFGS memory.
    seed : int, default 0
        Accepted for a uniform signature; the fit is deterministic (zero initialisation, full
        batch), so it is not used.

    Returns
    -------
    ProbeResult

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> res = linear_probe(X[:1000], y[:1000], X[1000:1400], y[1000:1400], X[1400:], y[1400:],
    ...                    Cs=[0.01, 1.0])
    >>> res.best_C in (0.01, 1.0), res.test_accuracy > 0.85
    (True, True)
    >>> res.predict_proba(X[1400:1402]).shape
    (2, 10)
    """
    import pandas as pd
    import torch

    Xtr, ytr, Xva, yva, Xte, yte = _check_probe_splits(X_train, y_train, X_val, y_val, X_test, y_test)
    Cs = check_Cs(Cs, DEFAULT_CS)
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    tdtype = {"float32": torch.float32, "float64": torch.float64}.get(str(dtype))
    if tdtype is None:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    classes = np.unique(ytr)
    if classes.size < 2:
        raise ValueError("y_train must contain at least two classes")
    dev = _resolve_device(device)
    K = classes.size

    def to_index(y):  # class id -> column, -1 when unseen in training
        pos = np.clip(np.searchsorted(classes, y), 0, K - 1)
        return np.where(classes[pos] == y, pos, -1)

    Xt, Xv, Xs, mean, std = _standardized(Xtr, Xva, Xte, standardize, tdtype, dev)
    yt = torch.as_tensor(to_index(ytr), device=dev)
    yv_idx = to_index(yva)
    rows, best = _probe_sweep(
        Xt, yt, Xv, yv_idx, K, Cs, max_iter=int(max_iter), tol=tol, history_size=int(history_size)
    )
    best_C, best_val, Wb, bb = best
    test_acc = None
    with torch.no_grad():
        if Xs is not None:
            test_acc = _accuracy(torch.addmm(bb, Xs, Wb.T), torch.as_tensor(to_index(yte), device=dev))
        W64 = Wb.double() / std.double()
        b64 = bb.double() - W64 @ mean.double()
    return ProbeResult(
        best_C=best_C,
        val_accuracy=best_val,
        test_accuracy=test_acc,
        coef=W64.cpu().numpy(),
        intercept=b64.cpu().numpy(),
        classes=classes,
        val_scores=pd.DataFrame(rows),
        device=dev,
    )


def _check_probe_splits(X_train, y_train, X_val, y_val, X_test, y_test):
    """Checked features and labels of the probe's splits (``None`` for a missing test split)."""
    Xtr = check_2d("X_train", X_train)
    ytr = check_class_ids("y_train", y_train, Xtr.shape[0])
    Xva = check_2d("X_val", X_val)
    yva = check_class_ids("y_val", y_val, Xva.shape[0])
    if Xva.shape[1] != Xtr.shape[1]:
        raise ValueError(f"X_val has {Xva.shape[1]} features, X_train has {Xtr.shape[1]}")
    if (X_test is None) != (y_test is None):
        raise ValueError("X_test and y_test must be given together")
    Xte = yte = None
    if X_test is not None:
        Xte = check_2d("X_test", X_test)
        yte = check_class_ids("y_test", y_test, Xte.shape[0])
        if Xte.shape[1] != Xtr.shape[1]:
            raise ValueError(f"X_test has {Xte.shape[1]} features, X_train has {Xtr.shape[1]}")
    return Xtr, ytr, Xva, yva, Xte, yte


def _standardized(Xtr, Xva, Xte, standardize: bool, tdtype, dev):
    """The splits as tensors on ``dev``, standardised with the training split's mean and population
    std (constant features unscaled), and that mean and std (zeros and ones without standardising)."""
    import torch

    def to_tensor(X):  # always a copy: the standardisation below works in place
        return torch.tensor(np.asarray(X), dtype=tdtype, device=dev)

    with torch.no_grad():
        Xt = to_tensor(Xtr)
        if standardize:
            mean = Xt.mean(dim=0)
            std = Xt.std(dim=0, unbiased=False)
            std = torch.where(std > 0, std, torch.ones_like(std))
            Xt.sub_(mean).div_(std)
        else:
            mean = torch.zeros(Xtr.shape[1], dtype=tdtype, device=dev)
            std = torch.ones(Xtr.shape[1], dtype=tdtype, device=dev)

        def prep(X):
            return to_tensor(X).sub_(mean).div_(std)

        Xv = prep(Xva)
        Xs = prep(Xte) if Xte is not None else None
    return Xt, Xv, Xs, mean, std


def _accuracy(logits, y_idx_t) -> float:
    return float((logits.argmax(dim=1) == y_idx_t).double().mean().item())


def _probe_sweep(Xt, yt, Xv, yv_idx, K: int, Cs, *, max_iter: int, tol: float, history_size: int):
    """The ascending ``C`` sweep, warm-started, from zero weights: one row per ``C`` and the best
    ``(C, val_accuracy, W, b)`` (the first best, i.e. the smallest ``C`` on ties)."""
    import torch
    import torch.nn.functional as F

    N, D = Xt.shape
    yv = torch.as_tensor(yv_idx, device=Xt.device)
    W = torch.zeros(K, D, dtype=Xt.dtype, device=Xt.device, requires_grad=True)
    b = torch.zeros(K, dtype=Xt.dtype, device=Xt.device, requires_grad=True)
    rows, best = [], None
    for C in Cs:
        lam = 1.0 / (C * N)
        opt = torch.optim.LBFGS(
            [W, b],
            lr=1.0,
            max_iter=max_iter,
            tolerance_grad=tol,
            tolerance_change=1e-10,
            history_size=history_size,
            line_search_fn="strong_wolfe",
        )

        def closure(opt=opt, lam=lam):
            opt.zero_grad()
            loss = F.cross_entropy(torch.addmm(b, Xt, W.T), yt) + 0.5 * lam * (W * W).sum()
            loss.backward()
            return loss

        opt.step(closure)
        n_iter = int(opt.state[W].get("n_iter", 0)) if W in opt.state else 0
        with torch.no_grad():
            tr_acc = _accuracy(torch.addmm(b, Xt, W.T), yt)
            zv = torch.addmm(b, Xv, W.T)
            va_acc = _accuracy(zv, yv)
            va_loss = float(F.cross_entropy(zv, yv).item()) if (yv_idx >= 0).all() else float("nan")
        rows.append(
            {"C": float(C), "train_accuracy": tr_acc, "val_accuracy": va_acc, "val_log_loss": va_loss, "n_iter": n_iter}
        )
        if best is None or va_acc > best[1]:
            best = (float(C), va_acc, W.detach().clone(), b.detach().clone())
    return rows, best


# ----------------------------------------------------------------------------------------------
# closed-form ridge probe
# ----------------------------------------------------------------------------------------------


class RidgePath:
    """Ridge regressions of targets ``Y`` on standardised features for a whole sweep of penalties at once.

    The features of the training split are centred and scaled by their mean and population std
    (constant features left unscaled), the targets centred, and for each ``C`` the coefficients
    minimise ``||Z W^T - Y_c||^2 + ||W||^2 / C`` (scikit-learn's ``Ridge(alpha=1 / C)`` on the
    standardised features, the intercept unpenalised). One eigendecomposition of the ``D x D``
    Gram matrix ``Z^T Z = V diag(s) V^T`` gives every ``C``: ``W(C)^T = V diag(1 / (s + 1 / C)) V^T Z^T Y_c``,
    so a sweep costs one decomposition and one product per split and ``C``.
    """

    def __init__(self, X_train, Y_train, *, standardize: bool = True):
        X = np.asarray(X_train, dtype=np.float64)
        Y = np.asarray(Y_train, dtype=np.float64)
        self.mean = X.mean(axis=0)
        std = X.std(axis=0) if standardize else np.ones(X.shape[1])
        self.std = np.where(std > 0, std, 1.0)
        Z = (X - self.mean) / self.std
        self.y_mean = Y.mean(axis=0)
        s, V = np.linalg.eigh(Z.T @ Z)
        self.s, self.V = np.clip(s, 0.0, None), V
        self.B = V.T @ (Z.T @ (Y - self.y_mean))

    def standardized(self, X) -> np.ndarray:
        """The split ``X`` scaled with the training split's statistics."""
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.std

    def weights(self, C: float) -> np.ndarray:
        """The ``(n_features, n_targets)`` coefficients on the standardised features at ``C``."""
        return (self.V * (1.0 / (self.s + 1.0 / float(C)))) @ self.B

    def scores(self, Z, C: float) -> np.ndarray:
        """Predicted targets at ``C`` of a split already :meth:`standardized` to ``Z``."""
        return Z @ self.weights(C) + self.y_mean

    def coef(self, C: float) -> tuple[np.ndarray, np.ndarray]:
        """Weights ``(n_targets, n_features)`` and intercepts for the *raw* inputs at ``C``."""
        W = (self.weights(C) / self.std[:, None]).T
        return W, self.y_mean - W @ self.mean


def ridge_probe(X_train, y_train, X_val, y_val, X_test=None, y_test=None, *, Cs=None, standardize=True):
    """Linear evaluation in closed form: a ridge classifier with its penalty chosen on validation.

    The probe regresses one-hot class indicators on the standardised features
    (:class:`RidgePath`: scikit-learn's ``RidgeClassifier(alpha=1 / C)`` fitted on features scaled
    with the training split's statistics, which regresses +-1 targets and so predicts the same
    classes); a sample's predicted class is the largest output. Every ``C`` of the sweep comes from
    one eigendecomposition; the ``C`` with the highest validation accuracy is kept (ties go to the
    smaller ``C``, the stronger penalty) and evaluated on the test split, without refitting on
    train + validation. It is the fast probe of the feature chapters: a few milliseconds per probe
    of a few hundred dimensions, where :func:`linear_probe` (multinomial logistic regression by
    L-BFGS) takes seconds.

    Parameters
    ----------
    X_train, y_train, X_val, y_val, X_test, y_test
        As in :func:`linear_probe` (``X_test``/``y_test`` optional).
    Cs : sequence of float, optional
        Inverse penalties (``alpha = 1 / C``); default ``DEFAULT_CS``.
    standardize : bool, default True
        Standardise the features with the training split's mean and population std.

    Returns
    -------
    ProbeResult
        ``val_scores`` has one row per ``C``: ``C``, ``val_accuracy``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> res = ridge_probe(X[:1000], y[:1000], X[1000:1400], y[1000:1400], X[1400:], y[1400:], Cs=[0.01, 1.0])
    >>> res.best_C in (0.01, 1.0), res.test_accuracy > 0.85
    (True, True)
    """
    import pandas as pd

    Xtr, ytr, Xva, yva, Xte, yte = _check_probe_splits(X_train, y_train, X_val, y_val, X_test, y_test)
    Cs = check_Cs(Cs, DEFAULT_CS)
    classes = np.unique(ytr)
    if classes.size < 2:
        raise ValueError("y_train must contain at least two classes")
    onehot = (ytr[:, None] == classes[None, :]).astype(np.float64)
    path = RidgePath(Xtr, onehot, standardize=standardize)
    K = classes.size
    Sv = path.standardized(Xva) @ np.concatenate([path.weights(C) for C in Cs], axis=1)  # every C at once
    rows, best = [], None
    for i, C in enumerate(Cs):
        va = float(np.mean(classes[Sv[:, i * K : (i + 1) * K].argmax(1)] == yva))
        rows.append({"C": float(C), "val_accuracy": va})
        if best is None or va > best[1]:
            best = (float(C), va)
    W, b = path.coef(best[0])
    res = ProbeResult(
        best_C=best[0],
        val_accuracy=best[1],
        test_accuracy=None,
        coef=W,
        intercept=b,
        classes=classes,
        val_scores=pd.DataFrame(rows),
        device="cpu",
    )
    if Xte is not None:
        res.test_predictions = res.predict(Xte)
        res.test_accuracy = float(np.mean(res.test_predictions == yte))
    return res
