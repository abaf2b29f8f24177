"""``norep store info STORE``: what a store holds and what each chapter of the book can run on it."""

from __future__ import annotations

import argparse
import sys

HELP = "show a store's splits, models, base model, band and what each chapter can run"
DESCRIPTION = """\
Show a prediction store: its splits (examples, single- or multi-label), its models by category and
accuracy tier (below, in or above the accuracy band, on the calibration split that chooses band
members), the base model and the band, and, for each chapter of the book, whether it can run on the
store or what it needs first (with the command that adds it).

examples:
  norep store info stores/mine
  norep store info stores/mine --split test --calib-split calib
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("store", help="path of the prediction store")
    parser.add_argument("--split", default="test", help="evaluation split of the chapters (default: %(default)s)")
    parser.add_argument(
        "--calib-split", default="calib", help="calibration / selection split of the chapters (default: %(default)s)"
    )


def _tier(acc, band) -> str:
    if acc is None or acc != acc:
        return "-"
    if band is None:
        return "band"
    return "low" if acc < band[0] else ("high" if acc > band[1] else "band")


def _model_lines(st, sel: str) -> list[str]:
    from norep import CATEGORIES

    table = st.models()
    if table.empty:
        return ["models: none yet (add some with `norep import`, `norep extract` or `norep zoo train`)"]
    band = st.accuracy_band
    col = f"{sel}_accuracy" if f"{sel}_accuracy" in table else None
    lines = [f"models: {len(table)} (tier: accuracy on {sel!r} below, in or above the band)"]
    counts = []
    for cat in CATEGORIES:
        rows = table[table["category"] == cat]
        tiers = [_tier(float(a) if a is not None else None, band) for a in (rows[col] if col else [None] * len(rows))]
        counts.append((cat, len(rows), {t: tiers.count(t) for t in ("low", "band", "high")}))
        for (_, r), t in zip(rows.iterrows(), tiers, strict=True):
            accs = ", ".join(
                f"{c[:-9]} {float(r[c]):.4f}"
                for c in table.columns
                if c.endswith("_accuracy") and r[c] is not None and r[c] == r[c]
            )
            base = "  (base)" if r["name"] == st.base_model else ""
            lines.append(f"  {cat:<8} {t:<5} {r['name']}{base}: {accs or 'no logits'}")
    lines.append(
        "by category (low / band / high): "
        + "; ".join(f"{cat} {n} ({c['low']}/{c['band']}/{c['high']})" for cat, n, c in counts)
    )
    return lines


def run(args: argparse.Namespace) -> int:
    from norep.notebooks import NOTEBOOKS, missing_inputs
    from norep.storage import Store

    try:
        st = Store.open(args.store)
    except (FileNotFoundError, ValueError) as exc:
        print(f"norep: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    print(f"store {args.store}: data set {st.dataset!r}, {len(st.class_names)} classes")
    print("splits:")
    for s in st.splits():
        kind = "multi-label" if st.is_multilabel(s) else "single-label"
        print(f"  {s}: {st.n_examples(s)} examples, {kind}")
    print(f"base model: {st.base_model or f'not set (`norep store set {args.store} --base-model NAME`)'}")
    band = st.accuracy_band
    print(
        "accuracy band: "
        + (
            f"{band[0]:.4f}-{band[1]:.4f}"
            if band
            else f"not set: every model counts as in the band (`norep store set {args.store} --band LO HI`, fractions)"
        )
    )
    for line in _model_lines(st, args.calib_split):
        print(line)
    print("chapters:")
    params = {"store": str(args.store), "split": args.split, "calib_split": args.calib_split}
    for name in NOTEBOOKS:
        lack = missing_inputs(st, name, params)
        print(f"  {name}: " + ("can run" if not lack else "cannot run; it needs " + lack[0]))
        for more in lack[1:]:
            print(f"      and {more}")
    return 0
