"""``norep zoo list``: the models of a store, or the paper's model registry (``--paper``)."""

from __future__ import annotations

import argparse

HELP = "list the models of a store, or the paper's registry"
DESCRIPTION = """\
List the models of a prediction store (name, category, method, head, temperature, accuracies), or
with --paper the paper's 59 models (Tables 1-3) with the public weights `norep extract` loads for
them and a status: exact, closest (public equivalent; see --details for what differs) or not public.

examples:
  norep zoo list stores/embedded
  norep zoo list --paper
  norep zoo list --paper --status exact --format csv
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", nargs="?", help="store directory to list")
    parser.add_argument("--paper", action="store_true", help="list the paper's model registry instead")
    parser.add_argument("--status", choices=["exact", "closest", "not public"], help="--paper: only this status")
    parser.add_argument("--details", action="store_true", help="--paper: add the 'differs' column")
    parser.add_argument("--format", choices=["table", "csv"], default="table", help="output format")


def run(args: argparse.Namespace) -> int:
    import sys

    import pandas as pd

    if args.paper == bool(args.store):
        print("norep: give a STORE to list, or --paper for the paper's registry", file=sys.stderr)
        return 1
    if args.paper:
        from norep.zoo.registry import paper_registry

        df = paper_registry()
        if args.status:
            df = df[df.status == args.status]
        cols = ["table", "model", "category", "method", "head_type", "paper_top1", "status", "load", "head"]
        df = df[cols + (["differs"] if args.details else [])]
    else:
        from norep.storage import Store

        try:
            st = Store.open(args.store)
        except (FileNotFoundError, ValueError) as exc:
            print(f"norep: {exc}", file=sys.stderr)
            return 1
        df = st.models()
        if df.empty:
            print(f"{args.store}: no models yet", file=sys.stderr)
            return 0
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False)
    else:
        with pd.option_context(
            "display.max_rows",
            None,
            "display.max_columns",
            None,
            "display.width",
            250,
            "display.max_colwidth",
            200,
            "display.float_format",
            "{:.4g}".format,
        ):
            print(df.to_string(index=False))
    return 0
