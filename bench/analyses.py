"""The analysis benchmark (``norep bench analyses``): the fast path against a plain reference.

On a synthetic store (:mod:`bench.synthetic`) it times each stage (temperature fitting; all-pairs
outcomes, ensemble accuracy and conversion rate; greedy selection; theta histograms) with the
library's fast path (:mod:`norep.engine`) and with the plain reference (:mod:`bench.plain`), checks
the results are identical and prints a table and the final line
``speedup=<x> identical=<true|false> peak_rss_gb=<y>``. The options are those of
:func:`norep.commands.bench_analyses.configure`.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time

import numpy as np

from bench.measure import Peak, load_average, machine_lines, timed
from bench.plain import (
    reference_fit_temperature,
    reference_greedy,
    reference_pair,
    reference_probs,
    reference_theta,
)
from bench.synthetic import open_or_make_store, synthetic_spec

BUDGET = 3e9
"""At most this many bytes of reference probabilities are kept in memory."""


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; 0 when every result is identical, 1 otherwise, 2 for bad options."""
    from norep.engine import DeviceError, resolve_device

    for opt in ("models", "examples", "classes"):
        if getattr(args, opt) < (2 if opt != "examples" else 1):
            print(f"norep: --{opt} must be at least 2", file=sys.stderr)
            return 2
    if args.reference_pairs is not None and args.reference_pairs < 1:
        print("norep: --reference-pairs must be positive", file=sys.stderr)
        return 2
    try:
        device = resolve_device(args.device)
    except DeviceError as exc:
        print(f"norep: --device {args.device}: {exc}", file=sys.stderr)
        return 2
    load_before = load_average()
    spec = synthetic_spec(
        args.models, args.examples, args.classes, calib_examples=args.calib_examples, dtype=args.dtype, seed=args.seed
    )
    tmp = None
    if args.workdir:
        workdir = args.workdir
    else:
        tmp = tempfile.mkdtemp(prefix="norep-bench-")
        workdir = tmp
    try:
        bench = _Bench(args, spec, workdir, device)
        bench.fast()
        bench.reference_temperatures()
        bench.reference_pairs()
        bench.reference_greedy()
        return bench.report(load_before)
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


class _Bench:
    """One run: the store, the sampled reference workload, and per stage the timings (``rows``),
    the identity checks (``checks``) and notes on extrapolation (``note``)."""

    def __init__(self, args, spec: dict, workdir, device):
        self.args, self.spec, self.device = args, spec, device
        self.m = m = args.models
        self.steps = min(args.steps, m - 1)
        t0 = time.perf_counter()
        self.st, built = open_or_make_store(workdir, spec, progress=not args.quiet)
        self.log(
            f"store: {'built' if built else 'reused'} {self.st.path} in {time.perf_counter() - t0:.1f} s "
            f"({m} models, {args.examples} test / {spec['calib_examples']} calib examples, "
            f"{args.classes} classes, {args.dtype})"
        )
        names = self.st.model_names()
        self.names = ["base"] + [x for x in names if x != "base"]
        self.y_cal, self.y_test = self.st.labels("calib"), self.st.labels("test")
        rs = np.random.default_rng(args.seed + 12345)
        sampled = args.reference_pairs is not None
        self.all_pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
        if sampled and args.reference_pairs < len(self.all_pairs):
            pick = rs.choice(len(self.all_pairs), size=args.reference_pairs, replace=False)
            self.ref_pairs = [self.all_pairs[p] for p in sorted(pick)]
        else:
            self.ref_pairs = self.all_pairs
        n_ref_models = args.reference_models or (min(3, m) if sampled else m)
        self.ref_models = sorted(rs.choice(m, size=min(n_ref_models, m), replace=False).tolist())
        ref_steps = (
            args.reference_greedy_steps
            if args.reference_greedy_steps is not None
            else (min(1, self.steps) if sampled else self.steps)
        )
        self.ref_steps = min(ref_steps, self.steps)
        self.rows, self.checks, self.note = {}, {}, {}

    def log(self, msg):
        if not self.args.quiet:
            print(msg, file=sys.stderr, flush=True)

    def fast(self) -> None:
        """The fast path's four stages, timed."""
        from norep.allpairs import fast_greedy_selection, pairwise_analysis
        from norep.engine._device import fit_temperatures

        args, st, names, device, rows, log = self.args, self.st, self.names, self.device, self.rows, self.log
        # one-time imports (torch, used for float16 conversion) are not part of any stage
        from norep.measures.calibration import _copy_rows

        _copy_rows(np.empty((1, 2), np.float32), np.zeros((1, 2), np.float16))
        log("fast: temperatures")

        def fast_temps():
            return fit_temperatures([st.logits(x, "calib") for x in names], self.y_cal, n_jobs=args.jobs, device=device)

        temps, t_fast, pk = timed(fast_temps)
        rows["temperature"] = {"fast": t_fast, "fast_rss": pk}
        log(f"  {t_fast:.2f} s; T from {min(temps):.4g} to {max(temps):.4g}")

        log("fast: all pairs (outcomes, ensemble accuracy, conversion rate)")
        logits_test = [st.logits(x, "test") for x in names]
        res, t_fast, pk = timed(
            pairwise_analysis,
            self.y_test,
            logits_test,
            temperatures=temps,
            names=names,
            k=args.k,
            chunk_size=args.chunk_size,
            theta=False,
            n_jobs=args.jobs,
            progress=not args.quiet,
            device=device,
        )
        rows["all_pairs"] = {"fast": t_fast, "fast_rss": pk}
        lv = res.levels
        self.tot = tot = max(1, sum(lv.values()))  # before theta histograms add their own count
        log(f"  {t_fast:.2f} s; decided " + ", ".join(f"{key}: {val / tot:.4%}" for key, val in lv.items()))

        log(f"fast: greedy selection ({self.m - 1} candidates, {self.steps} steps)")
        self.tmap = dict(zip(names, temps, strict=True))
        gres, t_fast, pk = timed(
            fast_greedy_selection,
            self.y_cal,
            {x: st.logits(x, "calib") for x in names},
            "base",
            self.steps,
            temperatures=self.tmap,
            candidates=names[1:],
            eval_y_true=self.y_test,
            eval_logits={x: st.logits(x, "test") for x in names},
            k=args.k,
            n_jobs=args.jobs,
            progress=False,
            device=device,
            eval_summaries=res,
        )
        rows["greedy"] = {"fast": t_fast, "fast_rss": pk}
        log(f"  {t_fast:.2f} s; selected {gres.selected}")

        log("fast: theta histograms (all pairs)")
        _, t_fast, pk = timed(res.compute_theta, 18, n_jobs=args.jobs)
        rows["theta"] = {"fast": t_fast, "fast_rss": pk}
        self.fast_peak = max(r["fast_rss"] for r in rows.values())
        self.temps, self.res, self.gres = temps, res, gres

    def reference_temperatures(self) -> None:
        """The plain temperature fits (on ``ref_models``), checked to 1e-6 relative."""
        st, names, temps, m = self.st, self.names, self.temps, self.m
        self.log(f"reference: temperatures ({len(self.ref_models)} of {m} models)")
        per = []
        ok = True
        with Peak() as pk:
            for i in self.ref_models:
                t0 = time.perf_counter()
                t_ref = reference_fit_temperature(st.logits(names[i], "calib"), self.y_cal)
                per.append(time.perf_counter() - t0)
                ok &= abs(t_ref - temps[i]) <= 1e-6 * t_ref
                if not abs(t_ref - temps[i]) <= 1e-6 * t_ref:
                    self.log(f"  MISMATCH {names[i]}: fast {temps[i]!r} reference {t_ref!r}")
        self.rows["temperature"].update(ref=float(np.mean(per)) * m, ref_rss=pk.peak)
        self.checks["temperature"] = ok
        if len(self.ref_models) < m:
            self.note["temperature"] = f"extrapolated from {len(self.ref_models)} models"

    def reference_pairs(self) -> None:
        """The plain pairs and theta histograms (on ``ref_pairs``), checked count by count."""
        st, names, temps, res, args = self.st, self.names, self.temps, self.res, self.args
        self.log(f"reference: all pairs ({len(self.ref_pairs)} of {len(self.all_pairs)} pairs)")
        edges = np.linspace(0.0, 90.0, 19)
        per_model_bytes = args.examples * args.classes * 4
        cache, soft_times = {}, []

        def probs_of(i):
            if i not in cache:
                t0 = time.perf_counter()
                p = reference_probs(st, names[i], "test", temps[i])
                soft_times.append(time.perf_counter() - t0)
                if (len(cache) + 1) * per_model_bytes > BUDGET:
                    cache.pop(next(iter(cache)))
                cache[i] = p
            return cache[i]

        pair_times, theta_times = [], []
        ok_pairs = ok_theta = True
        with Peak() as pk:
            for i, j in self.ref_pairs:
                pa, pb = probs_of(i), probs_of(j)
                t0 = time.perf_counter()
                cnt = reference_pair(self.y_test, pa, pb)
                pair_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                th = reference_theta(self.y_test, pa, pb, edges)
                theta_times.append(time.perf_counter() - t0)
                fast = {key: res.counts[key][i, j] for key in cnt}
                if any(int(fast[key]) != cnt[key] for key in cnt):
                    ok_pairs = False
                    self.log(f"  MISMATCH pair {names[i]}, {names[j]}: fast {fast} reference {cnt}")
                if not np.array_equal(th, res.theta_counts[i, j]):
                    ok_theta = False
                    self.log(f"  MISMATCH theta {names[i]}, {names[j]}")
        # plain cost: every model's probabilities once, then every pair
        soft = float(np.mean(soft_times)) if soft_times else 0.0
        n_all = len(self.all_pairs)
        self.rows["all_pairs"].update(ref=soft * self.m + float(np.mean(pair_times)) * n_all, ref_rss=pk.peak)
        self.rows["theta"].update(ref=float(np.mean(theta_times)) * n_all, ref_rss=pk.peak)
        self.checks["all_pairs"], self.checks["theta"] = ok_pairs, ok_theta
        if len(self.ref_pairs) < n_all:
            self.note["all_pairs"] = f"extrapolated from {len(self.ref_pairs)} pairs"
            self.note["theta"] = f"extrapolated from {len(self.ref_pairs)} pairs"
        cache.clear()

    def reference_greedy(self) -> None:
        """The plain greedy selection (``ref_steps`` steps), checked step by step."""
        st, tmap, steps, ref_steps, gres = self.st, self.tmap, self.steps, self.ref_steps, self.gres
        self.log(f"reference: greedy ({ref_steps} of {steps} steps)")
        cal_cache = {}
        fits = self.m * self.spec["calib_examples"] * self.args.classes * 4 <= BUDGET
        cand_soft = []

        def cal_probs(x):
            if x in cal_cache:
                return cal_cache[x]
            t0 = time.perf_counter()
            p = reference_probs(st, x, "calib", tmap[x])
            cand_soft.append(time.perf_counter() - t0)
            if fits:
                cal_cache[x] = p
            return p

        test_cache = {}

        def test_probs(x):
            if x not in test_cache:
                test_cache[x] = reference_probs(st, x, "test", tmap[x])
            return test_cache[x]

        with Peak() as pk:
            t0 = time.perf_counter()
            sel, accs, eaccs, evals = reference_greedy(
                self.y_cal, cal_probs, "base", self.names[1:], ref_steps, self.y_test, test_probs
            )
            t_ref = time.perf_counter() - t0
        total_evals = sum(self.m - 1 - s for s in range(steps))
        if ref_steps < steps:
            per_eval = t_ref / max(1, evals + ref_steps + 1)
            t_ref_full = per_eval * (total_evals + steps + 1)
            self.note["greedy"] = f"extrapolated from {ref_steps} step(s) ({evals} candidate evaluations)"
        else:
            t_ref_full = t_ref
        self.rows["greedy"].update(ref=t_ref_full, ref_rss=pk.peak)
        self.checks["greedy"] = (
            sel == gres.selected[:ref_steps]
            and accs == gres.accuracies[: ref_steps + 1]
            and eaccs == gres.eval_accuracies[: ref_steps + 1]
        )
        if not self.checks["greedy"]:
            self.log(
                f"  MISMATCH greedy: fast {gres.selected[:ref_steps]} {gres.accuracies[: ref_steps + 1]} "
                f"reference {sel} {accs}"
            )
        cal_cache.clear()
        test_cache.clear()

    def report(self, load_before: str) -> int:
        """Print the table and the final line; 0 when every stage is identical."""
        args, rows, checks, res, gres = self.args, self.rows, self.checks, self.res, self.gres
        total_fast = sum(r["fast"] for r in rows.values())
        total_ref = sum(r["ref"] for r in rows.values())
        identical = all(checks.values())
        print(
            f"# norep bench analyses: M={self.m} N={args.examples} (calib {self.spec['calib_examples']}) "
            f"C={args.classes} {args.dtype}, k={args.k}, chunk={args.chunk_size}, jobs={args.jobs}, "
            f"device={self.device or 'numpy'}"
        )
        for line in machine_lines():
            print(line)
        print(f"# load average before: {load_before}; after: {load_average()}")
        print(
            f"{'stage':<12} {'fast_s':>9} {'reference_s':>12} {'ratio':>8} {'fast_rss_gb':>12} "
            f"{'ref_rss_gb':>11} {'identical':>10}  note"
        )
        for stage, r in rows.items():
            print(
                f"{stage:<12} {r['fast']:>9.3f} {r['ref']:>12.3f} {r['ref'] / r['fast']:>8.1f} "
                f"{_fmt_gb(r['fast_rss']):>12} {_fmt_gb(r['ref_rss']):>11} "
                f"{str(checks[stage]).lower():>10}  {self.note.get(stage, '')}"
            )
        print(f"{'total':<12} {total_fast:>9.3f} {total_ref:>12.3f} {total_ref / total_fast:>8.1f}")
        lv, tot = res.levels, self.tot
        print(
            f"# decisions: {', '.join(f'{key} {val}' for key, val in lv.items())} (of {tot} pair-examples); "
            f"greedy levels { ({key: int(val) for key, val in getattr(gres, 'levels', {}).items()}) }"
        )
        print(
            f"# test accuracies: {min(res.accuracy):.3f} to {max(res.accuracy):.3f}; "
            f"best pair ensemble {np.max(res.ensemble_accuracy):.3f}; greedy eval "
            f"{gres.eval_accuracies[0]:.3f} -> {gres.eval_accuracies[-1]:.3f}"
        )
        if args.probe:
            pr = _probe_comparison(args, self.log)
            print(
                f"# probe {pr['n']} x {pr['d']} x {pr['classes']} classes: norep.measures.features.linear_probe "
                f"{pr['norep_s']:.2f} s (test acc {pr['norep_acc']:.4f}), sklearn lbfgs "
                f"{pr['sklearn_s']:.2f} s (test acc {pr['sklearn_acc']:.4f}); time ratio "
                f"{pr['sklearn_s'] / pr['norep_s']:.2f}, accuracy difference "
                f"{100 * (pr['norep_acc'] - pr['sklearn_acc']):+.2f} points"
            )
        speedup = total_ref / total_fast if total_fast > 0 else math.inf
        print(f"speedup={speedup:.1f} identical={str(identical).lower()} peak_rss_gb={self.fast_peak / 1e9:.2f}")
        return 0 if identical else 1


def _fmt_gb(b):
    return f"{b / 1e9:.2f}"


def _probe_comparison(args, log):
    """norep.measures.features.linear_probe vs scikit-learn's lbfgs LogisticRegression at a stated scale."""
    import time

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from norep.measures.features import linear_probe

    rng = np.random.default_rng(args.seed)
    n, d, k = args.probe_examples, args.probe_dim, args.probe_classes
    centers = rng.normal(size=(k, d)).astype(np.float32) * 0.35

    def make(nn):
        yy = rng.integers(0, k, size=nn)
        return (centers[yy] + rng.normal(size=(nn, d)).astype(np.float32)), yy

    xtr, ytr = make(n)
    xva, yva = make(max(1000, n // 5))
    xte, yte = make(max(1000, n // 5))
    c_value = 1.0
    log(f"probe: {n} x {d} features, {k} classes, C={c_value} (one C; standardised features)")
    t0 = time.perf_counter()
    res = linear_probe(xtr, ytr, xva, yva, xte, yte, Cs=[c_value])
    t_norep = time.perf_counter() - t0
    mu, sd = xtr.mean(0), xtr.std(0)
    t0 = time.perf_counter()
    clf = LogisticRegression(C=c_value, solver="lbfgs", max_iter=500, tol=1e-6)
    clf.fit((xtr - mu) / sd, ytr)
    t_sk = time.perf_counter() - t0
    acc_sk = float(np.mean(clf.predict((xte - mu) / sd) == yte))
    return {
        "n": n,
        "d": d,
        "classes": k,
        "norep_s": t_norep,
        "sklearn_s": t_sk,
        "norep_acc": float(res.test_accuracy),
        "sklearn_acc": acc_sk,
    }
