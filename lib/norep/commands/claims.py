"""``norep claims``: the verdict on each of the paper's claims C1-C10, for one store or several."""

from __future__ import annotations

import argparse
import sys

HELP = "the verdict on each of the paper's claims, for one store or several"
DESCRIPTION = """\
Runs the claims of the paper (norep.paper) on each store and prints, per claim, the verdict, the effect
with its 95% interval, the models and pairs it rests on and the smallest effect the store could
detect (80% power). With several stores (e.g. zoos trained with different --seed), a last column
says in how many of them each verdict holds: a finding that holds in one replicate only is fragile.

examples:
  norep claims stores/fashion
  norep claims stores/fashion stores/fashion-seed1 stores/fashion-seed2 --markdown replicates.md
  norep claims stores/fashion --ids C1,C2,C3 --resamples 200
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stores", nargs="+", metavar="STORE", help="store directories (replicates of one study)")
    parser.add_argument("--ids", default=None, help="comma-separated claim ids (default: all, C1-C10)")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    parser.add_argument("--json", metavar="FILE", help="also write every verdict as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from norep import claims, paper

    if args.resamples < 1:
        print(f"norep: --resamples must be at least 1 (default 1000), got {args.resamples}", file=sys.stderr)
        return 1
    ids = None
    if args.ids is not None:
        ids = [c.strip().upper() for c in args.ids.split(",") if c.strip()]
        if not ids:
            print(f"norep: --ids {args.ids!r} names no claim; give e.g. --ids C1,C5", file=sys.stderr)
            return 1
        unknown = [c for c in ids if c not in paper.REGISTRY]
        if unknown:
            print(
                f"norep: unknown claim id(s) {', '.join(unknown)}; known: {', '.join(paper.claim_ids())}",
                file=sys.stderr,
            )
            return 1
    results = {}
    for path in args.stores:
        study = claims.open_study(path)
        print(f"claims on {path} ...", file=sys.stderr, flush=True)
        results[str(path)] = [r.record() for r in paper.run_claims(study, ids, n_boot=args.resamples, seed=args.seed)]
    lines = claims.replicate_table(results)
    lines += _untestable_reasons(results)
    print("\n".join(lines))
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write("\n".join(lines) + "\n")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
    return 0


def _untestable_reasons(results: dict[str, list[dict]]) -> list[str]:
    """One line per *not testable* verdict, saying why (and on which store, with several)."""
    lines = []
    for path, records in results.items():
        for r in records:
            if r["status"] == "not testable":
                where = f" on {path}" if len(results) > 1 else ""
                why = " ".join(str(r.get("reason") or r.get("sentence") or "no reason recorded").split())
                lines.append(f"- {r['id']} not testable{where}: {why}")
    return [""] + lines if lines else []
