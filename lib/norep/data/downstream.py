"""A multi-label downstream task standing in for PASCAL VOC 2007 (paper Sec. 4.7).

The paper evaluates how well ImageNet representations transfer to VOC, whose images hold several
objects, smaller than ImageNet's centred ones, with multi-hot labels. The analogue here: a canvas
of 2x2 cells, each 28x28, holding 1 to 4 items placed in random cells, labelled with the multi-hot
set of classes present; the 56x56 canvas is downscaled by 2x2 average pooling to the 28x28 input
that every zoo model takes (so MLPs, the ViT and the scikit-learn learners apply unchanged). Items
thus appear at half their training scale, off centre, in company: a transfer shift of the same
kind as ImageNet -> VOC, not a copy of the training distribution.

In the Fashion-MNIST study the items are scikit-learn's handwritten digits (:func:`embedded_downstream`):
labels that are not the upstream classes, on images no zoo model saw (no ``DATASET`` model pretrains
on digits), so a linear probe on a frozen embedding measures transfer, not a re-reading of the
upstream head. (The ``digits`` test preset composes its own ``calib`` images instead.) Each
downstream split draws from its own disjoint pool of items, so ``down_test`` shares no item with
``down_train``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["make_canvases", "downstream_splits", "embedded_downstream"]


def make_canvases(X, y, n, *, n_classes=None, max_items=4, seed=0):
    """Compose ``n`` multi-label canvases of 1..``max_items`` items from ``X`` (Sec. 4.7 analogue).

    Parameters
    ----------
    X : (M, 28, 28) uint8
        Item images.
    y : (M,) int
        Item classes.
    n : int
        Number of canvases.
    n_classes : int, optional
        Label width ``K`` (default ``y.max() + 1``).
    max_items : int, default 4
        At most 4 (one per cell of the 2x2 grid); the number of items is uniform in 1..max_items.
    seed : int, default 0

    Returns
    -------
    images : (n, 28, 28) uint8
        The 56x56 canvases average-pooled 2x2 to 28x28.
    Y : (n, K) uint8
        Multi-hot labels (classes present).

    Examples
    --------
    >>> import numpy as np
    >>> from norep.data.downstream import make_canvases
    >>> X = np.full((4, 28, 28), 200, np.uint8); y = np.array([0, 1, 2, 3])
    >>> imgs, Y = make_canvases(X, y, 5, seed=0)
    >>> imgs.shape, Y.shape, bool((Y.sum(1) >= 1).all())
    ((5, 28, 28), (5, 4), True)
    """
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 3 or X.shape[1:] != (28, 28):
        raise ValueError(f"X must have shape (M, 28, 28), got {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    if not 1 <= max_items <= 4:
        raise ValueError(f"max_items must be in 1..4, got {max_items}")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, max_items + 1, size=n)
    canvas = np.zeros((n, 56, 56), dtype=np.float32)
    Y = np.zeros((n, k), dtype=np.uint8)
    cells = np.argsort(rng.random((n, 4)), axis=1)  # a random order of the 4 cells per canvas
    items = rng.integers(0, X.shape[0], size=(n, 4))
    for slot in range(4):
        use = counts > slot
        idx = np.flatnonzero(use)
        cell = cells[idx, slot]
        r, c = (cell // 2) * 28, (cell % 2) * 28
        for cr in (0, 28):
            for cc in (0, 28):
                sel = idx[(r == cr) & (c == cc)]
                canvas[sel, cr : cr + 28, cc : cc + 28] = X[items[sel, slot]]
        Y[idx, y[items[idx, slot]]] = 1
    pooled = canvas.reshape(n, 28, 2, 28, 2).mean(axis=(2, 4))
    return np.round(pooled).astype(np.uint8), Y


def downstream_splits(X, y, *, sizes=(3000, 1000, 2000), pool_fractions=(0.5, 0.2, 0.3), n_classes=None, seed=0):
    """The ``down_train`` / ``down_val`` / ``down_test`` canvases, from disjoint item pools.

    Parameters
    ----------
    X, y : arrays
        Item images (M, 28, 28) and classes, none of which any zoo model trained on.
    sizes : 3 ints
        Canvases per split.
    pool_fractions : 3 floats
        Share of the items reserved for each split's pool.
    n_classes : int, optional
    seed : int, default 0

    Returns
    -------
    dict
        ``{"down_train": (images, Y), "down_val": ..., "down_test": ...}``.

    Examples
    --------
    >>> import numpy as np
    >>> from norep.data.downstream import downstream_splits
    >>> rng = np.random.default_rng(0)
    >>> d = downstream_splits(rng.integers(0, 255, (50, 28, 28), dtype=np.uint8),
    ...                       np.arange(50) % 5, sizes=(8, 4, 4))
    >>> {k: v[1].shape for k, v in d.items()}
    {'down_train': (8, 5), 'down_val': (4, 5), 'down_test': (4, 5)}
    """
    X = np.asarray(X)
    y = np.asarray(y)
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(y))
    bounds = np.cumsum([0] + [int(round(f * len(y))) for f in pool_fractions])
    out = {}
    for i, name in enumerate(("down_train", "down_val", "down_test")):
        pool = perm[bounds[i] : bounds[i + 1]]
        out[name] = make_canvases(X[pool], y[pool], int(sizes[i]), n_classes=k, seed=seed * 1000 + i + 1)
    return out


def embedded_downstream(preset, splits, *, sizes, seed=0):
    """The downstream splits of an embedded preset, their label names and a one-line description.

    ``fashion``: canvases of scikit-learn's 1,797 digits (labels: the digits present); ``digits``:
    canvases of the preset's own ``calib`` images (a small stand-in for tests).

    Examples
    --------
    >>> from norep.data import load_splits
    >>> from norep.data.downstream import embedded_downstream
    >>> down, names, text = embedded_downstream("digits", load_splits("digits"), sizes=(8, 4, 4))
    >>> sorted(down), names[:3]
    (['down_test', 'down_train', 'down_val'], ['0', '1', '2'])
    """
    from norep.data import DIGITS_CLASSES, digits_images

    if preset == "fashion":
        X, y = digits_images()
        what = "scikit-learn digits (labels: the digits present, not the upstream classes)"
    else:
        X, y = splits.X_calib, splits.y_calib
        what = "calib images (labels: the upstream classes present)"
    names = list(DIGITS_CLASSES) if preset == "fashion" else list(splits.class_names)
    down = downstream_splits(X, y, sizes=sizes, n_classes=len(names), seed=seed)
    text = (
        f"canvases of 1-4 {what} in a 2x2 grid, 56x56 average-pooled to 28x28; multi-hot labels; "
        "disjoint item pools per split"
    )
    return down, names, text
