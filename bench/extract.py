"""The extraction benchmark (``norep bench extract``): forward-pass throughput on synthetic input."""

from __future__ import annotations


def benchmark(
    model_name: str,
    *,
    device: str,
    batch_size: int,
    precision: str,
    iters: int,
    warmup: int,
    channels_last: bool = True,
) -> dict:
    """Images per second of ``model_name``'s embedding + logits forward pass on random input."""
    import time

    import torch

    from norep.zoo.loading import load

    torch.manual_seed(0)
    model, _ = load(model_name, random_init=True, device=device)
    size = model.preprocessing.get("input_size", [3, 224, 224])
    x = torch.randn(batch_size, *size, device=device)
    if channels_last:
        model.module.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    dev_type = "cuda" if device.startswith("cuda") else "cpu"
    sync = torch.cuda.synchronize if dev_type == "cuda" else (lambda: None)
    with torch.inference_mode(), torch.autocast(dev_type, dtype=dtype or torch.float32, enabled=dtype is not None):
        for _ in range(warmup):
            model(x)
        sync()
        t0 = time.perf_counter()
        for _ in range(iters):
            model(x)
        sync()
        elapsed = time.perf_counter() - t0
    return {
        "model": model_name,
        "device": device,
        "batch_size": batch_size,
        "precision": precision,
        "channels_last": channels_last,
        "input_size": list(size),
        "iters": iters,
        "images_per_s": round(batch_size * iters / elapsed, 1),
    }
