"""``norep import``: add your own logits / embeddings (npy or npz) to a prediction store."""

from __future__ import annotations

import argparse

HELP = "import your own logits/embeddings into a store"
DESCRIPTION = """\
Bring predictions you already have: one split per call, logits (N, C) for a single-label split
and/or embeddings (N, D) for any split, as .npy or .npz (an .npz holding one array, or an array
named 'logits' / 'embeddings' / after the split). The store checks shapes against its labels and
class count. Importing into an existing model merges: every array and metadata field it has is
kept (after checking its checksum), the same category and method are required, and an array it
already has is replaced only with --overwrite (which also allows a new category or method); the
same array again changes nothing, so re-running an import script is safe. Probabilities are refused
as logits: pass --probabilities to store their logarithm. Everything is checked before anything is
written: a refused import leaves the store as it was, and a new store or split appears only
together with the arrays of its first import.

--labels (an .npy of the split's class ids or multi-hot rows) creates the store if absent
(with --class-names, a text file, one name a line), or adds --split to an existing store.

A store for the book, from the command line alone (test and calib are needed by every chapter,
embeddings by chapter 05, the multi-label down_train/down_val/down_test splits by chapter 06):
  norep import --store stores/mine --dataset mydata --class-names classes.txt \
      --split test --labels y_test.npy --name base --category REINIT --method "Sup. / mine" \
      --logits base_test.npy
  norep import --store stores/mine --split calib --labels y_calib.npy \
      --name base --category REINIT --method "Sup. / mine" --logits base_calib.npy
  norep store set stores/mine --base-model base --band 0.90 0.97
  norep store info stores/mine

examples:
  norep import --store stores/mine --name my-vit --category ARCH --method "Sup. / IN" \\
      --split test --logits vit_test_logits.npy --embeddings vit_test_emb.npy
  norep import --store stores/mine --name my-vit --category ARCH --method "Sup. / IN" \\
      --split calib --logits vit_calib.npz
"""


def configure(parser: argparse.ArgumentParser) -> None:
    from norep import CATEGORIES

    parser.add_argument("--store", required=True, help="store directory")
    parser.add_argument("--name", required=True, help="model name in the store")
    parser.add_argument(
        "--category",
        required=True,
        type=lambda v: v.strip().upper(),
        choices=list(CATEGORIES),
        help="the paper's category relative to the base model (Sec. 3.1); any case",
    )
    parser.add_argument("--method", required=True, help="training method, e.g. 'Cont. / WIT'")
    parser.add_argument("--split", required=True, help="split the arrays belong to (calib, test, down_train, ...)")
    parser.add_argument("--logits", help="(N, C) logits, .npy or .npz")
    parser.add_argument(
        "--probabilities",
        action="store_true",
        help="the --logits file holds probabilities (rows in [0, 1] summing to 1): store their logarithm",
    )
    parser.add_argument("--embeddings", help="(N, D) embeddings, .npy or .npz")
    parser.add_argument("--data", help="training data text for the metadata (e.g. IN, WIT, JFT)")
    parser.add_argument("--head", help="head type text for the metadata (e.g. trained, zero-shot)")
    parser.add_argument("--temperature", type=float, help="use this temperature instead of fitting it on calib")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the arrays given here (--logits / --embeddings of --split) where the model already "
        "has them with other values, and allow a new --category or --method; the model's other arrays "
        "and metadata are kept",
    )
    parser.add_argument("--labels", help="labels of --split (.npy): creates the store if absent, or adds the split")
    parser.add_argument(
        "--class-names",
        help="class names, one per line: creates the store if absent (an existing store checks them against its own)",
    )
    parser.add_argument("--dataset", default="imported", help="create the store if absent: data set name")


def _read_array(path: str, kinds: tuple[str, ...]):
    from pathlib import Path

    from norep.storage._io import StoreError, load_npy, load_npz_member

    p = Path(path)
    if not p.exists():
        raise StoreError(f"{path}: no such file")
    if p.is_dir():
        raise StoreError(f"{path} is a directory; give a .npy or .npz file")
    if path.endswith(".npz"):
        return load_npz_member(p, kinds)
    if not path.endswith(".npy"):
        raise StoreError(f"{path}: expected a .npy or .npz file")
    return load_npy(p, mmap=True)


def _read_class_names(path: str) -> list[str]:
    from pathlib import Path

    from norep.storage._io import StoreError

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise StoreError(f"{path}: class names must be UTF-8 text, one name a line") from None
    except OSError as exc:
        from norep.storage._io import read_error

        raise read_error(path, exc) from None
    names = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not names:
        raise StoreError(f"{path}: no class names (one name a line)")
    from norep.storage._inputs import check_class_names

    return check_class_names(names, f"--class-names {path}")


def run(args: argparse.Namespace) -> int:
    import sys

    def fail(msg: str) -> int:
        print(f"norep: {' '.join(str(msg).split())}", file=sys.stderr)
        return 1

    if not args.logits and not args.embeddings:
        return fail("give --logits and/or --embeddings")
    if args.probabilities and not args.logits:
        return fail("--probabilities says what the --logits file holds; give --logits FILE")
    try:
        st, out, changed = _import(args)
    except FileNotFoundError as exc:
        msg = str(exc)
        if "no norep store" in msg and not (args.labels and args.class_names):
            msg += "; " + _new_store_hint(args)
        return fail(msg)
    except (ValueError, OSError) as exc:
        return fail(str(exc))
    acc = out.get("accuracy", {}).get(args.split)
    if not changed:
        print(f"{args.name}: {args.split} already imported into {args.store} with these arrays; nothing changed")
    else:
        print(
            f"{args.name}: {args.split} imported into {args.store}"
            + (f" (accuracy {acc:.4f}, temperature {out['temperature']:.3g})" if acc is not None else "")
        )
    _next_steps(st, args.store)
    return 0


def _import(args: argparse.Namespace):
    """Check every input, then write the model (and a new split or store) in one step; return
    ``(store, metadata, changed)``. A failure leaves the store (or its absence) as it was."""
    from pathlib import Path

    from norep.storage import Store
    from norep.storage._inputs import probabilities_to_logits

    logits = _read_array(args.logits, ("logits", args.split)) if args.logits else None
    if logits is not None and args.probabilities:
        logits = probabilities_to_logits(logits, f"--logits {args.logits}")
    emb = _read_array(args.embeddings, ("embeddings", args.split)) if args.embeddings else None
    labels = _read_array(args.labels, ("labels", args.split)) if args.labels else None
    names = _read_class_names(args.class_names) if args.class_names else None
    meta = {
        "category": args.category,
        "method": args.method,
        "data": args.data,
        "head": args.head,
        "source": "norep import",
        "imported_from": {
            f"{kind}.{args.split}": path
            for kind, path in (("logits", args.logits), ("embeddings", args.embeddings))
            if path
        },
    }
    if args.temperature is not None:
        meta["temperature"] = args.temperature
    model = {
        "name": args.name,
        "logits": {args.split: logits} if logits is not None else {},
        "embeddings": {args.split: emb} if emb is not None else {},
        "meta": meta,
        "overwrite": args.overwrite,
        "merge": True,
    }
    store = Path(args.store)
    multi = labels is not None and labels.ndim == 2
    if not (store / "store.json").exists() and not store.is_file() and labels is not None and names is not None:
        try:
            st, out = Store.create_with_model(
                store,
                model=model,
                dataset=args.dataset,
                class_names=names,
                splits={args.split: labels},
                split_class_names={args.split: names} if multi else None,
            )
            return st, out, True
        except FileExistsError:
            pass  # created by another process meanwhile: add to it
    st = Store.open(store)
    _check_against_store(st, args, labels, names)
    if labels is not None:
        model["splits"] = {args.split: labels}
        if multi and names is not None:
            model["split_class_names"] = {args.split: names}
    before = _commit_id(store)
    out = st.add_model(**model)
    return st, out, _commit_id(store) != before


def _commit_id(store) -> tuple:
    s = (store / "store.json").stat()
    return s.st_ino, s.st_mtime_ns, s.st_size


def _check_against_store(st, args: argparse.Namespace, labels, names) -> None:
    """Refuse class names or a split that contradict what the store ``st`` holds."""
    from norep.storage import StoreError
    from norep.storage._inputs import names_differ

    if labels is None and args.split not in st.splits():
        raise StoreError(
            f"split {args.split!r} is not in store {args.store} (it has {', '.join(st.splits())}); "
            "give --labels to add it"
        )
    multi = labels.ndim == 2 if labels is not None else st.is_multilabel(args.split)
    if names is not None and not multi:
        diff = names_differ(names, st.class_names)
        if diff is not None:
            raise StoreError(
                f"--class-names {args.class_names} differs from the class names of store {args.store} ({diff}); "
                "leave out --class-names when adding to an existing store, or give the store's names"
            )
    if names is not None and multi and labels is None:
        diff = names_differ(names, st.split_class_names(args.split))
        if diff is not None:
            raise StoreError(
                f"--class-names {args.class_names} differs from the label names of split {args.split!r} ({diff}); "
                "leave it out or give the same names"
            )


def _new_store_hint(args: argparse.Namespace) -> str:
    """What a first import must give to create a store (every flag, with this call's values)."""
    missing = [f for f, v in (("--labels", args.labels), ("--class-names", args.class_names)) if not v]
    return (
        f"to create it give {' and '.join(missing)}: a new store needs --labels (an .npy of the class ids "
        f"of split {args.split!r}) and --class-names (a text file, one class name a line), and takes "
        f"--dataset NAME (default 'imported'); e.g. norep import --store {args.store} --dataset mydata "
        f"--class-names classes.txt --split {args.split} --labels {args.split}_labels.npy --name {args.name} "
        f"--category {args.category} --method '{args.method}' --logits FILE.npy. Add the other splits "
        "(every chapter needs test and calib) the same way with --split and --labels, then set the base "
        f"model and accuracy band with norep store set {args.store} --base-model NAME --band LO HI"
    )


def _next_steps(st, store) -> None:
    """Print what the store still lacks for the book (once per missing item, on stdout)."""
    splits = st.splits()
    todo = [f"split {s!r} (--split {s} --labels {s}_labels.npy)" for s in ("test", "calib") if s not in splits]
    if st.base_model is None:
        todo.append(f"a base model (norep store set {store} --base-model NAME)")
    if todo:
        print(f"next, for the book: {'; '.join(todo)}; `norep store info {store}` shows what each chapter needs")
