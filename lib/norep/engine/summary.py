"""Per-model summaries of calibrated probabilities, and the exact decisions built on them.

For every example a summary keeps, from one softmax pass: the probability ``q`` of the true class,
the ``k`` largest wrong-class probabilities ``v_1 >= ... >= v_k`` with their classes ``w``, and ``t``,
the largest wrong-class probability outside those ``k`` (a bound for all the others). Two operands'
summaries decide most examples of their ensemble exactly (levels 1 and 2, see :mod:`norep.engine.pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from norep.engine._rows import (
    BLOCK_ELEMS,
    THREADED_BLOCK_ELEMS,
    RowReader,
    add_softmax_rows,
    gather_rows,
    preadable,
    softmax_checked,
)
from norep.measures._validation import as_logits, check_k, check_labels, check_temperature, compute_dtype
from norep.measures.calibration import _release_rows as release_rows

__all__ = ["CalibratedSummary", "calibrated_summary"]


def summarise(p: np.ndarray, y: np.ndarray, k: int):
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


def summarise_exp(e: np.ndarray, s: np.ndarray, y: np.ndarray, k: int, *, restore: bool = True):
    """:func:`summarise` of ``p = e / s`` from the unnormalised exponentials ``e`` (n, C) and
    their row sums ``s`` (n,), dividing only the selected entries (the same IEEE division the
    softmax performs, so the values are bit-identical). Division is monotone, so the order of
    ``e`` is the order of ``p`` up to ties it may create; those are resolved exactly: the
    prediction is the first class whose probability equals the maximum, and rows where a class
    outside the kept ones could reach it are computed in full.

    ``e`` (C-contiguous) is changed while the classes are picked and restored afterwards; with
    ``restore=False`` only the rows computed in full are restored (for a scratch block). Entries
    are addressed through flat indices, numpy's cheapest fancy indexing: a block's few dozen small
    operations hold the GIL, and threads summarising other blocks wait for it.
    """
    n, c = e.shape
    if not e.flags.c_contiguous:
        raise ValueError("summarise_exp needs a C-contiguous block")
    flat = e.reshape(-1)  # a view
    ke = min(k, c - 1)
    starts = np.arange(0, n * c, c, dtype=np.int64)
    iy = starts + y
    ey = flat[iy]
    flat[iy] = -1.0
    w = np.empty((n, k), dtype=np.int32)
    ev = np.empty((n, k), dtype=e.dtype)
    picked = np.empty((ke, n), dtype=np.int64)
    for j in range(ke):
        wj = e.argmax(axis=1)
        w[:, j] = wj
        np.add(starts, wj, out=picked[j])
        ev[:, j] = flat[picked[j]]
        flat[picked[j]] = -1.0
    if ke < k:
        w[:, ke:] = w[:, ke - 1 : ke]
        ev[:, ke:] = ev[:, ke - 1 : ke]
    et = e.max(axis=1)
    q = ey / s
    v = ev / s[:, None]
    t = np.where(et < 0, et, et / s)  # -1: no wrong class outside w
    pmax = np.maximum(q, v[:, 0])
    pred = np.where(q == pmax, y, c).astype(np.int32)
    for j in range(ke):
        hit = (v[:, j] == pmax) & (w[:, j] < pred)
        pred[hit] = w[hit, j]
    unsure = np.nonzero(t == pmax)[0]
    rows = slice(None) if restore else unsure
    if restore or len(unsure):
        for j in range(ke - 1, -1, -1):
            flat[picked[j, rows]] = ev[rows, j]
        flat[iy[rows]] = ey[rows]
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


def summary_pass(logits: np.ndarray, y: np.ndarray, temperature: float, k: int, out=None, *, threaded: bool = False):
    """Stream over row blocks: softmax then summarise. ``out``: dict of preallocated arrays;
    ``threaded``: other threads stream at the same time (larger blocks, see THREADED_BLOCK_ELEMS)."""
    n, c = logits.shape
    dt = compute_dtype(logits.dtype)
    step = max(1, (THREADED_BLOCK_ELEMS if threaded else BLOCK_ELEMS) // c)
    buf = np.empty((step, c), dtype=dt)
    res = (
        out
        if out is not None
        else {
            "q": np.empty(n, dt),
            "v": np.empty((n, k), dt),
            "w": np.empty((n, k), np.int32),
            "t": np.empty(n, dt),
            "pred": np.empty(n, np.int32),
            "conf": np.empty(n, dt),
            "m": np.empty(n, dt),
            "s": np.empty(n, dt),
        }
    )
    with RowReader(logits, dt, step) as reader:
        for a in range(0, n, step):
            b = min(n, a + step)
            z = buf[: b - a]
            reader.read(a, b, z)
            m, s = softmax_checked(z, temperature, normalize=False)
            q, v, w, t, pred, conf = summarise_exp(z, s[:, 0], y[a:b], k, restore=False)
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
    >>> from norep.engine.summary import calibrated_summary
    >>> s = calibrated_summary([0, 2], np.log([[0.5, 0.3, 0.2], [0.6, 0.1, 0.3]]), k=1)
    >>> s.pred.tolist(), s.q.round(2).tolist(), s.top_wrong[:, 0].tolist(), s.bound.round(2).tolist()
    ([0, 0], [0.5, 0.3], [1, 0], [0.2, 0.1])
    """
    y0 = np.asarray(y_true)
    logits = as_logits(logits, "logits", y0.shape[0] if y0.ndim == 1 else None)
    y = check_labels(y0, logits.shape[0], logits.shape[1])
    t = check_temperature(temperature)
    k = check_k(k)
    r = summary_pass(logits, y, t, k)
    return CalibratedSummary(t, r["pred"], r["conf"], r["q"], r["w"], r["v"], r["t"], r["m"], r["s"], r["pred"] == y)


# --------------------------------------------------------------------------------------------------
# exact decisions for two operands


def decide_level1(qx, v0x, qy, v0y, kdiv: float):
    """Vectorised level 1. Returns (correct, wrong, s) with s the (divided) label score."""
    s = qx + qy
    s /= kdiv
    upper = v0x + v0y
    upper /= kdiv
    lower = np.maximum(v0x, v0y)
    lower /= kdiv
    return s > upper, lower > s, s


def decide_level2(s, y, cand, x_at, y_at, tx, ty, kdiv: float):
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


class Operand:
    """One model on one split: its calibrated summary, logits and temperature.

    The summary is computed once (one streaming softmax pass) and reused by every step and every
    candidate evaluation of a greedy selection; exact probabilities of single entries or rows are
    recomputed from the logits on demand, bit-identically.
    """

    _FIELDS = ("q", "v", "w", "t", "pred", "m", "s", "tplus")

    def __init__(
        self, logits: np.ndarray, y: np.ndarray, temperature: float, k: int, r: dict | None = None, threaded=False
    ):
        self.logits = logits
        self.temperature = temperature
        self.dtype = compute_dtype(logits.dtype)
        self.offset = 0  # row of the logits where this operand's examples start (see part())
        if r is None:
            r = summary_pass(logits, y, temperature, k, threaded=threaded)
        self.q, self.v, self.w, self.t, self.pred = r["q"], r["v"], r["w"], r["t"], r["pred"]
        self.m, self.s = r["m"], r["s"]
        self.tplus = np.maximum(self.t, 0).astype(np.float64)  # bound of every other wrong class

    def part(self, a: int, b: int) -> Operand:
        """The same model on examples ``[a, b)`` only: views of the summary, rows numbered from 0."""
        op = object.__new__(Operand)
        op.logits, op.temperature, op.dtype = self.logits, self.temperature, self.dtype
        op.offset = self.offset + a
        for key in self._FIELDS:
            setattr(op, key, getattr(self, key)[a:b])
        return op

    def at(self, rows, cols) -> np.ndarray:
        """Exact calibrated probabilities at (rows, cols) (see CalibratedSummary.probs_at)."""
        dt = self.dtype
        rows = np.asarray(rows, dtype=np.int64)
        cols = np.asarray(cols, dtype=np.int64)
        if preadable(self.logits):
            uniq, inv = np.unique(rows, return_inverse=True)
            z = gather_rows(self.logits, uniq + self.offset)[inv.reshape(-1), cols].astype(dt)
        else:
            z = np.asarray(self.logits[rows + self.offset, cols], dtype=dt)
            release_rows(self.logits, 0, self.n)
        t = dt(self.temperature)
        if t != 1:
            z = z / t
        z = z - self.m[rows]
        np.exp(z, out=z)
        return z / self.s[rows]

    @property
    def n(self) -> int:
        return self.logits.shape[0]

    def add_rows(self, rows, dst: np.ndarray) -> None:
        """``dst +=`` the exact calibrated probabilities of ``rows`` (numbered as this operand's
        examples), block by block (no large temporary)."""
        rows = np.asarray(rows, dtype=np.int64) + self.offset
        add_softmax_rows(self.logits, rows, self.temperature, self.dtype, dst)


def lookup(w: np.ndarray, v: np.ndarray, classes: np.ndarray):
    """Where ``classes`` (n, J) is among the kept classes ``w`` (n, k): (known (n, J), value (n, J))."""
    known = np.zeros(classes.shape, dtype=bool)
    val = np.zeros(classes.shape)
    for i in range(w.shape[1] - 1, -1, -1):  # duplicates in w carry equal values
        hit = classes == w[:, i : i + 1]
        known |= hit
        np.copyto(val, v[:, i : i + 1], where=hit, casting="unsafe")
    return known, val
