"""``norep store set STORE``: set the base model and the accuracy band the chapters use by default."""

from __future__ import annotations

import argparse
import sys

HELP = "set a store's base model, accuracy band and class groups"
DESCRIPTION = """\
Set what the chapters use when no parameter overrides it: the base model (the paper's ResNet-50,
to which every category is relative) and the accuracy band (the paper's 74-78 %), as fractions.
Without a band every model counts as in the band. The notebooks' parameters base_model and
accuracy_band still override both for one run. --class-groups sets the groups of classes claim C5
compares (the paper's nature vs anthropogenic classes, Sec. 4.4): a JSON file mapping each group's
name to its classes, as class ids or class names, e.g. {"nature": [0, 1, 2], "anthropogenic": [3, 4]}.

examples:
  norep store set stores/mine --base-model my-resnet
  norep store set stores/mine --band 0.74 0.78
  norep store set stores/mine --base-model my-resnet --band 0.9 0.97
  norep store set stores/mine --class-groups groups.json
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
    parser.add_argument(
        "--class-groups",
        metavar="FILE.json",
        help='groups of classes for claim C5: {"group": [class ids or names], ...}, at least two, disjoint',
    )


def run(args: argparse.Namespace) -> int:
    from norep.storage import Store

    def fail(msg: str) -> int:
        print(f"norep: {msg}", file=sys.stderr)
        return 1

    if args.base_model is None and args.band is None and args.class_groups is None:
        return fail("give --base-model NAME, --band LO HI and/or --class-groups FILE.json")
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
        if args.class_groups is not None:
            extras["class_groups"] = _read_groups(args.class_groups, st.class_names)
        st.update_info(**extras)
    except (ValueError, OSError) as exc:
        return fail(" ".join(str(exc).split()))
    st = Store.open(args.store)
    band = st.accuracy_band
    groups = st.class_groups
    print(
        f"store {args.store}: base model {st.base_model or 'not set'}, accuracy band "
        + (f"{band[0]:.4f}-{band[1]:.4f}" if band else "not set")
        + ", class groups "
        + (", ".join(f"{g} ({len(ids)} classes)" for g, ids in groups.items()) if groups else "not set")
    )
    return 0


def _read_groups(path: str, class_names: list[str]) -> dict[str, list[int]]:
    """Class groups from a JSON file: group name -> class ids or class names (names become ids)."""
    import json
    from pathlib import Path

    from norep.storage._io import StoreError, read_error
    from norep.storage._schema import _suggest

    try:
        groups = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise read_error(path, exc) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(
            f"--class-groups {path}: not a JSON file ({exc}); give an object like "
            '{"nature": [0, 1], "anthropogenic": [2, 3]}'
        ) from None
    if not isinstance(groups, dict):
        raise StoreError(f"--class-groups {path}: expected a JSON object mapping group names to class lists")
    index = {c: i for i, c in enumerate(class_names)}
    out = {}
    for g, members in groups.items():
        if not isinstance(members, list):
            raise StoreError(f"--class-groups {path}: group {g!r} must be a list of class ids or names")
        ids = []
        for c in members:
            if isinstance(c, str):
                if c not in index:
                    raise StoreError(
                        f"--class-groups {path}: group {g!r} names class {c!r}, which the store does not "
                        f"have{_suggest(c, class_names)}"
                    )
                c = index[c]
            ids.append(c)
        out[g] = ids
    return out
