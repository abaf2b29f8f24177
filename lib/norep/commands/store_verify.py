"""``norep store verify STORE``: check a store's manifest, metadata and every array's checksum."""

from __future__ import annotations

import argparse
import sys

HELP = "check a store's manifest, metadata and checksums"
DESCRIPTION = """\
Check a prediction store: store.json (schema, its checksum, the manifest of models), every split's
labels, every model's meta.json (present, matching the checksum in the manifest, schema) and every
array (present, header, shape, dtype, SHA-256), and each model's recorded accuracies against its
logits. Prints one line per problem and exits 1 when there is any; leftovers of interrupted writes
are listed as a note (remove them with `norep store clean`).
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="path of the prediction store")


def run(args: argparse.Namespace) -> int:
    from norep.store import Store, VerifyError

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
    if report["leftovers"]:
        print(
            f"note: {len(report['leftovers'])} leftover(s) of interrupted or superseded writes, not part of "
            f"the store (`norep store clean {args.store}` removes them): {', '.join(report['leftovers'][:5])}"
            + (" ..." if len(report["leftovers"]) > 5 else "")
        )
    return 0
