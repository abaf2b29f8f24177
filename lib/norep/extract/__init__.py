"""Extract a model's logits and pre-logit embeddings on local image data into a prediction store.

This is the paper-scale producer (paper Sec. 3.2: "we collect representations and predictions for
82 models"): it runs one model of :mod:`norep.zoo.loading` over the images of
:mod:`norep.data.imagedata` and adds the model to a :class:`norep.storage.Store`.

* **Heads.** ``trained`` (the model's own classifier), ``zero-shot`` (text prompts,
  :func:`norep.zoo.zeroshot.text_classifier`), ``l-bfgs`` (linear head fitted on a training
  subset), ``class-mapping`` (ImageNet-21k head restricted to ImageNet-1k). The default is the
  registry's head for registered models, else ``trained`` (timm) or ``zero-shot`` (CLIP-like).
* **Arrays.** Logits are stored as float32 (argmax ties and temperature fits stay exact),
  embeddings as float16.
* **Chunks and resume.** Images are processed in fixed chunks whose outputs are written atomically
  to ``STORE/_partial/<model>/<fingerprint>/<split>/chunk_NNNNN.npz``; a rerun after a crash (even
  ``SIGKILL``) skips finished chunks. Resumed arrays are bit-identical to an uninterrupted run's
  when both runs use the same threads and CPU kernels (one machine, the same ``OMP_NUM_THREADS``,
  the same torch build and ``ATEN_CPU_CAPABILITY``); resumed on another thread count or instruction
  set, the chunks computed before and after the crash agree to float32 rounding (about 1e-7 relative)
  but not bit for bit, since the order of floating-point sums changes. Finished chunks are assembled
  and added with :meth:`Store.add_model`, then the partial folder is removed (the chunked data pass
  is :mod:`norep.extract._chunks`).
* **Content cache.** The model's metadata records a fingerprint of (model, weights tag,
  random-init flag, preprocessing, head, template set, precision) and the manifest checksum of
  every split; a rerun with the same inputs does nothing.
* **Concurrency.** Different models can be extracted into one store at once (one process per model,
  e.g. a SLURM job array): the store is created under a lock and each model is committed
  atomically under its own lock. Extracting another split of a model already in the store merges:
  its other splits are kept (their checksums checked first). Two processes extracting the *same*
  model name at once do not corrupt it, but the later one decides which arrays it ends with.

Examples
--------
>>> from norep.extract import resolve_device
>>> resolve_device("cpu")
'cpu'
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from norep.extract._chunks import ExtractionError, _EmbeddingsOnly, _run_chunks
from norep.storage._schema import _check_name

PRECISIONS = ("fp32", "bf16", "fp16")
HEADS = ("trained", "zero-shot", "l-bfgs", "class-mapping")


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` -> ``"cuda"`` when available else ``"cpu"``; other values are checked and returned."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ExtractionError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    elif device != "cpu":
        raise ExtractionError(f"unknown device {device!r}; use auto, cpu or cuda[:N]")
    return device


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _dirname(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return f"{safe[:80]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def _default_head(model_name: str, entry: dict | None) -> str:
    if entry is not None and entry.get("head"):
        return entry["head"]
    return "trained" if model_name.startswith("timm:") else "zero-shot"


def extract(
    model_name: str,
    data: str,
    store: str | os.PathLike,
    *,
    name: str | None = None,
    split: str | None = None,
    device: str = "auto",
    batch_size: int = 64,
    precision: str = "fp32",
    workers: int = 0,
    random_init: bool = False,
    head: str | None = None,
    template_set: str = "openai80",
    train_data: str | None = None,
    train_per_class: int = 10,
    category: str | None = None,
    method: str | None = None,
    chunk_size: int | None = None,
    progress: bool = True,
    seed: int = 0,
    probe_Cs: Any = None,
) -> dict:
    """Extract ``model_name`` on ``data`` into the store at ``store`` (paper Sec. 3.2).

    Parameters
    ----------
    model_name : str
        A :func:`norep.zoo.load` name, e.g. ``"timm:resnet50.a1_in1k"``, or ``paper:NAME`` for a
        model of the paper's registry by its name in the paper (``"paper:CLIP-S"``): its public
        weights and head, stored under the paper's name.
    data : str
        ``KIND:PATH`` (:mod:`norep.data.imagedata`): ``imagefolder``, ``imagenet``, ``voc2007``.
    store : path
        The store; created from the data's labels when absent, extended with new splits otherwise.
    name : str, optional
        Model name in the store (default ``model_name``).
    split : str, optional
        ``imagefolder``: the split to write (default ``test``); other kinds: only this split.
    device, batch_size, precision, workers
        Inference settings (``precision`` one of ``fp32``, ``bf16``, ``fp16``: autocast).
    random_init : bool
        Random weights (tests); the model is built after ``torch.manual_seed(seed)``.
    head : {"trained", "zero-shot", "l-bfgs", "class-mapping"}, optional
        Default: the registry's head for registered models, else ``trained`` (timm) /
        ``zero-shot`` (open_clip, hf).
    template_set : {"openai80", "simple"}
        Prompt templates of the zero-shot head.
    train_data : str, optional
        ``imagenet-train:DIR`` or ``imagefolder:DIR``: training subset for the ``l-bfgs`` head.
    train_per_class : int, default 10
        Images per class drawn from ``imagenet-train`` data.
    category, method : str, optional
        Store metadata; default from the registry (else ``ARCH`` and a description of the source).
    chunk_size : int, optional
        Images per resumable chunk (a multiple of ``batch_size``; default ``16 * batch_size``).
    progress : bool
        tqdm progress bars (images per second) on stderr.
    seed : int, default 0
        Seed of random weights and of the probe's held-out split.
    probe_Cs : sequence of float, optional
        L2 sweep of the ``l-bfgs`` head (default: :func:`norep.measures.features.linear_probe`'s).

    Returns
    -------
    dict
        The stored metadata, with ``skipped=True`` when the store was already up to date.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for c in ("cat", "dog"):
    ...     (d / "imgs" / c).mkdir(parents=True)
    ...     Image.new("RGB", (32, 32), c == "dog" and "white" or "black").save(d / "imgs" / c / "0.png")
    >>> meta = extract("timm:test_convnext.r160_in1k", f"imagefolder:{d / 'imgs'}", d / "store",
    ...                random_init=True, device="cpu", progress=False)
    >>> from norep.storage import Store
    >>> st = Store.open(d / "store")
    >>> st.logits("timm:test_convnext.r160_in1k", "test").shape, meta["head"], meta["weights"]
    ((2, 1000), 'trained', 'r160_in1k')
    """
    cfg = ExtractConfig(
        model_name=model_name,
        data=data,
        store=Path(store),
        name=name,
        split=split,
        device=device,
        batch_size=batch_size,
        precision=precision,
        workers=workers,
        random_init=random_init,
        head=head,
        template_set=template_set,
        train_data=train_data,
        train_per_class=train_per_class,
        category=category,
        method=method,
        chunk_size=chunk_size,
        progress=progress,
        seed=seed,
        probe_Cs=probe_Cs,
    )
    return run_extraction(cfg)


@dataclass
class ExtractConfig:
    """One extraction request: the arguments of :func:`extract`, completed by :meth:`resolve` (model,
    store name, head, category and method from the paper's registry; chunk size and device)."""

    model_name: str
    data: str
    store: Path
    name: str | None = None
    split: str | None = None
    device: str = "auto"
    batch_size: int = 64
    precision: str = "fp32"
    workers: int = 0
    random_init: bool = False
    head: str | None = None
    template_set: str = "openai80"
    train_data: str | None = None
    train_per_class: int = 10
    category: str | None = None
    method: str | None = None
    chunk_size: int | None = None
    progress: bool = True
    seed: int = 0
    probe_Cs: Any = None
    entry: dict | None = field(default=None, repr=False)

    def resolve(self) -> ExtractConfig:
        """Fill in the defaults and check every setting (raises :class:`ExtractionError`)."""
        from norep import CATEGORIES
        from norep.zoo import zeroshot
        from norep.zoo.loading import parse_model_name
        from norep.zoo.registry import registry_entry

        self.store = Path(self.store)
        if self.model_name.startswith("paper:"):  # a model of the paper's registry, by its name in the paper
            entry = registry_entry(self.model_name[len("paper:") :])
            if entry is None:
                raise ExtractionError(
                    f"{self.model_name!r} is not in the paper's registry; see `norep zoo list --paper`"
                )
            if entry["status"] == "not public":
                raise ExtractionError(f"{entry['model']} has no public weights ({entry['differs']})")
            self.name = self.name or entry["model"]
            self.head = self.head or entry["head"]
            self.model_name = entry["load"]
        else:
            entry = registry_entry(self.model_name)
        self.entry = entry
        self.name = self.name or self.model_name
        parse_model_name(self.model_name)
        if self.precision not in PRECISIONS:
            raise ExtractionError(f"unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.batch_size < 1:
            raise ExtractionError("batch size must be at least 1")
        if self.workers < 0:
            raise ExtractionError(f"--workers must be 0 or more, got {self.workers}")
        if self.train_per_class < 1:
            raise ExtractionError(f"--train-per-class must be at least 1, got {self.train_per_class}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ExtractionError(f"--chunk-size must be a positive multiple of the batch size, got {self.chunk_size}")
        if self.store.exists() and not self.store.is_dir():
            raise ExtractionError(f"--store {self.store} is a file; give a store directory (created when absent)")
        try:
            _check_name(self.name)
        except ValueError as exc:
            raise ExtractionError(f"--name: {exc}") from None
        self.chunk_size = self.chunk_size or 16 * self.batch_size
        if self.chunk_size % self.batch_size:
            raise ExtractionError(
                f"chunk size {self.chunk_size} must be a multiple of the batch size {self.batch_size}"
            )
        self.device = resolve_device(self.device)
        if self.precision == "fp16" and not self.device.startswith("cuda"):
            raise ExtractionError("fp16 needs a CUDA device; use --precision bf16 or fp32 on CPU")
        self.head = self.head or _default_head(self.model_name, entry)
        if self.head not in HEADS:
            raise ExtractionError(f"unknown head {self.head!r}; use one of {', '.join(HEADS)}")
        if self.head in ("zero-shot", "l-bfgs") or self.model_name.startswith(("open_clip:", "hf:")):
            if self.template_set not in zeroshot.TEMPLATE_SETS:
                raise ExtractionError(
                    f"unknown template set {self.template_set!r}; use {', '.join(zeroshot.TEMPLATE_SETS)}"
                )
        self.category = (self.category or (entry["category"] if entry else "ARCH")).strip().upper()
        if self.category not in CATEGORIES:
            raise ExtractionError(f"category {self.category!r} must be one of {', '.join(CATEGORIES)}")
        self.method = self.method or (entry["method"] if entry else f"{self.model_name} ({self.head} head)")
        if not self.method.strip():
            raise ExtractionError("--method must describe the training method (e.g. 'Sup. / IN')")
        return self

    def chunk_kwargs(self) -> dict[str, Any]:
        """The inference settings :func:`_run_chunks` takes."""
        return {
            "batch_size": self.batch_size,
            "chunk_size": self.chunk_size,
            "workers": self.workers,
            "device": self.device,
            "precision": self.precision,
            "progress": self.progress,
        }


def run_extraction(cfg: ExtractConfig) -> dict:
    """:func:`extract` of a request: data, model, store, fingerprint, head, data pass, commit."""
    cfg.resolve()
    ds, single, train_ds = _open_data(cfg)
    model, preprocess = _load_model(cfg)
    n_out, mapping = _head_outputs(cfg, model, ds, train_ds)
    st = _open_store(cfg, ds, single, n_out)
    manifests = {s: v.manifest_checksum() for s, v in ds.splits.items()}
    model_desc = model.describe()
    fp_inputs = _fingerprint_inputs(cfg, model_desc, train_ds)
    fingerprint = _hash(fp_inputs)
    old = st.meta(cfg.name) if cfg.name in st else None
    old_ex = (old or {}).get("extraction", {})
    if (
        old is not None
        and old_ex.get("fingerprint") == fingerprint
        and all(old_ex.get("manifests", {}).get(s) == m for s, m in manifests.items())
    ):
        print(
            f"norep: {cfg.name} is up to date in {cfg.store} (same model, weights, preprocessing and data)",
            file=sys.stderr,
        )
        return {**old, "skipped": True}

    partial = cfg.store / "_partial" / _dirname(cfg.name) / fingerprint[:16]
    _make_partial(partial)
    with open(partial / "inputs.json", "w") as f:
        json.dump(fp_inputs, f, indent=1, default=str)
    head_info, head_fn = _fit_head(cfg, model, preprocess, ds, single, train_ds, n_out, partial, fp_inputs)
    logits, embeddings = _data_pass(cfg, model, preprocess, ds, partial, mapping, head_fn)

    # keep the model's other splits when they came from the same model configuration: merged into the
    # existing model under its lock (each kept array's checksum checked first), else the model is replaced
    same_config = old is not None and old_ex.get("fingerprint") == fingerprint
    if same_config:
        for s, m in old_ex.get("manifests", {}).items():
            manifests.setdefault(s, m)
    meta = _model_meta(cfg, model_desc, ds, head_info, fingerprint, manifests)
    try:
        out = st.add_model(
            cfg.name, logits=logits, embeddings=embeddings, meta=meta, overwrite=old is not None, merge=same_config
        )
    except ValueError as exc:
        raise ExtractionError(f"store {cfg.store}: {exc}") from None
    shutil.rmtree(cfg.store / "_partial" / _dirname(cfg.name), ignore_errors=True)
    try:
        (cfg.store / "_partial").rmdir()
    except OSError:
        pass
    return out


def _make_partial(partial: Path) -> None:
    """Create the model's partial folder ``STORE/_partial/<model>/<fingerprint>``.

    A process that finishes removes the shared ``_partial`` folder once it is empty; another one may
    have just created it on its way down to its own folder, which then fails to appear. Creating the
    whole path again succeeds: a non-empty ``_partial`` is never removed.
    """
    for _ in range(99):
        try:
            partial.mkdir(parents=True, exist_ok=True)
            return
        except FileNotFoundError:  # _partial removed between the two mkdir calls
            continue
    partial.mkdir(parents=True, exist_ok=True)


def _open_data(cfg: ExtractConfig):
    """The data, its single-label splits (those that get logits) and the l-bfgs head's training data."""
    from norep.data import imagedata

    ds = imagedata.open_data(cfg.data, split=cfg.split)
    single = [s for s in ds.splits if ds.splits[s].labels.ndim == 1]  # splits that get logits
    if cfg.head == "l-bfgs" and single and not cfg.train_data:
        raise ExtractionError(
            "the l-bfgs head needs --train-data imagenet-train:DIR (or imagefolder:DIR), "
            "the training images its linear head is fitted on"
        )
    train_ds = imagedata.open_data(cfg.train_data, split="train") if cfg.head == "l-bfgs" and single else None
    if train_ds is not None and train_ds.kind == "imagenet-train":
        train_ds = imagedata.imagenet_train_subset(train_ds.root, per_class=cfg.train_per_class, seed=cfg.seed)
    return ds, single, train_ds


def _load_model(cfg: ExtractConfig):
    """The model and its preprocessing (seeded for random weights, so a resumed run rebuilds it)."""
    import torch

    from norep.zoo.loading import load

    if cfg.random_init:
        torch.manual_seed(cfg.seed)
    model, preprocess = load(cfg.model_name, random_init=cfg.random_init, device=cfg.device)
    if cfg.device.startswith("cuda"):
        model.module.to(memory_format=torch.channels_last)
    return model, preprocess


def _head_outputs(cfg: ExtractConfig, model, ds, train_ds):
    """How many classes the head scores, and the class mapping of a ``class-mapping`` head."""
    from norep.zoo import zeroshot

    mapping = None
    if cfg.head == "trained":
        if not model.num_classes:
            raise ExtractionError(f"{cfg.model_name} has no classifier of its own; use --head zero-shot or l-bfgs")
        n_out = model.num_classes
    elif cfg.head == "class-mapping":
        try:
            mapping = zeroshot.class_mapping_indices(model)
        except ValueError as exc:
            raise ExtractionError(str(exc)) from None
        n_out = len(mapping)
    elif cfg.head == "zero-shot":
        if not model.is_clip_like:
            raise ExtractionError(f"{cfg.model_name} has no text tower; zero-shot heads need open_clip: or hf: models")
        n_out = len(ds.prompt_names or ds.class_names)
    else:
        n_out = len(train_ds.class_names) if train_ds is not None else 0
    return n_out, mapping


def _open_store(cfg: ExtractConfig, ds, single, n_out: int):
    """Create the store from the data's labels (under a lock), or add the data's splits to it."""
    from norep.data import imagedata
    from norep.storage import Store

    class_names = list(ds.class_names)
    info: dict[str, Any] = {}
    if not single:
        # multi-label data only (VOC): the store's single-label classes are ImageNet's, so that the
        # ImageNet splits of the paper-scale study can join the same store later
        class_names = imagedata.imagenet_class_names()
    elif n_out != len(class_names):
        if n_out == 1000 and int(max(ds.splits[s].labels.max() for s in single)) < 1000:
            info["data_class_folders"] = class_names
            class_names = imagedata.imagenet_class_names()
        else:
            raise ExtractionError(
                f"{cfg.model_name} ({cfg.head} head) scores {n_out} classes but {cfg.data} has {len(class_names)}"
            )
    if (cfg.store / "store.json").exists():  # contradictions with the store refused before a split is added
        _check_store_classes(cfg, Store.open(cfg.store), class_names, single, n_out, info)
    try:
        st = Store.open_or_create(
            cfg.store,
            dataset=ds.dataset,
            class_names=class_names,
            splits={s: v.labels for s, v in ds.splits.items()},
            split_class_names=ds.split_class_names,
            info=info,
        )
    except ValueError as exc:
        raise ExtractionError(f"store {cfg.store}: {exc}") from None
    _check_store_classes(cfg, st, class_names, single, n_out, info)
    return st


def _check_store_classes(cfg: ExtractConfig, st, class_names: list[str], single, n_out: int, info: dict) -> None:
    """Refuse data whose class names, or a model whose class count, contradict the store ``st``."""
    if single and st.class_names != class_names and len(st.class_names) == n_out and not info:
        raise ExtractionError(
            f"store {cfg.store} has other class names than {cfg.data} ({st.class_names[:3]}... vs {class_names[:3]}...)"
        )
    if single and len(st.class_names) != n_out:
        raise ExtractionError(
            f"store {cfg.store} has {len(st.class_names)} classes but {cfg.model_name} ({cfg.head} head) scores {n_out}"
        )


def _fingerprint_inputs(cfg: ExtractConfig, model_desc: dict, train_ds) -> dict[str, Any]:
    """What the content fingerprint hashes: model, weights, preprocessing, head, precision, data."""
    return {
        "model": cfg.model_name,
        **model_desc,
        "head": cfg.head,
        "precision": cfg.precision,
        "template_set": cfg.template_set if cfg.head == "zero-shot" else None,
        "train_manifest": train_ds.splits["train"].manifest_checksum() if train_ds else None,
        "seed": cfg.seed if cfg.random_init else None,
    }


def _fit_head(cfg: ExtractConfig, model, preprocess, ds, single, train_ds, n_out, partial, fp_inputs):
    """Head parameters that need the model before the data pass: the recipe's head entries and the
    function from a split's embeddings to its logits (None for the model's own logits)."""
    from norep.zoo import zeroshot

    head_info: dict[str, Any] = {"head": cfg.head}
    if cfg.head == "zero-shot" and single:
        classifier = zeroshot.text_classifier(
            model, ds.prompt_names or ds.class_names, template_set=cfg.template_set, cache_dir=cfg.store / "_cache"
        )
        head_info.update(
            template_set=cfg.template_set,
            n_templates=len(zeroshot.templates(cfg.template_set)),
            logit_scale=round(model.logit_scale, 4),
        )
        return head_info, lambda emb: zeroshot.zero_shot_logits(emb, classifier, logit_scale=model.logit_scale)
    if cfg.head == "l-bfgs" and train_ds is not None:
        tsplit = train_ds.splits["train"]
        temb, _ = _run_chunks(
            model,
            tsplit.files,
            preprocess,
            partial / "_train",
            logits_fn=None,
            desc=f"{cfg.name} [train subset]",
            **cfg.chunk_kwargs(),
        )
        W, b, probe = zeroshot.linear_head(
            temb, tsplit.labels, n_classes=n_out, device=cfg.device, seed=cfg.seed, Cs=cfg.probe_Cs
        )
        head_info.update(probe, train_data=cfg.train_data, train_manifest=fp_inputs["train_manifest"])
        return head_info, lambda emb: zeroshot.apply_linear_head(emb, W, b)
    return head_info, None


def _data_pass(cfg: ExtractConfig, model, preprocess, ds, partial, mapping, head_fn):
    """Every split through the model (resumable chunks): float32 logits of the single-label splits,
    float16 embeddings of all."""
    from norep.zoo import zeroshot

    own_logits = cfg.head in ("trained", "class-mapping")
    logits_fn = (lambda z: zeroshot.map_classes(z, mapping)) if mapping is not None else (lambda z: z)
    if own_logits and cfg.head == "trained":
        logits_fn = lambda z: z.astype(np.float32)  # noqa: E731
    logits: dict[str, np.ndarray] = {}
    embeddings: dict[str, np.ndarray] = {}
    for s, sp in ds.splits.items():
        emb, lg = _run_chunks(
            model if own_logits else _EmbeddingsOnly(model),
            sp.files,
            preprocess,
            partial / s,
            logits_fn=logits_fn,
            desc=f"{cfg.name} [{s}]",
            **cfg.chunk_kwargs(),
        )
        embeddings[s] = emb.astype(np.float16)
        if sp.labels.ndim == 1:
            if cfg.head in ("zero-shot", "l-bfgs"):
                lg = head_fn(emb)
            logits[s] = lg.astype(np.float32)
    return logits, embeddings


def _model_meta(cfg: ExtractConfig, model_desc: dict, ds, head_info, fingerprint: str, manifests) -> dict:
    """The store metadata of the extracted model."""
    entry = cfg.entry
    return {
        "category": cfg.category,
        "method": cfg.method,
        "data": entry["method"].split("/")[-1].strip() if entry else None,
        "head": cfg.head,
        "source": model_desc["source"],
        "weights": model_desc["weights"],
        "arch": model_desc["arch"],
        "load": cfg.model_name,
        "random_init": cfg.random_init,
        "paper_model": entry["model"] if entry else None,
        "registry_status": entry["status"] if entry else None,
        "paper_top1": entry["paper_top1"] if entry else None,
        "recipe": {"preprocessing": model_desc["preprocessing"], "precision": cfg.precision, **head_info},
        "extraction": {
            "fingerprint": fingerprint,
            "manifests": manifests,
            "data": cfg.data,
            "dataset": ds.dataset,
            "device": cfg.device,
            "batch_size": cfg.batch_size,
        },
        "seed": cfg.seed,
    }


__all__ = ["ExtractConfig", "ExtractionError", "HEADS", "PRECISIONS", "extract", "resolve_device", "run_extraction"]
