"""The analysis engine on a torch device (a GPU, or torch's CPU backend): identical results.

The numpy path (:mod:`norep.engine.pairs`, :mod:`norep.engine.greedy`) reproduces the reference bit
for bit by recomputing numpy's own softmax. A torch device cannot: its ``exp`` and its summation
order differ from numpy's in the last bits. This backend therefore computes every calibrated
probability on the device to within a stated tolerance of the reference value, decides each outcome
on the device only when that tolerance cannot change it, and settles the rest on the CPU from the
reference's exact probabilities (:func:`norep.measures.calibration.softmax` of those rows). The results
(counts, accuracies, selections, theta histograms) are therefore identical to the numpy path's; only
which examples needed the exact computation differs (reported in ``levels``).

The tolerance
-------------
On the device ``x = float32(logits) / float32(T) - max`` is computed exactly as numpy does (IEEE
division by a device tensor, not by a host scalar, and exact subtraction), then ``e = exp(x)`` with
the device's ``exp`` (a few ulp from numpy's), ``s = sum(e)`` accumulated in float64 and
``p = e / s``. numpy's own ``exp`` is within a few ulp of the true value and its float32 pairwise
row sum within about ``(16 + log2 C)`` float32 rounding errors (below 2e-6 relative for C = 1,000),
so ``|p_device - p_numpy| <= DELTA * p + ETA`` with ``DELTA = 2e-5`` (ten times the bound) and an
absolute ``ETA = 1e-30`` for results near underflow. A comparison ``a > b`` of two such values is
taken on the device only when ``a (1 - eps) - ETA > b (1 + eps) + ETA`` (or the reverse) with
``eps`` the tolerance of the compared sums; otherwise it goes to the CPU.

Temperatures are fitted on the device with the subsample stage, safeguarded Newton iteration,
stopping rule and bounds of :func:`norep.measures.calibration.fit_temperature` (which, on the CPU, usually
ends after one full pass at the root of a Taylor polynomial instead of Newton's passes on all rows;
passes are cheap on a GPU), so they agree with the numpy fit to its tolerance (``rtol``, 1e-7
relative by default), not bit for bit.

torch is imported here only; ``import norep`` never imports it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from norep.engine._greedy_inputs import greedy_steps
from norep.engine._rows import progress_bar

DELTA = 2e-5
"""Relative tolerance of a device probability against the reference (see the module docstring)."""
ETA = 1e-30
"""Absolute tolerance (near underflow)."""
_ELEMS = 1 << 24  # elements per block on the CPU device (64 MB of float32)
_ELEMS_GPU = 1 << 27  # on a GPU (512 MB of float32): fewer, larger kernels


def _torch():
    import torch

    return torch


def _whole(arr):
    from norep.engine._rows import read_whole

    return np.ascontiguousarray(read_whole(arr))


def _to_device(arr: np.ndarray, device):
    """``arr`` as a torch tensor on ``device`` (read-only arrays are fine: nothing writes to it)."""
    import warnings

    torch = _torch()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch warns on read-only arrays
        return torch.from_numpy(arr).to(device)


class _Model:
    """One model's logits on the device (float16 stays float16 there) and its temperature."""

    def __init__(self, logits: np.ndarray, temperature: float, device: str, what: str = "logits"):
        torch = _torch()
        from norep.measures._validation import compute_dtype

        self.np = logits
        self.temperature = float(temperature)
        self.what = what
        self.ndt = compute_dtype(logits.dtype)
        self.cdt = torch.float64 if self.ndt == np.float64 else torch.float32
        self.x = _to_device(_whole(logits), device)
        self.t = torch.tensor([self.ndt(self.temperature)], dtype=self.cdt, device=device)
        self.n, self.c = logits.shape
        self._exact: dict[int, np.ndarray] = {}

    def probs(self, a: int, b: int):
        """Probabilities of rows ``[a, b)`` on the device (within DELTA of the reference)."""
        torch = _torch()
        z = self.x[a:b].to(self.cdt)
        z = z / self.t  # a device tensor: true IEEE division, as numpy's
        m = z.amax(dim=1, keepdim=True)
        if not bool(torch.isfinite(m).all()):
            raise ValueError(f"{self.what} contain NaN or Inf")
        z -= m
        z.exp_()
        s = z.sum(dim=1, keepdim=True, dtype=torch.float64)
        z /= s.to(self.cdt)
        return z

    def exact_rows(self, rows: np.ndarray) -> np.ndarray:
        """The reference's probabilities of the given rows (numpy, exact), cached per row."""
        from norep.engine._rows import softmax_rows

        rows = np.asarray(rows, dtype=np.int64)
        need = np.array(sorted({int(r) for r in rows.tolist()} - self._exact.keys()), dtype=np.int64)
        if len(need):
            got = softmax_rows(self.np, need, self.temperature, self.ndt)
            for r, row in zip(need.tolist(), got, strict=True):
                self._exact[r] = row
        if not len(rows):
            return np.empty((0, self.c), dtype=self.ndt)
        return np.stack([self._exact[int(r)] for r in rows.tolist()])


def _certain(a, b, eps: float, eta: float = ETA):
    """Where ``a > b`` (first) and ``b > a`` (second) hold whatever the relative tolerance ``eps``
    and absolute tolerance ``eta`` of each side."""
    lo, hi = 1.0 - eps, 1.0 + eps
    return a * lo - eta > b * hi + eta, b * lo - eta > a * hi + eta


def _elems(device) -> int:
    return _ELEMS_GPU if str(device).startswith("cuda") else _ELEMS


def _block_rows(c: int, width: int = 1, device="cpu") -> int:
    return max(1, _elems(device) // max(1, c * width))


# --------------------------------------------------------------------------------------------------
# members: predictions and confidences


def _members(models: list[_Model], y: np.ndarray, dtype, levels: dict):
    """Exact correctness (M, N) and confidences with their exactness, plus the device probabilities
    per block are recomputed by the callers (nothing (M, N, C) is kept)."""
    torch = _torch()
    m_models, n = len(models), len(y)
    correct = np.zeros((m_models, n), dtype=bool)
    conf = np.zeros((m_models, n), dtype=dtype)
    exact = np.zeros((m_models, n), dtype=bool)
    yt = torch.from_numpy(y).to(models[0].x.device)
    step = _block_rows(models[0].c, 1, models[0].x.device)
    for mi, mod in enumerate(models):
        for a in range(0, n, step):
            b = min(n, a + step)
            p = mod.probs(a, b)
            top = p.topk(2, dim=1)
            v0, i0 = top.values[:, 0], top.indices[:, 0]
            sure, _ = _certain(v0, top.values[:, 1], DELTA)
            correct[mi, a:b] = (i0 == yt[a:b]).cpu().numpy()
            conf[mi, a:b] = v0.cpu().numpy()
            unsure = a + np.nonzero(~sure.cpu().numpy())[0]
            levels["device"] += (b - a) - len(unsure)
            levels["exact"] += len(unsure)
            if len(unsure):
                rows = mod.exact_rows(unsure)
                correct[mi, unsure] = rows.argmax(axis=1) == y[unsure]
                conf[mi, unsure] = rows.max(axis=1)
                exact[mi, unsure] = True
    return correct, conf, exact


class _ConfBounds:
    """Bounds of the kept confidences and their exact values on demand (for theta histograms)."""

    def __init__(self, models, conf, exact):
        c64 = conf.astype(np.float64)
        self.lo = np.where(exact, c64, c64 * (1.0 - DELTA) - ETA)
        self.hi = np.where(exact, c64, c64 * (1.0 + DELTA) + ETA)
        self.models, self.conf, self.is_exact = models, conf, exact

    def exact(self, mi: np.ndarray, e: np.ndarray) -> np.ndarray:
        out = np.empty(len(mi), dtype=self.conf.dtype)
        for m in np.unique(mi).tolist():
            sel = np.nonzero(mi == m)[0]
            todo = e[sel][~self.is_exact[m, e[sel]]]
            if len(todo):
                todo = np.unique(todo)
                self.conf[m, todo] = self.models[m].exact_rows(todo).max(axis=1)
                self.is_exact[m, todo] = True
                self.lo[m, todo] = self.hi[m, todo] = self.conf[m, todo]
            out[sel] = self.conf[m, e[sel]]
        return out


# --------------------------------------------------------------------------------------------------
# all pairs


def pairwise_torch(
    y: np.ndarray, mats: Sequence[np.ndarray], temps: Sequence[float], *, device: str, progress: bool = False
) -> dict:
    """Member correctness, confidences and the per-pair (i < j) ensemble counts on a torch device.

    Returns a dict with ``correct`` (M, N) bool, ``conf`` (M, N), ``ensemble_correct`` and
    ``converted`` (n_pairs,) int64 in ``numpy.triu_indices(M, 1)`` order, ``levels`` and
    ``conf_bounds`` (for exact theta histograms).
    """
    torch = _torch()
    dt = np.float64 if any(lg.dtype == np.float64 for lg in mats) else np.float32
    tdt = torch.float64 if dt == np.float64 else torch.float32
    models = [_Model(lg, t, device, f"logits[{i}]") for i, (lg, t) in enumerate(zip(mats, temps, strict=True))]
    m_models, n, c = len(models), len(y), models[0].c
    levels = {"device": 0, "exact": 0}
    correct, conf, exact = _members(models, y, dt, levels)
    ia, ib = np.triu_indices(m_models, 1)
    pair_id = -np.ones((m_models, m_models), dtype=np.int64)
    pair_id[ia, ib] = np.arange(len(ia))
    ens = np.zeros(len(ia), dtype=np.int64)
    conv = np.zeros(len(ia), dtype=np.int64)
    if len(ia) == 0:
        return {
            "correct": correct,
            "conf": conf,
            "ensemble_correct": ens,
            "converted": conv,
            "levels": levels,
            "conf_bounds": _ConfBounds(models, conf, exact),
        }
    dev = models[0].x.device
    yt = torch.from_numpy(y).to(dev)
    corr_t = torch.from_numpy(correct).to(dev)
    # a sum of two device probabilities, rounded once more: tolerance DELTA + 2^-23
    eps = DELTA + 2.0**-23
    rows = max(1, min(n, _elems(dev) // max(1, c * m_models)))
    pending: list[tuple[np.ndarray, np.ndarray]] = []  # (pair ids, examples) left to the CPU
    for a in progress_bar(range(0, n, rows), progress, desc="all pairs (device)", unit="chunk"):
        b = min(n, a + rows)
        p = torch.stack([mod.probs(a, b).to(tdt) for mod in models])  # (M, nb, C)
        yb = yt[a:b]
        idx = yb.view(1, -1, 1)
        jb = max(1, _elems(dev) // max(1, (b - a) * c))
        for i in range(m_models - 1):
            for j0 in range(i + 1, m_models, jb):
                j1 = min(m_models, j0 + jb)
                s = p[j0:j1] + p[i].unsqueeze(0)  # (J, nb, C): the reference adds in float64
                lab = s.gather(2, idx.expand(j1 - j0, -1, 1)).squeeze(2)
                s.scatter_(2, idx.expand(j1 - j0, -1, 1), -math.inf)
                wmax = s.amax(dim=2)
                ok, bad = _certain(lab, wmax, eps, 2 * ETA)
                incons = corr_t[i].unsqueeze(0) != corr_t[j0:j1]
                ids = pair_id[i, j0:j1]
                ens[ids] += ok.sum(dim=1).cpu().numpy()
                conv[ids] += (ok & incons).sum(dim=1).cpu().numpy()
                und = ~(ok | bad)
                jj, ee = (t.cpu().numpy() for t in torch.nonzero(und, as_tuple=True))
                levels["device"] += und.numel() - len(jj)
                if len(jj):
                    pending.append((ids[jj], a + ee))
        del p
    for mod in models:  # the device copies are not needed any more (exact rows come from numpy)
        mod.x = None
    if pending:
        pids = np.concatenate([x[0] for x in pending])
        ex = np.concatenate([x[1] for x in pending])
        levels["exact"] += len(pids)
        for pid in np.unique(pids).tolist():
            e = ex[pids == pid]
            i, j = int(ia[pid]), int(ib[pid])
            tot = models[i].exact_rows(e).astype(np.float64)
            tot += models[j].exact_rows(e)
            tot /= 2.0
            ok = tot.argmax(axis=1) == y[e]
            ens[pid] += int(np.count_nonzero(ok))
            conv[pid] += int(np.count_nonzero(ok & (correct[i, e] != correct[j, e])))
    return {
        "correct": correct,
        "conf": conf,
        "ensemble_correct": ens,
        "converted": conv,
        "levels": levels,
        "conf_bounds": _ConfBounds(models, conf, exact),
    }


# --------------------------------------------------------------------------------------------------
# greedy selection


class _Ensemble:
    """A running ensemble on the device (float64 sum of device probabilities) with exact rows on
    the CPU for the examples that need them."""

    def __init__(self, models: list[_Model], y: np.ndarray, levels: dict, prefix: str = ""):
        torch = _torch()
        self.models, self.y, self.levels, self.prefix = models, y, levels, prefix
        base = next(m for m in models if m is not None)
        self.n, self.c = len(y), base.c
        self.dev = base.x.device
        self.yt = torch.from_numpy(y).to(self.dev)
        self.total = torch.zeros((self.n, self.c), dtype=torch.float64, device=self.dev)
        self.members: list[int] = []
        self._exact_tot: dict[int, tuple[int, np.ndarray]] = {}
        self.step = _block_rows(self.c, 3, self.dev)

    def add(self, j: int) -> None:
        mod = self.models[j]
        for a in range(0, self.n, self.step):
            b = min(self.n, a + self.step)
            self.total[a:b] += mod.probs(a, b)
        self.members.append(j)

    def _exact_total(self, e: np.ndarray) -> np.ndarray:
        """The reference's float64 sum of the members' exact probabilities at rows ``e``."""
        out = np.empty((len(e), self.c))
        k = len(self.members)
        for i, r in enumerate(e.tolist()):
            cnt, row = self._exact_tot.get(r, (0, None))
            if cnt < k:
                row = np.zeros(self.c) if row is None else row
                for mi in self.members[cnt:]:
                    row += self.models[mi].exact_rows(np.array([r]))[0]
                self._exact_tot[r] = (k, row)
            out[i] = self._exact_tot[r][1]
        return out

    def counts(self, cands: Sequence[int]) -> np.ndarray:
        """Exact number of correct examples of ``(members + candidate) / K`` for each candidate."""
        torch = _torch()
        kdiv = float(len(self.members) + 1)
        # K device terms each within DELTA, float64 additions: DELTA plus a little
        eps = DELTA * (1.0 + 1e-6) + 1e-12
        out = np.zeros(len(cands), dtype=np.int64)
        for ci, j in enumerate(cands):
            mod = self.models[j]
            pend = []
            for a in range(0, self.n, self.step):
                b = min(self.n, a + self.step)
                s = self.total[a:b] + mod.probs(a, b)
                idx = self.yt[a:b].view(-1, 1)
                lab = s.gather(1, idx).squeeze(1)
                s.scatter_(1, idx, -math.inf)
                ok, bad = _certain(lab, s.amax(dim=1), eps, (kdiv + 1) * ETA)
                out[ci] += int(ok.sum())
                und = torch.nonzero(~(ok | bad)).flatten().cpu().numpy()
                self.levels[self.prefix + "device"] += (b - a) - len(und)
                if len(und):
                    pend.append(a + und)
            if pend:
                e = np.concatenate(pend)
                self.levels[self.prefix + "exact"] += len(e)
                tot = self._exact_total(e)
                tot += mod.exact_rows(e)
                tot /= kdiv
                out[ci] += int(np.count_nonzero(tot.argmax(axis=1) == self.y[e]))
        return out


def greedy_selection_torch(
    y: np.ndarray,
    mats: Sequence[np.ndarray],
    temps: Sequence[float],
    steps: int,
    *,
    replace: bool,
    device: str,
    progress: bool = False,
    eval_y: np.ndarray | None = None,
    eval_logits: Callable[[int], np.ndarray] | None = None,
):
    """Greedy selection on a torch device (index 0 is the base). Returns ``(selected indices,
    correct counts per step, evaluation counts or None, levels)``."""
    levels = {"device": 0, "exact": 0}
    models = [_Model(lg, t, device, f"logits[{i}]") for i, (lg, t) in enumerate(zip(mats, temps, strict=True))]
    dt = np.float64 if any(lg.dtype == np.float64 for lg in mats) else np.float32
    ok0, _, _ = _members([models[0]], y, dt, levels)
    counts = [int(np.count_nonzero(ok0[0]))]
    ens = _Ensemble(models, y, levels)
    ens.add(0)
    selected, step_counts = greedy_steps(ens, len(models), steps, replace, progress, "greedy steps (device)")
    counts += step_counts
    del ens, models
    eval_hits = None
    if eval_logits is not None:
        distinct = list(dict.fromkeys([0] + selected))
        e_models: list[_Model | None] = [None] * len(mats)
        for i in distinct:
            e_models[i] = _Model(eval_logits(i), temps[i], device, f"eval_logits[{i}]")
        levels.update({"eval_device": 0, "eval_exact": 0})
        lv = {"device": 0, "exact": 0}
        ok0, _, _ = _members([e_models[0]], eval_y, dt, lv)
        eval_hits = [int(np.count_nonzero(ok0[0]))]
        e_ens = _Ensemble(e_models, eval_y, levels, prefix="eval_")
        e_ens.add(0)
        for j in selected:
            eval_hits.append(int(e_ens.counts([j])[0]))
            e_ens.add(j)
        levels["eval_device"] += lv["device"]
        levels["eval_exact"] += lv["exact"]
    return selected, counts, eval_hits, levels


# --------------------------------------------------------------------------------------------------
# temperatures


def _moments(x, yt, beta: float, *, need_third: bool = True):
    """Mean ``L'``, ``L''`` and ``L'''`` of the NLL in ``beta = 1 / T`` (as
    :func:`norep.measures.calibration._moment_pass`), rows of ``x`` on the device, float64 accumulation."""
    torch = _torch()
    n, c = x.shape
    cdt = torch.float64 if x.dtype == torch.float64 else torch.float32
    acc = torch.zeros(3, dtype=torch.float64, device=x.device)
    step = _block_rows(c, 3, x.device)
    for a in range(0, n, step):
        b = min(n, a + step)
        z = x[a:b].to(cdt)
        zmax = z.amax(dim=1, keepdim=True)
        if not bool(torch.isfinite(zmax).all()):
            raise ValueError("logits contain NaN or Inf")
        z = z - zmax
        zy = z.gather(1, yt[a:b].view(-1, 1)).squeeze(1).double()
        e = torch.exp(z * beta)
        s0 = e.sum(dim=1, dtype=torch.float64)
        w = e * z
        m1 = w.sum(dim=1, dtype=torch.float64) / s0
        m2 = (w * z).sum(dim=1, dtype=torch.float64) / s0
        acc[0] += (m1 - zy).sum()
        acc[1] += torch.clamp(m2 - m1 * m1, min=0.0).sum()
        if need_third:
            m3 = (w * z * z).sum(dim=1, dtype=torch.float64) / s0
            acc[2] += (m3 - 3.0 * m1 * m2 + 2.0 * m1**3).sum()
    out = (acc / n).tolist()
    if not need_third:
        out[2] = math.nan
    return tuple(out)


def fit_temperature_torch(
    logits,
    y_true,
    *,
    device: str,
    bounds: tuple[float, float] = (1e-3, 1e3),
    rtol: float = 1e-7,
    max_iter: int = 50,
    subsample: int = 8192,
) -> float:
    """:func:`norep.measures.calibration.fit_temperature` with its passes on a torch device.

    The same starting point, subsample stage, safeguarded Newton iteration, stopping rule and
    bounds (the iteration itself is :func:`norep.measures.calibration._newton_beta`), with the moment passes
    on the device; the full-data stage is Newton's throughout (the numpy fit usually ends after one
    pass at a Taylor polynomial's root), so the result agrees with the numpy fit to ``rtol``.
    """
    torch = _torch()
    from norep.measures._validation import check_fit_inputs, compute_dtype
    from norep.measures.calibration import _newton_beta

    logits, y, (t_lo, t_hi) = check_fit_inputs(logits, y_true, bounds)
    n, c = logits.shape
    if c == 1:
        return 1.0
    b_lo, b_hi = 1.0 / t_hi, 1.0 / t_lo
    x = _to_device(_whole(logits), device)
    yt = torch.from_numpy(y).to(device)
    n_sub = min(int(subsample), n // 4) if subsample else 0
    idx = np.linspace(0, n - 1, max(n_sub, min(n, 256))).astype(np.int64)
    sub = np.asarray(logits[idx], dtype=compute_dtype(logits.dtype))
    spread = float(np.mean(sub.std(axis=1)))
    beta0 = min(max(1.0 / spread if spread > 0 and math.isfinite(spread) else 1.0, b_lo), b_hi)
    k3 = None
    if n_sub >= 256:
        it = torch.from_numpy(idx).to(device)
        xs, ys = x[it], yt[it]
        last: list[float] = []

        def sub_derivs(b):
            last[:] = _moments(xs, ys, b)
            return tuple(last)

        beta0, _, _ = _newton_beta(sub_derivs, beta0, b_lo, b_hi, rtol=max(rtol, 1e-3), max_iter=max_iter)
        beta0 = float(beta0)
        k3 = last[2] if last and math.isfinite(last[2]) else None
    if k3 is None:

        def derivs(b):
            return _moments(x, yt, b)
    else:

        def derivs(b):
            return (*_moments(x, yt, b, need_third=False)[:2], k3)

    beta, ok, _ = _newton_beta(derivs, beta0, b_lo, b_hi, rtol=rtol, max_iter=max_iter)
    if not ok:  # pragma: no cover - the safeguarded iteration converges in practice
        from norep.measures.calibration import fit_temperature

        return fit_temperature(logits, y, bounds=bounds, rtol=rtol, max_iter=max_iter, subsample=subsample)
    return float(min(max(1.0 / beta, t_lo), t_hi))
