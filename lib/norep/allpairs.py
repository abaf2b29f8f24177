"""Exact, fast all-pairs analyses and greedy selection for paper-scale stores (paper Secs. 4.1-4.5).

The paper compares 82 ImageNet models mostly in pairs with one base model; the full all-pairs
picture (3,321 pairs of 50,000 x 1,000 calibrated probability matrices) done plainly (average two
matrices, take the argmax, per pair) costs minutes and tens of GB. This module computes the same
numbers in seconds, streaming over examples, and **exactly**: every count equals the plain
computation's, bit for bit, including ties.

The reference it reproduces
---------------------------
* calibrated probabilities ``p_m = norep.calibration.softmax(logits_m, T_m)`` (float32 for float16
  and float32 logits, with the exact operation order documented there);
* a member's prediction is the first maximal class of ``p_m`` (``numpy.argmax``);
* an ensemble of ``K`` members scores class ``c`` by ``((0 + p_1[c]) + ... + p_K[c]) / K`` in float64,
  members added in order, and predicts the first maximal class. This is exactly
  :func:`norep.ensembles.ensemble_accuracy`, :func:`norep.ensembles.pairwise_ensemble_accuracy`,
  :func:`norep.ensembles.pairwise_conversion_rate` and :func:`norep.ensembles.greedy_selection`;
  outcome fractions are those of :func:`norep.metrics.pairwise_outcomes` and theta histograms those
  of :func:`norep.specialization.theta_histogram`.

How it is fast and still exact
------------------------------
Only the ensemble's *correctness* is needed (accuracy, conversion rate), not its prediction. Per
model and example we keep, computed once from one softmax pass: the probability ``q`` of the true
class, the ``k`` largest wrong-class probabilities ``v_1 >= ... >= v_k`` with their classes, and
``t``, the largest wrong-class probability outside those ``k`` (a bound for all the others). For two
operands X, Y (two models, or in greedy selection the running ensemble sum and a candidate) and
``f(x) = x / K``:

1. *level 1*: the label scores ``s = f(q_X + q_Y)``; every wrong class scores at most
   ``f(v1_X + v1_Y)`` and the best wrong class at least ``f(max(v1_X, v1_Y))`` (floating-point
   addition and division are monotone). ``s`` above the first: correct; below the second: wrong.
2. *level 2* (undecided examples): the exact scores of the candidate classes (either operand's
   top-``k`` wrong classes) are gathered; any of them above ``s`` (or equal with a smaller class
   id) makes the ensemble wrong; none, and ``s > f(t_X + t_Y)`` (the bound for all other classes),
   makes it correct.
3. otherwise the full row is computed exactly as the reference does.

Counts of each level are returned, so one can see how often the bound failed.

Greedy selection (Sec. 4.5) uses the same per-model summaries, computed once per model and reused
by every step and every candidate: the running ensemble's label score is an exact float64 sum of
the members' ``q``, every wrong class is bounded by the sum of their ``v_1`` (level 1), the classes
the members keep by exact lower and upper sums (level 2), and only examples that stay undecided get
the ensemble's exact summed row, kept and updated across steps (level 3; the candidate's full row
only where even that cannot decide). See ``_EnsembleState``.

Reading the logits: memory-mapped store files are read with ``preadv`` into reused buffers
(``_RowReader``), so a streaming pass maps no page of the file (no page faults, no growth of the
resident set). The same analyses run on a torch device through :mod:`norep.engine` (``device=``).

Examples
--------
>>> import numpy as np
>>> from norep.allpairs import pairwise_analysis
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 10, size=500)
>>> logits = [rng.normal(size=(500, 10)) + 3 * np.eye(10)[y] for _ in range(3)]
>>> res = pairwise_analysis(y, logits, temperatures=[1.0, 1.0, 2.0], names=["a", "b", "c"])
>>> res.ensemble_accuracy.shape, res.names
((3, 3), ['a', 'b', 'c'])
>>> bool(np.all(res.ensemble_accuracy >= 0.5))
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from norep.calibration import (
    _check_labels,
    _check_temperature,
    _copy_rows,
    _release_rows,
    _softmax_inplace,
)

__all__ = [
    "CalibratedSummary",
    "calibrated_summary",
    "AllPairsResult",
    "pairwise_analysis",
    "store_pairwise_analysis",
    "fast_greedy_selection",
    "store_greedy_selection",
]

OUTCOMES = ("both_correct", "only_a", "only_b", "both_wrong")
_BLOCK_ELEMS = 1 << 18
_ROWS_PER_BATCH = 2048  # full-row fallbacks are evaluated in batches of this many rows


# --------------------------------------------------------------------------------------------------
# validation helpers


def _as_logits(arr, name: str, n: int | None = None, c: int | None = None) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        arr = np.asarray(arr)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.integer):
        arr = arr.astype(np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_classes), got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but y_true has {n} labels")
    if c is not None and arr.shape[1] != c:
        raise ValueError(f"{name} has {arr.shape[1]} classes, expected {c}")
    if arr.shape[1] < 2:
        raise ValueError(f"{name} must have at least 2 classes, got {arr.shape[1]}")
    if not arr.flags.c_contiguous:
        arr = np.ascontiguousarray(arr)
    return arr


def _compute_dtype(dtype) -> type:
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _progress(iterable, enabled: bool, **kw):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kw)


# --------------------------------------------------------------------------------------------------
# per-model summaries


def _summarise(p: np.ndarray, y: np.ndarray, k: int):
    """Summary of a block of (calibrated) scores ``p`` (n, C), modified temporarily, restored.

    Returns ``q`` (score of the label), ``v`` (n, k) the k largest wrong-class scores in decreasing
    order with classes ``w`` (first index on ties), ``t`` the largest wrong-class score outside
    ``w`` (-1 where there is none), ``pred`` (first maximal class) and ``conf`` (its score).
    """
    n, c = p.shape
    ar = np.arange(n)
    ke = min(k, c - 1)
    q = p[ar, y].copy()
    p[ar, y] = -1.0
    w = np.empty((n, k), dtype=np.int32)
    v = np.empty((n, k), dtype=p.dtype)
    for j in range(ke):
        wj = p.argmax(axis=1)
        w[:, j] = wj
        v[:, j] = p[ar, wj]
        p[ar, wj] = -1.0
    if ke < k:  # fewer wrong classes than k: repeat the last one (harmless duplicates)
        w[:, ke:] = w[:, ke - 1 : ke]
        v[:, ke:] = v[:, ke - 1 : ke]
    t = p.max(axis=1)  # -1 where every wrong class is among w
    for j in range(ke - 1, -1, -1):
        p[ar, w[:, j]] = v[:, j]
    p[ar, y] = q
    v0, w0 = v[:, 0], w[:, 0]
    label_wins = (q > v0) | ((q == v0) & (y < w0))
    pred = np.where(label_wins, y, w0).astype(np.int32)
    conf = np.maximum(q, v0)
    return q, v, w, t, pred, conf


def _summarise_exp(e: np.ndarray, s: np.ndarray, y: np.ndarray, k: int):
    """:func:`_summarise` of ``p = e / s`` from the unnormalised exponentials ``e`` (n, C) and
    their row sums ``s`` (n,), dividing only the selected entries (the same IEEE division the
    softmax performs, so the values are bit-identical). Division is monotone, so the order of
    ``e`` is the order of ``p`` up to ties it may create; those are resolved exactly: the
    prediction is the first class whose probability equals the maximum, and rows where a class
    outside the kept ones could reach it are computed in full.
    """
    n, c = e.shape
    ar = np.arange(n)
    ke = min(k, c - 1)
    ey = e[ar, y].copy()
    e[ar, y] = -1.0
    w = np.empty((n, k), dtype=np.int32)
    ev = np.empty((n, k), dtype=e.dtype)
    for j in range(ke):
        wj = e.argmax(axis=1)
        w[:, j] = wj
        ev[:, j] = e[ar, wj]
        e[ar, wj] = -1.0
    if ke < k:
        w[:, ke:] = w[:, ke - 1 : ke]
        ev[:, ke:] = ev[:, ke - 1 : ke]
    et = e.max(axis=1)
    for j in range(ke - 1, -1, -1):
        e[ar, w[:, j]] = ev[:, j]
    e[ar, y] = ey
    q = ey / s
    v = ev / s[:, None]
    t = np.where(et < 0, et, et / s)  # -1: no wrong class outside w
    pmax = np.maximum(q, v[:, 0])
    pred = np.where(q == pmax, y, c).astype(np.int32)
    for j in range(ke):
        hit = (v[:, j] == pmax) & (w[:, j] < pred)
        pred[hit] = w[hit, j]
    unsure = np.nonzero(t == pmax)[0]
    if len(unsure):
        pred[unsure] = (e[unsure] / s[unsure, None]).argmax(axis=1)
    return q, v, w, t, pred, pmax


@dataclass
class CalibratedSummary:
    """What the fast path keeps of one model's calibrated probabilities on one split.

    Attributes
    ----------
    temperature : float
    pred : (N,) int32
        First maximal class of the calibrated probabilities.
    conf : (N,) float32
        Its probability (the specialization-angle confidence, Sec. 4.3).
    q : (N,) float32
        Probability of the true class.
    top_wrong : (N, k) int32
        The ``k`` most probable wrong classes, in decreasing order.
    top_wrong_probs : (N, k) float32
        Their probabilities.
    bound : (N,) float32
        The largest wrong-class probability outside ``top_wrong`` (-1 if there is none).
    row_max, row_sum : (N,) float32
        ``max(logits / T)`` and ``sum(exp(logits / T - row_max))`` per row: any probability is
        recomputed bit-exactly from its logit as ``exp(logit / T - row_max) / row_sum``.
    correct : (N,) bool
        Whether ``pred`` equals the label.
    """

    temperature: float
    pred: np.ndarray
    conf: np.ndarray
    q: np.ndarray
    top_wrong: np.ndarray
    top_wrong_probs: np.ndarray
    bound: np.ndarray
    row_max: np.ndarray
    row_sum: np.ndarray
    correct: np.ndarray

    def probs_at(self, logits: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Calibrated probabilities at ``(rows, cols)``, bit-identical to the full softmax."""
        dt = self.row_max.dtype.type
        z = np.asarray(logits[rows, cols], dtype=dt)
        t = dt(self.temperature)
        if t != 1:
            z = z / t
        z = z - self.row_max[rows]
        np.exp(z, out=z)
        return z / self.row_sum[rows]


class _RowReader:
    """Row blocks of a 2-D logits array converted to the compute dtype, without mapping files.

    A read-only memory map of a whole ``.npy`` file (what :class:`norep.store.Store` hands out) is
    read with ``os.preadv`` straight from the file into a reused buffer: no page of the file is
    mapped into the process, so there are no page faults, nothing to release and no growth of the
    resident set; float16 is then widened by torch's vectorised conversion, float32 lands directly
    in the compute buffer. Any other array is sliced.
    """

    def __init__(self, arr: np.ndarray, dtype, step: int):
        import mmap
        import os

        self.arr, self.dtype = arr, np.dtype(dtype)
        self.fd = None
        if (isinstance(arr, np.memmap) and isinstance(arr.base, mmap.mmap) and arr.flags.c_contiguous
                and not arr.flags.writeable and getattr(arr, "filename", None) and hasattr(os, "preadv")):
            try:
                self.fd = os.open(arr.filename, os.O_RDONLY)
            except OSError:  # pragma: no cover - the file vanished: fall back to the map
                self.fd = None
        self.row_bytes = arr.shape[1] * arr.dtype.itemsize if arr.ndim == 2 else arr.dtype.itemsize
        self.scratch = None
        if self.fd is not None and arr.dtype != self.dtype:
            self.scratch = np.empty((step, arr.shape[1]), dtype=arr.dtype)

    def read(self, a: int, b: int, out: np.ndarray) -> None:
        """``out[...] = arr[a:b]`` (converted); ``out`` has ``b - a`` rows."""
        import os

        if self.fd is None:
            _copy_rows(out, self.arr[a:b])
            _release_rows(self.arr, a, b)
            return
        dst = out if self.scratch is None else self.scratch[: b - a]
        view = memoryview(dst).cast("B")
        want, pos = view.nbytes, self.arr.offset + a * self.row_bytes
        got = 0
        while got < want:
            r = os.preadv(self.fd, [view[got:]], pos + got)
            if r <= 0:  # pragma: no cover - truncated file
                raise OSError(f"could not read {self.arr.filename}")
            got += r
        if self.scratch is not None:
            _copy_rows(out, dst)

    def close(self) -> None:
        import os

        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _softmax_checked(z: np.ndarray, temperature: float, what: str = "logits", *, normalize: bool = True):
    """:func:`norep.calibration.softmax` of the block ``z`` in place; returns its row stats.

    NaN and +inf propagate into the row max, so checking the (n,) maxima replaces a full pass.
    """
    z, m, s = _softmax_inplace(z, temperature, stats=True, normalize=normalize)
    if not np.all(np.isfinite(m)):
        raise ValueError(f"{what} contain NaN or Inf")
    return m, s


def _preadable(arr) -> bool:
    import mmap
    import os

    return (isinstance(arr, np.memmap) and isinstance(arr.base, mmap.mmap) and arr.flags.c_contiguous
            and not arr.flags.writeable and bool(getattr(arr, "filename", None)) and hasattr(os, "preadv")
            and arr.ndim == 2)


def _gather_rows(arr: np.ndarray, rows) -> np.ndarray:
    """``arr[rows]`` for an index array. From a read-only memory-mapped file: a few rows are read
    with ``preadv`` (nothing mapped); more go through the map (one page fault per 64 KB or so) and
    the pages touched are released at once, so the resident set does not grow."""
    rows = np.asarray(rows, dtype=np.int64)
    if not _preadable(arr) or len(rows) > 8:
        out = np.asarray(arr[rows])
        if len(rows):
            _release_rows(arr, int(rows.min()), int(rows.max()) + 2)
        return out
    import os

    c = arr.shape[1]
    row_bytes = c * arr.dtype.itemsize
    out = np.empty((len(rows), c), dtype=arr.dtype)
    fd = os.open(arr.filename, os.O_RDONLY)
    try:
        for i, r in enumerate(rows.tolist()):
            _pread_into(fd, out[i], arr.offset + r * row_bytes)
    finally:
        os.close(fd)
    return out


def _pread_into(fd: int, dst: np.ndarray, pos: int) -> None:
    import os

    view = memoryview(dst).cast("B")
    got = 0
    while got < view.nbytes:
        r = os.preadv(fd, [view[got:]], pos + got)
        if r <= 0:  # pragma: no cover - truncated file
            raise OSError("could not read the logits file (truncated?)")
        got += r


def _softmax_rows(logits: np.ndarray, rows, temperature: float, dtype) -> np.ndarray:
    """Exact calibrated probabilities of the given rows (a slice or index array)."""
    src = logits[rows] if isinstance(rows, slice) else _gather_rows(logits, rows)
    out = np.empty(src.shape, dtype=dtype)
    _copy_rows(out, np.ascontiguousarray(src))
    return _softmax_inplace(out, temperature)


def _summary_pass(logits: np.ndarray, y: np.ndarray, temperature: float, k: int, out=None):
    """Stream over row blocks: softmax then summarise. ``out``: dict of preallocated arrays."""
    n, c = logits.shape
    dt = _compute_dtype(logits.dtype)
    step = max(1, _BLOCK_ELEMS // c)
    buf = np.empty((step, c), dtype=dt)
    res = out if out is not None else {
        "q": np.empty(n, dt), "v": np.empty((n, k), dt), "w": np.empty((n, k), np.int32),
        "t": np.empty(n, dt), "pred": np.empty(n, np.int32), "conf": np.empty(n, dt),
        "m": np.empty(n, dt), "s": np.empty(n, dt),
    }
    with _RowReader(logits, dt, step) as reader:
        for a in range(0, n, step):
            b = min(n, a + step)
            z = buf[: b - a]
            reader.read(a, b, z)
            m, s = _softmax_checked(z, temperature, normalize=False)
            q, v, w, t, pred, conf = _summarise_exp(z, s[:, 0], y[a:b], k)
            res["q"][a:b], res["v"][a:b], res["w"][a:b], res["t"][a:b] = q, v, w, t
            res["pred"][a:b], res["conf"][a:b] = pred, conf
            res["m"][a:b], res["s"][a:b] = m[:, 0], s[:, 0]
    return res


def calibrated_summary(y_true, logits, *, temperature: float = 1.0, k: int = 2) -> CalibratedSummary:
    """Summarise one model's calibrated probabilities in one streaming pass (Sec. 3.2).

    Parameters
    ----------
    y_true : array-like of shape (N,)
        Integer class ids.
    logits : array-like of shape (N, C)
        Logits (float16/float32 computed in float32; memory maps are streamed).
    temperature : float, default 1.0
        The model's fitted temperature.
    k : int, default 2
        How many of the most probable wrong classes to keep.

    Returns
    -------
    CalibratedSummary

    Examples
    --------
    >>> import numpy as np
    >>> from norep.allpairs import calibrated_summary
    >>> s = calibrated_summary([0, 2], np.log([[0.5, 0.3, 0.2], [0.6, 0.1, 0.3]]), k=1)
    >>> s.pred.tolist(), s.q.round(2).tolist(), s.top_wrong[:, 0].tolist(), s.bound.round(2).tolist()
    ([0, 0], [0.5, 0.3], [1, 0], [0.2, 0.1])
    """
    y0 = np.asarray(y_true)
    logits = _as_logits(logits, "logits", y0.shape[0] if y0.ndim == 1 else None)
    y = _check_labels(y0, logits.shape[0], logits.shape[1])
    t = _check_temperature(temperature)
    k = _check_k(k)
    r = _summary_pass(logits, y, t, k)
    return CalibratedSummary(t, r["pred"], r["conf"], r["q"], r["w"], r["v"], r["t"], r["m"], r["s"],
                             r["pred"] == y)


# --------------------------------------------------------------------------------------------------
# exact decisions for two operands


def _decide_level1(qx, v0x, qy, v0y, kdiv: float):
    """Vectorised level 1. Returns (correct, wrong, s) with s the (divided) label score."""
    s = qx + qy
    s /= kdiv
    upper = v0x + v0y
    upper /= kdiv
    lower = np.maximum(v0x, v0y)
    lower /= kdiv
    return s > upper, lower > s, s


def _decide_level2(s, y, cand, x_at, y_at, tx, ty, kdiv: float):
    """Level 2 for E undecided entries: candidates ``cand`` (E, J) with exact operand values."""
    sc = x_at + y_at
    sc /= kdiv
    s2 = s[:, None]
    beats = (sc > s2) | ((sc == s2) & (cand < y[:, None]))
    wrong = beats.any(axis=1)
    bound = tx + ty
    bound /= kdiv
    correct = ~wrong & (s > bound)
    return correct, wrong


# --------------------------------------------------------------------------------------------------
# all pairs


@dataclass
class AllPairsResult:
    """All-pairs outcome fractions, ensemble accuracies, conversion rates and theta histograms.

    Matrices are (M, M) in the order of ``names`` and follow :mod:`norep.metrics` /
    :mod:`norep.ensembles`: ``both_correct[i, j]`` etc. with A = model i and B = model j;
    ``ensemble_accuracy`` has the single accuracies on its diagonal; ``conversion_rate`` is nan on
    the diagonal and where a pair has no error-inconsistent example. ``theta_counts[i, j]`` (only
    for ``i < j``, zeros elsewhere) is the (4, bins) histogram of the specialization angle per
    outcome (order of ``OUTCOMES``) over ``theta_edges`` degrees. ``counts`` holds the integer
    counts behind the fractions; ``levels`` how many (pair, example) decisions each level took.
    Indexing by key (``res["ensemble_accuracy"]``) works as for a dict.
    """

    names: list[str]
    n_examples: int
    accuracy: np.ndarray
    both_correct: np.ndarray
    only_a: np.ndarray
    only_b: np.ndarray
    both_wrong: np.ndarray
    ensemble_accuracy: np.ndarray
    conversion_rate: np.ndarray
    theta_edges: np.ndarray | None
    theta_counts: np.ndarray | None
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)
    correct: np.ndarray | None = None
    conf: np.ndarray | None = None
    _summaries: dict | None = field(default=None, repr=False)
    _conf_bounds: Any = field(default=None, repr=False)

    def compute_theta(self, bins=18, *, pairs_per_block: int | None = None) -> np.ndarray:
        """Fill ``theta_counts`` for every pair ``i < j`` from the kept confidences and correctness.

        ``theta = degrees(atan2(conf_i, conf_j))`` per example, binned as ``numpy.histogram`` bins
        (half-open, the last closed) and split by outcome, exactly as
        :func:`norep.specialization.theta_histogram`. Vectorised over blocks of pairs.
        """
        from norep.specialization import _bin_edges

        edges = _bin_edges(bins)
        n_bins = len(edges) - 1
        m, n = self.conf.shape
        ia, ib = np.triu_indices(m, 1)
        out = np.zeros((m, m, 4, n_bins), dtype=np.int64)
        cf = self.conf.astype(np.float64)
        corr = self.correct
        block = pairs_per_block or max(1, (1 << 22) // max(1, n))
        bounds = self._conf_bounds
        for p0 in range(0, len(ia), block):
            a, b = ia[p0 : p0 + block], ib[p0 : p0 + block]
            th = np.degrees(np.arctan2(cf[a], cf[b]))
            idx = _theta_bins(edges, th)
            if bounds is not None:
                # confidences known to within bounds (torch backend): bins that the bounds leave
                # open are settled from the exact confidences of those examples
                lo, hi = bounds.lo, bounds.hi
                pad = 1e-9
                ilo = _theta_bins(edges, np.degrees(np.arctan2(lo[a], hi[b])) - pad)
                ihi = _theta_bins(edges, np.degrees(np.arctan2(hi[a], lo[b])) + pad)
                pp, ee = np.nonzero((ilo != ihi) | (ilo != idx))
                if len(pp):
                    ca_ex = bounds.exact(a[pp], ee)
                    cb_ex = bounds.exact(b[pp], ee)
                    th_ex = np.degrees(np.arctan2(ca_ex.astype(np.float64), cb_ex.astype(np.float64)))
                    idx[pp, ee] = _theta_bins(edges, th_ex)
                    self.levels["theta_exact"] = self.levels.get("theta_exact", 0) + len(pp)
            ca, cb = corr[a], corr[b]
            outcome = np.where(ca, np.where(cb, 0, 1), np.where(cb, 2, 3))
            keep = idx >= 0
            pair = np.broadcast_to(np.arange(len(a))[:, None], idx.shape)
            flat = (pair[keep] * 4 + outcome[keep]) * n_bins + idx[keep]
            out[a, b] = np.bincount(flat, minlength=len(a) * 4 * n_bins).reshape(len(a), 4, n_bins)
        self.theta_edges, self.theta_counts = edges, out
        return out

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def keys(self) -> list[str]:
        return ["accuracy", "both_correct", "only_a", "only_b", "both_wrong", "ensemble_accuracy",
                "conversion_rate", "theta_counts"]

    @property
    def error_inconsistency(self) -> np.ndarray:
        """``only_a + only_b`` for every pair (Sec. 4.1)."""
        return self.only_a + self.only_b

    @property
    def ensemble_gain(self) -> np.ndarray:
        """Ensemble accuracy minus the members' mean accuracy (Sec. 4.2)."""
        return self.ensemble_accuracy - (self.accuracy[:, None] + self.accuracy[None, :]) / 2.0

    def _index(self, name) -> int:
        if isinstance(name, (int, np.integer)):
            return int(name)
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"unknown model {name!r}; models are {self.names}") from None

    def theta_histogram(self, a, b):
        """The pair's theta histogram as :func:`norep.specialization.theta_histogram` returns it.

        ``a`` must come before ``b`` in ``names`` (angles are computed once per unordered pair, as
        ``atan2(conf_a, conf_b)``).
        """
        import pandas as pd

        if self.theta_counts is None:
            self.compute_theta()
        i, j = self._index(a), self._index(b)
        if not i < j:
            raise ValueError(f"theta histograms are stored for ordered pairs (a before b in names); "
                             f"swap {a!r} and {b!r}")
        counts = self.theta_counts[i, j]
        total = int(counts.sum())
        rows = []
        edges = self.theta_edges
        for o, name in enumerate(OUTCOMES):
            n_o = int(counts[o].sum())
            for left, right, c in zip(edges[:-1], edges[1:], counts[o], strict=True):
                rows.append({"outcome": name, "bin_left": float(left), "bin_right": float(right),
                             "count": int(c), "fraction": c / total if total else float("nan"),
                             "within_outcome": c / n_o if n_o else float("nan")})
        return pd.DataFrame(rows)

    def to_frame(self):
        """One row per unordered pair ``a < b``: the fractions, accuracies and conversion rate."""
        import pandas as pd

        i, j = np.triu_indices(len(self.names), 1)
        return pd.DataFrame({
            "model_a": [self.names[x] for x in i], "model_b": [self.names[x] for x in j],
            "accuracy_a": self.accuracy[i], "accuracy_b": self.accuracy[j],
            "both_correct": self.both_correct[i, j], "only_a": self.only_a[i, j],
            "only_b": self.only_b[i, j], "both_wrong": self.both_wrong[i, j],
            "error_inconsistency": self.error_inconsistency[i, j],
            "ensemble_accuracy": self.ensemble_accuracy[i, j],
            "ensemble_gain": self.ensemble_gain[i, j],
            "conversion_rate": self.conversion_rate[i, j],
        })


def _theta_bins(edges: np.ndarray, th: np.ndarray) -> np.ndarray:
    """Bin index as ``numpy.histogram`` assigns it (half-open bins, the last closed); -1 outside.

    For equal-width edges this is numpy's own computation (scaled index, then the +-1 corrections
    against the edge values), which is far faster than a sorted search; otherwise a sorted search.
    Both give the edge-consistent assignment numpy guarantees.
    """
    nb = len(edges) - 1
    lo, hi = edges[0], edges[-1]
    inside = (th >= lo) & (th <= hi)
    if not np.array_equal(edges, np.linspace(lo, hi, nb + 1)):
        idx = np.searchsorted(edges, th, side="right") - 1
        idx[th == hi] = nb - 1
    else:
        idx = ((np.where(inside, th, lo) - lo) / (hi - lo) * nb).astype(np.intp)
        np.clip(idx, 0, nb - 1, out=idx)
        idx[th < edges[idx]] -= 1
        np.clip(idx, 0, nb - 1, out=idx)
        idx[(th >= edges[idx + 1]) & (idx != nb - 1)] += 1
    idx[~inside] = -1
    return idx


def pairwise_analysis(
    y_true,
    logits: Sequence,
    *,
    temperatures: Sequence[float] | None = None,
    names: Sequence[str] | None = None,
    k: int = 2,
    chunk_size: int = 512,
    theta: bool = True,
    theta_bins=18,
    n_jobs: int = 1,
    progress: bool = False,
    device: str | None = None,
) -> AllPairsResult:
    """Outcomes, ensemble accuracy, conversion rate and theta histograms of every pair (Secs. 4.1-4.3).

    Exactly the numbers of :func:`norep.metrics.pairwise_outcomes`,
    :func:`norep.ensembles.pairwise_ensemble_accuracy`, :func:`norep.ensembles.pairwise_conversion_rate`
    and :func:`norep.specialization.theta_histogram` on ``softmax(logits_m, T_m)``, computed by
    streaming over ``chunk_size`` examples at a time (each model's calibrated probabilities are
    computed once per chunk and reused by all its pairs) with the bound-based pruning described in
    the module docstring.

    Parameters
    ----------
    y_true : array-like of shape (N,)
        Integer class ids.
    logits : sequence of M arrays of shape (N, C), or an (M, N, C) array
        Logits, float16/float32/float64, memory maps welcome.
    temperatures : sequence of M floats, optional
        Fitted temperatures (default 1.0 each).
    names : sequence of M str, optional
        Model names (default ``"0"``, ``"1"``, ...).
    k : int, default 2
        Wrong classes kept per model and example for the level-2 check.
    chunk_size : int, default 512
        Examples per chunk; memory is about ``M * chunk_size * C * 4`` bytes.
    theta : bool, default True
        Also compute theta histograms for every pair ``i < j`` (afterwards, from the kept
        confidences; :meth:`AllPairsResult.compute_theta` does it later on demand).
    theta_bins : int or array-like, default 18
        Equal-width bins over [0, 90] degrees, or bin edges (as in theta_histogram).
    n_jobs : int, default 1
        Threads for the per-model softmax passes.
    progress : bool, default False
        Show a progress bar on stderr.
    device : str, optional
        ``None``/``"numpy"`` (this numpy path), ``"auto"``, or a torch device (``"cpu"``, ``"cuda"``)
        for the torch backend (:mod:`norep.engine`); the counts are identical on every device (on a
        torch device ``conf`` holds the confidences to within the backend's stated tolerance, and
        theta histograms are still exact).

    Returns
    -------
    AllPairsResult

    Examples
    --------
    >>> import numpy as np
    >>> from norep.allpairs import pairwise_analysis
    >>> y = np.array([0, 1, 1])
    >>> pa = np.log([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2]])
    >>> pb = np.log([[0.4, 0.6], [0.1, 0.9], [0.7, 0.3]])
    >>> res = pairwise_analysis(y, [pa, pb])
    >>> res.ensemble_accuracy.round(3)
    array([[0.333, 0.667],
           [0.667, 0.333]])
    >>> res.conversion_rate
    array([[nan,  1.],
           [ 1., nan]])
    """
    y0 = np.asarray(y_true)
    n = y0.shape[0] if y0.ndim == 1 else None
    if isinstance(logits, np.ndarray) and logits.ndim == 3:
        logits = list(logits)
    if isinstance(logits, (str, bytes)) or not isinstance(logits, Sequence) or len(logits) == 0:
        raise ValueError("logits must be a non-empty sequence of (N, C) arrays")
    mats = [_as_logits(lg, f"logits[{i}]", n) for i, lg in enumerate(logits)]
    c = mats[0].shape[1]
    for i, lg in enumerate(mats):
        if lg.shape[1] != c:
            raise ValueError(f"logits[{i}] has {lg.shape[1]} classes but logits[0] has {c}")
    m_models = len(mats)
    y = _check_labels(y0, mats[0].shape[0], c)
    n = y.shape[0]
    if n == 0:
        raise ValueError("y_true is empty")
    temps = [1.0] * m_models if temperatures is None else list(temperatures)
    if len(temps) != m_models:
        raise ValueError(f"temperatures has {len(temps)} entries for {m_models} models")
    temps = [_check_temperature(t) for t in temps]
    names = [str(i) for i in range(m_models)] if names is None else [str(s) for s in names]
    if len(names) != m_models:
        raise ValueError(f"names has {len(names)} entries for {m_models} models")
    if len(set(names)) != len(names):
        raise ValueError("names must be unique")
    k = _check_k(k)
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size!r}")
    chunk_size = int(chunk_size)
    if theta:
        from norep.specialization import _bin_edges

        _bin_edges(theta_bins)  # validate before the long pass

    from norep.engine import resolve_device

    dev = resolve_device(device)
    if dev is not None:
        from norep.engine.torch_backend import pairwise_torch

        out = pairwise_torch(y, mats, temps, device=dev, progress=progress)
        res = _assemble(names, n, out["correct"], out["conf"], out["ensemble_correct"], out["converted"],
                        out["levels"])
        res._conf_bounds = out["conf_bounds"]
        if theta:
            res.compute_theta(theta_bins)
        return res

    dt = np.float64 if any(lg.dtype == np.float64 for lg in mats) else np.float32
    ia, ib = np.triu_indices(m_models, 1)
    n_pairs = len(ia)
    ens_correct = np.zeros(n_pairs, dtype=np.int64)
    converted = np.zeros(n_pairs, dtype=np.int64)
    correct_all = np.zeros((m_models, n), dtype=bool)
    conf_all = np.zeros((m_models, n), dtype=dt)
    levels = {"level1": 0, "level2": 0, "full_row": 0}

    cs = min(chunk_size, n)
    probs = np.empty((m_models, cs, c), dtype=dt)
    q = np.empty((m_models, cs), dtype=dt)
    v = np.empty((m_models, cs, k), dtype=dt)
    w = np.empty((m_models, cs, k), dtype=np.int32)
    tb = np.empty((m_models, cs), dtype=dt)
    conf = np.empty((m_models, cs), dtype=dt)
    pred = np.empty((m_models, cs), dtype=np.int32)
    sums = np.empty((m_models, cs), dtype=dt)

    step = max(1, _BLOCK_ELEMS // c)
    own = [_compute_dtype(lg.dtype) for lg in mats]
    keep = all(o == dt for o in own)  # per-model summaries kept for reuse (greedy evaluation)
    full = None
    if keep:
        full = {"q": np.empty((m_models, n), dt), "v": np.empty((m_models, n, k), dt),
                "w": np.empty((m_models, n, k), np.int32), "t": np.empty((m_models, n), dt),
                "pred": np.empty((m_models, n), np.int32), "m": np.empty((m_models, n), dt),
                "s": np.empty((m_models, n), dt)}
    maxes = np.empty((m_models, cs), dtype=dt)
    readers = [_RowReader(lg, o, step) for lg, o in zip(mats, own, strict=True)]

    def one_model(mi, a, b, yc):
        nb = b - a
        for r0 in range(0, nb, step):
            r1 = min(nb, r0 + step)
            blk = probs[mi, r0:r1]
            what = f"logits[{mi}] ({names[mi]!r})"
            if own[mi] == dt:
                # the buffer keeps exp(z / T - m); probabilities are blk / sums, divided on demand
                readers[mi].read(a + r0, a + r1, blk)
                mrow, srow = _softmax_checked(blk, temps[mi], what, normalize=False)
                sums[mi, r0:r1] = srow[:, 0]
                maxes[mi, r0:r1] = mrow[:, 0]
            else:  # float32 probabilities stored in a float64 buffer (exact widening), sums 1
                tmp = np.empty(blk.shape, dtype=np.float32)
                readers[mi].read(a + r0, a + r1, tmp)
                _softmax_checked(tmp, temps[mi], what)
                blk[...] = tmp
                sums[mi, r0:r1] = 1.0
            (q[mi, r0:r1], v[mi, r0:r1], w[mi, r0:r1], tb[mi, r0:r1], pred[mi, r0:r1],
             conf[mi, r0:r1]) = _summarise_exp(blk, sums[mi, r0:r1], yc[r0:r1], k)
        if full is not None:
            full["q"][mi, a:b], full["v"][mi, a:b], full["w"][mi, a:b] = q[mi, :nb], v[mi, :nb], w[mi, :nb]
            full["t"][mi, a:b], full["pred"][mi, a:b] = tb[mi, :nb], pred[mi, :nb]
            full["m"][mi, a:b], full["s"][mi, a:b] = maxes[mi, :nb], sums[mi, :nb]

    pool = None
    if n_jobs and int(n_jobs) > 1:
        from concurrent.futures import ThreadPoolExecutor

        pool = ThreadPoolExecutor(int(n_jobs))
    try:
        starts = range(0, n, cs)
        for a in _progress(starts, progress, desc="all pairs", unit="chunk", total=len(starts)):
            b = min(n, a + cs)
            nb = b - a
            yc = y[a:b]
            if pool is None:
                for mi in range(m_models):
                    one_model(mi, a, b, yc)
            else:
                list(pool.map(one_model, range(m_models), [a] * m_models, [b] * m_models,
                              [yc] * m_models))
            corr = pred[:, :nb] == yc[None, :]
            correct_all[:, a:b] = corr
            conf_all[:, a:b] = conf[:, :nb]
            if n_pairs == 0:
                continue
            ens = _pairs_chunk(probs, sums, q, v, w, tb, corr, yc, ia, ib, nb, levels)
            inconsistent = corr[ia] != corr[ib]
            ens_correct += ens.sum(axis=1)
            converted += (ens & inconsistent).sum(axis=1)
    finally:
        if pool is not None:
            pool.shutdown()
        for r in readers:
            r.close()

    res = _assemble(names, n, correct_all, conf_all, ens_correct, converted, levels)
    if full is not None:
        res._summaries = {"y": y, "k": k, "temps": temps, "logits": mats, **full}
    if theta:
        res.compute_theta(theta_bins)
    return res


def _assemble(names, n, correct_all, conf_all, ens_correct, converted, levels) -> AllPairsResult:
    """The result from the members' correctness (M, N) and the per-pair (i < j) ensemble counts."""
    m_models = len(names)
    ia, ib = np.triu_indices(m_models, 1)
    # outcome counts from the correctness matrix (as norep.metrics.pairwise_outcomes)
    kf = correct_all.astype(np.float32 if n < 2**24 else np.float64)
    both = np.rint(kf @ kf.T).astype(np.int64)
    n_correct = correct_all.sum(axis=1, dtype=np.int64)
    only_a = n_correct[:, None] - both
    only_b = only_a.T
    both_wrong = n - both - only_a - only_b
    ens_mat = np.zeros((m_models, m_models), dtype=np.int64)
    ens_mat[ia, ib] = ens_correct
    ens_mat[ib, ia] = ens_correct
    ens_mat[np.arange(m_models), np.arange(m_models)] = n_correct
    conv_mat = np.zeros((m_models, m_models), dtype=np.int64)
    conv_mat[ia, ib] = converted
    conv_mat[ib, ia] = converted
    incons = only_a + only_b
    with np.errstate(divide="ignore", invalid="ignore"):
        conversion = np.where(incons > 0, conv_mat / incons, np.nan)
    return AllPairsResult(
        names=list(names), n_examples=n, accuracy=n_correct / n,
        both_correct=both / n, only_a=only_a / n, only_b=only_b / n, both_wrong=both_wrong / n,
        ensemble_accuracy=ens_mat / n, conversion_rate=conversion,
        theta_edges=None, theta_counts=None,
        counts={"both_correct": both, "only_a": only_a, "only_b": only_b, "both_wrong": both_wrong,
                "ensemble_correct": ens_mat, "converted": conv_mat, "inconsistent": incons},
        levels=levels, correct=correct_all, conf=conf_all,
    )


def _pairs_chunk(exps, sums, q, v, w, tb, corr, yc, ia, ib, nb, levels) -> np.ndarray:
    """Ensemble correctness (n_pairs, nb) of every pair on one chunk, exactly.

    ``exps[m]`` holds model m's ``exp(z / T - max)`` and ``sums[m]`` their row sums: a probability
    is ``exps / sums``, divided here only for the entries that are needed.
    """
    probs = exps
    c = probs.shape[2]
    cs = probs.shape[1]
    q64 = q[:, :nb].astype(np.float64)
    v064 = v[:, :nb, 0].astype(np.float64)
    correct, wrong, s = _decide_level1(q64[ia], v064[ia], q64[ib], v064[ib], 2.0)
    undecided = ~(correct | wrong)
    pe, ie = np.nonzero(undecided)
    levels["level1"] += correct.size - len(pe)
    if len(pe) == 0:
        return correct
    a, b = ia[pe], ib[pe]
    se = s[pe, ie]
    ye = yc[ie]
    cand = np.concatenate([w[a, ie], w[b, ie]], axis=1)  # (E, 2k)
    flat = probs.reshape(-1)
    base_a = ((a * cs + ie) * c)[:, None]
    base_b = ((b * cs + ie) * c)[:, None]
    xa = (flat[base_a + cand] / sums[a, ie][:, None]).astype(np.float64)
    xb = (flat[base_b + cand] / sums[b, ie][:, None]).astype(np.float64)
    c2, w2 = _decide_level2(se, ye, cand, xa, xb, tb[a, ie].astype(np.float64),
                            tb[b, ie].astype(np.float64), 2.0)
    correct[pe[c2], ie[c2]] = True
    rest = ~(c2 | w2)
    levels["level2"] += int(len(pe) - rest.sum())
    if rest.any():
        pr, ir = pe[rest], ie[rest]
        ar, br = ia[pr], ib[pr]
        levels["full_row"] += len(pr)
        for s0 in range(0, len(pr), _ROWS_PER_BATCH):
            sl = slice(s0, s0 + _ROWS_PER_BATCH)
            rows = (probs[ar[sl], ir[sl]] / sums[ar[sl], ir[sl]][:, None]).astype(np.float64)
            rows += probs[br[sl], ir[sl]] / sums[br[sl], ir[sl]][:, None]
            rows /= 2.0
            ok = rows.argmax(axis=1) == yc[ir[sl]]
            correct[pr[sl][ok], ir[sl][ok]] = True
    return correct


def store_pairwise_analysis(store, *, split: str = "test", names: Sequence[str] | None = None,
                            **kwargs) -> AllPairsResult:
    """:func:`pairwise_analysis` on a :class:`norep.store.Store`: its memory-mapped logits and the
    temperatures in its model table.

    Parameters
    ----------
    store : norep.store.Store
    split : str, default "test"
    names : sequence of str, optional
        Models to include (default: every model with logits on ``split``).
    **kwargs
        Passed to :func:`pairwise_analysis` (``k``, ``chunk_size``, ``theta``, ``n_jobs``, ...).

    Returns
    -------
    AllPairsResult
    """
    if names is None:
        names = [m for m in store.model_names() if store.has_logits(m, split)]
    names = list(names)
    logits = [store.logits(m, split) for m in names]
    temps = [store.meta(m)["temperature"] for m in names]
    return pairwise_analysis(store.labels(split), logits, temperatures=temps, names=names, **kwargs)


# --------------------------------------------------------------------------------------------------
# greedy selection


class _Operand:
    """One model on one split: its calibrated summary, logits and temperature.

    The summary is computed once (one streaming softmax pass) and reused by every step and every
    candidate evaluation of a greedy selection; exact probabilities of single entries or rows are
    recomputed from the logits on demand, bit-identically.
    """

    def __init__(self, logits: np.ndarray, y: np.ndarray, temperature: float, k: int, r: dict | None = None):
        self.logits = logits
        self.temperature = temperature
        self.dtype = _compute_dtype(logits.dtype)
        if r is None:
            r = _summary_pass(logits, y, temperature, k)
        self.q, self.v, self.w, self.t, self.pred = r["q"], r["v"], r["w"], r["t"], r["pred"]
        self.m, self.s = r["m"], r["s"]
        self.tplus = np.maximum(self.t, 0).astype(np.float64)  # bound of every other wrong class

    def at(self, rows, cols) -> np.ndarray:
        """Exact calibrated probabilities at (rows, cols) (see CalibratedSummary.probs_at)."""
        dt = self.dtype
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        if _preadable(self.logits):
            uniq, inv = np.unique(rows, return_inverse=True)
            z = _gather_rows(self.logits, uniq)[inv.reshape(-1), cols].astype(dt)
        else:
            z = np.asarray(self.logits[rows, cols], dtype=dt)
            _release_rows(self.logits, 0, self.n)
        t = dt(self.temperature)
        if t != 1:
            z = z / t
        z = z - self.m[rows]
        np.exp(z, out=z)
        return z / self.s[rows]

    @property
    def n(self) -> int:
        return self.logits.shape[0]

    def rows(self, rows) -> np.ndarray:
        return _softmax_rows(self.logits, rows, self.temperature, self.dtype)


def _lookup(w: np.ndarray, v: np.ndarray, classes: np.ndarray):
    """Where ``classes`` (n, J) is among the kept classes ``w`` (n, k): (known (n, J), value (n, J))."""
    known = np.zeros(classes.shape, dtype=bool)
    val = np.zeros(classes.shape)
    for i in range(w.shape[1] - 1, -1, -1):  # duplicates in w carry equal values
        hit = classes == w[:, i : i + 1]
        known |= hit
        np.copyto(val, v[:, i : i + 1], where=hit, casting="unsafe")
    return known, val


class _EnsembleState:
    """Exact correctness of ``(sum of members + candidate) / K`` from the members' summaries.

    The sum is the reference's: float64, ``0.0`` plus each member's float32 probabilities in order,
    the candidate last, then divided by ``K``. Kept per example (all float64 running sums in member
    order, so each is exact or a bound by the monotonicity of rounded addition):

    * ``Q``: the label's exact summed score; ``V1``: the sum of each member's largest wrong
      probability (no wrong class can score more); ``T``: the sum of the members' bounds (no class
      outside every member's kept classes can score more);
    * for each member's kept wrong classes (``uw``, the union in member order, duplicates harmless)
      the summed score's bounds ``lo``/``hi`` (a member that does not keep the class contributes
      0 and its bound ``t`` respectively);
    * for the examples that needed it once (``hard``), the exact summed row (float64, (H, C)).

    For a candidate the decision goes: level 1 (label score against ``V1 + v1``, and against the
    best ``lo``), level 2 (every kept class of members and candidate bounded), level 3 (exact summed
    row with the candidate's exact probabilities at the candidate classes and its bound elsewhere),
    full row (the candidate's exact row).
    """

    def __init__(self, ops: list[_Operand], y: np.ndarray, k: int):
        self.ops, self.y, self.k = ops, y, k
        n = len(y)
        self.n, self.c = n, ops[0].logits.shape[1]
        self.members: list[int] = []
        self.Q = np.zeros(n)
        self.V1 = np.zeros(n)
        self.T = np.zeros(n)
        self.uw = np.empty((n, 0), dtype=np.int32)
        self.lo = np.empty((n, 0))
        self.hi = np.empty((n, 0))
        self.lo_best = np.zeros(n)
        self.hard_index = np.full(n, -1, dtype=np.int64)
        self.hard_rows = np.empty(0, dtype=np.int64)
        self.hard_tot = np.empty((0, self.c))
        self._hard_summary = None
        self.levels = {"level1": 0, "level2": 0, "level3": 0, "full_row": 0}

    # ----------------------------------------------------------------------------------- members
    def add(self, j: int) -> None:
        op = self.ops[j]
        if self.uw.shape[1]:
            known, val = _lookup(op.w, op.v, self.uw)
            self.lo += np.where(known, val, 0.0)
            self.hi += np.where(known, val, op.tplus[:, None])
        new_lo = np.zeros(op.w.shape)
        new_hi = np.zeros(op.w.shape)
        for i in self.members:
            prev = self.ops[i]
            known, val = _lookup(prev.w, prev.v, op.w)
            new_lo += np.where(known, val, 0.0)
            new_hi += np.where(known, val, prev.tplus[:, None])
        v64 = op.v.astype(np.float64)
        new_lo += v64
        new_hi += v64
        self.uw = np.concatenate([self.uw, op.w], axis=1)
        self.lo = np.concatenate([self.lo, new_lo], axis=1)
        self.hi = np.concatenate([self.hi, new_hi], axis=1)
        self.lo_best = self.lo.max(axis=1)
        self.Q += op.q
        self.V1 += op.v[:, 0]
        self.T += op.tplus
        if len(self.hard_rows):
            self.hard_tot += op.rows(self.hard_rows)
        self._hard_summary = None
        self.members.append(j)

    def _make_hard(self, rows: np.ndarray) -> None:
        rows = np.setdiff1d(rows, self.hard_rows)
        if not len(rows):
            return
        tot = np.zeros((len(rows), self.c))
        for i in self.members:  # the reference's sum, in member order
            tot += self.ops[i].rows(rows)
        self.hard_index[rows] = np.arange(len(self.hard_rows), len(self.hard_rows) + len(rows))
        self.hard_rows = np.concatenate([self.hard_rows, rows])
        self.hard_tot = np.concatenate([self.hard_tot, tot])
        self._hard_summary = None

    def _hard(self):
        if self._hard_summary is None:
            tot = self.hard_tot.copy()
            q, v, w, t, _, _ = _summarise(tot, self.y[self.hard_rows], self.k)
            self._hard_summary = (v, w, t)
        return self._hard_summary

    # -------------------------------------------------------------------------------- candidates
    def _stack(self):
        """The models' summaries stacked (models, N, ...) so that a step handles every
        (candidate, example) pair in a few vectorised operations."""
        if getattr(self, "_stacked", None) is None:
            nm, n, k = len(self.ops), self.n, self.k
            st = {"q": np.zeros((nm, n)), "v1": np.zeros((nm, n)), "w": np.zeros((nm, n, k), np.int32),
                  "v": np.zeros((nm, n, k)), "tp": np.zeros((nm, n)), "t": np.zeros((nm, n))}
            for i, op in enumerate(self.ops):
                if op is not None:
                    st["q"][i], st["v1"][i], st["w"][i] = op.q, op.v[:, 0], op.w
                    st["v"][i], st["tp"][i], st["t"][i] = op.v, op.tplus, op.t
            self._stacked = st
        return self._stacked

    def counts(self, cands: Sequence[int]) -> np.ndarray:
        """Exact number of correct examples of the ensemble with each candidate added."""
        st = self._stack()
        kdiv = float(len(self.members) + 1)
        cj = np.asarray(cands, dtype=np.int64)
        nc = len(cj)
        s = st["q"][cj] + self.Q
        s /= kdiv
        upper = st["v1"][cj] + self.V1
        upper /= kdiv
        correct = s > upper
        out = correct.sum(axis=1).astype(np.int64)
        undecided = ~correct
        undecided &= s >= (self.lo_best / kdiv)
        pc, pe = np.nonzero(undecided)
        self.levels["level1"] += nc * self.n - len(pc)
        if not len(pc):
            return out
        ps = s[pc, pe]
        del s, upper, correct, undecided
        easy = self.hard_index[pe] < 0
        rest = ~easy
        if easy.any():
            ie = np.nonzero(easy)[0]
            ok2, w2 = self._level2(cj[pc[ie]], pe[ie], ps[ie], kdiv)
            out += np.bincount(pc[ie[ok2]], minlength=nc)
            self.levels["level2"] += int(np.count_nonzero(ok2 | w2))
            rest[ie[~(ok2 | w2)]] = True
        pc, pe, ps = pc[rest], pe[rest], ps[rest]
        if len(pc):
            self._make_hard(np.unique(pe))
            out += self._level3(pc, cj, pe, ps, kdiv, nc)
        return out

    def _level2(self, pj: np.ndarray, e: np.ndarray, se: np.ndarray, kdiv: float):
        st = self._stack()
        y = self.y[e]
        cw, cv, ct = st["w"][pj, e], st["v"][pj, e], st["tp"][pj, e]
        uw = self.uw[e]
        known, val = _lookup(cw, cv, uw)
        s2 = se[:, None]
        lo = self.lo[e] + np.where(known, val, 0.0)
        lo /= kdiv
        hi = self.hi[e] + np.where(known, val, ct[:, None])
        hi /= kdiv
        y2 = y[:, None]
        wrong = ((lo > s2) | ((lo == s2) & (uw < y2))).any(axis=1)
        ok = ((hi < s2) | ((hi == s2) & (uw > y2))).all(axis=1)
        # the candidate's kept classes that no member keeps: members' part in [0, T]
        alone = np.ones(cw.shape, dtype=bool)
        for i in range(cw.shape[1]):
            alone[:, i] = ~(uw == cw[:, i : i + 1]).any(axis=1)
        clo = cv / kdiv
        chi = self.T[e][:, None] + cv
        chi /= kdiv
        wrong |= (alone & ((clo > s2) | ((clo == s2) & (cw < y2)))).any(axis=1)
        ok &= (~alone | (chi < s2) | ((chi == s2) & (cw > y2))).all(axis=1)
        other = self.T[e] + ct  # every class kept by nobody
        other /= kdiv
        ok &= other < se
        return ok & ~wrong, wrong

    def _level3(self, pc, cj, e, se, kdiv: float, nc: int) -> np.ndarray:
        st = self._stack()
        hv, hw, ht = self._hard()
        pj = cj[pc]
        h = self.hard_index[e]
        y = self.y[e]
        y2, s2 = y[:, None], se[:, None]
        tw, cw, cv = hw[h], st["w"][pj, e], st["v"][pj, e]
        ct = st["tp"][pj, e]
        # (a) exact summed row; the candidate known at its kept classes, in [0, t] elsewhere
        known, val = _lookup(cw, cv, tw)
        xt_tw = hv[h]
        lo = xt_tw + np.where(known, val, 0.0)
        lo /= kdiv
        hi = xt_tw + np.where(known, val, ct[:, None])
        hi /= kdiv
        sc = self.hard_tot.reshape(-1)[h[:, None] * self.c + cw] + cv
        sc /= kdiv
        wrong = ((lo > s2) | ((lo == s2) & (tw < y2))).any(axis=1)
        wrong |= ((sc > s2) | ((sc == s2) & (cw < y2))).any(axis=1)
        other = ht[h] + ct
        other /= kdiv
        ok = ((hi < s2) | ((hi == s2) & (tw > y2))).all(axis=1)
        ok &= ((sc < s2) | ((sc == s2) & (cw > y2))).all(axis=1) & (other < se)
        ok &= ~wrong
        out = np.bincount(pc[ok], minlength=nc).astype(np.int64)
        self.levels["level3"] += int(np.count_nonzero(ok | wrong))
        und = np.nonzero(~(ok | wrong))[0]
        # (b) the candidate's exact probabilities at the summed row's kept classes, per candidate
        kk = hw.shape[1]
        for j in np.unique(pj[und]).tolist():
            op = self.ops[j]
            sel = und[pj[und] == j]
            ej, sj, hj, yj = e[sel], se[sel], h[sel], y[sel]
            cand = np.concatenate([hw[hj], op.w[ej]], axis=1)  # (E, 2k)
            xt = self.hard_tot.reshape(-1)[hj[:, None] * self.c + cand]
            xc = np.empty(cand.shape, dtype=np.float64)
            xc[:, kk:] = op.v[ej]
            xc[:, :kk] = op.at(np.repeat(ej, kk), hw[hj].reshape(-1)).reshape(len(ej), kk)
            c3, w3 = _decide_level2(sj, yj, cand, xt, xc, ht[hj], op.t[ej].astype(np.float64), kdiv)
            self.levels["level3"] += int(np.count_nonzero(c3 | w3))
            hits = int(np.count_nonzero(c3))
            rest = np.nonzero(~(c3 | w3))[0]
            self.levels["full_row"] += len(rest)
            for s0 in range(0, len(rest), _ROWS_PER_BATCH):
                rr = rest[s0 : s0 + _ROWS_PER_BATCH]
                rows = self.hard_tot[hj[rr]] + op.rows(ej[rr])
                rows /= kdiv
                hits += int(np.count_nonzero(rows.argmax(axis=1) == yj[rr]))
            out[pc[sel[0]]] += hits
        return out


def _summarise_ops(make, names, n_jobs, progress, desc):
    if n_jobs and int(n_jobs) > 1 and len(names) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(int(n_jobs)) as pool:
            return list(_progress(pool.map(make, names), progress, total=len(names), desc=desc, unit="model"))
    return [make(m) for m in _progress(names, progress, desc=desc, unit="model")]


def _same_array(a: np.ndarray, b: np.ndarray) -> bool:
    if a is b:
        return True
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    fa, fb = getattr(a, "filename", None), getattr(b, "filename", None)
    if fa and fb and isinstance(a, np.memmap) and isinstance(b, np.memmap):
        import os

        try:
            return os.path.samefile(fa, fb) and a.offset == b.offset and a.base is not None
        except OSError:
            return False
    return bool(a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def _kept_summary(res, name: str, logits: np.ndarray, y: np.ndarray, temperature: float, k: int):
    """Model ``name``'s summary kept by an all-pairs result, if it is of these logits, labels,
    temperature and ``k``; else None."""
    kept = getattr(res, "_summaries", None)
    if kept is None or name not in res.names or kept["k"] != k:
        return None
    i = res.names.index(name)
    if kept["temps"][i] != temperature or not np.array_equal(kept["y"], y):
        return None
    if not _same_array(kept["logits"][i], logits):
        return None
    return {key: kept[key][i] for key in ("q", "v", "w", "t", "pred", "m", "s")}


def fast_greedy_selection(
    y_true,
    logits: Mapping[str, Any],
    base: str,
    steps: int,
    *,
    temperatures: Mapping[str, float] | None = None,
    candidates: Sequence[str] | None = None,
    eval_y_true=None,
    eval_logits: Mapping[str, Any] | None = None,
    replace: bool = False,
    k: int = 2,
    n_jobs: int = 1,
    progress: bool = False,
    device: str | None = None,
    eval_summaries: AllPairsResult | None = None,
):
    """Greedy ensemble selection from a base model (Sec. 4.5, Fig. 5), exactly as
    :func:`norep.ensembles.greedy_selection` but from logits, in about one softmax pass per model.

    Each model's calibrated probabilities are summarised once (one streaming softmax pass: the
    label's probability, the ``k`` largest wrong ones with their classes and a bound for the rest);
    every step and every candidate evaluation then works from those summaries (see
    ``_EnsembleState``): the ensemble's correctness on an example is decided from exact sums and
    bounds, and only the examples the summaries cannot decide are computed in full, from the logits,
    exactly as the reference does. The evaluation split is handled the same way.

    Parameters
    ----------
    y_true : array-like of shape (N,)
        Labels of the selection split.
    logits : mapping of str to (N, C) arrays
        Selection-split logits of the base and the candidates.
    base : str
        Name of the base model (a key of ``logits``).
    steps : int
        Candidates to add.
    temperatures : mapping of str to float, optional
        Fitted temperatures (default 1.0).
    candidates : sequence of str, optional
        Candidate names in tie-breaking order (default: every key of ``logits`` except ``base``).
    eval_y_true, eval_logits : optional
        Evaluation split labels and logits (mapping holding the base and every candidate).
    replace : bool, default False
        Allow re-adding a candidate.
    k : int, default 2
        Wrong classes kept per example in the summaries.
    n_jobs : int, default 1
        Threads for the per-model summary passes.
    progress : bool, default False
    device : str, optional
        ``None`` or ``"numpy"``: this numpy path; ``"cpu"``, ``"cuda"``, ...: the torch backend
        (:mod:`norep.engine.torch_backend`) on that device; ``"auto"``: CUDA when available, else
        numpy. Results are identical on every device.
    eval_summaries : AllPairsResult, optional
        A :func:`pairwise_analysis` result on the evaluation split (same logits, temperatures and
        ``k``): the per-model summaries it kept are reused instead of one pass per model (models
        it lacks, or holds with another temperature, are summarised here).

    Returns
    -------
    norep.ensembles.GreedyResult
        ``selected``, ``accuracies`` (selection split, index 0 = base alone), ``eval_accuracies``.

    Examples
    --------
    >>> import numpy as np
    >>> from norep.allpairs import fast_greedy_selection
    >>> y = np.array([0, 1, 2, 0])
    >>> lg = {"base": np.array([[3.0, 0, 0], [1, 0.8, 0], [1, 0, 0.6], [2, 0, 1]]),
    ...       "c1": np.array([[0.5, 0, 0], [0, 2, 0], [0.3, 0, 0], [0, 1, 0]]),
    ...       "c2": np.array([[0.3, 0, 0], [0, 0.2, 0], [0, 0, 2], [0, 0, 1]])}
    >>> res = fast_greedy_selection(y, lg, "base", 2)
    >>> res.selected, [round(a, 3) for a in res.accuracies]
    (['c1', 'c2'], [0.5, 0.75, 1.0])
    """
    from norep.ensembles import GreedyResult

    if not isinstance(logits, Mapping):
        raise ValueError("logits must be a mapping from model name to (N, C) logits")
    y0 = np.asarray(y_true)
    n0 = y0.shape[0] if y0.ndim == 1 else None
    if base not in logits:
        raise ValueError(f"base model {base!r} is not in logits")
    names = [m for m in logits if m != base] if candidates is None else [str(m) for m in candidates]
    for m in names:
        if m not in logits:
            raise ValueError(f"candidate {m!r} is not in logits")
        if m == base:
            raise ValueError(f"the base model {base!r} cannot be a candidate")
    if len(set(names)) != len(names):
        raise ValueError("candidates must be unique")
    temps = {m: _check_temperature((temperatures or {}).get(m, 1.0)) for m in [base, *names]}
    base_lg = _as_logits(logits[base], f"logits[{base!r}]", n0)
    n, c = base_lg.shape
    y = _check_labels(y0, n, c)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not replace and steps > len(names):
        raise ValueError(f"steps={steps} exceeds the number of candidates ({len(names)}); "
                         "pass replace=True to allow re-adding a candidate")
    if steps > 0 and not names:
        raise ValueError("there are no candidates")
    k = _check_k(k)
    has_eval = eval_y_true is not None or eval_logits is not None
    if has_eval:
        if eval_y_true is None or eval_logits is None:
            raise ValueError("eval_y_true and eval_logits must be given together")
        missing = [m for m in [base, *names] if m not in eval_logits]
        if missing:
            raise ValueError(f"eval_logits lacks {missing}")
    mats = {base: base_lg}
    for m in names:
        mats[m] = _as_logits(logits[m], f"logits[{m!r}]", n, c)
    ey = e_mats = None
    if has_eval:
        ey0 = np.asarray(eval_y_true)
        e_mats = {base: _as_logits(eval_logits[base], f"eval_logits[{base!r}]",
                                   ey0.shape[0] if ey0.ndim == 1 else None, c)}
        ey = _check_labels(ey0, e_mats[base].shape[0], c, name="eval_y_true")

    from norep.engine import resolve_device

    dev = resolve_device(device)
    if dev is not None:
        from norep.engine.torch_backend import greedy_selection_torch

        def eval_mat(m):
            if m not in e_mats:
                e_mats[m] = _as_logits(eval_logits[m], f"eval_logits[{m!r}]", len(ey), c)
            return e_mats[m]

        selected, counts, eval_hits, levels = greedy_selection_torch(
            y, [mats[base]] + [mats[m] for m in names], [temps[base]] + [temps[m] for m in names],
            steps, replace=replace, device=dev, progress=progress,
            eval_y=ey, eval_logits=(lambda i: eval_mat(base if i == 0 else names[i - 1])) if has_eval else None)
        result = GreedyResult(selected=[names[i - 1] for i in selected], accuracies=[float(h / n) for h in counts],
                              eval_accuracies=None if eval_hits is None else [float(h / len(ey)) for h in eval_hits])
        object.__setattr__(result, "levels", levels)
        return result

    def make_op(m):
        return _Operand(mats[m], y, temps[m], k)

    ops = [make_op(base)] + _summarise_ops(make_op, names, n_jobs, progress, "greedy: summarise candidates")
    state = _EnsembleState(ops, y, k)
    state.add(0)
    accuracies = [float(np.count_nonzero(ops[0].pred == y) / n)]
    selected: list[int] = []
    available = list(range(1, len(ops)))
    for _ in _progress(range(steps), progress, desc="greedy steps", unit="step"):
        counts = state.counts(available)
        best = int(np.argmax(counts))  # first best in candidate order
        j = available[best]
        state.add(j)
        selected.append(j)
        accuracies.append(float(counts[best] / n))
        if not replace:
            available.pop(best)
    levels = dict(state.levels)

    eval_accuracies = None
    if has_eval:
        order = [0] + selected
        distinct = list(dict.fromkeys(order))
        for i in distinct[1:]:
            m = names[i - 1]
            e_mats[m] = _as_logits(eval_logits[m], f"eval_logits[{m!r}]", len(ey), c)
        label = {i: (base if i == 0 else names[i - 1]) for i in distinct}
        e_ops = {}
        for i in distinct:
            r = _kept_summary(eval_summaries, label[i], e_mats[label[i]], ey, temps[label[i]], k)
            if r is not None:
                e_ops[i] = _Operand(e_mats[label[i]], ey, temps[label[i]], k, r)
        todo = [i for i in distinct if i not in e_ops]
        e_ops.update(zip(todo, _summarise_ops(lambda i: _Operand(e_mats[label[i]], ey, temps[label[i]], k),
                                              todo, n_jobs, progress, "greedy: evaluation split"), strict=True))
        e_state = _EnsembleState([e_ops.get(i) for i in range(len(ops))], ey, k)
        e_state.add(0)
        hits = [int(np.count_nonzero(e_ops[0].pred == ey))]
        for j in selected:
            hits.append(int(e_state.counts([j])[0]))
            e_state.add(j)
        eval_accuracies = [float(h / len(ey)) for h in hits]
        for key, val in e_state.levels.items():
            levels["eval_" + key] = val
    result = GreedyResult(selected=[names[i - 1] for i in selected], accuracies=accuracies,
                          eval_accuracies=eval_accuracies)
    object.__setattr__(result, "levels", levels)  # diagnostics: decisions taken at each level
    return result


def store_greedy_selection(store, *, base: str | None = None, steps: int = 10,
                           candidates: Sequence[str] | None = None, selection_split: str = "calib",
                           eval_split: str | None = "test", **kwargs):
    """:func:`fast_greedy_selection` on a :class:`norep.store.Store` (temperatures from its table).

    Parameters
    ----------
    store : norep.store.Store
    base : str, optional
        Default: ``store.base_model``.
    steps : int, default 10
    candidates : sequence of str, optional
        Default: every other model with logits on both splits.
    selection_split : str, default "calib"
    eval_split : str or None, default "test"
    **kwargs
        Passed on (``k``, ``replace``, ``progress``).

    Returns
    -------
    norep.ensembles.GreedyResult
    """
    base = base or store.base_model
    if base is None:
        raise ValueError("the store has no base_model; pass base=")
    splits = [selection_split] + ([eval_split] if eval_split else [])
    if candidates is None:
        candidates = [m for m in store.model_names()
                      if m != base and all(store.has_logits(m, s) for s in splits)]
    names = [base, *candidates]
    temps = {m: store.meta(m)["temperature"] for m in names}
    sel = {m: store.logits(m, selection_split) for m in names}
    kw = {}
    if eval_split:
        kw = {"eval_y_true": store.labels(eval_split),
              "eval_logits": {m: store.logits(m, eval_split) for m in names}}
    return fast_greedy_selection(store.labels(selection_split), sel, base, steps, temperatures=temps,
                                 candidates=list(candidates), **kw, **kwargs)
