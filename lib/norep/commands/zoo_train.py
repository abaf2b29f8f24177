"""``norep zoo train``: train the embedded model zoo into a prediction store (issue 3)."""

from __future__ import annotations

import argparse
import os
import sys

HELP = "train the embedded model zoo into a store"
DESCRIPTION = """\
Train the embedded study's model zoo (Fashion-MNIST, or scikit-learn's digits for tests) into a
prediction store: a base ResNet and models in the paper's five categories REINIT, HPARAM, ARCH,
FWORK and DATASET, with calibrated logits on calib/test and embeddings on calib/test and the
multi-label downstream splits. Finished models whose recipe and data are unchanged are skipped, so an
interrupted run resumes. Prints a per-model timing table at the end.

Fashion-MNIST is read from $NOREP_DATA, Debian's dataset-fashion-mnist package, or the user cache.

examples:
  norep zoo train --preset fashion --out stores/fashion
  norep zoo train --preset digits --quick --out /tmp/digits
  norep zoo train --preset fashion --out stores/fashion --only base vit
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=["fashion", "digits"], default="fashion",
                        help="data set: Fashion-MNIST (default) or scikit-learn's digits (fast, for tests)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer, shorter models (every category still present), for CI")
    parser.add_argument("--out", required=True, metavar="STORE", help="store directory (created if absent)")
    parser.add_argument("--seed", type=int, default=0, help="offset of every model's seed (default 0)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="train only these models (plus base and their dependencies)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads while training (default 2)")
    parser.add_argument("--data", metavar="DIR", help="Fashion-MNIST folder (default: $NOREP_DATA, Debian, cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    # OpenMP threads that sleep instead of spinning: much faster on a shared machine. Must be set
    # before torch loads its OpenMP runtime.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from norep.data import DataNotFoundError
    from norep.zoo.embedded import format_timing_table, train_zoo

    if args.threads < 1:
        print("norep: --threads must be at least 1", file=sys.stderr)
        return 2
    try:
        table = train_zoo(args.out, preset=args.preset, quick=args.quick, seed=args.seed, only=args.only,
                          data_path=args.data, progress=not args.no_progress, threads=args.threads)
    except (DataNotFoundError, ValueError) as exc:
        print(f"norep: {exc}", file=sys.stderr)
        return 1
    print(format_timing_table(table))
    return 0
