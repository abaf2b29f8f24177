"""Load the paper's ImageNet models by name: ``timm:``, ``open_clip:`` and ``hf:`` (paper Sec. 3.2).

``load("timm:resnet50.a1_in1k")`` returns ``(model, preprocess)`` like timm and open_clip do: the
model wrapped in :class:`ImageModel` (pre-logit embeddings, the model's own classifier when it has
one, the text tower of CLIP-like models) and the evaluation transform read from the model's own
pretrained configuration (``timm.data.resolve_data_config`` / ``create_transform``, open_clip's
validation transform, the Hugging Face image processor).

Names
-----
``timm:ARCH[.TAG]``
    any ``timm.list_models()`` architecture and ``timm.list_pretrained()`` tag.
``open_clip:ARCH[.TAG]``
    an ``open_clip.list_models()`` architecture (including configs registered with
    ``open_clip.add_model_config``) and an ``open_clip.list_pretrained()`` tag, e.g.
    ``open_clip:ViT-B-32.openai``.
``hf:ORG/NAME[@REVISION]``
    a Hugging Face ``transformers`` CLIP-like dual encoder such as ``hf:kakaobrain/align-base``
    (ALIGN). ``transformers`` is imported lazily and is not a hard dependency.

Weights are read from the local caches (``HF_HOME``, ``TORCH_HOME``); fetch them ahead of time on a
machine with network access (the error message says how) and run with ``HF_HUB_OFFLINE=1`` on
compute nodes. ``random_init=True`` builds the architecture with random weights, for tests.

Examples
--------
>>> from norep.zoo.loading import parse_model_name
>>> parse_model_name("timm:resnet50.a1_in1k")
ModelName(source='timm', arch='resnet50', tag='a1_in1k')
>>> parse_model_name("hf:kakaobrain/align-base").arch
'kakaobrain/align-base'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, NamedTuple

SOURCES = ("timm", "open_clip", "hf")


class ModelName(NamedTuple):
    """A parsed model name: ``source``, ``arch`` and weights ``tag`` (None: the default)."""

    source: str
    arch: str
    tag: str | None

    def __str__(self) -> str:
        if self.source == "hf":
            return f"hf:{self.arch}" + (f"@{self.tag}" if self.tag else "")
        return f"{self.source}:{self.arch}" + (f".{self.tag}" if self.tag else "")


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights are not in the local cache and cannot be downloaded."""


class UnknownModelError(ValueError):
    """The model name does not name an architecture or weights tag of its source."""


def parse_model_name(name: str) -> ModelName:
    """Split ``"SOURCE:ARCH[.TAG]"`` (``"hf:ORG/NAME[@REV]"``) into its parts.

    Parameters
    ----------
    name : str
        The model name, e.g. ``"timm:resnet50.a1_in1k"``, ``"open_clip:ViT-B-32.openai"``.

    Returns
    -------
    ModelName

    Examples
    --------
    >>> parse_model_name("open_clip:ViT-L-14-336.openai")
    ModelName(source='open_clip', arch='ViT-L-14-336', tag='openai')
    >>> parse_model_name("timm:resnet18").tag is None
    True
    """
    if not isinstance(name, str) or ":" not in name:
        raise UnknownModelError(
            f"model name {name!r} must look like SOURCE:NAME with SOURCE one of {', '.join(SOURCES)} "
            "(e.g. timm:resnet50.a1_in1k, open_clip:ViT-B-32.openai, hf:kakaobrain/align-base)"
        )
    source, _, rest = name.partition(":")
    if source not in SOURCES:
        raise UnknownModelError(f"model {name!r}: unknown source {source!r}; use one of {', '.join(SOURCES)}")
    if not rest:
        raise UnknownModelError(f"model {name!r}: missing the model after '{source}:'")
    if source == "hf":
        arch, _, tag = rest.partition("@")
        return ModelName(source, arch, tag or None)
    arch, dot, tag = rest.partition(".")
    return ModelName(source, arch, tag if dot and tag else None)


def _fetch_hint(mn: ModelName) -> str:
    if mn.source == "timm":
        code = f"import timm; timm.create_model('{mn.arch}{'.' + mn.tag if mn.tag else ''}', pretrained=True)"
    elif mn.source == "open_clip":
        code = f"import open_clip; open_clip.create_model_and_transforms('{mn.arch}', pretrained='{mn.tag}')"
    else:
        code = f"from huggingface_hub import snapshot_download; snapshot_download('{mn.arch}')"
    return (
        f'fetch them ahead of time on a machine with network access: python -c "{code}" '
        "(they land in HF_HOME / TORCH_HOME; copy that cache over), then run with HF_HUB_OFFLINE=1"
    )


def _weights_error(mn: ModelName, exc: BaseException) -> WeightsUnavailableError:
    last = str(exc).strip().splitlines()[-1][:120] if str(exc).strip() else type(exc).__name__
    offline = " (HF_HUB_OFFLINE=1)" if os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0") else ""
    return WeightsUnavailableError(
        f"weights for {mn} (model {mn.arch}, weights tag {mn.tag or 'default'}) are not in the local "
        f"cache and could not be downloaded{offline}: {type(exc).__name__}: {last}; {_fetch_hint(mn)}"
    )


@dataclass
class ImageModel:
    """A loaded image model with a uniform interface over timm, open_clip and Hugging Face.

    Attributes
    ----------
    name : ModelName
    module : torch.nn.Module
        The underlying model (timm model, open_clip ``CLIP``, transformers ``AlignModel``...).
    num_classes : int or None
        Outputs of the model's own classifier, None when it has none (CLIP-like models).
    embed_dim : int
        Width of the pre-logit embedding that :meth:`forward` returns.
    preprocessing : dict
        JSON-able description of the evaluation transform (recorded in the store's metadata).
    random_init : bool
        True when the weights are random (tests).
    """

    name: ModelName
    module: Any
    num_classes: int | None
    embed_dim: int
    preprocessing: dict
    random_init: bool
    _tokenizer: Any = None

    @property
    def is_clip_like(self) -> bool:
        """Whether the model has a text tower (zero-shot heads, :mod:`norep.zoo.zeroshot`)."""
        return self.name.source in ("open_clip", "hf")

    def to(self, device: Any) -> ImageModel:
        self.module.to(device)
        return self

    @property
    def device(self) -> Any:
        return next(self.module.parameters()).device

    def forward(self, images: Any) -> tuple[Any, Any]:
        """Pre-logit embeddings (N, D) and the own classifier's logits (N, C) or None.

        ``images`` is a preprocessed float batch (N, 3, H, W). Call under ``torch.no_grad()``.
        """
        src = self.name.source
        m = self.module
        if src == "timm":
            feats = m.forward_features(images)
            emb = m.forward_head(feats, pre_logits=True)
            if isinstance(emb, (tuple, list)):  # distillation models return (cls, dist) tokens
                emb = sum(emb) / len(emb)
            if emb.ndim > 2:
                emb = emb.flatten(2).mean(-1)
            logits = m.forward_head(feats) if self.num_classes else None
            return emb, logits
        if src == "open_clip":
            return m.encode_image(images), None
        out = m.get_image_features(pixel_values=images)
        emb = out if hasattr(out, "ndim") else out.pooler_output
        return emb, None

    __call__ = forward

    def encode_text(self, texts: list[str]) -> Any:
        """Text embeddings (len(texts), D) of a CLIP-like model (not normalised)."""
        import torch

        if not self.is_clip_like:
            raise ValueError(f"{self.name} has no text tower")
        dev = self.device
        if self.name.source == "open_clip":
            tokens = self._tokenizer(texts).to(dev)
            return self.module.encode_text(tokens)
        batch = self._tokenizer(texts, padding="max_length", truncation=True, return_tensors="pt")
        batch = {k: v.to(dev) for k, v in batch.items() if isinstance(v, torch.Tensor)}
        out = self.module.get_text_features(**batch)
        return out if hasattr(out, "ndim") else out.pooler_output

    @property
    def logit_scale(self) -> float:
        """The learned temperature of a CLIP-like model's similarity logits (100 for CLIP)."""
        scale = getattr(self.module, "logit_scale", None)
        if scale is not None:
            return float(scale.exp().item())
        temp = getattr(self.module, "temperature", None)  # ALIGN: logits = cosine / temperature
        if temp is not None:
            return float(1.0 / temp.item())
        raise ValueError(f"{self.name} has no logit scale")

    def describe(self) -> dict:
        """Metadata for the store: source, arch, weights tag, preprocessing, random_init."""
        return {
            "source": self.name.source,
            "arch": self.name.arch,
            "weights": self.name.tag or "default",
            "random_init": self.random_init,
            "preprocessing": self.preprocessing,
        }


def load(name: str, *, random_init: bool = False, device: str = "cpu") -> tuple[ImageModel, Any]:
    """Load a model and its evaluation preprocessing by name (paper Sec. 3.2).

    Parameters
    ----------
    name : str
        ``timm:ARCH[.TAG]``, ``open_clip:ARCH[.TAG]`` or ``hf:ORG/NAME[@REV]`` (module docstring).
    random_init : bool, default False
        Build the architecture with random weights (no download); the preprocessing is still that
        of the named weights.
    device : str, default "cpu"
        Torch device for the model.

    Returns
    -------
    model : ImageModel
        In eval mode, on ``device``.
    preprocess : callable
        PIL image -> float tensor (3, H, W), from the model's pretrained configuration.

    Raises
    ------
    UnknownModelError
        The name is malformed or unknown to its source.
    WeightsUnavailableError
        The weights are not cached and cannot be downloaded; the message names the model, its
        weights tag and how to fetch them ahead of time.

    Examples
    --------
    >>> from norep.zoo.loading import load
    >>> model, preprocess = load("timm:resnet18.a1_in1k", random_init=True)
    >>> model.num_classes, model.embed_dim, model.preprocessing["input_size"]
    (1000, 512, [3, 224, 224])
    """
    mn = parse_model_name(name)
    loader = {"timm": _load_timm, "open_clip": _load_open_clip, "hf": _load_hf}[mn.source]
    model, preprocess = loader(mn, random_init)
    model.module.eval()
    model.to(device)
    return model, preprocess


def _load_timm(mn: ModelName, random_init: bool) -> tuple[ImageModel, Any]:
    import timm
    from timm.data import create_transform, resolve_data_config

    if not timm.is_model(mn.arch):
        raise UnknownModelError(f"timm has no model {mn.arch!r} (see timm.list_models())")
    full = f"{mn.arch}.{mn.tag}" if mn.tag else mn.arch
    if mn.tag and full not in timm.list_pretrained(full):
        raise UnknownModelError(
            f"timm has no weights tag {mn.tag!r} for {mn.arch!r}; "
            f"known: {', '.join(timm.list_pretrained(mn.arch + '.*')[:12]) or 'none'}"
        )
    try:
        module = timm.create_model(full, pretrained=not random_init)
    except Exception as exc:  # noqa: BLE001 - hub/network errors of many types
        if random_init or not _looks_like_missing_weights(exc):
            raise
        raise _weights_error(mn, exc) from None
    tag = mn.tag or module.pretrained_cfg.get("tag")
    cfg = resolve_data_config({}, model=module)
    preprocess = create_transform(**cfg)
    num_classes = int(getattr(module, "num_classes", 0) or 0) or None
    return ImageModel(
        ModelName(mn.source, mn.arch, tag), module, num_classes, int(module.num_features), _jsonable(cfg), random_init
    ), preprocess


def _load_open_clip(mn: ModelName, random_init: bool) -> tuple[ImageModel, Any]:
    import open_clip

    if mn.arch not in open_clip.list_models():
        raise UnknownModelError(f"open_clip has no model {mn.arch!r} (see open_clip.list_models())")
    tag = mn.tag
    if tag and (mn.arch, tag) not in set(open_clip.list_pretrained()) and not os.path.isfile(tag):
        known = [t for a, t in open_clip.list_pretrained() if a == mn.arch]
        raise UnknownModelError(
            f"open_clip has no weights tag {tag!r} for {mn.arch!r}; known: {', '.join(known) or 'none'}"
        )
    kwargs: dict[str, Any] = {}
    if tag and random_init:  # keep the named weights' preprocessing
        pcfg = open_clip.get_pretrained_cfg(mn.arch, tag) or {}
        for key in ("mean", "std", "interpolation", "resize_mode"):
            if pcfg.get(key) is not None:
                kwargs[f"image_{key}"] = pcfg[key]
    import logging

    logging.disable(logging.ERROR)  # open_clip logs the download failure before raising it
    try:
        module, _, preprocess = open_clip.create_model_and_transforms(
            mn.arch, pretrained=None if random_init else tag, **kwargs
        )
    except Exception as exc:  # noqa: BLE001
        if random_init or not _looks_like_missing_weights(exc):
            raise
        raise _weights_error(mn, exc) from None
    finally:
        logging.disable(logging.NOTSET)
    tokenizer = open_clip.get_tokenizer(mn.arch)
    pp = getattr(getattr(module, "visual", None), "preprocess_cfg", None) or {}
    desc = {
        "input_size": [3, *_pair(getattr(module.visual, "image_size", 224))],
        **_jsonable(pp),
        "transform": repr(preprocess),
    }
    embed_dim = int(getattr(module.visual, "output_dim", 0) or module.text_projection.shape[-1])
    return ImageModel(mn, module, None, embed_dim, desc, random_init, tokenizer), preprocess


def _load_hf(mn: ModelName, random_init: bool) -> tuple[ImageModel, Any]:
    try:
        import transformers
    except ImportError:
        raise UnknownModelError(
            f"{mn} needs the Hugging Face 'transformers' package, which is not installed: pip install transformers"
        ) from None
    kwargs = {"revision": mn.tag} if mn.tag else {}
    try:
        processor = transformers.AutoProcessor.from_pretrained(mn.arch, **kwargs)
        if random_init:
            config = transformers.AutoConfig.from_pretrained(mn.arch, **kwargs)
            module = transformers.AutoModel.from_config(config)
        else:
            module = transformers.AutoModel.from_pretrained(mn.arch, **kwargs)
    except Exception as exc:  # noqa: BLE001
        if not _looks_like_missing_weights(exc):
            raise
        raise _weights_error(mn, exc) from None
    if not hasattr(module, "get_image_features"):
        raise UnknownModelError(f"{mn} is not a CLIP-like dual encoder (no get_image_features)")
    image_processor = processor.image_processor

    def preprocess(img: Any) -> Any:
        return image_processor(images=img.convert("RGB"), return_tensors="pt")["pixel_values"][0]

    cfg = getattr(module.config, "projection_dim", None) or module.config.text_config.hidden_size
    desc = {"image_processor": _jsonable(image_processor.to_dict())}
    return ImageModel(mn, module, None, int(cfg), desc, random_init, processor.tokenizer), preprocess


def _looks_like_missing_weights(exc: BaseException) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    if names & {
        "LocalEntryNotFoundError",
        "EntryNotFoundError",
        "RepositoryNotFoundError",
        "HfHubHTTPError",
        "OfflineModeIsEnabled",
        "ConnectionError",
        "URLError",
        "HTTPError",
        "Timeout",
        "OSError",
    }:
        return True
    text = str(exc).lower()
    return any(k in text for k in ("offline", "download", "connection", "cache", "hub", "not found", "resolve"))


def _pair(size: Any) -> list[int]:
    return [int(size), int(size)] if isinstance(size, int) else [int(s) for s in size]


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return repr(obj)


__all__ = [
    "ImageModel",
    "ModelName",
    "SOURCES",
    "UnknownModelError",
    "WeightsUnavailableError",
    "load",
    "parse_model_name",
]
