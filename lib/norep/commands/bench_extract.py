"""``norep bench extract``: inference throughput of extraction models on synthetic input.

The benchmark itself is :func:`bench.extract.benchmark`, in the repository's ``bench/`` folder (not
installed with the package); this module holds the command's options and its output.
"""

from __future__ import annotations

import argparse

from norep.commands._bench import bench_module

HELP = "benchmark GPU extraction throughput"
DESCRIPTION = """\
Measure forward-pass throughput (images/s) of the extraction models on synthetic input with random
weights: no data or downloads needed. Defaults match timm's inference benchmark (ResNet-50 and
ViT-B/16, batch 256, bf16 autocast, channels-last); for reference timm publishes 4,303 images/s for
ResNet-50 with mixed precision on an RTX 4090. Data loading and JPEG decoding are not included:
they bound real extraction on ImageNet unless --workers is large enough.

examples:
  norep bench extract                                   # on the GPU
  norep bench extract --device cpu --batch-size 8 --iters 2 --warmup 1   # CPU smoke test
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models",
        default="timm:resnet50,timm:vit_base_patch16_224",
        help="comma-separated norep.zoo.load names (default ResNet-50 and ViT-B/16)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="bf16")
    parser.add_argument("--iters", type=int, default=20, help="timed batches per model (default 20)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches first (default 5)")
    parser.add_argument("--no-channels-last", action="store_true", help="keep NCHW memory format")
    parser.add_argument("--json", help="also write the results to this JSON file")


def run(args: argparse.Namespace) -> int:
    import json
    import os
    import sys

    from norep.extract import ExtractionError, resolve_device
    from norep.zoo.loading import UnknownModelError

    try:
        benchmark = bench_module("extract").benchmark
    except FileNotFoundError as exc:
        print(f"norep: {exc}", file=sys.stderr)
        return 1

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        device = resolve_device(args.device)
        if args.precision == "fp16" and not device.startswith("cuda"):
            raise ExtractionError("fp16 needs a CUDA device; use --precision bf16 or fp32 on CPU")
        if min(args.batch_size, args.iters) < 1 or args.warmup < 0:
            raise ExtractionError("--batch-size and --iters must be positive, --warmup non-negative")
        gpu = ""
        if device.startswith("cuda"):
            import torch

            gpu = torch.cuda.get_device_name(device)
        results = []
        print(
            f"device {device}{' (' + gpu + ')' if gpu else ''}, batch {args.batch_size}, {args.precision}, "
            f"{'NCHW' if args.no_channels_last else 'channels-last'}, random weights, synthetic input"
        )
        for name in [m.strip() for m in args.models.split(",") if m.strip()]:
            r = benchmark(
                name,
                device=device,
                batch_size=args.batch_size,
                precision=args.precision,
                iters=args.iters,
                warmup=args.warmup,
                channels_last=not args.no_channels_last,
            )
            r["gpu"] = gpu or None
            results.append(r)
            print(f"{name:40s} {r['images_per_s']:>10.1f} images/s", flush=True)
    except (ExtractionError, UnknownModelError) as exc:
        print(f"norep: {exc}", file=sys.stderr)
        return 1
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0
