"""The resumable data pass of :mod:`norep.extract`: a model over image files in fixed chunks.

Each chunk's outputs are written atomically to ``FOLDER/chunk_NNNNN.npz``; a rerun skips the chunks
already written, so an extraction killed midway resumes where it stopped (see :mod:`norep.extract`
for when resumed arrays are bit-identical to an uninterrupted run's).
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np


class ExtractionError(ValueError):
    """A user-fixable problem with an extraction request (bad flags, mismatched store, ...)."""


def _save_npz_atomic(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class _Images:
    """torch-style map dataset: index -> (preprocessed image tensor, index)."""

    def __init__(self, files: list[Path], preprocess: Any) -> None:
        self.files = files
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Any:
        from norep.data.imagedata import load_image

        return self.preprocess(load_image(self.files[i])), i


def _run_chunks(
    model: Any,
    files: list[Path],
    preprocess: Any,
    folder: Path,
    *,
    batch_size: int,
    chunk_size: int,
    workers: int,
    device: str,
    precision: str,
    logits_fn: Any,
    desc: str,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Run ``model`` over ``files`` chunk by chunk, resuming finished chunks found in ``folder``."""
    import torch
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    n = len(files)
    n_chunks = max(1, -(-n // chunk_size))
    path = lambda c: folder / f"chunk_{c:05d}.npz"  # noqa: E731
    todo = [c for c in range(n_chunks) if not path(c).is_file()]
    done_images = n - sum(min(chunk_size, n - c * chunk_size) for c in todo)
    batches = [
        list(range(s, min(s + batch_size, (c + 1) * chunk_size, n)))
        for c in todo
        for s in range(c * chunk_size, min((c + 1) * chunk_size, n), batch_size)
    ]
    if batches:
        cuda = device.startswith("cuda")
        loader = DataLoader(
            _Images(files, preprocess),
            batch_sampler=batches,
            num_workers=workers,
            pin_memory=cuda,
            persistent_workers=False,
        )
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        autocast = (
            torch.autocast(device_type="cuda" if cuda else "cpu", dtype=dtype)
            if dtype
            else torch.autocast(device_type="cpu", enabled=False)
        )
        bar = tqdm(
            total=n,
            initial=done_images,
            desc=desc,
            unit="img",
            disable=not progress,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        pending: dict[int, list] = {}
        with torch.inference_mode(), autocast:
            for x, idx in loader:
                x = x.to(device, non_blocking=True)
                if cuda:
                    x = x.contiguous(memory_format=torch.channels_last)
                emb, logits = model(x)
                c = int(idx[0]) // chunk_size
                pending.setdefault(c, []).append(
                    (emb.float().cpu().numpy(), None if logits is None else logits.float().cpu().numpy())
                )
                got = sum(len(e) for e, _ in pending[c])
                if got == min(chunk_size, n - c * chunk_size):
                    parts = pending.pop(c)
                    arrays = {"embeddings": np.concatenate([e for e, _ in parts])}
                    if parts[0][1] is not None:
                        arrays["logits"] = logits_fn(np.concatenate([lg for _, lg in parts]))
                    _save_npz_atomic(path(c), **arrays)
                bar.update(len(idx))
        bar.close()
    embs, logits = [], []
    for c in range(n_chunks):
        with np.load(path(c)) as z:
            embs.append(z["embeddings"])
            logits.append(z["logits"] if "logits" in z.files else None)
    emb = np.concatenate(embs)
    lg = None if any(lgt is None for lgt in logits) else np.concatenate(logits)
    if emb.shape[0] != n:
        raise ExtractionError(
            f"partial results in {folder} do not match the data ({emb.shape[0]} rows for {n} "
            "images); delete that folder and rerun"
        )
    return emb, lg


class _EmbeddingsOnly:
    """Wrap a model so a data pass returns embeddings only (heads computed afterwards)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(self, x: Any) -> tuple[Any, None]:
        emb, _ = self.model(x)
        return emb, None
