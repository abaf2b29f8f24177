"""``norep notebooks run``: execute the book's section notebooks with papermill (cached by content)."""

from __future__ import annotations

import argparse
import sys

HELP = "execute the section notebooks with papermill"
DESCRIPTION = """\
Execute the section notebooks (notebooks/NN_name.py, jupytext py:percent) with papermill on fresh
kernels of this Python, writing OUT/NN_name.ipynb for the Jupyter Book. A notebook whose source,
parameters, store and norep package are unchanged since its last run is skipped.

One run, one store: every executed notebook and summary page records the store's fingerprint, and
anything in OUT from another store is removed first. A chapter whose inputs the store lacks (e.g.
the downstream splits of chapter 06) becomes a short "not run on this store" page saying how to add
them, and its claims are "not testable" on the claims page, so the book still builds.
`norep store info STORE` shows beforehand what each chapter can run.

examples:
  norep notebooks run --store stores/fashion
  norep notebooks run --store stores/mine --out /tmp/book -p n_boot=200 -p base_model=resnet50
  norep notebooks run --store stores/fashion --only 02 --only transfer --force
  norep notebooks run --store stores/mine --keep-going -p profile=student
  norep notebooks run --store stores/fashion --replicates stores/fashion-seed1 stores/fashion-seed2
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, help="prediction store to analyse (the notebooks' `store` parameter)")
    parser.add_argument(
        "--out", default="book/generated", help="folder for the executed notebooks (default: %(default)s)"
    )
    parser.add_argument(
        "-p",
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="parameters",
        help="parameter for every notebook, a Python literal or a string; repeatable",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this notebook (full name, number or part of the name); repeatable",
    )
    parser.add_argument(
        "--notebooks", default=None, metavar="DIR", help="folder of the sources (default: the checkout's notebooks/)"
    )
    parser.add_argument("--force", action="store_true", help="execute even if the cache says nothing changed")
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="run every notebook even after one fails; report all failures at the end",
    )
    parser.add_argument(
        "--replicates",
        nargs="+",
        default=[],
        metavar="STORE",
        help="replicate stores of the same study: the notebooks run on each too, and the claims page shows "
        "in how many stores each verdict holds",
    )
    parser.add_argument(
        "--solutions",
        action="store_true",
        help="also run the code of every exercise solution after its notebook (a teacher's check)",
    )
    parser.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell (default: %(default)s)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    from norep.notebooks import NotebookError, NotebooksFailed, parse_parameters, run_notebooks

    try:
        params = parse_parameters(args.parameters)
        if "store" in params:
            raise ValueError("set the store with --store, not -p store=...")
        _check_base_model(args.store, params)
        runs = run_notebooks(
            args.store,
            out=args.out,
            parameters=params,
            only=args.only or None,
            notebook_dir=args.notebooks,
            force=args.force,
            progress=not args.quiet,
            timeout=args.timeout,
            keep_going=args.keep_going,
            solutions=args.solutions,
            replicates=args.replicates,
        )
    except NotebooksFailed as exc:
        for err in exc.errors:
            print(f"norep: {err}", file=sys.stderr)
        print(
            f"norep: {len(exc.errors)} notebook(s) failed; {len(exc.runs)} ran or were cached; the failed "
            f"chapters are placeholder pages in {args.out}",
            file=sys.stderr,
        )
        return 1
    except (NotebookError, ValueError, FileNotFoundError) as exc:
        print(f"norep: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    if not args.quiet:
        executed = sum(not r.cached for r in runs)
        print(
            f"norep: {len(runs)} notebook(s) in {args.out} ({executed} executed, {len(runs) - executed} cached)",
            file=sys.stderr,
        )
    return 0


def _check_base_model(store: str, params: dict) -> None:
    """Refuse a store whose base model (the one every chapter compares with) is unset or absent."""
    from norep.storage import Store

    st = Store.open(store)
    base = params.get("base_model") or st.base_model
    names = st.model_names()
    models = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "") if names else "none yet"
    if base is None:
        raise ValueError(
            f"store {store} has no base model, which every chapter compares with; set it with "
            f"`norep store set {store} --base-model NAME` (models: {models})"
        )
    if base not in st:
        raise ValueError(
            f"the base model {base!r} is not in store {store}; set another with "
            f"`norep store set {store} --base-model NAME` or -p base_model=NAME (models: {models})"
        )
