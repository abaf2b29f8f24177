"""``norep store verify STORE``: check a store's manifest, metadata and every array's checksum."""

from __future__ import annotations

import argparse
import sys

HELP = "check a store's manifest, metadata and checksums"
DESCRIPTION = """\
Check a prediction store: store.json (schema, its checksum, the manifest of models), every split's
labels, every model's meta.json (present, matching the checksum in the manifest, schema) and every
array (present, header, shape, dtype, SHA-256), and each model's recorded accuracies against its
logits. Prints one line per problem and exits 1 when there is any. Previous versions of rewritten
models (kept for readers that opened the store before) and leftovers of interrupted writes are
listed as harmless notes (remove them with `norep store clean`).
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="path of the prediction store")


def run(args: argparse.Namespace) -> int:
    from norep.storage import Store, VerifyError

    try:
        report = Store.open(args.store).verify()
    except VerifyError as exc:
        for p in exc.problems:
            print(f"norep: {args.store}: {' '.join(p.split())}", file=sys.stderr)
        print(f"norep: store {args.store} FAILED verification ({len(exc.problems)} problem(s))", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        print(f"norep: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"ok: {report['models']} models, {report['arrays']} arrays verified")
    for note in report.get("notes", []):
        print(f"note: {note}")
    old = report.get("superseded", [])
    if old:
        print(
            f"note: {len(old)} previous version(s) of rewritten models, kept for readers that opened the "
            f"store before the rewrite: normal and harmless (`norep store clean {args.store}` removes them)"
        )
    rest = [r for r in report["leftovers"] if r not in old]
    if rest:
        print(
            f"note: {len(rest)} leftover(s) of interrupted writes, not part of the store and harmless "
            f"(`norep store clean {args.store}` removes them): {', '.join(rest[:5])}"
            + (" ..." if len(rest) > 5 else "")
        )
    return 0
