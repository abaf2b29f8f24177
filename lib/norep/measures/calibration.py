"""Temperature scaling and calibration measures (paper Sec. 3.2).

The paper calibrates every model before comparing or ensembling it: logits are divided by a
temperature ``T`` fitted by minimising the negative log-likelihood (NLL) on a calibration split that
is disjoint from the evaluation split, and probabilities are ``softmax(logits / T)``.

Exact float32 definition
------------------------
For float16 and float32 logits, :func:`softmax` computes in float32, row by row, in exactly this
order (the fast engine :mod:`norep.engine` relies on reproducing these bits)::

    z = float32(logits) / float32(T)
    z = z - max(z, axis=-1)
    e = exp(z)
    p = e / sum(e, axis=-1)          # numpy's (pairwise) float32 row sum

float64 logits are computed in float64 with the same steps.

Fitting the temperature
-----------------------
With ``b = 1 / T`` the NLL ``L(b) = mean_i [logsumexp(b z_i) - b z_{i, y_i}]`` is convex in ``b``, with
``L'(b) = mean_i (E_{p_i}[z] - z_{i, y_i})`` and ``L''(b) = mean_i Var_{p_i}[z]``. :func:`fit_temperature`
runs a safeguarded (bracketed) Newton iteration on ``L'`` over a strided subsample to get close (about
1 %), then one pass over all rows gives ``L'`` and its next four derivatives there (``L^(k)`` is the
mean of the ``k``-th cumulant of ``z`` under ``p_i``), and the root of that Taylor polynomial is the
answer when the first term it leaves out is below a quarter of the tolerance; otherwise Newton goes
on over all rows from that root. Every pass streams over row blocks of the (possibly memory-mapped,
float16) logits, so memory stays at a few blocks; a bounded Brent search in ``log T`` is the
fallback. It works from ``T`` of about 1e-3 (CLIP zero-shot cosine logits, ``T`` about 0.01) to
about 1e3.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable

import numpy as np

from norep.measures._validation import (
    check_fit_inputs,
    check_labels,
    check_logits,
    check_prob_matrix,
    check_temperature,
    compute_dtype,
)

__all__ = [
    "softmax",
    "log_softmax",
    "fit_temperature",
    "expected_calibration_error",
    "negative_log_likelihood",
]

_BLOCK_ELEMS = 1 << 18  # elements per row block (1 MB of float32: fits in L2, amortises numpy calls)


def _row_blocks(n_rows: int, n_cols: int, block_elems: int = _BLOCK_ELEMS):
    step = max(1, block_elems // max(1, n_cols))
    for start in range(0, n_rows, step):
        yield start, min(n_rows, start + step)


# --------------------------------------------------------------------------------------------------
# softmax


def _softmax_inplace(z: np.ndarray, temperature: float, *, stats: bool = False, normalize: bool = True):
    """Softmax of the last axis of the C-contiguous float array ``z``, in place (exact reference order).

    With ``stats=True`` also return the row max ``m`` of ``z / T`` and the row sum ``s`` of
    ``exp(z / T - m)`` (keepdims), from which any single probability is recomputed bit-exactly as
    ``exp(z / T - m) / s`` (numpy's float exp is elementwise, so its result does not depend on
    the surrounding array). With ``normalize=False`` ``z`` is left holding ``exp(z / T - m)``:
    the probabilities are then exactly ``z / s``, computed where needed.
    """
    t = z.dtype.type(temperature)
    if t != 1:
        np.divide(z, t, out=z)
    m = z.max(axis=-1, keepdims=True)
    z -= m
    np.exp(z, out=z)
    s = z.sum(axis=-1, keepdims=True)
    if normalize:
        z /= s
    return (z, m, s) if stats else z


def softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Temperature-scaled softmax over the last axis, ``softmax(logits / T)`` (paper Sec. 3.2).

    Parameters
    ----------
    logits : array-like of shape (..., n_classes)
        Raw scores; float16 and float32 are computed in float32, float64 in float64.
    temperature : float, default 1.0
        ``T > 0``; ``T > 1`` softens, ``T < 1`` sharpens.

    Returns
    -------
    ndarray of the same shape, float32 (float64 for float64 input)
        Rows sum to 1. The exact operation order is given in the module docstring.

    Examples
    --------
    >>> from norep.measures.calibration import softmax
    >>> softmax([[0.0, 0.0], [2.0, 0.0]]).round(3)
    array([[0.5  , 0.5  ],
           [0.881, 0.119]])
    >>> softmax([[2.0, 0.0]], temperature=2.0).round(3)
    array([[0.731, 0.269]])
    """
    logits = check_logits(logits, ndim=None)
    t = check_temperature(temperature)
    dt = compute_dtype(logits.dtype)
    if logits.ndim == 1:
        return _softmax_inplace(np.array(logits, dtype=dt), t)
    flat = logits.reshape(-1, logits.shape[-1])
    out = np.empty(flat.shape, dtype=dt)
    for a, b in _row_blocks(flat.shape[0], flat.shape[1]):
        blk = out[a:b]
        blk[...] = flat[a:b]
        _softmax_inplace(blk, t)
    return out.reshape(logits.shape)


def log_softmax(logits, temperature: float = 1.0) -> np.ndarray:
    """Log of :func:`softmax`, computed stably as ``z - max(z) - log(sum(exp(z - max(z))))``, ``z = logits / T``.

    Parameters
    ----------
    logits : array-like of shape (..., n_classes)
    temperature : float, default 1.0

    Returns
    -------
    ndarray of the same shape, float32 (float64 for float64 input)

    Examples
    --------
    >>> import numpy as np
    >>> from norep.measures.calibration import log_softmax
    >>> np.exp(log_softmax([[1.0, 1.0, 1.0, 1.0]]))
    array([[0.25, 0.25, 0.25, 0.25]])
    >>> log_softmax([[1000.0, 0.0]]).round(3)   # no overflow
    array([[    0., -1000.]])
    """
    logits = check_logits(logits, ndim=None)
    t = check_temperature(temperature)
    dt = compute_dtype(logits.dtype)
    z = np.array(logits, dtype=dt)
    z /= dt(t)
    z -= z.max(axis=-1, keepdims=True)
    z -= np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return z


# --------------------------------------------------------------------------------------------------
# temperature fitting


_TORCH_COPY = None


def _copy_rows(dst: np.ndarray, src: np.ndarray) -> None:
    """``dst[...] = src`` (float16 -> float32 through torch's vectorised conversion when available)."""
    global _TORCH_COPY
    if src.dtype == np.float16 and dst.dtype == np.float32 and src.flags.c_contiguous:
        if _TORCH_COPY is None:
            try:
                import torch

                _TORCH_COPY = torch.from_numpy
            except ImportError:  # pragma: no cover
                _TORCH_COPY = False
        if _TORCH_COPY:
            import warnings

            from_numpy = _TORCH_COPY
            # one call per block: every call takes and releases the GIL, and threads converting
            # their own blocks queue on it (see torch_one_thread for the threads' own pools)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # torch warns on read-only memory maps
                from_numpy(dst).copy_(from_numpy(np.asarray(src)))
            return
    dst[...] = src


@contextlib.contextmanager
def torch_one_thread(active: bool = True):
    """Torch converts each block on the calling thread only, restored afterwards.

    Between two block conversions a streaming pass runs a dozen numpy operations, long enough for
    torch's intra-op pool to fall asleep: waking it costs more than the conversion gains (a 262 x
    1,000 float16 block: about 150 us with the pool of 2 threads in a streaming pass, 66 us on the
    calling thread), and threads of our own converting at once would queue on that pool. Does
    nothing unless ``active`` and torch is already imported."""
    torch = sys.modules.get("torch") if active else None
    if torch is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


_MADVISE = None


def _release_rows(arr: np.ndarray, start: int, stop: int) -> None:
    """Drop rows ``[start, stop)`` of a read-only memory map from this process's resident set.

    Streaming over a memory-mapped file would otherwise leave every page read mapped (and
    counted in RSS) until the map is closed. ``madvise(MADV_DONTNEED)`` on a read-only file
    mapping only unmaps the pages (the OS page cache keeps them; a later access faults them back
    in), so it never loses data; it is applied to nothing else. No-op where unavailable.
    """
    global _MADVISE
    if not isinstance(arr, np.memmap) or arr.flags.writeable or not arr.flags.c_contiguous:
        return
    if _MADVISE is None:
        try:
            import ctypes
            import mmap

            libc = ctypes.CDLL(None, use_errno=True)
            libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            _MADVISE = (libc.madvise, mmap.MADV_DONTNEED, mmap.PAGESIZE)
        except (OSError, AttributeError):  # pragma: no cover - non-Linux
            _MADVISE = False
    if not _MADVISE:
        return
    madvise, flag, page = _MADVISE
    row = arr.strides[0] if arr.ndim > 1 else arr.itemsize
    base = arr.ctypes.data
    lo = base + start * row
    hi = base + stop * row
    lo -= lo % page
    hi = hi - hi % page  # the page holding the next row is kept
    if hi > lo:
        madvise(lo, hi - lo, flag)


def _rowdot(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise dot products of two (m, c) arrays (batched BLAS): into ``out`` (m,) of their
    dtype when given, else as a float64 (m,) array."""
    if out is not None:
        np.matmul(a[:, None, :], b[:, :, None], out=out[:, None, None])
        return out
    return np.matmul(a[:, None, :], b[:, :, None])[:, 0, 0].astype(np.float64)


def _exp_blocks(logits: np.ndarray, y: np.ndarray, beta: float, zmax: np.ndarray, zy: np.ndarray):
    """Row blocks of a temperature pass: yield ``(a, b, z, e, w)`` with ``z`` the rows ``[a, b)``
    shifted by their max (filled into ``zmax``), ``e = exp(beta * z)`` and ``w`` a scratch block of
    the same shape; the shifted label logits go into ``zy``. Reused 1 MB buffers (float32 for
    float16/float32 logits); a memory map's rows are released after each block."""
    n, c = logits.shape
    dt = compute_dtype(logits.dtype)
    step = max(1, _BLOCK_ELEMS // c)
    buf, ebuf, wbuf = (np.empty((step, c), dtype=dt) for _ in range(3))
    starts = np.arange(0, step * c, c, dtype=np.int64)
    for a in range(0, n, step):
        b_ = min(n, a + step)
        m = b_ - a
        z, e = buf[:m], ebuf[:m]
        _copy_rows(z, logits[a:b_])
        np.max(z, axis=1, out=zmax[a:b_])
        if not np.isfinite(zmax[a:b_]).all():
            raise ValueError("logits contain NaN or Inf")
        z -= zmax[a:b_, None]  # z <= 0, max exactly 0
        np.take(z.reshape(-1), starts[:m] + y[a:b_], out=zy[a:b_])
        np.multiply(z, dt(float(beta)), out=e)
        np.exp(e, out=e)
        yield a, b_, z, e, wbuf[:m]
        _release_rows(logits, a, b_)


def _moment_pass(logits: np.ndarray, y: np.ndarray, beta: float, *, need_nll: bool = False, third: bool = True):
    """One streaming pass at inverse temperature ``beta``: first three derivatives of ``L`` and ``L``.

    ``L`` is the mean NLL of ``softmax(beta * logits)``; its derivatives in ``beta`` are the means
    over rows of ``E_p[z] - z_y``, ``Var_p[z]`` and the third central moment of ``z`` under ``p``.
    Rows are read in blocks, converted to float32 (float64 input stays float64) and shifted by their
    max; per-row sums come from BLAS products into whole-split arrays, and the means are taken once
    in float64 after the pass (few small operations per block: threads fitting other models wait on
    the GIL less). ``L`` is NaN unless ``need_nll``, the third derivative NaN unless ``third``.
    """
    n, c = logits.shape
    dt = compute_dtype(logits.dtype)
    ones = np.ones(c, dtype=dt)
    # per row: max, label logit (shifted), sum of e, of e z, of e z^2 (and of e z^3)
    zmax, zy, s0, s1, s2 = (np.empty(n, dtype=dt) for _ in range(5))
    s3 = np.empty(n, dtype=dt) if third else None
    for a, b_, z, e, w in _exp_blocks(logits, y, beta, zmax, zy):
        np.matmul(e, ones, out=s0[a:b_])
        np.multiply(e, z, out=w)  # e * z
        np.matmul(w, ones, out=s1[a:b_])
        _rowdot(w, z, out=s2[a:b_])
        if third:
            w *= z
            _rowdot(w, z, out=s3[a:b_])
    f0 = s0.astype(np.float64)
    m1 = s1.astype(np.float64) / f0
    m2 = s2.astype(np.float64) / f0
    zy64 = zy.astype(np.float64)
    out = np.full(4, np.nan)
    out[0] = np.sum(m1 - zy64) / n
    out[1] = np.sum(np.maximum(m2 - m1 * m1, 0.0)) / n
    if third:
        m3 = s3.astype(np.float64) / f0
        out[2] = np.sum(m3 - 3.0 * m1 * m2 + 2.0 * m1**3) / n
    if need_nll:
        out[3] = np.sum(np.log(f0) - beta * zy64) / n
    return tuple(float(v) for v in out)


def _central_pass(logits: np.ndarray, y: np.ndarray, beta: float) -> tuple[float, ...]:
    """One streaming pass at inverse temperature ``beta``: the first five derivatives of ``L``.

    ``L`` is the mean NLL of ``softmax(beta * logits)``; its first derivative in ``beta`` is the
    mean over rows of ``E_p[z] - z_y``, its ``k``-th (``k >= 2``) the mean of the ``k``-th cumulant of
    ``z`` under ``p`` (variance, third central moment, ``m4 - 3 m2^2``, ``m5 - 10 m3 m2``). Each row is
    centred on its mean under ``p`` before the powers are summed (float32 sums of powers of
    uncentred logits lose the higher cumulants to cancellation); the centre is the float32 mean, and
    the exact float64 mean's small offset from it is corrected for afterwards.
    """
    n, c = logits.shape
    dt = compute_dtype(logits.dtype)
    ones = np.ones(c, dtype=dt)
    # per row: max, label logit (shifted), sum of e, of e z, the centre; sums of e (z - centre)^k
    zmax, zy, s0, s1, ctr = (np.empty(n, dtype=dt) for _ in range(5))
    rho = np.empty((4, n), dtype=dt)  # k = 2, 3, 4, 5
    for a, b_, z, e, w in _exp_blocks(logits, y, beta, zmax, zy):
        np.matmul(e, ones, out=s0[a:b_])
        _rowdot(e, z, out=s1[a:b_])
        np.divide(s1[a:b_], s0[a:b_], out=ctr[a:b_])
        z -= ctr[a:b_, None]  # centred
        np.multiply(e, z, out=w)
        w *= z  # e z^2
        np.matmul(w, ones, out=rho[0, a:b_])
        _rowdot(w, z, out=rho[1, a:b_])
        w *= z
        w *= z  # e z^4
        np.matmul(w, ones, out=rho[2, a:b_])
        _rowdot(w, z, out=rho[3, a:b_])
    f0 = s0.astype(np.float64)
    mu = s1.astype(np.float64) / f0
    d = mu - ctr  # the exact mean's offset from the centre (first moment about the centre)
    r2, r3, r4, r5 = rho.astype(np.float64) / f0
    m2 = r2 - d**2
    m3 = r3 - 3 * d * r2 + 2 * d**3
    m4 = r4 - 4 * d * r3 + 6 * d**2 * r2 - 3 * d**4
    m5 = r5 - 5 * d * r4 + 10 * d**2 * r3 - 10 * d**3 * r2 + 4 * d**5
    out = (
        np.sum(mu - zy.astype(np.float64)) / n,
        np.sum(np.maximum(m2, 0.0)) / n,
        np.sum(m3) / n,
        np.sum(m4 - 3.0 * m2 * m2) / n,
        np.sum(m5 - 10.0 * m3 * m2) / n,
    )
    return tuple(float(v) for v in out)


def _taylor_root(derivs: tuple[float, ...], beta0: float):
    """Root of ``L'`` near ``beta0`` from its Taylor polynomial there (``derivs`` = ``L'``, ``L''``,
    ... at ``beta0``, as :func:`_central_pass` returns them).

    Returns ``(beta, err)``: the polynomial's root next to the Newton step and an estimate of its
    distance from the true root (the last term's share of the root, times the ratio of the last two
    terms: the size of the first term left out); ``None`` where the polynomial is no guide (``L''``
    not positive, no converging root within 10 % of ``beta0``, or terms that do not decrease).
    """
    g, h = derivs[0], derivs[1]
    if not (h > 0 and math.isfinite(g) and all(math.isfinite(v) for v in derivs)):
        return None
    coef = [v / math.factorial(i) for i, v in enumerate(derivs)]  # P(d) = sum coef[i] d^i
    deg = len(coef) - 1
    d = -g / h
    for _ in range(50):
        p = sum(cf * d**i for i, cf in enumerate(coef))
        dp = sum(i * coef[i] * d ** (i - 1) for i in range(1, deg + 1))
        if not (dp > 0) or abs(d) > 0.1 * beta0:
            return None
        nxt = d - p / dp
        if abs(nxt - d) <= 1e-15 * beta0:
            d = nxt
            break
        d = nxt
    else:
        return None
    dp = sum(i * coef[i] * d ** (i - 1) for i in range(1, deg + 1))
    if not (dp > 0) or abs(d) > 0.1 * beta0:
        return None
    last = abs(coef[deg] * d**deg) / dp
    prev = abs(coef[deg - 1] * d ** (deg - 1)) / dp
    if last > prev:  # not converging at this distance
        return None
    err = last * (last / prev) if prev > 0 else 0.0
    return beta0 + d, err


def _nll_at(logits: np.ndarray, y: np.ndarray, temperature: float) -> float:
    """Mean NLL of ``softmax(logits / T)`` in float64 (streaming)."""
    n, c = logits.shape
    total = 0.0
    for a, b in _row_blocks(n, c):
        z = np.asarray(logits[a:b], dtype=np.float64) / temperature
        z -= z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z).sum(axis=1))
        total += float(np.sum(lse - z[np.arange(b - a), y[a:b]]))
    return total / n


def _newton_beta(derivs: Callable, beta0: float, lo: float, hi: float, *, rtol: float, max_iter: int):
    """Safeguarded Newton for the root of the increasing ``L'`` within [lo, hi].

    ``derivs(beta) -> (L', L'', L''')``. Stops once the error left after a Newton step ``s``,
    predicted as ``|L''' / (2 L'')| s**2`` (quadratic convergence), or the step itself, is below
    ``rtol * beta``. A step leaving the bracket is replaced by a geometric expansion (while one side
    of the root is unseen; also after 6 steps without a sign change, for exponentially flat tails)
    or a bisection in ``log beta``. Returns ``(beta, converged, n_evals)``;
    ``beta`` is ``lo`` or ``hi`` when the root lies beyond them.
    """
    beta = min(max(beta0, lo), hi)
    seen_lo = seen_hi = False
    for it in range(1, max_iter + 1):
        g, h, k3 = derivs(beta)
        if g == 0.0:
            # an exact root, or (h == 0) every row's probability sits on its top logit, the label
            # included: the NLL keeps decreasing (numerically flat) towards T -> 0
            return (beta if h > 0 else hi), True, it
        if g < 0:
            lo, seen_lo = beta, True
        else:
            hi, seen_hi = beta, True
        step = -g / h if h > 0 else math.inf
        # Newton in log(beta) when L is convex there too: same root, better behaved far from it
        # (a start 4x off converges in a few steps instead of crawling)
        du_den = g + beta * h
        if h > 0 and du_den > 0 and abs(g / du_den) < 2.0:
            step = beta * math.expm1(-g / du_den)
        new = beta + step
        # Newton crawls along an exponentially flat tail (root beyond a bound): expand geometrically
        crawling = it > 6 and not (seen_lo and seen_hi)
        if crawling or not math.isfinite(new) or not (lo < new < hi):
            if not seen_hi:
                new = min(hi, beta * 4.0)
            elif not seen_lo:
                new = max(lo, beta / 4.0)
            else:
                new = math.sqrt(lo * hi)
            if new == beta:  # the root is beyond a bound
                return beta, True, it
        else:
            predicted = abs(k3) / (2.0 * h) * step * step
            if abs(step) <= rtol * beta or predicted <= rtol * beta:
                return new, True, it
        beta = new
        if hi / lo - 1.0 <= rtol:
            return math.sqrt(lo * hi), True, it
    return beta, False, max_iter


def fit_temperature(
    logits,
    y_true,
    *,
    bounds: tuple[float, float] = (1e-3, 1e3),
    rtol: float = 1e-7,
    max_iter: int = 50,
    subsample: int = 8192,
) -> float:
    """Temperature ``T`` minimising the NLL of ``softmax(logits / T)`` on ``y_true`` (paper Sec. 3.2).

    Fit it on a calibration split disjoint from the evaluation split. The NLL is convex in ``1 / T``;
    a safeguarded Newton iteration on its exact derivative (``mean(E_p[z] - z_y)`` in ``1 / T``) first
    runs on a strided subsample of ``subsample`` rows; one pass over all rows then gives five
    derivatives, and the root of their Taylor polynomial ends the fit unless its truncation error
    could exceed ``rtol / 4`` (then Newton goes on over all rows). Passes stream over row blocks, so
    float16 or memory-mapped logits of 50,000 x 1,000 need only a few MB extra; a bounded Brent search
    in ``log T`` is the fallback.

    Parameters
    ----------
    logits : array-like of shape (n_samples, n_classes)
        Raw logits (float16/float32 are computed in float32, float64 in float64; memory maps welcome).
    y_true : array-like of shape (n_samples,)
        Integer class ids.
    bounds : (float, float), default (1e-3, 1e3)
        Search interval for ``T``; the result is clipped to it (e.g. a model that is right on every
        example with a margin has its NLL decreasing all the way to ``T -> 0``).
    rtol : float, default 1e-7
        Relative tolerance on ``1 / T``.
    max_iter : int, default 50
        Newton iterations per stage before falling back to Brent.
    subsample : int, default 8192
        Rows of the first stage (at most a quarter of the rows; 0 disables it).

    Returns
    -------
    float
        The fitted temperature.

    Examples
    --------
    >>> import numpy as np
    >>> from norep.measures.calibration import fit_temperature
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 10, size=2000)
    >>> logits = rng.normal(size=(2000, 10)) + 2.0 * np.eye(10)[y]   # Bayes posterior at T = 1/2
    >>> round(fit_temperature(logits, y), 1)
    0.5
    >>> round(fit_temperature(logits * 0.01, y), 3)                   # cosine-like scale
    0.005
    """
    logits, y, (t_lo, t_hi) = check_fit_inputs(logits, y_true, bounds)
    n, c = logits.shape
    if c == 1:
        return 1.0
    b_lo, b_hi = 1.0 / t_hi, 1.0 / t_lo

    # starting point: 1 / (typical spread of a row's logits) on a strided subsample, refined by
    # Newton on that subsample (cheap), so that the full passes start within a few percent
    n_sub = min(int(subsample), n // 4) if subsample else 0
    idx = np.linspace(0, n - 1, max(n_sub, min(n, 256))).astype(np.int64)
    sub_logits = np.asarray(logits[idx])  # stored dtype: each pass converts its blocks
    sub_y = y[idx]
    few = sub_logits[:: max(1, len(idx) // 256)]
    spread = float(np.mean(np.asarray(few, dtype=compute_dtype(logits.dtype)).std(axis=1)))
    beta0 = min(max(1.0 / spread if spread > 0 and math.isfinite(spread) else 1.0, b_lo), b_hi)
    k3 = None
    if n_sub >= 256:
        last = []
        # Newton first on every 8th subsample row to 1 %, then on the subsample to 0.1 %
        for stride, tol in ((8, 1e-2), (1, 1e-3)):
            if stride > 1 and n_sub < 256 * stride:
                continue

            rows, labels = np.ascontiguousarray(sub_logits[::stride]), sub_y[::stride]

            def sub_derivs(b, rows=rows, labels=labels):
                last[:] = _moment_pass(rows, labels, b)[:3]
                return tuple(last)

            beta0, _, _ = _newton_beta(sub_derivs, beta0, b_lo, b_hi, rtol=max(rtol, tol), max_iter=max_iter)
            beta0 = float(beta0)
        k3 = last[2] if last and math.isfinite(last[2]) else None

    if k3 is not None and b_lo < beta0 < b_hi:
        # one full pass: L' and four more derivatives at the subsample's root, and the root of their
        # Taylor polynomial; from a start within about 1 % (what the subsample gives) the polynomial's
        # root is as close to L''s as float32 sums allow, and the fit ends after this single pass
        root = _taylor_root(_central_pass(logits, y, beta0), beta0)
        if root is not None:
            beta1, err = root
            if b_lo < beta1 < b_hi:
                if err <= 0.25 * rtol * beta1:
                    return float(min(max(1.0 / beta1, t_lo), t_hi))
                beta0 = beta1  # a better start for the Newton passes below

    if k3 is None:

        def derivs(b):
            return _moment_pass(logits, y, b)[:3]
    else:  # the third derivative only scales the stopping rule: the subsample's value suffices

        def derivs(b):
            return (*_moment_pass(logits, y, b, third=False)[:2], k3)

    beta, ok, _ = _newton_beta(derivs, beta0, b_lo, b_hi, rtol=rtol, max_iter=max_iter)
    if not ok:  # pragma: no cover - Newton with bisection safeguard converges in practice
        from scipy.optimize import minimize_scalar

        res = minimize_scalar(
            lambda u: _nll_at(logits, y, math.exp(u)),
            bounds=(math.log(t_lo), math.log(t_hi)),
            method="bounded",
            options={"xatol": 1e-10},
        )
        return float(math.exp(res.x))
    return float(min(max(1.0 / beta, t_lo), t_hi))


# --------------------------------------------------------------------------------------------------
# calibration measures


def negative_log_likelihood(y_true, probs) -> float:
    """Mean negative log-likelihood ``-mean(log p[i, y_i])`` (lower is better; paper Sec. 3.2).

    Probabilities are clipped below at the machine epsilon of their dtype, as
    ``sklearn.metrics.log_loss`` does, so a zero probability gives a large finite loss.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Integer class ids.
    probs : array-like of shape (n_samples, n_classes)
        Predicted probabilities (rows summing to 1).

    Returns
    -------
    float

    Examples
    --------
    >>> from norep.measures.calibration import negative_log_likelihood
    >>> round(negative_log_likelihood([0, 1], [[0.5, 0.5], [0.2, 0.8]]), 4)
    0.4581
    """
    y0 = np.asarray(y_true)
    p = check_prob_matrix(probs, y0.shape[0] if y0.ndim == 1 else None)
    y = check_labels(y0, p.shape[0], p.shape[1])
    py = p[np.arange(p.shape[0]), y].astype(np.float64)
    eps = np.finfo(p.dtype).eps
    return float(-np.mean(np.log(np.clip(py, eps, 1.0))))


def expected_calibration_error(y_true, probs, *, n_bins: int = 15) -> float:
    """Expected calibration error of the top-1 prediction (Guo et al. 2017; paper Sec. 3.2).

    Confidences ``max_c p[i, c]`` are put in ``n_bins`` equal-width bins ``(k/n, (k+1)/n]`` (the
    first bin also holds 0); ECE ``= sum_b (n_b / N) |accuracy_b - mean confidence_b|``. The
    prediction is the first class of maximal probability (``numpy.argmax``).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Integer class ids.
    probs : array-like of shape (n_samples, n_classes)
        Predicted probabilities.
    n_bins : int, default 15

    Returns
    -------
    float
        In [0, 1]; 0 is perfectly calibrated.

    Examples
    --------
    >>> from norep.measures.calibration import expected_calibration_error
    >>> probs = [[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.3, 0.7]]
    >>> y = [0, 1, 0, 1]
    >>> round(expected_calibration_error(y, probs, n_bins=10), 3)   # bins: 0.9 -> acc 0.5; 0.6, 0.7 -> acc 1
    0.375
    """
    y0 = np.asarray(y_true)
    p = check_prob_matrix(probs, y0.shape[0] if y0.ndim == 1 else None)
    y = check_labels(y0, p.shape[0], p.shape[1])
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    n_bins = int(n_bins)
    if p.shape[0] == 0:
        raise ValueError("probs has no rows")
    conf = p.max(axis=1).astype(np.float64)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    # bin k holds (edges[k], edges[k+1]]; confidence 0 goes to bin 0
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    sum_conf = np.bincount(bins, weights=conf, minlength=n_bins)
    sum_acc = np.bincount(bins, weights=correct, minlength=n_bins)
    return float(np.sum(np.abs(sum_acc - sum_conf)) / p.shape[0])
