"""``norep zoo report``: per-category report of a store and verdicts on claims C1-C3."""

from __future__ import annotations

import argparse
import sys

HELP = "print the per-category report of a store"
DESCRIPTION = """\
Per category (REINIT -> DATASET): mean error inconsistency with the base model, ensemble gain and
conversion rate, with percentile-bootstrap 95% intervals over test examples, using in-band models
only (unless --all-models), then a verdict for each of the paper's claims C1-C3 and the test behind it.

examples:
  norep zoo report stores/fashion
  norep zoo report stores/fashion --all-models --csv report.csv
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="store directory")
    parser.add_argument("--split", default="test", help="evaluation split (default test)")
    parser.add_argument("--all-models", action="store_true", help="include models outside the accuracy band")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--csv", metavar="FILE", help="also write the per-model table as CSV")


def run(args: argparse.Namespace) -> int:
    from norep.store import Store
    from norep.zoo._report import format_report, zoo_report

    try:
        st = Store.open(args.store)
        rep = zoo_report(
            st, split=args.split, in_band_only=not args.all_models, n_resamples=args.resamples, seed=args.seed
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"norep: {exc}", file=sys.stderr)
        return 1
    print(format_report(rep))
    if args.csv:
        rep.per_model.to_csv(args.csv, index=False)
    return 0
