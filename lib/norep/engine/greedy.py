"""Exact, fast greedy ensemble selection from a base model (paper Sec. 4.5, Fig. 5).

The same numbers as :func:`norep.measures.ensembles.greedy_selection` on ``softmax(logits_m, T_m)``, from
the per-model summaries of :mod:`norep.engine.summary`, computed once per model and reused by every
step and every candidate: the running ensemble's label score is an exact float64 sum of the members'
``q``, every wrong class is bounded by the sum of their ``v_1`` (level 1), the classes the members
keep by exact lower and upper sums (level 2), and only examples that stay undecided get the
ensemble's exact summed row, kept and updated across steps (level 3; the candidate's full row only
where even that cannot decide). See ``_EnsembleState``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from norep.engine._greedy_inputs import _check_greedy_inputs, _GreedyInputs, greedy_steps
from norep.engine._rows import ROWS_PER_BATCH, progress_bar
from norep.engine.result import AllPairsResult
from norep.engine.summary import Operand, decide_level2, lookup, summarise
from norep.measures._validation import check_k
from norep.measures.calibration import torch_one_thread

__all__ = ["fast_greedy_selection", "store_greedy_selection"]


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

    def __init__(self, ops: list[Operand], y: np.ndarray, k: int):
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
        self._tot_buf = np.empty((0, self.c))  # capacity for the hard rows' sums, grown by doubling
        self.hard_tot = self._tot_buf[:0]
        self._hard_summary = None
        self._stacked = None  # the models' summaries stacked, made on first use (see _stack)
        self.levels = {"level1": 0, "level2": 0, "level3": 0, "full_row": 0}

    # ----------------------------------------------------------------------------------- members
    def add(self, j: int) -> None:
        op = self.ops[j]
        if self.uw.shape[1]:
            known, val = lookup(op.w, op.v, self.uw)
            self.lo += np.where(known, val, 0.0)
            self.hi += np.where(known, val, op.tplus[:, None])
        new_lo = np.zeros(op.w.shape)
        new_hi = np.zeros(op.w.shape)
        for i in self.members:
            prev = self.ops[i]
            known, val = lookup(prev.w, prev.v, op.w)
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
            op.add_rows(self.hard_rows, self.hard_tot)
        self._hard_summary = None
        self.members.append(j)

    def _make_hard(self, rows: np.ndarray) -> None:
        rows = np.setdiff1d(rows, self.hard_rows)
        if not len(rows):
            return
        h0, h1 = len(self.hard_rows), len(self.hard_rows) + len(rows)
        if h1 > len(self._tot_buf):
            buf = np.empty((max(h1, 2 * len(self._tot_buf), 256), self.c))
            buf[:h0] = self.hard_tot
            self._tot_buf = buf
        tot = self._tot_buf[h0:h1]
        tot.fill(0.0)
        for i in self.members:  # the reference's sum, in member order
            self.ops[i].add_rows(rows, tot)
        self.hard_index[rows] = np.arange(h0, h1)
        self.hard_rows = np.concatenate([self.hard_rows, rows])
        self.hard_tot = self._tot_buf[:h1]
        self._hard_summary = None

    def _hard(self):
        if self._hard_summary is None:
            # summarise() changes the rows it is given and restores them exactly: no copy needed
            q, v, w, t, _, _ = summarise(self.hard_tot, self.y[self.hard_rows], self.k)
            self._hard_summary = (v, w, t)
        return self._hard_summary

    # -------------------------------------------------------------------------------- candidates
    def set_operand(self, j: int, op: Operand) -> None:
        """Give model ``j`` its operand (one not known when the state was made)."""
        self.ops[j] = op
        if self._stacked is not None:
            self._fill(self._stacked, j, op)

    def _stack(self):
        """The models' summaries stacked (models, N, ...) so that a step handles every
        (candidate, example) pair in a few vectorised operations."""
        if self._stacked is None:
            nm, n, k = len(self.ops), self.n, self.k
            st = {
                "q": np.zeros((nm, n)),
                "v1": np.zeros((nm, n)),
                "w": np.zeros((nm, n, k), np.int32),
                "v": np.zeros((nm, n, k)),
                "tp": np.zeros((nm, n)),
                "t": np.zeros((nm, n)),
            }
            for i, op in enumerate(self.ops):
                if op is not None:
                    self._fill(st, i, op)
            self._stacked = st
        return self._stacked

    @staticmethod
    def _fill(st: dict, i: int, op: Operand) -> None:
        st["q"][i], st["v1"][i], st["w"][i] = op.q, op.v[:, 0], op.w
        st["v"][i], st["tp"][i], st["t"][i] = op.v, op.tplus, op.t

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
        known, val = lookup(cw, cv, uw)
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
        known, val = lookup(cw, cv, tw)
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
            c3, w3 = decide_level2(sj, yj, cand, xt, xc, ht[hj], op.t[ej].astype(np.float64), kdiv)
            self.levels["level3"] += int(np.count_nonzero(c3 | w3))
            hits = int(np.count_nonzero(c3))
            rest = np.nonzero(~(c3 | w3))[0]
            self.levels["full_row"] += len(rest)
            for s0 in range(0, len(rest), ROWS_PER_BATCH):
                rr = rest[s0 : s0 + ROWS_PER_BATCH]
                rows = self.hard_tot[hj[rr]]  # a copy (fancy indexing), summed as the reference does
                op.add_rows(ej[rr], rows)
                rows /= kdiv
                hits += int(np.count_nonzero(rows.argmax(axis=1) == yj[rr]))
            out[pc[sel[0]]] += hits
        return out


def _summarise_ops(make, names, n_jobs, progress, desc):
    if n_jobs and int(n_jobs) > 1 and len(names) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(int(n_jobs)) as pool:
            return list(progress_bar(pool.map(make, names), progress, total=len(names), desc=desc, unit="model"))
    return [make(m) for m in progress_bar(names, progress, desc=desc, unit="model")]


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
    :func:`norep.measures.ensembles.greedy_selection` but from logits, in about one softmax pass per model.

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
    norep.measures.ensembles.GreedyResult
        ``selected``, ``accuracies`` (selection split, index 0 = base alone), ``eval_accuracies``.

    Examples
    --------
    >>> import numpy as np
    >>> from norep.engine.greedy import fast_greedy_selection
    >>> y = np.array([0, 1, 2, 0])
    >>> lg = {"base": np.array([[3.0, 0, 0], [1, 0.8, 0], [1, 0, 0.6], [2, 0, 1]]),
    ...       "c1": np.array([[0.5, 0, 0], [0, 2, 0], [0.3, 0, 0], [0, 1, 0]]),
    ...       "c2": np.array([[0.3, 0, 0], [0, 0.2, 0], [0, 0, 2], [0, 0, 1]])}
    >>> res = fast_greedy_selection(y, lg, "base", 2)
    >>> res.selected, [round(a, 3) for a in res.accuracies]
    (['c1', 'c2'], [0.5, 0.75, 1.0])
    """
    from norep.measures.ensembles import GreedyResult

    g = _check_greedy_inputs(y_true, logits, base, steps, temperatures, candidates, eval_y_true, eval_logits, replace)
    k = check_k(k)

    from norep.engine._device import resolve_device

    dev = resolve_device(device)
    if dev is not None:
        return _greedy_torch(g, steps, replace, dev, progress)
    with torch_one_thread():
        evaluator = _Evaluator(g, len(g.names) + 1, k, eval_summaries) if g.has_eval else None
        try:
            ops, selected, accuracies, levels = _select(
                g, steps, replace, k, n_jobs, progress, on_choice=evaluator.push if evaluator else None
            )
        except BaseException:
            if evaluator is not None:
                evaluator.finish(aborted=True)
            raise
        eval_accuracies = None
        if evaluator is not None:
            eval_accuracies, eval_levels = evaluator.finish()
            levels.update(eval_levels)
    result = GreedyResult(
        selected=[g.names[i - 1] for i in selected], accuracies=accuracies, eval_accuracies=eval_accuracies
    )
    object.__setattr__(result, "levels", levels)  # diagnostics: decisions taken at each level
    return result


def _greedy_torch(g: _GreedyInputs, steps: int, replace: bool, dev: str, progress: bool):
    """The selection on a torch device (:func:`norep.engine.torch_backend.greedy_selection_torch`)."""
    from norep.engine.torch_backend import greedy_selection_torch
    from norep.measures.ensembles import GreedyResult

    order = [g.base, *g.names]
    n = len(g.y)
    selected, counts, eval_hits, levels = greedy_selection_torch(
        g.y,
        [g.mats[m] for m in order],
        [g.temps[m] for m in order],
        steps,
        replace=replace,
        device=dev,
        progress=progress,
        eval_y=g.ey,
        eval_logits=(lambda i: g.eval_mat(g.label(i))) if g.has_eval else None,
    )
    result = GreedyResult(
        selected=[g.names[i - 1] for i in selected],
        accuracies=[float(h / n) for h in counts],
        eval_accuracies=None if eval_hits is None else [float(h / len(g.ey)) for h in eval_hits],
    )
    object.__setattr__(result, "levels", levels)
    return result


def _select(g: _GreedyInputs, steps: int, replace: bool, k: int, n_jobs: int, progress: bool, on_choice=None):
    """The greedy steps on the selection split: operands, chosen indices, accuracies, level counts.
    ``on_choice(j)`` is called with each chosen model as soon as it is chosen."""
    y, n = g.y, len(g.y)

    threaded = bool(n_jobs and int(n_jobs) > 1)

    def make_op(m):
        return Operand(g.mats[m], y, g.temps[m], k, threaded=threaded)

    ops = _summarise_ops(make_op, [g.base, *g.names], n_jobs, progress, "greedy: summarise models")
    with _PartedState(ops, y, k, n_jobs) as state:
        state.add(0)
        accuracies = [float(np.count_nonzero(ops[0].pred == y) / n)]
        selected, counts = greedy_steps(state, len(ops), steps, replace, progress, "greedy steps", on_choice)
        accuracies += [float(c / n) for c in counts]
        return ops, selected, accuracies, state.levels()


class _PartedState:
    """An :class:`_EnsembleState` per contiguous range of examples, stepped in parallel threads.

    Every decision of the state is per example, so the examples split into ``n_jobs`` ranges, each
    with its own state over views of the summaries; a candidate's count is the (exact, integer) sum
    of the ranges' counts. numpy releases the GIL inside its array loops, so the ranges' steps
    overlap on several cores. One range (no threads) when ``n_jobs`` is 1 or the split is small.
    """

    MIN_ROWS = 16384  # fewer examples per range than this: not worth a thread (none at 10,000 x 1,000)

    def __init__(self, ops: list[Operand], y: np.ndarray, k: int, n_jobs: int):
        n = len(y)
        parts = max(1, min(int(n_jobs or 1), n // self.MIN_ROWS))
        bounds = np.linspace(0, n, parts + 1).astype(np.int64).tolist()
        if parts == 1:
            self.states = [_EnsembleState(ops, y, k)]
        else:
            ranges = zip(bounds[:-1], bounds[1:], strict=True)
            self.states = [_EnsembleState([op.part(a, b) for op in ops], y[a:b], k) for a, b in ranges]
        self.pool = None
        if parts > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(parts, thread_name_prefix="greedy-range")

    def _each(self, fn):
        if self.pool is None:
            return [fn(st) for st in self.states]
        return list(self.pool.map(fn, self.states))

    def add(self, j: int) -> None:
        self._each(lambda st: st.add(j))

    def counts(self, cands: Sequence[int]) -> np.ndarray:
        return np.sum(self._each(lambda st: st.counts(cands)), axis=0)

    def levels(self) -> dict:
        out: dict = {}
        for st in self.states:
            for key, val in st.levels.items():
                out[key] = out.get(key, 0) + val
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(wait=True)


class _Evaluator:
    """Accuracies of the chosen ensembles on the evaluation split, computed in a worker thread
    while the selection goes on: each chosen model is summarised on that split (or its summary
    taken from ``eval_summaries``) and added as soon as it is chosen, so the evaluation overlaps
    the selection's steps instead of following them."""

    def __init__(self, g: _GreedyInputs, n_models: int, k: int, eval_summaries):
        import queue
        import threading

        self.g, self.n_models, self.k, self.kept = g, n_models, k, eval_summaries
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.hits: list[int] = []
        self.levels: dict = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="greedy-evaluation", daemon=True)
        self.thread.start()

    def push(self, j: int) -> None:
        self.queue.put(j)

    def finish(self, aborted: bool = False):
        """Wait for the worker; its accuracies and level counts (re-raising its error, if any)."""
        self.queue.put(None)
        self.thread.join()
        if self.error is not None and not aborted:
            raise self.error
        ey = self.g.ey
        return [float(h / len(ey)) for h in self.hits], {"eval_" + key: val for key, val in self.levels.items()}

    def _op(self, i: int) -> Operand:
        g, ey, k = self.g, self.g.ey, self.k
        name = g.label(i)
        mat = g.eval_mat(name)
        r = _kept_summary(self.kept, name, mat, ey, g.temps[name], k)
        return Operand(mat, ey, g.temps[name], k, r)

    def _run(self) -> None:
        try:
            ops: list = [None] * self.n_models
            ops[0] = self._op(0)
            state = _EnsembleState(ops, self.g.ey, self.k)
            state.add(0)
            self.hits.append(int(np.count_nonzero(ops[0].pred == self.g.ey)))
            while (j := self.queue.get()) is not None:
                if ops[j] is None:
                    state.set_operand(j, self._op(j))
                self.hits.append(int(state.counts([j])[0]))
                state.add(j)
            self.levels = dict(state.levels)
        except BaseException as exc:  # re-raised by finish()
            self.error = exc
            while self.queue.get() is not None:  # drain until finish() says stop
                pass


def store_greedy_selection(
    store,
    *,
    base: str | None = None,
    steps: int = 10,
    candidates: Sequence[str] | None = None,
    selection_split: str = "calib",
    eval_split: str | None = "test",
    **kwargs,
):
    """:func:`fast_greedy_selection` on a :class:`norep.storage.Store` (temperatures from its table).

    Parameters
    ----------
    store : norep.storage.Store
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
    norep.measures.ensembles.GreedyResult
    """
    base = base or store.base_model
    if base is None:
        raise ValueError("the store has no base_model; pass base=")
    splits = [selection_split] + ([eval_split] if eval_split else [])
    if candidates is None:
        candidates = [m for m in store.model_names() if m != base and all(store.has_logits(m, s) for s in splits)]
    names = [base, *candidates]
    temps = {m: store.meta(m)["temperature"] for m in names}
    sel = {m: store.logits(m, selection_split) for m in names}
    kw = {}
    if eval_split:
        kw = {"eval_y_true": store.labels(eval_split), "eval_logits": {m: store.logits(m, eval_split) for m in names}}
    return fast_greedy_selection(
        store.labels(selection_split), sel, base, steps, temperatures=temps, candidates=list(candidates), **kw, **kwargs
    )
