"""Specialization of ensemble members (paper Sec. 4.3, Fig. 3, and Sec. 4.4, Fig. 4).

In the confidence-confidence plot of two models, each example is a point
``(conf_B, conf_A)`` where ``conf`` is a model's calibrated probability of its *own* top-1 class.
The **specialization angle** is ``theta = degrees(atan2(conf_A, conf_B))``: 45 means equally
confident, above 45 model A is more confident, below 45 model B is. When models specialise, A is
more confident (theta > 45) where only A is correct and B (theta < 45) where only B is correct.
Sec. 4.4 splits the same data by class id and by groups of classes (for ImageNet, "nature"
classes 0-300 versus "anthropogenic" classes 500-900).

Predictions are argmax of the probabilities (first maximal class on ties, see
:mod:`norep.measures.metrics`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from norep.measures._validation import check_mask, check_pred, check_probs, check_theta_bins, check_y_true
from norep.measures.metrics import OUTCOMES

__all__ = [
    "IMAGENET_CLASS_GROUPS",
    "theta",
    "outcome_labels",
    "at_least_one_correct",
    "any_inconsistent",
    "theta_histogram",
    "per_class_specialization",
    "class_group_summary",
]

IMAGENET_CLASS_GROUPS: dict[str, list[int]] = {
    "nature": list(range(0, 300)),
    "anthropogenic": list(range(500, 900)),
}
"""ImageNet-1k class-id groups of the paper's Fig. 4 (Sec. 4.4).

The caption names "nature classes (cids 0-300)" and "anthropogenic classes (cids 500-900)"; we
read both ranges as half-open, i.e. ids 0-299 (300 classes, animals) and 500-899 (400 classes,
mostly man-made objects). Ids 300-499 and 900-999 belong to neither group.
"""


def _pair_probs(probs_a, probs_b, y=None):
    pa = check_probs(probs_a, y, name="probs_a")
    pb = check_probs(probs_b, y, name="probs_b", n=pa.shape[0])
    if pa.shape[1] != pb.shape[1]:
        raise ValueError(f"probs_a has {pa.shape[1]} classes but probs_b has {pb.shape[1]}")
    return pa, pb


def _theta(pa: np.ndarray, pb: np.ndarray) -> np.ndarray:
    conf_a = np.max(pa, axis=1).astype(np.float64)
    conf_b = np.max(pb, axis=1).astype(np.float64)
    return np.degrees(np.arctan2(conf_a, conf_b))


def theta(probs_a, probs_b) -> np.ndarray:
    """Specialization angle of each example, in degrees (Sec. 4.3, Fig. 3 upper left).

    ``theta = degrees(atan2(conf_a, conf_b))`` with ``conf`` the model's probability of its own
    top-1 class (the row maximum). Values lie in (0, 90): 45 = equally confident, above 45 =
    A more confident, below 45 = B more confident. Swapping A and B maps theta to ``90 - theta``.

    Parameters
    ----------
    probs_a, probs_b : array-like of shape (N, C)
        Calibrated probabilities of models A and B.

    Returns
    -------
    ndarray of shape (N,), float64

    Examples
    --------
    >>> pa = [[0.9, 0.1], [0.5, 0.5], [0.6, 0.4]]
    >>> pb = [[0.9, 0.1], [0.1, 0.9], [0.4, 0.6]]
    >>> theta(pa, pb).round(2)
    array([45.  , 29.05, 45.  ])
    """
    pa, pb = _pair_probs(probs_a, probs_b)
    return _theta(pa, pb)


def _outcome_index(y: np.ndarray, ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    # 0 both_correct, 1 only_a, 2 only_b, 3 both_wrong (the order of OUTCOMES)
    return np.where(ca, np.where(cb, 0, 1), np.where(cb, 2, 3))


def outcome_labels(y_true, pred_a, pred_b) -> np.ndarray:
    """Per-example outcome of a pair of models (Sec. 4.1, Fig. 3).

    Parameters
    ----------
    y_true : array-like of shape (N,)
    pred_a, pred_b : array-like of shape (N,) or (N, C)
        Class ids, or scores reduced by argmax.

    Returns
    -------
    ndarray of str, shape (N,)
        Each entry one of ``"both_correct"``, ``"only_a"``, ``"only_b"``, ``"both_wrong"``.

    Examples
    --------
    >>> outcome_labels([0, 1, 2, 3], [0, 1, 0, 0], [0, 0, 2, 0]).tolist()
    ['both_correct', 'only_a', 'only_b', 'both_wrong']
    """
    y = check_y_true(y_true)
    ca = check_pred(pred_a, y, name="pred_a") == y
    cb = check_pred(pred_b, y, name="pred_b") == y
    return np.asarray(OUTCOMES)[_outcome_index(y, ca, cb)]


def at_least_one_correct(y_true, *preds) -> np.ndarray:
    """Mask of the examples that at least one of the given models classifies correctly.

    Parameters
    ----------
    y_true : array-like of shape (N,)
    *preds : array-like of shape (N,) or (N, C)
        One or more predictions.

    Returns
    -------
    ndarray of bool, shape (N,)

    Examples
    --------
    >>> at_least_one_correct([0, 1, 2], [0, 0, 0], [1, 1, 1])
    array([ True,  True, False])
    """
    y = check_y_true(y_true)
    if not preds:
        raise ValueError("at_least_one_correct needs at least one prediction in preds")
    mask = np.zeros(y.shape[0], dtype=bool)
    for i, p in enumerate(preds):
        mask |= check_pred(p, y, name=f"preds[{i}]") == y
    return mask


def any_inconsistent(y_true, pairs: Iterable[Sequence]) -> np.ndarray:
    """Mask of the examples on which at least one pair of models is error-inconsistent.

    The example set of the paper's Fig. 3: "examples where at least one ensemble produced error
    inconsistency", i.e. where, for at least one of the compared pairs (e.g. base with a Reinit,
    an Arch and a Dataset model), exactly one member is correct. Pass the mask to
    :func:`theta_histogram` so that all pairs are shown on the same examples.

    Parameters
    ----------
    y_true : array-like of shape (N,)
    pairs : iterable of (pred_a, pred_b)
        Pairs of predictions (class ids or (N, C) scores).

    Returns
    -------
    ndarray of bool, shape (N,)

    Examples
    --------
    >>> y = [0, 1, 2, 3]
    >>> base = [0, 1, 0, 0]
    >>> any_inconsistent(y, [(base, [0, 1, 2, 0]), (base, [0, 0, 0, 0])])
    array([False,  True,  True, False])
    """
    y = check_y_true(y_true)
    mask = np.zeros(y.shape[0], dtype=bool)
    count = 0
    for i, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"pairs[{i}] must be a (pred_a, pred_b) pair")
        ca = check_pred(pair[0], y, name=f"pairs[{i}][0]") == y
        cb = check_pred(pair[1], y, name=f"pairs[{i}][1]") == y
        mask |= ca != cb
        count += 1
    if count == 0:
        raise ValueError("pairs holds no pair of predictions")
    return mask


def theta_histogram(y_true, probs_a, probs_b, *, bins=18, mask=None):
    """Histogram of the specialization angle split by pair outcome (Sec. 4.3, Fig. 3).

    Parameters
    ----------
    y_true : array-like of shape (N,)
    probs_a, probs_b : array-like of shape (N, C)
        Calibrated probabilities of models A and B.
    bins : int or array-like, default 18
        Number of equal-width bins over [0, 90] degrees (18 = 5-degree bins), or bin edges.
        As in :func:`numpy.histogram`, bins are half-open except the last, which includes its
        right edge; angles outside the edges are not counted.
    mask : array-like of bool, shape (N,), optional
        Restrict to these examples, e.g. :func:`any_inconsistent` for the paper's Fig. 3.

    Returns
    -------
    pandas.DataFrame
        One row per outcome (in the order ``both_correct, only_a, only_b, both_wrong``) and bin,
        with columns ``outcome``, ``bin_left``, ``bin_right``, ``count``, ``fraction`` (count over
        all examples considered, so the whole table sums to 1) and ``within_outcome`` (count over
        the examples of that outcome; nan for an outcome with no example).

    Examples
    --------
    >>> y = [0, 1, 1]
    >>> pa = [[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]]
    >>> pb = [[0.4, 0.6], [0.1, 0.9], [0.7, 0.3]]
    >>> h = theta_histogram(y, pa, pb, bins=2)
    >>> h[h["count"] > 0][["outcome", "bin_left", "count"]]
          outcome  bin_left  count
    3      only_a      45.0      1
    4      only_b       0.0      1
    7  both_wrong      45.0      1
    """
    import pandas as pd

    y = check_y_true(y_true)
    pa, pb = _pair_probs(probs_a, probs_b, y)
    edges = check_theta_bins(bins)
    th = _theta(pa, pb)
    outcome = _outcome_index(y, np.argmax(pa, axis=1) == y, np.argmax(pb, axis=1) == y)
    if mask is not None:
        m = check_mask(mask, y.shape[0])
        th, outcome = th[m], outcome[m]
    total = th.shape[0]
    rows = []
    for k, name in enumerate(OUTCOMES):
        counts, _ = np.histogram(th[outcome == k], bins=edges)
        n_k = int(np.count_nonzero(outcome == k))
        for left, right, c in zip(edges[:-1], edges[1:], counts, strict=True):
            rows.append(
                {
                    "outcome": name,
                    "bin_left": float(left),
                    "bin_right": float(right),
                    "count": int(c),
                    "fraction": c / total if total else float("nan"),
                    "within_outcome": c / n_k if n_k else float("nan"),
                }
            )
    return pd.DataFrame(rows)


def per_class_specialization(y_true, probs_a, probs_b, *, class_names=None):
    """Per-class accuracies, accuracy difference and specialization angle (Sec. 4.4, Fig. 4).

    Parameters
    ----------
    y_true : array-like of shape (N,)
    probs_a, probs_b : array-like of shape (N, C)
        Calibrated probabilities of models A and B.
    class_names : sequence of str, optional
        The C class names (default: the class ids as strings).

    Returns
    -------
    pandas.DataFrame
        One row per class id 0..C-1 (classes are the true labels): ``class_id``, ``class_name``,
        ``n`` (examples of the class), ``acc_a``, ``acc_b``, ``acc_diff`` (= acc_a - acc_b,
        positive where A is better), ``mean_theta`` (mean angle over the class's examples),
        ``both_correct``, ``only_a``, ``only_b``, ``both_wrong`` (fractions of the class's
        examples), ``mean_theta_only_a`` and ``mean_theta_only_b`` (mean angle over the examples
        where only A, resp. only B, is correct). Values are nan for a class with no example.

    Examples
    --------
    >>> y = [0, 0, 1, 1]
    >>> pa = [[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7]]
    >>> pb = [[0.4, 0.6], [0.7, 0.3], [0.2, 0.8], [0.1, 0.9]]
    >>> t = per_class_specialization(y, pa, pb, class_names=["cat", "car"])
    >>> t[["class_name", "n", "acc_a", "acc_b", "acc_diff", "only_a", "only_b"]]
      class_name  n  acc_a  acc_b  acc_diff  only_a  only_b
    0        cat  2    1.0    0.5       0.5     0.5     0.0
    1        car  2    0.5    1.0      -0.5     0.0     0.5
    """
    import pandas as pd

    y = check_y_true(y_true)
    pa, pb = _pair_probs(probs_a, probs_b, y)
    c = pa.shape[1]
    if class_names is None:
        names = [str(i) for i in range(c)]
    else:
        names = [str(s) for s in class_names]
        if len(names) != c:
            raise ValueError(f"class_names has {len(names)} names but the probabilities have {c} classes")
    th = _theta(pa, pb)
    ca = np.argmax(pa, axis=1) == y
    cb = np.argmax(pb, axis=1) == y
    outcome = _outcome_index(y, ca, cb)

    def per_class_sum(weights=None):
        return np.bincount(y, weights=weights, minlength=c).astype(np.float64)

    n = per_class_sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        acc_a = per_class_sum(ca) / n
        acc_b = per_class_sum(cb) / n
        table = {
            "class_id": np.arange(c),
            "class_name": names,
            "n": n.astype(np.int64),
            "acc_a": acc_a,
            "acc_b": acc_b,
            "acc_diff": acc_a - acc_b,
            "mean_theta": per_class_sum(th) / n,
        }
        for k, name in enumerate(OUTCOMES):
            table[name] = per_class_sum(outcome == k) / n
        for k, name in ((1, "only_a"), (2, "only_b")):
            sel = outcome == k
            table[f"mean_theta_{name}"] = per_class_sum(np.where(sel, th, 0.0)) / per_class_sum(sel)
    return pd.DataFrame(table)


_SUMMED = ("acc_a", "acc_b", "mean_theta", *OUTCOMES)


def class_group_summary(per_class, groups: Mapping[str, Iterable[int]], *, other: str | None = None):
    """Aggregate a per-class table over groups of classes (Sec. 4.4, Fig. 4).

    Each group's values are computed over all examples of its classes (class values weighted by
    the number of examples ``n``), so a group's ``acc_a`` is model A's accuracy on the group's
    examples. Groups may overlap.

    Parameters
    ----------
    per_class : pandas.DataFrame
        Output of :func:`per_class_specialization`.
    groups : mapping of str to iterable of int
        Group name -> class ids, e.g. :data:`IMAGENET_CLASS_GROUPS` or a store's
        ``info["class_groups"]``.
    other : str, optional
        If given, add a row with this name for the classes that belong to no group.

    Returns
    -------
    pandas.DataFrame
        One row per group: ``group``, ``n_classes``, ``n``, ``acc_a``, ``acc_b``, ``acc_diff``,
        ``mean_theta``, ``both_correct``, ``only_a``, ``only_b``, ``both_wrong``,
        ``mean_theta_only_a``, ``mean_theta_only_b``.

    Examples
    --------
    >>> y = [0, 0, 1, 1, 2]
    >>> pa = [[0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.1, 0.8]]
    >>> pb = [[0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]
    >>> t = per_class_specialization(y, pa, pb)
    >>> s = class_group_summary(t, {"g01": [0, 1]}, other="rest")
    >>> s[["group", "n_classes", "n", "acc_a", "acc_b", "only_a", "only_b"]]
      group  n_classes  n  acc_a  acc_b  only_a  only_b
    0   g01          2  4   0.75   0.75    0.25    0.25
    1  rest          1  1   1.00   1.00    0.00    0.00
    """
    import pandas as pd

    required = ["class_id", "n", *_SUMMED, "mean_theta_only_a", "mean_theta_only_b"]
    missing = [col for col in required if col not in getattr(per_class, "columns", [])]
    if missing:
        raise ValueError(f"per_class lacks the columns {missing}; pass the output of per_class_specialization")
    if not isinstance(groups, Mapping) or not groups:
        raise ValueError("groups must be a non-empty mapping from group name to class ids")
    ids = per_class["class_id"].to_numpy()
    pos = {int(c): i for i, c in enumerate(ids)}
    members: dict[str, np.ndarray] = {}
    for name, class_ids in groups.items():
        cls = np.asarray(list(class_ids))
        if cls.size == 0:
            raise ValueError(f"groups[{name!r}] is empty")
        if not np.issubdtype(cls.dtype, np.integer):
            raise ValueError(f"groups[{name!r}] must hold integer class ids")
        unknown = sorted({int(c) for c in cls} - set(pos))
        if unknown:
            shown = ", ".join(map(str, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
            raise ValueError(f"groups[{name!r}] has class ids not in per_class: {shown}")
        members[str(name)] = np.unique([pos[int(c)] for c in cls])
    if other is not None:
        grouped = np.unique(np.concatenate(list(members.values())))
        rest = np.setdiff1d(np.arange(len(ids)), grouped)
        if rest.size:
            members[str(other)] = rest

    n = per_class["n"].to_numpy(np.float64)
    rows = []
    for name, idx in members.items():
        n_g = n[idx]
        total = n_g.sum()
        row = {"group": name, "n_classes": int(idx.size), "n": int(total)}
        for col in _SUMMED:
            v = per_class[col].to_numpy(np.float64)[idx]
            row[col] = float(np.sum(np.where(n_g > 0, v * n_g, 0.0)) / total) if total else np.nan
        row["acc_diff"] = row["acc_a"] - row["acc_b"]
        for which in ("only_a", "only_b"):
            k = np.rint(per_class[which].to_numpy(np.float64)[idx] * n_g)
            k = np.where(n_g > 0, k, 0.0)
            th = per_class[f"mean_theta_{which}"].to_numpy(np.float64)[idx]
            s = np.sum(np.where(k > 0, th * k, 0.0))
            row[f"mean_theta_{which}"] = float(s / k.sum()) if k.sum() else np.nan
        rows.append(row)
    cols = [
        "group",
        "n_classes",
        "n",
        "acc_a",
        "acc_b",
        "acc_diff",
        "mean_theta",
        *OUTCOMES,
        "mean_theta_only_a",
        "mean_theta_only_b",
    ]
    return pd.DataFrame(rows, columns=cols)
