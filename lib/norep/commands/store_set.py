"""``norep store set STORE``: set the base model and the accuracy band the chapters use by default."""

from __future__ import annotations

import argparse
import sys

HELP = "set a store's base model and accuracy band"
DESCRIPTION = """\
Set what the chapters use when no parameter overrides it: the base model (the paper's ResNet-50,
to which every category is relative) and the accuracy band (the paper's 74-78 %), as fractions.
Without a band every model counts as in the band. The notebooks' parameters base_model and
accuracy_band still override both for one run.

examples:
  norep store set stores/mine --base-model my-resnet
  norep store set stores/mine --band 0.74 0.78
  norep store set stores/mine --base-model my-resnet --band 0.9 0.97
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="path of the prediction store")
    parser.add_argument("--base-model", metavar="NAME", help="a model of the store")
    parser.add_argument(
        "--band",
        nargs=2,
        type=float,
        metavar=("LO", "HI"),
        help="accuracy band as fractions, 0 <= LO < HI <= 1 (e.g. 0.74 0.78)",
    )


def run(args: argparse.Namespace) -> int:
    from norep.store import Store

    def fail(msg: str) -> int:
        print(f"norep: {msg}", file=sys.stderr)
        return 1

    if args.base_model is None and args.band is None:
        return fail("give --base-model NAME and/or --band LO HI")
    try:
        st = Store.open(args.store)
    except (FileNotFoundError, ValueError) as exc:
        return fail(" ".join(str(exc).split()))
    extras = {}
    if args.base_model is not None:
        names = st.model_names()
        if args.base_model not in names:
            return fail(
                f"--base-model {args.base_model!r} is not in store {args.store}; models: "
                f"{', '.join(names) or 'none yet (import them first)'}"
            )
        extras["base_model"] = args.base_model
    if args.band is not None:
        lo, hi = args.band
        if hi > 1 or lo > 1:
            return fail(f"--band {lo:g} {hi:g}: give fractions, not percent (e.g. 0.74 0.78)")
        if not 0 <= lo < hi <= 1:
            return fail(f"--band {lo:g} {hi:g}: needs 0 <= LO < HI <= 1")
        extras["accuracy_band"] = (lo, hi)
    try:
        st.update_info(**extras)
    except (ValueError, OSError) as exc:
        return fail(" ".join(str(exc).split()))
    st = Store.open(args.store)
    band = st.accuracy_band
    print(
        f"store {args.store}: base model {st.base_model or 'not set'}, accuracy band "
        + (f"{band[0]:.4f}-{band[1]:.4f}" if band else "not set")
    )
    return 0
