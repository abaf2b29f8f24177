"""Heads that turn a backbone's embeddings into ImageNet logits: zero-shot, L-BFGS, class mapping.

The paper evaluates CLIP and ALIGN both zero-shot ("CLIP-S-ZS", "ALIGN-ZS": text-prompt heads) and
with a linear head fitted by L-BFGS on ImageNet features ("CLIP-S L-BFGS", Table 1; Radford et al.
2021), and BiT-JFT through a mapping of its upstream head onto the ImageNet classes (Table 3).

* Zero-shot: for each class the prompt templates are filled with the class name, embedded by the
  text tower, L2-normalised, averaged and re-normalised (CLIP's recipe); logits are
  ``logit_scale x cosine(image embedding, class embedding)``. Template sets ship as package data:
  ``openai80`` (CLIP's 80 ImageNet templates) and ``simple`` (``"a photo of a {}."``). Text
  embeddings are cached per (model, weights, template set, class names).
* L-BFGS: multinomial logistic regression fitted with :func:`norep.measures.features.linear_probe` on the
  embeddings of an ImageNet training subset, its L2 strength chosen on a held-out part of it.
* Class mapping: the columns of an ImageNet-21k head whose WordNet ids are ImageNet-1k classes
  (999 of the 1,000 are in the 21k list; the missing one gets a constant low logit).

Examples
--------
>>> import numpy as np
>>> from norep.zoo.zeroshot import zero_shot_logits, templates
>>> len(templates("openai80")), templates("simple")
(80, ['a photo of a {}.'])
>>> emb = np.array([[1.0, 0.0], [0.0, 2.0]])
>>> W = np.array([[1.0, 0.0], [0.0, 1.0]])   # (D, C): unit class embeddings as columns
>>> zero_shot_logits(emb, W, logit_scale=100.0)
array([[100.,   0.],
       [  0., 100.]])
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

TEMPLATE_SETS = ("openai80", "simple")
MISSING_CLASS_LOGIT = -1e4
"""Logit given to a class a head cannot score (finite, so stores and float16 accept it)."""


def templates(name: str = "openai80") -> list[str]:
    """The prompt templates of a template set (``{}`` marks the class name).

    Examples
    --------
    >>> templates("openai80")[0]
    'a bad photo of a {}.'
    """
    from importlib.resources import files

    sets = json.loads(files("norep.resources").joinpath("clip_templates.json").read_text())
    if name not in sets:
        raise ValueError(f"unknown template set {name!r}; use one of {', '.join(sets)}")
    return list(sets[name])


def _normalize(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def zero_shot_logits(image_embeddings: Any, classifier: Any, *, logit_scale: float) -> np.ndarray:
    """``logit_scale x cosine similarity`` between image embeddings and class embeddings.

    Parameters
    ----------
    image_embeddings : array of shape (N, D)
    classifier : array of shape (D, C)
        Class embeddings as columns (normalised here again, so any scale is fine).
    logit_scale : float
        The model's learned scale (100 for CLIP; 1/temperature for ALIGN).

    Returns
    -------
    ndarray of shape (N, C), float32 unless the inputs are float64

    Examples
    --------
    >>> zero_shot_logits(np.ones((1, 2)), np.array([[1.0], [1.0]]), logit_scale=10.0).round(3)
    array([[10.]])
    """
    emb = np.asarray(image_embeddings)
    W = np.asarray(classifier)
    if emb.ndim != 2 or W.ndim != 2 or emb.shape[1] != W.shape[0]:
        raise ValueError(f"image_embeddings {emb.shape} and classifier {W.shape} must be (N, D) and (D, C)")
    dtype = np.float64 if np.float64 in (emb.dtype, W.dtype) else np.float32
    return (float(logit_scale) * _normalize(emb.astype(dtype)) @ _normalize(W.astype(dtype).T).T).astype(dtype)


def _cache_key(model: Any, class_names: list[str], template_set: str) -> str:
    desc = model.describe()
    key = json.dumps(
        {
            "model": str(model.name),
            "weights": desc["weights"],
            "random_init": desc["random_init"],
            "templates": templates(template_set),
            "classes": list(class_names),
        },
        sort_keys=True,
    )
    return hashlib.sha256(key.encode()).hexdigest()[:20]


def text_classifier(
    model: Any,
    class_names: list[str],
    *,
    template_set: str = "openai80",
    cache_dir: str | Path | None = None,
    batch_size: int = 256,
) -> np.ndarray:
    """Zero-shot class embeddings (D, C) of a CLIP-like model (Radford et al. 2021; paper Table 1).

    Parameters
    ----------
    model : norep.zoo.loading.ImageModel
        A CLIP-like model (``open_clip:`` or ``hf:``).
    class_names : list of str
        Names put in the prompts.
    template_set : {"openai80", "simple"}
    cache_dir : path, optional
        Where to cache the result as ``text-<key>.npy``; the key hashes the model name, weights
        tag, random-init flag, templates and class names.
    batch_size : int, default 256
        Prompts per text-tower call.

    Returns
    -------
    ndarray of shape (D, C), float32, unit-norm columns

    Examples
    --------
    >>> import json, tempfile, pathlib, open_clip, torch
    >>> from norep.zoo.loading import load
    >>> cfg = {"embed_dim": 16, "vision_cfg": {"image_size": 16, "layers": 1, "width": 16, "patch_size": 8,
    ...                                        "head_width": 8},
    ...        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1}}
    >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "doc-tiny-clip.json").write_text(json.dumps(cfg))
    >>> open_clip.add_model_config(d)
    >>> _ = torch.manual_seed(0)
    >>> model, _ = load("open_clip:doc-tiny-clip", random_init=True)
    >>> W = text_classifier(model, ["cat", "dog"], template_set="simple", cache_dir=d)
    >>> W.shape, np.allclose(np.linalg.norm(W, axis=0), 1), len(list(d.glob("text-*.npy")))
    ((16, 2), True, 1)
    """
    import torch

    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"text-{_cache_key(model, class_names, template_set)}.npy"
        if path.is_file():
            return np.load(path)
    temps = templates(template_set)
    prompts = [t.format(c) for c in class_names for t in temps]
    chunks = []
    with torch.no_grad():
        for i in range(0, len(prompts), batch_size):
            chunks.append(model.encode_text(prompts[i : i + batch_size]).float().cpu().numpy())
    T = _normalize(np.concatenate(chunks).reshape(len(class_names), len(temps), -1))
    W = _normalize(T.mean(axis=1)).T.astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{np.random.default_rng().integers(1 << 30)}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, W)
        tmp.replace(path)
    return W


def linear_head(
    X_train: Any,
    y_train: Any,
    *,
    n_classes: int,
    val_fraction: float = 0.2,
    Cs: Any = None,
    device: str = "cpu",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Fit the paper's "L-BFGS" linear head on training-subset embeddings (Table 1, Sec. 4.6).

    The training subset is split (seeded, stratified by shuffling) into a fitting part and a
    held-out ``val_fraction`` that chooses the L2 strength; the evaluation splits are never used.

    Parameters
    ----------
    X_train : array (N, D)
    y_train : array (N,) of class ids in [0, n_classes)
    n_classes : int
        Width of the produced logits (classes absent from ``y_train`` get
        :data:`MISSING_CLASS_LOGIT`).

    Returns
    -------
    W : ndarray (D, n_classes)
    b : ndarray (n_classes,)
    info : dict
        ``best_C``, ``val_accuracy``, ``n_train``, ``n_val``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (40, 3)), rng.normal(4, 1, (40, 3))]
    >>> y = np.r_[np.zeros(40, int), np.ones(40, int)]
    >>> W, b, info = linear_head(X, y, n_classes=3, Cs=[1.0])
    >>> W.shape, b.shape, info["val_accuracy"]
    ((3, 3), (3,), 1.0)
    >>> float(apply_linear_head(X[:1], W, b)[0, 2])
    -10000.0
    """
    from norep.measures.features import linear_probe

    X = np.asarray(X_train, dtype=np.float32)
    y = np.asarray(y_train, dtype=np.int64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X_train {X.shape} and y_train {y.shape} must be (N, D) and (N,)")
    perm = np.random.default_rng(seed).permutation(len(y))
    n_val = max(1, int(round(len(y) * val_fraction)))
    val, fit = perm[:n_val], perm[n_val:]
    res = linear_probe(X[fit], y[fit], X[val], y[val], Cs=Cs, device=device)
    W = np.zeros((X.shape[1], n_classes), dtype=np.float32)
    b = np.full(n_classes, MISSING_CLASS_LOGIT, dtype=np.float32)
    cls = np.asarray(res.classes, dtype=np.int64)
    W[:, cls] = np.asarray(res.coef, dtype=np.float32).T
    b[cls] = np.asarray(res.intercept, dtype=np.float32)
    info = {
        "best_C": float(res.best_C),
        "val_accuracy": float(res.val_accuracy),
        "n_train": int(fit.size),
        "n_val": int(val.size),
    }
    return W, b, info


def apply_linear_head(embeddings: Any, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Logits ``embeddings @ W + b`` (classes without weights keep their low bias)."""
    return np.asarray(embeddings, dtype=np.float32) @ W + b


def class_mapping_indices(model: Any) -> np.ndarray:
    """For a timm model with an ImageNet-21k/22k head, the head column of each ImageNet-1k class.

    Returns an (1000,) int array, -1 where the class is not in the model's label set (paper
    Table 3, "BiT-JFT Class Mapping").

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> fake = SimpleNamespace(module=SimpleNamespace(num_classes=21843, pretrained_cfg={}), name="x",
    ...                        num_classes=21843)
    >>> idx = class_mapping_indices(fake)
    >>> idx.shape, int((idx < 0).sum())
    ((1000,), 1)
    """
    import pkgutil
    import re

    from timm.data import imagenet_info

    from norep.data.imagedata import imagenet_synsets

    subset = imagenet_info.infer_imagenet_subset(model.module)
    if subset is None or subset == "imagenet-1k":
        raise ValueError(f"{model.name} has no ImageNet-21k/22k head to map (num_classes={model.num_classes})")
    # read only the synset list (timm's ImageNetInfo also parses large lemma/definition files)
    synset_file = imagenet_info._SUBSETS[re.sub(r"[-_\s]", "", subset.lower())]
    data = pkgutil.get_data("timm.data", f"_info/{synset_file}").decode("utf-8").splitlines()
    labels = {w: i for i, w in enumerate(data)}
    return np.asarray([labels.get(w, -1) for w in imagenet_synsets()], dtype=np.int64)


def map_classes(logits: Any, indices: np.ndarray) -> np.ndarray:
    """Select head columns ``indices`` (-1: :data:`MISSING_CLASS_LOGIT`).

    Examples
    --------
    >>> map_classes(np.array([[1.0, 2.0, 3.0]]), np.array([2, -1, 0]))
    array([[ 3.e+00, -1.e+04,  1.e+00]], dtype=float32)
    """
    logits = np.asarray(logits, dtype=np.float32)
    out = logits[:, np.maximum(indices, 0)]
    out[:, indices < 0] = MISSING_CLASS_LOGIT
    return out


__all__ = [
    "MISSING_CLASS_LOGIT",
    "TEMPLATE_SETS",
    "apply_linear_head",
    "class_mapping_indices",
    "linear_head",
    "map_classes",
    "templates",
    "text_classifier",
    "zero_shot_logits",
]
