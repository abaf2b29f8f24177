"""``norep store clean STORE``: remove what interrupted or superseded writes left behind."""

from __future__ import annotations

import argparse
import sys

HELP = "remove leftovers of interrupted or superseded writes"
DESCRIPTION = """\
Remove the leftovers of interrupted or superseded writes: model versions and directories that the
store's manifest does not reference, and stray temporary files. Safe while other processes write
to the store: nothing the manifest references is touched, and a model being written (its lock
held) is skipped. A store written by an older norep is first given its manifest (and a model that
an interrupted overwrite of that older version hid is restored).

examples:
  norep store clean stores/mine --dry-run
  norep store clean stores/mine
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="path of the prediction store")
    parser.add_argument("-n", "--dry-run", action="store_true", help="list what would be removed, remove nothing")


def run(args: argparse.Namespace) -> int:
    from norep.storage import Store

    try:
        removed = Store.open(args.store).clean(dry_run=args.dry_run)
    except (FileNotFoundError, ValueError) as exc:
        print(f"norep: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    verb = "would remove" if args.dry_run else "removed"
    for rel in removed:
        print(f"{verb} {rel}")
    print(f"{args.store}: {len(removed)} leftover(s) {verb}" if removed else f"{args.store}: no leftovers")
    return 0
