"""``norep bench analyses``: the fast all-pairs path against a plain reference, on a synthetic store.

The benchmark itself lives beside the library, in the repository's ``bench/`` folder (not installed
with the package): :mod:`bench.synthetic` builds the store, :mod:`bench.plain` is the plain
reference, :mod:`bench.analyses` times both and prints a table and the final line
``speedup=<x> identical=<true|false> peak_rss_gb=<y>``. This module holds the command's options.
"""

from __future__ import annotations

import argparse
import os

from norep.commands._bench import bench_module

HELP = "benchmark the all-pairs analyses: fast path vs plain reference on a synthetic store"
DESCRIPTION = """\
Build a synthetic store (M models of controllable accuracy with correlated errors: a shared
per-example difficulty, a global confusion component, a "lineage" component shared with the base
model whose weight falls from REINIT to DATASET, own noise; logits on realistic scales including
CLIP-like cosine logits that need T ~ 0.01; float16 on disk), then time each stage with the fast
library path and with a plain numpy/scipy reference (bench/plain.py), check that results
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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", type=int, default=20, help="number of models M (default 20)")
    parser.add_argument("--examples", type=int, default=10000, help="examples N per split (default 10000)")
    parser.add_argument("--classes", type=int, default=1000, help="classes C (default 1000)")
    parser.add_argument(
        "--calib-examples",
        type=int,
        default=None,
        help="examples of the calib split (temperatures, greedy selection; default N)",
    )
    parser.add_argument("--dtype", choices=["float16", "float32"], default="float16", help="logits on disk")
    parser.add_argument(
        "--workdir", default=None, help="where the synthetic store goes (default: a temporary directory, removed)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the store (reused by a later identical run)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic store")
    parser.add_argument("--steps", type=int, default=10, help="greedy selection steps (default 10)")
    parser.add_argument(
        "--reference-pairs",
        type=int,
        default=None,
        help="time/check the reference on K random pairs only and extrapolate",
    )
    parser.add_argument(
        "--reference-models",
        type=int,
        default=None,
        help="reference temperature fits on R random models (default: all, or 3 with --reference-pairs)",
    )
    parser.add_argument(
        "--reference-greedy-steps",
        type=int,
        default=None,
        help="reference greedy steps (default: all, or 1 with --reference-pairs)",
    )
    parser.add_argument("--k", type=int, default=2, help="wrong classes kept per example (default 2)")
    parser.add_argument("--chunk-size", type=int, default=512, help="examples per all-pairs chunk")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="threads for the per-model passes of the fast path (default: the number of CPU cores)",
    )
    parser.add_argument(
        "--device",
        default="numpy",
        help="where the fast path's heavy stages run: numpy (default), auto, cpu, cuda, "
        "cuda:N (torch devices; results are identical)",
    )
    parser.add_argument(
        "--probe",
        action="store_true",
        help="also compare norep.measures.features.linear_probe with scikit-learn's lbfgs",
    )
    parser.add_argument("--probe-examples", type=int, default=10000, help="probe training examples")
    parser.add_argument("--probe-dim", type=int, default=256, help="probe feature dimension")
    parser.add_argument("--probe-classes", type=int, default=100, help="probe classes")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    import sys

    try:
        bench = bench_module("analyses")
    except FileNotFoundError as exc:
        print(f"norep: {exc}", file=sys.stderr)
        return 1
    return bench.run(args)
