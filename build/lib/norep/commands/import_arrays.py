"""``norep import``: add your own logits / embeddings (npy or npz) to a prediction store."""

from __future__ import annotations

import argparse

HELP = "import your own logits/embeddings into a store"
DESCRIPTION = """\
Bring predictions you already have: one split per call, logits (N, C) for a single-label split
and/or embeddings (N, D) for any split, as .npy or .npz (an .npz holding one array, or an array
named 'logits' / 'embeddings' / after the split). The store checks shapes against its labels and
class count. Importing another split of an existing model adds it (same category and method);
--overwrite replaces the model.

A store that does not exist yet is created when --labels (an .npy of the split's class ids or
multi-hot rows) and --class-names (a text file, one name a line) are given.

examples:
  norep import --store stores/mine --name my-vit --category ARCH --method "Sup. / IN" \\
      --split test --logits vit_test_logits.npy --embeddings vit_test_emb.npy
  norep import --store stores/mine --name my-vit --category ARCH --method "Sup. / IN" \\
      --split calib --logits vit_calib.npz
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", required=True, help="store directory")
    parser.add_argument("--name", required=True, help="model name in the store")
    parser.add_argument("--category", required=True, choices=["REINIT", "HPARAM", "ARCH", "FWORK", "DATASET"],
                        help="the paper's category relative to the base model (Sec. 3.1)")
    parser.add_argument("--method", required=True, help="training method, e.g. 'Cont. / WIT'")
    parser.add_argument("--split", required=True, help="split the arrays belong to (calib, test, down_train, ...)")
    parser.add_argument("--logits", help="(N, C) logits, .npy or .npz")
    parser.add_argument("--embeddings", help="(N, D) embeddings, .npy or .npz")
    parser.add_argument("--data", help="training data text for the metadata (e.g. IN, WIT, JFT)")
    parser.add_argument("--head", help="head type text for the metadata (e.g. trained, zero-shot)")
    parser.add_argument("--temperature", type=float, help="use this temperature instead of fitting it on calib")
    parser.add_argument("--overwrite", action="store_true", help="replace the model if it exists")
    parser.add_argument("--labels", help="create the store if absent: labels of --split (.npy)")
    parser.add_argument("--class-names", help="create the store if absent: class names, one per line")
    parser.add_argument("--dataset", default="imported", help="create the store if absent: data set name")


def _read_array(path: str, kinds: tuple[str, ...]):
    import numpy as np

    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            keys = list(z.files)
            if len(keys) == 1:
                return z[keys[0]]
            for k in kinds:
                if k in keys:
                    return z[k]
            raise ValueError(f"{path} holds arrays {keys}; name one of them {' or '.join(repr(k) for k in kinds)}")
    if not path.endswith(".npy"):
        raise ValueError(f"{path}: expected a .npy or .npz file")
    return np.load(path, allow_pickle=False)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import numpy as np

    from norep.store import Store

    def fail(msg: str) -> int:
        print(f"norep: {msg}", file=sys.stderr)
        return 1

    if not args.logits and not args.embeddings:
        return fail("give --logits and/or --embeddings")
    try:
        logits = _read_array(args.logits, ("logits", args.split)) if args.logits else None
        emb = _read_array(args.embeddings, ("embeddings", args.split)) if args.embeddings else None
        if (Path(args.store) / "store.json").exists() or not (args.labels and args.class_names):
            st = Store.open(args.store)
        else:
            names = [ln.strip() for ln in Path(args.class_names).read_text().splitlines() if ln.strip()]
            labels = np.load(args.labels, allow_pickle=False)
            multi = {args.split: names} if labels.ndim == 2 else None
            st = Store.open_or_create(args.store, dataset=args.dataset,
                                      class_names=names, splits={args.split: labels}, split_class_names=multi)
        logit_map = {args.split: logits} if logits is not None else {}
        emb_map = {args.split: emb} if emb is not None else {}
        meta = {"category": args.category, "method": args.method, "data": args.data, "head": args.head,
                "source": "norep import", "imported_from": {args.split: [args.logits, args.embeddings]}}
        if args.temperature is not None:
            meta["temperature"] = args.temperature
        overwrite = args.overwrite
        if args.name in st and not args.overwrite:
            old = st.meta(args.name)
            if (old.get("category"), old.get("method")) != (args.category, args.method):
                return fail(f"model {args.name!r} exists with category {old.get('category')} and method "
                            f"{old.get('method')!r}; use the same ones to add a split, or --overwrite")
            for key, target in (("logits", logit_map), ("embeddings", emb_map)):
                for fname in old.get("files", {}):
                    kind, split, _ = fname.split(".")
                    if kind == key and split != args.split:
                        target[split] = np.asarray(getattr(st, key)(args.name, split))
            imported = dict(old.get("imported_from") or {})
            imported.update(meta["imported_from"])
            meta["imported_from"] = imported
            if "temperature" not in meta and old.get("temperature_fitted_on") is None and "calib" not in logit_map:
                meta["temperature"] = old.get("temperature")
            overwrite = True
        out = st.add_model(args.name, logits=logit_map, embeddings=emb_map, meta=meta, overwrite=overwrite)
    except (ValueError, FileNotFoundError, OSError) as exc:
        return fail(str(exc))
    acc = out.get("accuracy", {}).get(args.split)
    print(f"{args.name}: {args.split} imported into {args.store}"
          + (f" (accuracy {acc:.4f}, temperature {out['temperature']:.3g})" if acc is not None else ""))
    return 0
