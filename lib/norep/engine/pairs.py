"""Exact, fast all-pairs analyses for paper-scale stores (paper Secs. 4.1-4.3).

The paper compares 82 ImageNet models mostly in pairs with one base model; the full all-pairs
picture (3,321 pairs of 50,000 x 1,000 calibrated probability matrices) done plainly (average two
matrices, take the argmax, per pair) costs minutes and tens of GB. This module computes the same
numbers in seconds, streaming over examples, and **exactly**: every count equals the plain
computation's, bit for bit, including ties.

The reference it reproduces
---------------------------
* calibrated probabilities ``p_m = norep.measures.calibration.softmax(logits_m, T_m)`` (float32 for float16
  and float32 logits, with the exact operation order documented there);
* a member's prediction is the first maximal class of ``p_m`` (``numpy.argmax``);
* an ensemble of ``K`` members scores class ``c`` by ``((0 + p_1[c]) + ... + p_K[c]) / K`` in float64,
  members added in order, and predicts the first maximal class. This is exactly
  :func:`norep.measures.ensembles.ensemble_accuracy`, :func:`norep.measures.ensembles.pairwise_ensemble_accuracy`,
  :func:`norep.measures.ensembles.pairwise_conversion_rate` and :func:`norep.measures.ensembles.greedy_selection`;
  outcome fractions are those of :func:`norep.measures.metrics.pairwise_outcomes` and theta histograms those
  of :func:`norep.measures.specialization.theta_histogram`.

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

Greedy selection (Sec. 4.5) uses the same per-model summaries (:mod:`norep.engine.greedy`). Logits
are read by :mod:`norep.engine._rows` (``preadv`` into reused buffers: no page of a memory-mapped
store file is mapped). The same analyses run on a torch device (``device=``,
:mod:`norep.engine.torch_backend`).

Examples
--------
>>> import numpy as np
>>> from norep.engine.pairs import pairwise_analysis
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

from collections.abc import Sequence

import numpy as np

from norep.engine._rows import (
    BLOCK_ELEMS,
    ROWS_PER_BATCH,
    THREADED_BLOCK_ELEMS,
    RowReader,
    progress_bar,
    softmax_checked,
)
from norep.engine.result import AllPairsResult
from norep.engine.summary import decide_level1, decide_level2, summarise_exp
from norep.measures._validation import (
    as_logits,
    check_k,
    check_labels,
    check_temperature,
    check_theta_bins,
    compute_dtype,
)
from norep.measures.calibration import torch_one_thread

__all__ = ["AllPairsResult", "pairwise_analysis", "store_pairwise_analysis"]


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

    Exactly the numbers of :func:`norep.measures.metrics.pairwise_outcomes`,
    :func:`norep.measures.ensembles.pairwise_ensemble_accuracy`,
    :func:`norep.measures.ensembles.pairwise_conversion_rate`
    and :func:`norep.measures.specialization.theta_histogram` on ``softmax(logits_m, T_m)``, computed by
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
    >>> from norep.engine.pairs import pairwise_analysis
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
    y, mats, temps, names = _check_inputs(y_true, logits, temperatures, names)
    k = check_k(k)
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size!r}")
    if theta:
        check_theta_bins(theta_bins)  # validate before the long pass

    from norep.engine._device import resolve_device

    dev = resolve_device(device)
    if dev is not None:
        from norep.engine.torch_backend import pairwise_torch

        out = pairwise_torch(y, mats, temps, device=dev, progress=progress)
        res = _assemble(
            names, len(y), out["correct"], out["conf"], out["ensemble_correct"], out["converted"], out["levels"]
        )
        res._conf_bounds = out["conf_bounds"]
    else:
        res = _ChunkPass(y, mats, temps, names, k, int(chunk_size)).run(n_jobs, progress)
    if theta:
        res.compute_theta(theta_bins, n_jobs=n_jobs)
    return res


def _check_inputs(y_true, logits, temperatures, names):
    """Checked labels, logits (a list of (N, C) arrays), temperatures and unique names."""
    y0 = np.asarray(y_true)
    n = y0.shape[0] if y0.ndim == 1 else None
    if isinstance(logits, np.ndarray) and logits.ndim == 3:
        logits = list(logits)
    if isinstance(logits, (str, bytes)) or not isinstance(logits, Sequence) or len(logits) == 0:
        raise ValueError("logits must be a non-empty sequence of (N, C) arrays")
    mats = [as_logits(lg, f"logits[{i}]", n) for i, lg in enumerate(logits)]
    c = mats[0].shape[1]
    for i, lg in enumerate(mats):
        if lg.shape[1] != c:
            raise ValueError(f"logits[{i}] has {lg.shape[1]} classes but logits[0] has {c}")
    m_models = len(mats)
    y = check_labels(y0, mats[0].shape[0], c)
    if y.shape[0] == 0:
        raise ValueError("y_true is empty")
    temps = [1.0] * m_models if temperatures is None else list(temperatures)
    if len(temps) != m_models:
        raise ValueError(f"temperatures has {len(temps)} entries for {m_models} models")
    temps = [check_temperature(t) for t in temps]
    names = [str(i) for i in range(m_models)] if names is None else [str(s) for s in names]
    if len(names) != m_models:
        raise ValueError(f"names has {len(names)} entries for {m_models} models")
    if len(set(names)) != len(names):
        raise ValueError("names must be unique")
    return y, mats, temps, names


class _ChunkPass:
    """The numpy path of :func:`pairwise_analysis`: one pass over chunks of examples.

    Per chunk, every model's calibrated probabilities are computed once (kept unnormalised, as
    ``exp(z / T - max)`` with their row sums) and summarised; every pair's ensemble is then decided
    on the chunk (:func:`_pairs_chunk`). When every model computes in the common dtype, the
    per-model summaries of the whole split are kept for reuse (greedy evaluation).
    """

    def __init__(self, y, mats, temps, names, k: int, chunk_size: int):
        self.y, self.mats, self.temps, self.names, self.k = y, mats, temps, names, k
        m_models, n, c = len(mats), len(y), mats[0].shape[1]
        dt = np.float64 if any(lg.dtype == np.float64 for lg in mats) else np.float32
        self.dt, self.n = dt, n
        self.cs = cs = min(chunk_size, n)
        self.probs = np.empty((m_models, cs, c), dtype=dt)
        self.q = np.empty((m_models, cs), dtype=dt)
        self.v = np.empty((m_models, cs, k), dtype=dt)
        self.w = np.empty((m_models, cs, k), dtype=np.int32)
        self.tb = np.empty((m_models, cs), dtype=dt)
        self.conf = np.empty((m_models, cs), dtype=dt)
        self.pred = np.empty((m_models, cs), dtype=np.int32)
        self.sums = np.empty((m_models, cs), dtype=dt)
        self.maxes = np.empty((m_models, cs), dtype=dt)
        self.step = max(1, BLOCK_ELEMS // c)
        self.own = [compute_dtype(lg.dtype) for lg in mats]
        self.full = None
        if all(o == dt for o in self.own):  # per-model summaries kept for reuse (greedy evaluation)
            self.full = {
                "q": np.empty((m_models, n), dt),
                "v": np.empty((m_models, n, k), dt),
                "w": np.empty((m_models, n, k), np.int32),
                "t": np.empty((m_models, n), dt),
                "pred": np.empty((m_models, n), np.int32),
                "m": np.empty((m_models, n), dt),
                "s": np.empty((m_models, n), dt),
            }
        self.readers = []

    def one_model(self, mi: int, a: int, b: int, yc: np.ndarray) -> None:
        """Model ``mi``'s probabilities and summary on examples ``a:b`` (labels ``yc``)."""
        nb, k = b - a, self.k
        probs, sums, maxes = self.probs, self.sums, self.maxes
        for r0 in range(0, nb, self.step):
            r1 = min(nb, r0 + self.step)
            blk = probs[mi, r0:r1]
            what = f"logits[{mi}] ({self.names[mi]!r})"
            if self.own[mi] == self.dt:
                # the buffer keeps exp(z / T - m); probabilities are blk / sums, divided on demand
                self.readers[mi].read(a + r0, a + r1, blk)
                mrow, srow = softmax_checked(blk, self.temps[mi], what, normalize=False)
                sums[mi, r0:r1] = srow[:, 0]
                maxes[mi, r0:r1] = mrow[:, 0]
            else:  # float32 probabilities stored in a float64 buffer (exact widening), sums 1
                tmp = np.empty(blk.shape, dtype=np.float32)
                self.readers[mi].read(a + r0, a + r1, tmp)
                softmax_checked(tmp, self.temps[mi], what)
                blk[...] = tmp
                sums[mi, r0:r1] = 1.0
            (
                self.q[mi, r0:r1],
                self.v[mi, r0:r1],
                self.w[mi, r0:r1],
                self.tb[mi, r0:r1],
                self.pred[mi, r0:r1],
                self.conf[mi, r0:r1],
            ) = summarise_exp(blk, sums[mi, r0:r1], yc[r0:r1], k)
        full = self.full
        if full is not None:
            full["q"][mi, a:b], full["v"][mi, a:b], full["w"][mi, a:b] = (
                self.q[mi, :nb],
                self.v[mi, :nb],
                self.w[mi, :nb],
            )
            full["t"][mi, a:b], full["pred"][mi, a:b] = self.tb[mi, :nb], self.pred[mi, :nb]
            full["m"][mi, a:b], full["s"][mi, a:b] = maxes[mi, :nb], sums[mi, :nb]

    def run(self, n_jobs: int, progress: bool) -> AllPairsResult:
        """Stream over the chunks; the result without theta histograms."""
        y, n, m_models = self.y, self.n, len(self.mats)
        ia, ib = np.triu_indices(m_models, 1)
        ens_correct = np.zeros(len(ia), dtype=np.int64)
        converted = np.zeros(len(ia), dtype=np.int64)
        correct_all = np.zeros((m_models, n), dtype=bool)
        conf_all = np.zeros((m_models, n), dtype=self.dt)
        levels = {"level1": 0, "level2": 0, "full_row": 0}
        if n_jobs and int(n_jobs) > 1:  # threads streaming at once: larger blocks (see THREADED_BLOCK_ELEMS)
            self.step = max(self.step, min(self.cs, THREADED_BLOCK_ELEMS // self.probs.shape[2]))
        self.readers = [RowReader(lg, o, self.step) for lg, o in zip(self.mats, self.own, strict=True)]
        pool = None
        if n_jobs and int(n_jobs) > 1:
            from concurrent.futures import ThreadPoolExecutor

            pool = ThreadPoolExecutor(int(n_jobs))
        with torch_one_thread():
            try:
                starts = range(0, n, self.cs)
                for a in progress_bar(starts, progress, desc="all pairs", unit="chunk", total=len(starts)):
                    b = min(n, a + self.cs)
                    nb, yc = b - a, y[a:b]
                    if pool is None:
                        for mi in range(m_models):
                            self.one_model(mi, a, b, yc)
                    else:
                        list(pool.map(self.one_model, range(m_models), [a] * m_models, [b] * m_models, [yc] * m_models))
                    corr = self.pred[:, :nb] == yc[None, :]
                    correct_all[:, a:b] = corr
                    conf_all[:, a:b] = self.conf[:, :nb]
                    if len(ia) == 0:
                        continue
                    ens = _pairs_chunk(
                        self.probs, self.sums, self.q, self.v, self.w, self.tb, corr, yc, ia, ib, nb, levels
                    )
                    inconsistent = corr[ia] != corr[ib]
                    ens_correct += ens.sum(axis=1)
                    converted += (ens & inconsistent).sum(axis=1)
            finally:
                if pool is not None:
                    pool.shutdown()
                for r in self.readers:
                    r.close()
        res = _assemble(self.names, n, correct_all, conf_all, ens_correct, converted, levels)
        if self.full is not None:
            res._summaries = {"y": y, "k": self.k, "temps": self.temps, "logits": self.mats, **self.full}
        return res


def _assemble(names, n, correct_all, conf_all, ens_correct, converted, levels) -> AllPairsResult:
    """The result from the members' correctness (M, N) and the per-pair (i < j) ensemble counts."""
    m_models = len(names)
    ia, ib = np.triu_indices(m_models, 1)
    # outcome counts from the correctness matrix (as norep.measures.metrics.pairwise_outcomes)
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
        names=list(names),
        n_examples=n,
        accuracy=n_correct / n,
        both_correct=both / n,
        only_a=only_a / n,
        only_b=only_b / n,
        both_wrong=both_wrong / n,
        ensemble_accuracy=ens_mat / n,
        conversion_rate=conversion,
        theta_edges=None,
        theta_counts=None,
        counts={
            "both_correct": both,
            "only_a": only_a,
            "only_b": only_b,
            "both_wrong": both_wrong,
            "ensemble_correct": ens_mat,
            "converted": conv_mat,
            "inconsistent": incons,
        },
        levels=levels,
        correct=correct_all,
        conf=conf_all,
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
    correct, wrong, s = decide_level1(q64[ia], v064[ia], q64[ib], v064[ib], 2.0)
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
    c2, w2 = decide_level2(se, ye, cand, xa, xb, tb[a, ie].astype(np.float64), tb[b, ie].astype(np.float64), 2.0)
    correct[pe[c2], ie[c2]] = True
    rest = ~(c2 | w2)
    levels["level2"] += int(len(pe) - rest.sum())
    if rest.any():
        pr, ir = pe[rest], ie[rest]
        ar, br = ia[pr], ib[pr]
        levels["full_row"] += len(pr)
        for s0 in range(0, len(pr), ROWS_PER_BATCH):
            sl = slice(s0, s0 + ROWS_PER_BATCH)
            rows = (probs[ar[sl], ir[sl]] / sums[ar[sl], ir[sl]][:, None]).astype(np.float64)
            rows += probs[br[sl], ir[sl]] / sums[br[sl], ir[sl]][:, None]
            rows /= 2.0
            ok = rows.argmax(axis=1) == yc[ir[sl]]
            correct[pr[sl][ok], ir[sl][ok]] = True
    return correct


def store_pairwise_analysis(
    store, *, split: str = "test", names: Sequence[str] | None = None, **kwargs
) -> AllPairsResult:
    """:func:`pairwise_analysis` on a :class:`norep.storage.Store`: its memory-mapped logits and the
    temperatures in its model table.

    Parameters
    ----------
    store : norep.storage.Store
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
