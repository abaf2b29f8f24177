"""``norep store verify STORE``: check checksums and shapes of every array in a store."""

from __future__ import annotations

import argparse
import sys

HELP = "check a store's checksums and shapes"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="path of the prediction store")


def run(args: argparse.Namespace) -> int:
    from norep.store import Store

    try:
        report = Store.open(args.store).verify()
    except (FileNotFoundError, ValueError) as exc:
        print(f"norep: {exc}", file=sys.stderr)
        return 1
    print(f"ok: {report['models']} models, {report['arrays']} arrays verified")
    if report["leftovers"]:
        print(f"note: {len(report['leftovers'])} leftover temporary directories of interrupted writes "
              "(harmless, safe to delete)")
    return 0
