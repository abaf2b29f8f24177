"""``norep bench analyses``: the fast all-pairs path against a plain reference, on a synthetic store.

Builds (or reuses) a synthetic prediction store of realistic structure, runs the analysis
set (temperature fitting; all-pairs outcomes, ensemble accuracy and conversion rate; greedy
selection; theta histograms) with the library's fast path (:mod:`norep.calibration`,
:mod:`norep.allpairs`) and with the plain reference implementation kept in this module, checks the
results are identical and prints a table and the final line
``speedup=<x> identical=<true|false> peak_rss_gb=<y>``.
"""

from __future__ import annotations

import argparse
import os

HELP = "benchmark the all-pairs analyses: fast path vs plain reference on a synthetic store"
DESCRIPTION = """\
Build a synthetic store (M models of controllable accuracy with correlated errors: a shared
per-example difficulty, a global confusion component, a "lineage" component shared with the base
model whose weight falls from REINIT to DATASET, own noise; logits on realistic scales including
CLIP-like cosine logits that need T ~ 0.01; float16 on disk), then time each stage with the fast
library path and with a plain numpy/scipy reference kept inside this command, check that results
are identical (exactly for counts and accuracies, to 1e-6 relative for temperatures) and print:

  stage | fast s | reference s | ratio | fast peak RSS | reference peak RSS | identical

ending with `speedup=<total ref / total fast> identical=<true|false> peak_rss_gb=<fast path peak>`.
Both paths use the fast path's temperatures after the temperature stage, so that the later stages
compare the same probabilities bit for bit.

The output starts with the machine (CPU model, SIMD level numpy and torch use, BLAS core type)
and the load average before the run, and ends with the load average after it. --device runs the
fast path's heavy stages on a torch device ("cuda", "cpu"; "auto": CUDA if available, else numpy).

At paper scale the full reference takes very long: --reference-pairs K times it on K random pairs
(and --reference-models R models for the temperature fits, --reference-greedy-steps S greedy
steps), checks identity on those, and extrapolates its time to the full set (said in the output).

examples:
  norep bench analyses --models 20 --examples 10000 --classes 1000
  norep bench analyses --models 20 --examples 10000 --classes 1000 --device cuda
  norep bench analyses --models 82 --examples 50000 --classes 1000 --workdir /tmp/nb --reference-pairs 40
  norep bench analyses --models 6 --examples 500 --classes 20 --probe
"""

CATEGORY_SHARE = {"REINIT": 0.7, "HPARAM": 0.55, "ARCH": 0.35, "FWORK": 0.25, "DATASET": 0.12}
"""Weight of the base model's "lineage" noise in each category's logits (error correlation)."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=int, default=20, help="number of models M (default 20)")
    parser.add_argument("--examples", type=int, default=10000, help="examples N per split (default 10000)")
    parser.add_argument("--classes", type=int, default=1000, help="classes C (default 1000)")
    parser.add_argument("--calib-examples", type=int, default=None,
                        help="examples of the calib split (temperatures, greedy selection; default N)")
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="logits on disk")
    parser.add_argument("--workdir", default=None,
                        help="where the synthetic store goes (default: a temporary directory, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the store (reused by a later identical run)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic store")
    parser.add_argument("--steps", type=int, default=10, help="greedy selection steps (default 10)")
    parser.add_argument("--reference-pairs", type=int, default=None,
                        help="time/check the reference on K random pairs only and extrapolate")
    parser.add_argument("--reference-models", type=int, default=None,
                        help="reference temperature fits on R random models (default: all, or 3 with "
                             "--reference-pairs)")
    parser.add_argument("--reference-greedy-steps", type=int, default=None,
                        help="reference greedy steps (default: all, or 1 with --reference-pairs)")
    parser.add_argument("--k", type=int, default=2, help="wrong classes kept per example (default 2)")
    parser.add_argument("--chunk-size", type=int, default=512, help="examples per all-pairs chunk")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="threads for the per-model passes of the fast path "
                             "(default: the number of CPU cores)")
    parser.add_argument("--device", default="numpy",
                        help="where the fast path's heavy stages run: numpy (default), auto, cpu, cuda, "
                             "cuda:N (torch devices; results are identical)")
    parser.add_argument("--probe", action="store_true",
                        help="also compare norep.features.linear_probe with scikit-learn's lbfgs")
    parser.add_argument("--probe-examples", type=int, default=10000, help="probe training examples")
    parser.add_argument("--probe-dim", type=int, default=256, help="probe feature dimension")
    parser.add_argument("--probe-classes", type=int, default=100, help="probe classes")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


# --------------------------------------------------------------------------------------------------
# synthetic store


def _accuracy_to_margin(targets, n_classes, sigma_d, sigma_e, rng, n_draws=20000):
    """Mean label margin giving each target top-1 accuracy, by Monte Carlo on the noise model."""
    import numpy as np

    best_other = np.empty(n_draws)
    step = max(1, (1 << 22) // max(1, n_classes - 1))
    for a in range(0, n_draws, step):
        b = min(n_draws, a + step)
        best_other[a:b] = rng.standard_normal((b - a, n_classes - 1), dtype=np.float32).max(axis=1)
    x = rng.standard_normal(n_draws) - best_other - sigma_d * rng.standard_normal(n_draws) \
        + sigma_e * rng.standard_normal(n_draws)
    # accuracy(mu) = P(mu + x > 0)  =>  mu = -quantile(x, 1 - accuracy)
    return [-float(np.quantile(x, 1.0 - t)) for t in targets]


def synthetic_spec(models: int, examples: int, classes: int, *, calib_examples=None,
                   dtype: str = "float16", seed: int = 0) -> dict:
    """The parameters of a synthetic store (recorded in its info, to reuse an identical one)."""
    return {"generator": "norep.bench.synthetic/1", "models": int(models), "examples": int(examples),
            "calib_examples": int(calib_examples or examples), "classes": int(classes),
            "dtype": dtype, "seed": int(seed)}


def make_synthetic_store(path, spec: dict, *, progress: bool = False):
    """Create a synthetic store of ``spec`` at ``path`` (see DESCRIPTION for the structure).

    Model 0 is ``base`` (test accuracy about 0.76); the others cycle through the five categories
    with accuracies drawn per category; a third of the DATASET models have CLIP-like logit scales.
    Temperatures are left at 1.0 in the store (the benchmark fits them).
    """
    import numpy as np

    from norep import CATEGORIES
    from norep.store import Store

    m, n, c = spec["models"], spec["examples"], spec["classes"]
    n_cal = spec["calib_examples"]
    dt = np.dtype(spec["dtype"])
    rng = np.random.default_rng(spec["seed"])
    sigma_d, sigma_e, share_global = 1.0, 0.5, 0.15

    cats = ["ARCH"]
    order = ["ARCH", "DATASET", "FWORK", "HPARAM", "ARCH", "DATASET", "REINIT", "FWORK", "ARCH", "HPARAM"]
    while len(cats) < m:
        cats.append(order[(len(cats) - 1) % len(order)])
    acc_range = {"REINIT": (0.74, 0.78), "HPARAM": (0.68, 0.78), "ARCH": (0.60, 0.80),
                 "FWORK": (0.60, 0.78), "DATASET": (0.50, 0.75)}
    targets = [0.76] + [float(rng.uniform(*acc_range[cat])) for cat in cats[1:]]
    margins = _accuracy_to_margin(targets, c, sigma_d, sigma_e, rng)
    counters = {cat: 0 for cat in CATEGORIES}
    models = []
    for i, cat in enumerate(cats):
        if i == 0:
            name, share = "base", 0.7
        else:
            counters[cat] += 1
            name, share = f"{cat.lower()}_{counters[cat]:02d}", CATEGORY_SHARE[cat]
        clip_like = cat == "DATASET" and counters[cat] % 3 == 1
        scale = float(rng.uniform(0.015, 0.03)) if clip_like else float(rng.uniform(1.5, 3.0))
        models.append({"name": name, "category": cat, "share": share, "scale": scale,
                       "margin": margins[i], "target_accuracy": targets[i], "clip_like": clip_like})

    splits = {}
    shared = {}
    for split, ns in (("calib", n_cal), ("test", n)):
        y = rng.integers(0, c, size=ns)
        splits[split] = y
        shared[split] = {
            "y": y,
            "d": rng.standard_normal(ns).astype(np.float32),
            "G": rng.standard_normal((ns, c), dtype=np.float32).astype(np.float16),
            "B": rng.standard_normal((ns, c), dtype=np.float32).astype(np.float16),
        }
    st = Store.create(path, dataset=f"synthetic-{c}", class_names=[f"class_{j}" for j in range(c)],
                      splits=splits, info={"base_model": "base", "synthetic": spec,
                                           "accuracy_band": [0.74, 0.78]})
    it = models
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(models, desc="synthetic store", unit="model")
    for i, spec_m in enumerate(it):
        mrng = np.random.default_rng([spec["seed"], 1 + i])
        logits = {}
        for split, sh in shared.items():
            ns = len(sh["y"])
            out = np.empty((ns, c), dtype=dt)
            a_g = np.float32(np.sqrt(share_global))
            a_b = np.float32(np.sqrt(spec_m["share"]))
            a_e = np.float32(np.sqrt(max(0.0, 1.0 - share_global - spec_m["share"])))
            margin = (spec_m["margin"] - sigma_d * sh["d"]
                      + sigma_e * mrng.standard_normal(ns).astype(np.float32))
            step = max(1, (1 << 21) // c)
            for a in range(0, ns, step):
                b = min(ns, a + step)
                z = mrng.standard_normal((b - a, c), dtype=np.float32)
                z *= a_e
                z += a_g * sh["G"][a:b]
                z += a_b * sh["B"][a:b]
                z[np.arange(b - a), sh["y"][a:b]] += margin[a:b]
                z *= np.float32(spec_m["scale"])
                out[a:b] = z
            logits[split] = out
        st.add_model(spec_m["name"], logits=logits, meta={
            "category": spec_m["category"], "method": f"synthetic ({spec_m['category'].lower()})",
            "data": "synthetic", "head": "linear", "source": "norep.bench", "temperature": 1.0,
            "recipe": {k: v for k, v in spec_m.items() if k != "name"}, "seed": spec["seed"]})
        del logits
    return st


def open_or_make_store(workdir, spec: dict, *, progress: bool = False):
    """Reuse ``workdir/store`` if it holds a store of exactly ``spec``, else (re)build it."""
    import shutil
    from pathlib import Path

    from norep.store import Store

    path = Path(workdir) / "store"
    if path.exists():
        try:
            st = Store.open(path)
            if st.info.get("synthetic") == spec and len(st.model_names()) == spec["models"]:
                return st, False
        except Exception:  # noqa: BLE001 - anything unreadable is rebuilt
            pass
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_synthetic_store(path, spec, progress=progress), True


# --------------------------------------------------------------------------------------------------
# measuring


class _Peak:
    """Peak resident set size of this process while the block runs (sampled every 5 ms)."""

    def __enter__(self):
        import threading

        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(0.005):
                self.peak = max(self.peak, self._proc.memory_info().rss)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)
        return False


def machine_lines() -> list[str]:
    """What the figures were measured on: CPU model and SIMD flags, the SIMD level numpy and torch
    dispatch to, OpenBLAS's core type, thread counts (threadpoolctl)."""
    import os
    import platform

    lines = []
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name") and model in ("unknown", "", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    simd = [f for f in ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_bf16") if f in flags]
    lines.append(f"# cpu: {model}; {os.cpu_count()} logical CPUs; flags: {' '.join(simd) or 'no AVX'}")
    try:
        import numpy as np
        from numpy._core._multiarray_umath import (
            __cpu_baseline__,
            __cpu_dispatch__,
            __cpu_features__,
        )

        found = [f for f in __cpu_dispatch__ if __cpu_features__.get(f)]
        lines.append(f"# numpy {np.__version__}: SIMD baseline {' '.join(__cpu_baseline__[-1:])}, dispatch to "
                     f"{' '.join(found) or 'none'}")
    except Exception:  # noqa: BLE001 - informative only
        pass
    try:
        import torch

        lines.append(f"# torch {torch.__version__}: CPU capability {torch.backends.cpu.get_cpu_capability()}, "
                     f"{torch.get_num_threads()} threads, CUDA {'available' if torch.cuda.is_available() else 'absent'}")
    except Exception:  # noqa: BLE001
        pass
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                lines.append(f"# BLAS {info.get('internal_api')} {info.get('version')}: core type "
                             f"{info.get('architecture')}, {info.get('num_threads')} threads")
    except Exception:  # noqa: BLE001
        pass
    env = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "NPY_DISABLE_CPU_FEATURES",
                                      "OPENBLAS_CORETYPE") if k in os.environ}
    if env:
        lines.append("# environment: " + " ".join(f"{k}={v!r}" for k, v in env.items()))
    return lines


def load_average() -> str:
    try:
        with open("/proc/loadavg") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:  # pragma: no cover - not Linux
        import os

        return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def _timed(fn, *a, **kw):
    import time

    with _Peak() as pk:
        t0 = time.perf_counter()
        out = fn(*a, **kw)
        dt = time.perf_counter() - t0
    return out, dt, pk.peak


# --------------------------------------------------------------------------------------------------
# the plain reference (deliberately straightforward numpy/scipy; not the library's fast path)


def reference_fit_temperature(logits, y) -> float:
    """Plain temperature fit: bounded Brent in log T on the float64 NLL of the whole matrix."""
    import math

    import numpy as np
    from scipy.optimize import minimize_scalar
    from scipy.special import logsumexp

    z = np.asarray(logits, dtype=np.float64)
    zy = z[np.arange(len(y)), y]

    def nll(u):
        t = math.exp(u)
        return float(np.mean(logsumexp(z / t, axis=1) - zy / t))

    res = minimize_scalar(nll, bounds=(math.log(1e-3), math.log(1e3)), method="bounded",
                          options={"xatol": 1e-10, "maxiter": 500})
    return math.exp(res.x)


def reference_probs(st, name, split, temperature):
    """Calibrated probabilities as the library defines them (the definition both paths share)."""
    from norep.calibration import softmax

    return softmax(st.logits(name, split), temperature)


def reference_pair(y, pa, pb):
    """Counts of one pair, plainly: member argmaxes, the float64 mean ensemble's argmax."""
    import numpy as np

    ca = pa.argmax(axis=1) == y
    cb = pb.argmax(axis=1) == y
    ens = pa.astype(np.float64) + pb
    ens /= 2.0
    ce = ens.argmax(axis=1) == y
    return {"both_correct": int(np.sum(ca & cb)), "only_a": int(np.sum(ca & ~cb)),
            "only_b": int(np.sum(~ca & cb)), "both_wrong": int(np.sum(~ca & ~cb)),
            "ensemble_correct": int(np.sum(ce)), "converted": int(np.sum(ce & (ca != cb)))}


def reference_theta(y, pa, pb, edges):
    """Theta histogram counts of one pair, plainly (np.histogram per outcome)."""
    import numpy as np

    th = np.degrees(np.arctan2(pa.max(axis=1).astype(np.float64), pb.max(axis=1).astype(np.float64)))
    ca = pa.argmax(axis=1) == y
    cb = pb.argmax(axis=1) == y
    out = []
    for mask in (ca & cb, ca & ~cb, ~ca & cb, ~ca & ~cb):
        out.append(np.histogram(th[mask], bins=edges)[0])
    return np.stack(out)


def reference_greedy(y, get_probs, base, candidates, steps, ey, get_eval_probs):
    """Plain greedy selection: every candidate, every step, (sum + p) / K and an argmax.

    Returns (selected, accuracies, eval_accuracies, n_evaluations).
    """
    import numpy as np

    total = np.zeros(get_probs(base).shape, dtype=np.float64)
    total += get_probs(base)
    members = 1
    accs = [float(np.mean(total.argmax(axis=1) == y))]
    selected, available, evals = [], list(candidates), 0
    for _ in range(steps):
        best, best_acc = None, -1.0
        for name in available:
            trial = total + get_probs(name)
            trial /= members + 1
            acc = float(np.mean(trial.argmax(axis=1) == y))
            evals += 1
            if acc > best_acc:
                best, best_acc = name, acc
        total += get_probs(best)
        members += 1
        selected.append(best)
        accs.append(best_acc)
        available.remove(best)
    etotal = np.zeros(get_eval_probs(base).shape, dtype=np.float64)
    etotal += get_eval_probs(base)
    eaccs = [float(np.mean(etotal.argmax(axis=1) == ey))]
    for kk, name in enumerate(selected, start=2):
        etotal += get_eval_probs(name)
        eaccs.append(float(np.mean((etotal / kk).argmax(axis=1) == ey)))
    return selected, accs, eaccs, evals


# --------------------------------------------------------------------------------------------------
# the command


def _fmt_gb(b):
    return f"{b / 1e9:.2f}"


def _probe_comparison(args, log):
    """norep.features.linear_probe vs scikit-learn's lbfgs LogisticRegression at a stated scale."""
    import time

    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from norep.features import linear_probe

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
    return {"n": n, "d": d, "classes": k, "norep_s": t_norep, "sklearn_s": t_sk,
            "norep_acc": float(res.test_accuracy), "sklearn_acc": acc_sk}


def run(args: argparse.Namespace) -> int:
    import math
    import shutil
    import sys
    import tempfile
    import time

    import numpy as np

    from norep.allpairs import fast_greedy_selection, pairwise_analysis
    from norep.engine import DeviceError, fit_temperatures, resolve_device

    def log(msg):
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

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
    m = args.models
    steps = min(args.steps, m - 1)
    spec = synthetic_spec(m, args.examples, args.classes, calib_examples=args.calib_examples,
                          dtype=args.dtype, seed=args.seed)
    tmp = None
    if args.workdir:
        workdir = args.workdir
    else:
        tmp = tempfile.mkdtemp(prefix="norep-bench-")
        workdir = tmp
    try:
        t0 = time.perf_counter()
        st, built = open_or_make_store(workdir, spec, progress=not args.quiet)
        log(f"store: {'built' if built else 'reused'} {st.path} in {time.perf_counter() - t0:.1f} s "
            f"({m} models, {args.examples} test / {spec['calib_examples']} calib examples, "
            f"{args.classes} classes, {args.dtype})")
        names = st.model_names()
        names = ["base"] + [x for x in names if x != "base"]
        y_cal, y_test = st.labels("calib"), st.labels("test")
        rs = np.random.default_rng(args.seed + 12345)
        sampled = args.reference_pairs is not None
        all_pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
        if sampled and args.reference_pairs < len(all_pairs):
            pick = rs.choice(len(all_pairs), size=args.reference_pairs, replace=False)
            ref_pairs = [all_pairs[p] for p in sorted(pick)]
        else:
            ref_pairs = all_pairs
        n_ref_models = args.reference_models or (min(3, m) if sampled else m)
        ref_models = sorted(rs.choice(m, size=min(n_ref_models, m), replace=False).tolist())
        ref_steps = args.reference_greedy_steps if args.reference_greedy_steps is not None else (
            min(1, steps) if sampled else steps)
        ref_steps = min(ref_steps, steps)

        rows = {}
        checks = {}
        # one-time imports (torch, used for float16 conversion) are not part of any stage
        from norep.calibration import _copy_rows

        _copy_rows(np.empty((1, 2), np.float32), np.zeros((1, 2), np.float16))
        # ---------------------------------------------------------------- fast path
        log("fast: temperatures")

        def fast_temps():
            return fit_temperatures([st.logits(x, "calib") for x in names], y_cal, n_jobs=args.jobs,
                                    device=device)

        temps, t_fast, pk = _timed(fast_temps)
        rows["temperature"] = {"fast": t_fast, "fast_rss": pk}
        log(f"  {t_fast:.2f} s; T from {min(temps):.4g} to {max(temps):.4g}")

        log("fast: all pairs (outcomes, ensemble accuracy, conversion rate)")
        logits_test = [st.logits(x, "test") for x in names]
        res, t_fast, pk = _timed(pairwise_analysis, y_test, logits_test, temperatures=temps, names=names,
                                 k=args.k, chunk_size=args.chunk_size, theta=False, n_jobs=args.jobs,
                                 progress=not args.quiet, device=device)
        rows["all_pairs"] = {"fast": t_fast, "fast_rss": pk}
        lv = res.levels
        tot = max(1, sum(lv.values()))
        log(f"  {t_fast:.2f} s; decided " + ", ".join(f"{key}: {val / tot:.4%}" for key, val in lv.items()))

        log(f"fast: greedy selection ({m - 1} candidates, {steps} steps)")
        tmap = dict(zip(names, temps, strict=True))
        gres, t_fast, pk = _timed(
            fast_greedy_selection, y_cal, {x: st.logits(x, "calib") for x in names}, "base", steps,
            temperatures=tmap, candidates=names[1:], eval_y_true=y_test,
            eval_logits={x: st.logits(x, "test") for x in names}, k=args.k, n_jobs=args.jobs,
            progress=False, device=device, eval_summaries=res)
        rows["greedy"] = {"fast": t_fast, "fast_rss": pk}
        log(f"  {t_fast:.2f} s; selected {gres.selected}")

        log("fast: theta histograms (all pairs)")
        _, t_fast, pk = _timed(res.compute_theta, 18)
        rows["theta"] = {"fast": t_fast, "fast_rss": pk}
        fast_peak = max(r["fast_rss"] for r in rows.values())

        # ---------------------------------------------------------------- reference
        note = {}
        log(f"reference: temperatures ({len(ref_models)} of {m} models)")
        per = []
        ok = True
        with _Peak() as pk:
            for i in ref_models:
                t0 = time.perf_counter()
                t_ref = reference_fit_temperature(st.logits(names[i], "calib"), y_cal)
                per.append(time.perf_counter() - t0)
                ok &= abs(t_ref - temps[i]) <= 1e-6 * t_ref
                if not abs(t_ref - temps[i]) <= 1e-6 * t_ref:
                    log(f"  MISMATCH {names[i]}: fast {temps[i]!r} reference {t_ref!r}")
        rows["temperature"].update(ref=float(np.mean(per)) * m, ref_rss=pk.peak)
        checks["temperature"] = ok
        if len(ref_models) < m:
            note["temperature"] = f"extrapolated from {len(ref_models)} models"

        log(f"reference: all pairs ({len(ref_pairs)} of {len(all_pairs)} pairs)")
        edges = np.linspace(0.0, 90.0, 19)
        budget = 3e9  # keep at most this many bytes of reference probabilities in memory
        per_model_bytes = args.examples * args.classes * 4
        cache, soft_times = {}, []

        def probs_of(i):
            if i not in cache:
                t0 = time.perf_counter()
                p = reference_probs(st, names[i], "test", temps[i])
                soft_times.append(time.perf_counter() - t0)
                if (len(cache) + 1) * per_model_bytes > budget:
                    cache.pop(next(iter(cache)))
                cache[i] = p
            return cache[i]

        pair_times, theta_times = [], []
        ok_pairs = ok_theta = True
        with _Peak() as pk:
            for i, j in ref_pairs:
                pa, pb = probs_of(i), probs_of(j)
                t0 = time.perf_counter()
                cnt = reference_pair(y_test, pa, pb)
                pair_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                th = reference_theta(y_test, pa, pb, edges)
                theta_times.append(time.perf_counter() - t0)
                fast = {"both_correct": res.counts["both_correct"][i, j], "only_a": res.counts["only_a"][i, j],
                        "only_b": res.counts["only_b"][i, j], "both_wrong": res.counts["both_wrong"][i, j],
                        "ensemble_correct": res.counts["ensemble_correct"][i, j],
                        "converted": res.counts["converted"][i, j]}
                if any(int(fast[key]) != cnt[key] for key in cnt):
                    ok_pairs = False
                    log(f"  MISMATCH pair {names[i]}, {names[j]}: fast {fast} reference {cnt}")
                if not np.array_equal(th, res.theta_counts[i, j]):
                    ok_theta = False
                    log(f"  MISMATCH theta {names[i]}, {names[j]}")
        # plain cost: every model's probabilities once, then every pair
        soft = float(np.mean(soft_times)) if soft_times else 0.0
        rows["all_pairs"].update(ref=soft * m + float(np.mean(pair_times)) * len(all_pairs), ref_rss=pk.peak)
        rows["theta"].update(ref=float(np.mean(theta_times)) * len(all_pairs), ref_rss=pk.peak)
        checks["all_pairs"], checks["theta"] = ok_pairs, ok_theta
        if len(ref_pairs) < len(all_pairs):
            note["all_pairs"] = f"extrapolated from {len(ref_pairs)} pairs"
            note["theta"] = f"extrapolated from {len(ref_pairs)} pairs"
        cache.clear()

        log(f"reference: greedy ({ref_steps} of {steps} steps)")
        cal_cache = {}
        fits = m * spec["calib_examples"] * args.classes * 4 <= budget
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

        with _Peak() as pk:
            t0 = time.perf_counter()
            sel, accs, eaccs, evals = reference_greedy(y_cal, cal_probs, "base", names[1:], ref_steps,
                                                       y_test, test_probs)
            t_ref = time.perf_counter() - t0
        total_evals = sum(m - 1 - s for s in range(steps))
        if ref_steps < steps:
            per_eval = t_ref / max(1, evals + ref_steps + 1)
            t_ref_full = per_eval * (total_evals + steps + 1)
            note["greedy"] = f"extrapolated from {ref_steps} step(s) ({evals} candidate evaluations)"
        else:
            t_ref_full = t_ref
        rows["greedy"].update(ref=t_ref_full, ref_rss=pk.peak)
        checks["greedy"] = (sel == gres.selected[:ref_steps] and accs == gres.accuracies[: ref_steps + 1]
                            and eaccs == gres.eval_accuracies[: ref_steps + 1])
        if not checks["greedy"]:
            log(f"  MISMATCH greedy: fast {gres.selected[:ref_steps]} {gres.accuracies[:ref_steps + 1]} "
                f"reference {sel} {accs}")
        cal_cache.clear()
        test_cache.clear()

        # ---------------------------------------------------------------- report
        total_fast = sum(r["fast"] for r in rows.values())
        total_ref = sum(r["ref"] for r in rows.values())
        identical = all(checks.values())
        print(f"# norep bench analyses: M={m} N={args.examples} (calib {spec['calib_examples']}) "
              f"C={args.classes} {args.dtype}, k={args.k}, chunk={args.chunk_size}, jobs={args.jobs}, "
              f"device={device or 'numpy'}")
        for line in machine_lines():
            print(line)
        print(f"# load average before: {load_before}; after: {load_average()}")
        print(f"{'stage':<12} {'fast_s':>9} {'reference_s':>12} {'ratio':>8} {'fast_rss_gb':>12} "
              f"{'ref_rss_gb':>11} {'identical':>10}  note")
        for stage, r in rows.items():
            print(f"{stage:<12} {r['fast']:>9.3f} {r['ref']:>12.3f} {r['ref'] / r['fast']:>8.1f} "
                  f"{_fmt_gb(r['fast_rss']):>12} {_fmt_gb(r['ref_rss']):>11} "
                  f"{str(checks[stage]).lower():>10}  {note.get(stage, '')}")
        print(f"{'total':<12} {total_fast:>9.3f} {total_ref:>12.3f} {total_ref / total_fast:>8.1f}")
        print(f"# decisions: {', '.join(f'{key} {val}' for key, val in lv.items())} (of {tot} pair-examples); "
              f"greedy levels {({key: int(val) for key, val in getattr(gres, 'levels', {}).items()})}")
        print(f"# test accuracies: {min(res.accuracy):.3f} to {max(res.accuracy):.3f}; "
              f"best pair ensemble {np.max(res.ensemble_accuracy):.3f}; greedy eval "
              f"{gres.eval_accuracies[0]:.3f} -> {gres.eval_accuracies[-1]:.3f}")
        if args.probe:
            pr = _probe_comparison(args, log)
            print(f"# probe {pr['n']} x {pr['d']} x {pr['classes']} classes: norep.features.linear_probe "
                  f"{pr['norep_s']:.2f} s (test acc {pr['norep_acc']:.4f}), sklearn lbfgs "
                  f"{pr['sklearn_s']:.2f} s (test acc {pr['sklearn_acc']:.4f}); time ratio "
                  f"{pr['sklearn_s'] / pr['norep_s']:.2f}, accuracy difference "
                  f"{100 * (pr['norep_acc'] - pr['sklearn_acc']):+.2f} points")
        speedup = total_ref / total_fast if total_fast > 0 else math.inf
        print(f"speedup={speedup:.1f} identical={str(identical).lower()} peak_rss_gb={fast_peak / 1e9:.2f}")
        return 0 if identical else 1
    finally:
        if tmp is not None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
