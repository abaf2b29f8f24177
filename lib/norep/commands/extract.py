"""``norep extract``: run a timm / open_clip / Hugging Face model over local images into a store."""

from __future__ import annotations

import argparse

HELP = "extract logits and embeddings of a timm/open_clip/hf model"
DESCRIPTION = """\
Run one model over local image data and add its logits (float32) and pre-logit embeddings
(float16) to a prediction store, with full metadata (source, weights tag, preprocessing, data
manifest checksum). Work is chunked: rerun after a crash and finished chunks are kept; rerun with
unchanged inputs and nothing is done. Several processes may fill one store with different models.

  --model  timm:ARCH[.TAG] | open_clip:ARCH[.TAG] | hf:ORG/NAME | paper:NAME
           (paper:NAME = a model of `norep zoo list --paper` by its name in the paper, e.g.
            paper:CLIP-S-ZS: its public weights and head, stored under that name)
  --data   imagefolder:DIR | imagenet:DIR | voc2007:DIR

examples:
  norep extract --model timm:resnet50.tv_in1k --data imagenet:/data/imagenet/val --store stores/paper
  norep extract --model open_clip:ViT-B-32.openai --data imagenet:/data/imagenet/val --store stores/paper \\
      --head zero-shot --zero-shot-templates openai80
  norep extract --model timm:resnet50.tv_in1k --data voc2007:/data/VOCdevkit --store stores/paper

Pretrained weights are read from the local cache; set HF_HUB_OFFLINE=1 on machines without network.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="SOURCE:NAME, e.g. timm:resnet50.a1_in1k or paper:CLIP-S")
    parser.add_argument("--data", required=True, help="KIND:PATH with KIND imagefolder, imagenet or voc2007")
    parser.add_argument("--store", required=True, help="store directory (created when absent)")
    parser.add_argument("--name", help="model name in the store (default: the --model string)")
    parser.add_argument("--split", help="imagefolder: split to write (default test); other kinds: only this split")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default auto)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per batch (default 64)")
    parser.add_argument(
        "--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="autocast precision (default fp32)"
    )
    parser.add_argument("--workers", type=int, default=0, help="data-loading worker processes (default 0)")
    parser.add_argument("--random-init", action="store_true", help="random weights (tests; no download)")
    parser.add_argument(
        "--head",
        choices=["trained", "zero-shot", "l-bfgs", "class-mapping"],
        help="how logits are produced (default: the registry's, else trained/zero-shot)",
    )
    parser.add_argument(
        "--zero-shot-templates",
        default="openai80",
        choices=["openai80", "simple"],
        help="prompt templates of zero-shot heads (default openai80)",
    )
    parser.add_argument("--train-data", help="imagenet-train:DIR or imagefolder:DIR, for --head l-bfgs")
    parser.add_argument(
        "--train-per-class", type=int, default=10, help="training images per class for --head l-bfgs (default 10)"
    )
    parser.add_argument("--category", help="REINIT, HPARAM, ARCH, FWORK or DATASET (default: registry, else ARCH)")
    parser.add_argument("--method", help="training method text (default: registry, else the model name)")
    parser.add_argument("--chunk-size", type=int, help="images per resumable chunk (default 16 x batch size)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import sys

    from norep.data.imagedata import DataLayoutError
    from norep.extract import ExtractionError, extract
    from norep.zoo.loading import UnknownModelError, WeightsUnavailableError

    try:
        meta = extract(
            args.model,
            args.data,
            args.store,
            name=args.name,
            split=args.split,
            device=args.device,
            batch_size=args.batch_size,
            precision=args.precision,
            workers=args.workers,
            random_init=args.random_init,
            head=args.head,
            template_set=args.zero_shot_templates,
            train_data=args.train_data,
            train_per_class=args.train_per_class,
            category=args.category,
            method=args.method,
            chunk_size=args.chunk_size,
            progress=not args.no_progress,
        )
    except (ExtractionError, DataLayoutError, UnknownModelError, WeightsUnavailableError, FileNotFoundError) as exc:
        print(f"norep: {exc}", file=sys.stderr)
        return 1
    if not meta.get("skipped"):
        acc = ", ".join(f"{s} accuracy {a:.4f}" for s, a in sorted(meta.get("accuracy", {}).items()))
        print(f"{meta['name']}: added to {args.store}" + (f" ({acc})" if acc else ""))
    return 0
