"""Feature-level analyses: concatenated embeddings, diversity ordering and linear probes.

Implements paper Section 4.6 ("Specialization comes from overlapping (but not supersetting)
representations", Fig. 6):

* :func:`concat_at_rate` -- combine two models' penultimate embeddings under a fixed dimension
  budget (Fig. 6 left/center);
* :func:`diversity_order` -- the covariance-based diversity heuristic used to rank the dimensions
  of a concatenated embedding (Fig. 6 right); the paper's wording is ambiguous, the interpretation
  taken here is stated in the function's docstring;
* :func:`linear_probe` -- linear evaluation by multinomial logistic regression, fitted by full-batch
  L-BFGS in torch (CPU or GPU) with an L2 sweep chosen on a validation split (implemented in
  :mod:`norep.measures._probe`, importable from here together with :class:`ProbeResult` and ``DEFAULT_CS``);
* :func:`ridge_probe` -- the same evaluation in closed form (a ridge classifier, every penalty of the
  sweep from one eigendecomposition), the fast probe of the feature chapters;
* :func:`compression_curve` and :func:`dims_to_reach` -- accuracy as a function of the number of
  most-diverse dimensions kept, and the smallest number reaching a target accuracy.

Importing this module does not import torch; :func:`linear_probe` imports it when called.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from norep.measures._probe import (  # noqa: F401  (DEFAULT_CS re-exported)
    DEFAULT_CS,
    ProbeResult,
    linear_probe,
    ridge_probe,
)
from norep.measures._validation import check_2d, check_rate, check_same_rows

__all__ = [
    "ProbeResult",
    "compression_curve",
    "concat_at_rate",
    "dims_to_reach",
    "diversity_order",
    "linear_probe",
    "ridge_probe",
]


# ----------------------------------------------------------------------------------------------
# concatenation under a dimension budget
# ----------------------------------------------------------------------------------------------


def concat_at_rate(emb_base, emb_other, rate, *, seed=0, budget="base"):
    """Concatenate random subsets of two embeddings under a fixed dimension budget.

    Paper Section 4.6 (Fig. 6 left/center): "we first randomly select features from the base
    model and each other model at inversely proportional rates ... yielding a final embedding
    that is at most the same dimensionality of the ResNet-50 features".

    With ``budget="base"`` (the default, the reading this project takes) the budget is the base's dimension
    ``D``: ``k_base = round(rate * D)`` base dims (halves rounded up) and ``D - k_base`` of the
    other model's dims are kept. If the other model has fewer than ``D - k_base`` dims, all of
    them are taken (the result is then *smaller* than ``D``, never larger: the paper's "at
    most"); no error is raised, and the returned index arrays show what was taken.
    With ``budget="proportional"`` each model contributes its own share: ``round(rate * D)``
    base dims and ``round((1 - rate) * D_other)`` other dims (the paper's 25 % ResNet-50 +
    75 % CLIP-S example read literally, also at most ``max(D, D_other)`` dims).

    The dims are chosen by a seeded random permutation of each model's dims, and a model's
    subset at a higher share contains its subset at a lower share (same ``seed``), so curves
    over rates vary smoothly. ``rate=1`` returns exactly the base embedding, ``rate=0`` only
    the other model's dims.

    Parameters
    ----------
    emb_base : array-like of shape (n_samples, D)
        Embedding of the base model.
    emb_other : array-like of shape (n_samples, D_other)
        Embedding of the other model, same examples in the same order.
    rate : float in [0, 1]
        Share of the budget given to the base model (1, .75, .5, .25, 0 in the paper).
    seed : int, default 0
        Seed of the random dimension choice.
    budget : {"base", "proportional"}, default "base"
        How the other model's share is counted (see above).

    Returns
    -------
    X : ndarray of shape (n_samples, k_base + k_other)
        ``[emb_base[:, idx_base], emb_other[:, idx_other]]``.
    idx_base, idx_other : ndarray of int64
        The chosen dims of each model, sorted ascending.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = np.ones((5, 8)), np.zeros((5, 6))
    >>> X, ia, ib = concat_at_rate(a, b, 0.25, seed=0)
    >>> X.shape, len(ia), len(ib)
    ((5, 8), 2, 6)
    >>> concat_at_rate(a, b, 1.0)[0].shape
    (5, 8)
    """
    A = check_2d("emb_base", emb_base, finite=False)
    B = check_2d("emb_other", emb_other, finite=False)
    check_same_rows("emb_base", A, "emb_other", B)
    r = check_rate(rate)
    D, D_other = A.shape[1], B.shape[1]
    k_base = int(np.floor(r * D + 0.5))
    if budget == "base":
        k_other = min(D - k_base, D_other)
    elif budget == "proportional":
        k_other = int(np.floor((1.0 - r) * D_other + 0.5))
    else:
        raise ValueError(f"budget must be 'base' or 'proportional', got {budget!r}")
    rng = np.random.default_rng(seed)
    perm_base = rng.permutation(D)
    perm_other = rng.permutation(D_other)
    idx_base = np.sort(perm_base[:k_base]).astype(np.int64)
    idx_other = np.sort(perm_other[:k_other]).astype(np.int64)
    X = np.concatenate([A[:, idx_base], B[:, idx_other]], axis=1)
    return X, idx_base, idx_other


# ----------------------------------------------------------------------------------------------
# diversity ordering
# ----------------------------------------------------------------------------------------------


def _column_moments(X: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population std of every column, float64, in row chunks (memmap friendly)."""
    n = X.shape[0]
    s = np.zeros(X.shape[1])
    for i in range(0, n, chunk):
        s += X[i : i + chunk].sum(axis=0, dtype=np.float64)
    mean = s / n
    ss = np.zeros(X.shape[1])
    for i in range(0, n, chunk):
        d = X[i : i + chunk].astype(np.float64) - mean
        ss += np.einsum("ij,ij->j", d, d)
    return mean, np.sqrt(ss / n)


def diversity_order(emb_a, emb_b, *, method="cross_correlation", max_samples=None, seed=0, return_scores=False):
    """Order the dims of the concatenation ``[emb_a | emb_b]`` from most to least diverse.

    Paper Section 4.6 (Fig. 6 right): "we first compute the covariance of each dimension of
    embeddings from both models ... This gives us a ranking of highest to lowest covariance
    dimensions, which we use as a measure of diversity. We then select features in order of
    most diverse to least diverse".

    **Interpretation taken (default, ``method="cross_correlation"``).** The sentence does not
    say covariance *with what*. We read it as the covariance of each dimension with the *other
    model's* dimensions, made scale-free: every dimension of both embeddings is standardised
    (zero mean, unit variance over the examples), the cross-correlation matrix
    ``R[i, j] = corr(a_i, b_j)`` is computed, and each dimension gets a *redundancy* score,
    its largest absolute correlation with any dimension of the other model
    (``max_j |R[i, j]|`` for a dim of A, ``max_i |R[i, j]|`` for a dim of B). A dimension is
    *diverse* when that score is low: no linear direction of the other model's single dims
    reproduces it, so it carries information the other model lacks. Dims are returned in
    ascending redundancy (most diverse first); ties keep index order (A's dims before B's).
    An exact copy of a dim of the other model has redundancy 1 and therefore comes last,
    together with its twin. Constant dims (zero variance, e.g. dead ReLU units) carry no
    information and are put at the very end. This reading makes "divergently trained models
    are more compressible" a statement about cross-model redundancy, which is what the
    section argues (overlapping but not supersetting features).

    **Alternative (``method="variance"``).** The literal "covariance of each dimension" is the
    diagonal of the covariance matrix, i.e. each dim's variance; dims are then ranked from
    highest to lowest variance. We do not use it by default because it is not scale-free: two
    models whose embeddings live at different scales (e.g. an L2-normalised CLIP embedding
    and a ResNet's ReLU features) would be ordered by scale alone, and it ignores the other
    model entirely.

    Parameters
    ----------
    emb_a : array-like of shape (n_samples, D_a)
        First model's embedding (e.g. the base model).
    emb_b : array-like of shape (n_samples, D_b)
        Second model's embedding, same examples in the same order.
    method : {"cross_correlation", "variance"}, default "cross_correlation"
        Which reading of the heuristic to use (see above).
    max_samples : int, optional
        Estimate the statistics on a seeded random subset of this many examples (the ranking
        needs far fewer examples than a full ImageNet training set).
    seed : int, default 0
        Seed of the subset drawn when ``max_samples`` is smaller than ``n_samples``.
    return_scores : bool, default False
        Also return the per-dim score (redundancy for ``"cross_correlation"``, variance for
        ``"variance"``), indexed like the concatenation.

    Returns
    -------
    order : ndarray of int64, shape (D_a + D_b,)
        A permutation of the concatenated dims (``0 .. D_a - 1`` are A's, ``D_a ..`` B's),
        most diverse first. Feed ``order[:k]`` to ``np.concatenate([emb_a, emb_b], 1)``.
    scores : ndarray of float64, shape (D_a + D_b,)
        Only with ``return_scores=True``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(200, 3))
    >>> b = np.column_stack([rng.normal(size=200), a[:, 1]])  # b's dim 1 duplicates a's dim 1
    >>> order = diversity_order(a, b)
    >>> sorted(order.tolist()[-2:])  # the duplicated pair is least diverse
    [1, 4]
    """
    A = check_2d("emb_a", emb_a)
    B = check_2d("emb_b", emb_b)
    check_same_rows("emb_a", A, "emb_b", B)
    if max_samples is not None:
        if int(max_samples) < 2:
            raise ValueError(f"max_samples must be >= 2, got {max_samples}")
        if A.shape[0] > int(max_samples):
            rows = np.sort(np.random.default_rng(seed).choice(A.shape[0], int(max_samples), replace=False))
            A, B = A[rows], B[rows]
    chunk = 8192
    mean_a, std_a = _column_moments(A, chunk)
    mean_b, std_b = _column_moments(B, chunk)
    if method == "variance":
        scores = np.concatenate([std_a, std_b]) ** 2
        order = np.argsort(-scores, kind="stable")
    elif method == "cross_correlation":
        tiny = 1e-12
        live_a = std_a > tiny * np.maximum(1.0, np.abs(mean_a))
        live_b = std_b > tiny * np.maximum(1.0, np.abs(mean_b))
        sa = np.where(live_a, std_a, 1.0)
        sb = np.where(live_b, std_b, 1.0)
        R = np.zeros((A.shape[1], B.shape[1]))
        for i in range(0, A.shape[0], chunk):
            za = (A[i : i + chunk].astype(np.float64) - mean_a) / sa
            zb = (B[i : i + chunk].astype(np.float64) - mean_b) / sb
            R += za.T @ zb
        R = np.abs(R / A.shape[0])
        R[~live_a, :] = 0.0
        R[:, ~live_b] = 0.0
        red_a = R.max(axis=1)
        red_b = R.max(axis=0)
        red_a[~live_a] = np.inf
        red_b[~live_b] = np.inf
        scores = np.concatenate([red_a, red_b])
        order = np.argsort(scores, kind="stable")
    else:
        raise ValueError(f"method must be 'cross_correlation' or 'variance', got {method!r}")
    order = order.astype(np.int64)
    return (order, scores) if return_scores else order


# ----------------------------------------------------------------------------------------------
# compression curves
# ----------------------------------------------------------------------------------------------


def compression_curve(X_train, y_train, X_val, y_val, X_test, y_test, order, steps, *, progress=False, **probe_kwargs):
    """Linear-probe accuracy on the first ``k`` dims of ``order``, for each ``k`` in ``steps``.

    Paper Section 4.6 (Fig. 6 right): dims of a concatenated embedding are added most-diverse
    first (``order`` from :func:`diversity_order`) and each prefix is linearly evaluated with
    :func:`linear_probe` (its own C sweep per prefix).

    Parameters
    ----------
    X_train, y_train, X_val, y_val, X_test, y_test
        As in :func:`linear_probe`; the ``X`` arrays are the full concatenations.
        ``X_test``/``y_test`` may be None.
    order : array-like of int
        Column order, most important first (a permutation or a prefix of one).
    steps : int or sequence of int
        Numbers of dims to keep. An int ``s`` means ``s, 2s, 3s, ...`` up to ``len(order)``
        (the paper used multiples of 256).
    progress : bool, default False
        Show a tqdm bar on stderr.
    **probe_kwargs
        Passed to :func:`linear_probe` (``Cs``, ``device``, ``max_iter``, ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``n_dims``, ``best_C``, ``val_accuracy``, ``test_accuracy``, one row per step.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> curve = compression_curve(X[:300], y[:300], X[300:500], y[300:500], None, None,
    ...                           order=np.arange(64)[::-1], steps=[8, 64], Cs=[1.0])
    >>> curve["n_dims"].tolist()
    [8, 64]
    >>> bool(curve["val_accuracy"].iloc[1] > curve["val_accuracy"].iloc[0])
    True
    """
    import pandas as pd

    Xtr = check_2d("X_train", X_train)
    order = np.asarray(order)
    if order.ndim != 1 or order.size == 0 or not np.issubdtype(order.dtype, np.integer):
        raise ValueError("order must be a non-empty 1-D array of column indices")
    if order.min() < 0 or order.max() >= Xtr.shape[1] or np.unique(order).size != order.size:
        raise ValueError(f"order must hold distinct column indices in [0, {Xtr.shape[1]})")
    if np.isscalar(steps) or np.ndim(steps) == 0:
        s = int(steps)
        if s < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        ks = list(range(s, order.size + 1, s))
    else:
        ks = [int(k) for k in steps]
    if not ks or min(ks) < 1 or max(ks) > order.size:
        raise ValueError(f"steps must lie in [1, {order.size}], got {ks}")
    iterator = ks
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(ks, desc="compression curve", unit="step")
    rows = []
    for k in iterator:
        cols = np.sort(order[:k])
        res = linear_probe(
            Xtr[:, cols],
            y_train,
            np.asarray(X_val)[:, cols],
            y_val,
            None if X_test is None else np.asarray(X_test)[:, cols],
            y_test,
            **probe_kwargs,
        )
        rows.append(
            {"n_dims": k, "best_C": res.best_C, "val_accuracy": res.val_accuracy, "test_accuracy": res.test_accuracy}
        )
    return pd.DataFrame(rows)


def dims_to_reach(curve, target, *, column="test_accuracy"):
    """Smallest number of dims whose accuracy reaches ``target`` (None if never).

    Paper Section 4.6: "Reinit models needed 2304 features on average to achieve 76 % accuracy
    ... Dataset only required 512".

    Parameters
    ----------
    curve : pandas.DataFrame or mapping
        Output of :func:`compression_curve` (columns ``n_dims`` and ``column``), or a mapping
        ``{n_dims: accuracy}``.
    target : float
        Accuracy to reach (same units as the curve, fractions by default).
    column : str, default "test_accuracy"
        Which accuracy column of a DataFrame to use.

    Returns
    -------
    int or None

    Examples
    --------
    >>> dims_to_reach({256: 0.70, 512: 0.77, 768: 0.79}, 0.76)
    512
    >>> dims_to_reach({256: 0.70}, 0.76) is None
    True
    """
    if isinstance(curve, Mapping):
        pairs = [(int(k), v) for k, v in curve.items()]
    else:
        if "n_dims" not in curve or column not in curve:
            raise ValueError(f"curve must have columns 'n_dims' and {column!r}")
        pairs = list(zip(np.asarray(curve["n_dims"]).tolist(), np.asarray(curve[column]).tolist(), strict=True))
    for k, acc in sorted(pairs):
        if acc is not None and not np.isnan(acc) and acc >= target:
            return int(k)
    return None
