"""``norep zoo train``: train the embedded model zoo into a prediction store."""

from __future__ import annotations

import argparse
import os
import sys
import time

HELP = "train the embedded model zoo into a store"
DESCRIPTION = """\
Train the embedded study's model zoo (Fashion-MNIST, or scikit-learn's digits for tests) into a
prediction store: a base CNN and models in the paper's five categories REINIT, HPARAM, ARCH,
FWORK and DATASET, with logits on calib/test and embeddings on calib/test and the multi-label
downstream splits. Finished models whose recipe and data are unchanged are skipped, so an
interrupted run resumes. Prints a per-model timing table at the end.

Fashion-MNIST is read from $NOREP_DATA, Debian's dataset-fashion-mnist package, or the user cache.

Speed: the convolutional networks train under bfloat16 autocast where the CPU has native bfloat16
(--precision auto). OpenMP threads spin briefly while waiting when enough CPUs are idle at the
start (about 25% faster there) and sleep at once (OMP_WAIT_POLICY=PASSIVE) on a busy machine, where
spinning is slower; set OMP_WAIT_POLICY or GOMP_SPINCOUNT yourself to override.

examples:
  norep zoo train --preset fashion --out stores/fashion
  norep zoo train --preset digits --quick --out /tmp/digits
  norep zoo train --preset fashion --out stores/fashion --only base mlp
  norep zoo train --preset fashion --out stores/fashion-seed1 --seed 1   # an independent replicate
  norep zoo train --preset fashion --out stores/fashion --device auto    # on a CUDA GPU when present
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        choices=["fashion", "digits"],
        default="fashion",
        help="data set: Fashion-MNIST (default) or scikit-learn's digits (fast, for tests)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer, shorter models (every category still present), for CI"
    )
    parser.add_argument("--out", required=True, metavar="STORE", help="store directory (created if absent)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="replicate number: K > 0 trains every model with seeds no other replicate uses, on the "
        "same data splits (default 0)",
    )
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda", "auto"],
        default="cpu",
        help="where the networks train: cpu (default), cuda, or auto (cuda when a GPU is visible)",
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="train only these models (plus base and their dependencies)"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads while training (default 2)")
    parser.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="auto",
        help="training arithmetic: bf16 = bfloat16 autocast, about 1.2x faster on CPUs with "
        "native bfloat16 (AVX512-BF16/AMX); auto (default) uses it there and fp32 elsewhere; "
        "inference is always fp32",
    )
    parser.add_argument("--data", metavar="DIR", help="Fashion-MNIST folder (default: $NOREP_DATA, Debian, cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def idle_cpus(interval: float = 0.5) -> float | None:
    """How many CPUs were idle over the next ``interval`` seconds (from ``/proc/stat``; None elsewhere)."""

    def sample():
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
        v = [int(x) for x in lines[0].split()[1:]]
        n = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
        return v[3] + v[4], sum(v[:8]), n  # idle + iowait, total (without guest time), CPUs

    try:
        i0, t0, _ = sample()
        time.sleep(interval)
        i1, t1, n = sample()
    except (OSError, ValueError, IndexError):
        return None
    return n * (i1 - i0) / max(1, t1 - t0)


def choose_omp_wait(threads: int) -> str:
    """Set how OpenMP threads wait (before torch loads its OpenMP runtime), unless the user has.

    Measured on 2 cores, ResNet-24 training steps per second: threads that sleep at once
    (``OMP_WAIT_POLICY=PASSIVE``) 40 on an idle machine and 21 beside one busy process; threads that
    spin briefly first (``GOMP_SPINCOUNT=3000``) 51 idle but 16 beside a busy process; libgomp's
    default long spin 53 idle but 12 beside a busy process. So: a short spin when at least
    ``threads`` CPUs are idle now, else passive. Returns what was chosen, for the log.
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return "the environment's setting"
    idle = idle_cpus()
    if idle is not None and idle >= threads - 0.2:
        os.environ["GOMP_SPINCOUNT"] = "3000"
        return f"spinning briefly (GOMP_SPINCOUNT=3000): {idle:.1f} CPUs idle at the start"
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "sleeping (OMP_WAIT_POLICY=PASSIVE): " + (
        f"only {idle:.1f} CPUs idle at the start" if idle is not None else "CPU load unknown"
    )


def run(args: argparse.Namespace) -> int:
    if args.threads < 1:
        print("norep: --threads must be at least 1", file=sys.stderr)
        return 1
    omp = choose_omp_wait(args.threads)
    from norep.data import DataNotFoundError
    from norep.zoo._train import keep_freed_memory

    keep_freed_memory()
    from norep.zoo.embedded import format_timing_table, train_zoo

    try:
        table = train_zoo(
            args.out,
            preset=args.preset,
            quick=args.quick,
            seed=args.seed,
            only=args.only,
            data_path=args.data,
            progress=not args.no_progress,
            threads=args.threads,
            precision=args.precision,
            device=args.device,
        )
    except (DataNotFoundError, ValueError) as exc:
        print(f"norep: {exc}", file=sys.stderr)
        return 1
    print(format_timing_table(table))
    print(f"OpenMP threads waited by {omp}")
    return 0
