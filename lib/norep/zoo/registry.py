"""The paper's model registry: every model of Tables 1-3 mapped to the closest public weights.

The paper (Sec. 3.2, Appendix A.2) analyses 59 ImageNet models in its Tables 1-3. This module ships
them as package data (``norep/resources/paper_registry.csv``) with, for each, the public weights
that :func:`norep.zoo.load` can fetch (a ``timm:``, ``open_clip:`` or ``hf:`` name), the head that
turns its features into ImageNet logits, and a status:

``exact``
    public weights that match the paper's model (e.g. timm checkpoints whose published top-1
    equals the paper's to 0.1 point: the paper's architecture models come from timm);
``closest``
    the closest public equivalent; the ``differs`` column says what differs;
``not public``
    no public checkpoint (the paper's own hyper-parameter sweep, SimCLR fine-tuned, the JFT models,
    MPL); ``differs`` names a stand-in where one exists.

Heads (``head`` column): ``trained`` (the model's own classifier), ``zero-shot`` (text-prompt head,
:mod:`norep.zoo.zeroshot`), ``l-bfgs`` (linear head fitted on an ImageNet training subset, the
paper's "CLIP-S L-BFGS"), ``class-mapping`` (an ImageNet-21k head restricted to the 1,000 ImageNet
synsets, the paper's "BiT-JFT Class Mapping").

Examples
--------
>>> from norep.zoo.registry import paper_registry
>>> reg = paper_registry()
>>> len(reg)
59
>>> reg.loc[reg.model == "ViT-DeiT-Tiny", ["category", "status", "load"]].to_dict("records")
[{'category': 'FWORK', 'status': 'exact', 'load': 'timm:deit_tiny_distilled_patch16_224.fb_in1k'}]
"""

from __future__ import annotations

from typing import Any

STATUSES = ("exact", "closest", "not public")
"""Allowed values of the registry's ``status`` column."""

HEADS = ("trained", "zero-shot", "l-bfgs", "class-mapping")
"""How a registry model's ImageNet logits are produced (``head`` column)."""

PAPER_BASE = "timm:resnet50.tv_in1k"
"""Public stand-in for the paper's base model, a ResNet-50 trained with RandAugment (Sec. 3.2)."""

HPARAM_SUBSTITUTES = (
    "timm:resnet50.a1_in1k",
    "timm:resnet50.a2_in1k",
    "timm:resnet50.a3_in1k",
    "timm:resnet50.b1k_in1k",
    "timm:resnet50.b2k_in1k",
    "timm:resnet50.c1_in1k",
    "timm:resnet50.c2_in1k",
    "timm:resnet50.d_in1k",
    "timm:resnet50.ram_in1k",
    "timm:resnet50.am_in1k",
    "timm:resnet50.bt_in1k",
    "timm:resnet50.gluon_in1k",
    "timm:resnet50.tv2_in1k",
    "timm:resnet50.ra_in1k",
)
"""Public ResNet-50s trained with other recipes (same architecture and data, different
hyper-parameters): stand-ins for the paper's HPARAM category, whose 26 models are not public.
Most score above the paper's 74-78% band."""

COLUMNS = (
    "table",
    "model",
    "category",
    "method",
    "head_type",
    "paper_top1",
    "paper_temperature",
    "status",
    "load",
    "head",
    "differs",
)


def paper_registry() -> Any:
    """The paper's 59 models (Tables 1-3) with their public weights and status (Sec. 3.2, App. A.2).

    Returns
    -------
    pandas.DataFrame
        Columns ``table``, ``model`` (the paper's name), ``category`` (one of
        ``norep.CATEGORIES``), ``method`` and ``head_type`` (as in the paper), ``paper_top1`` (%),
        ``paper_temperature``, ``status`` (:data:`STATUSES`), ``load`` (name for
        :func:`norep.zoo.load`, empty when not public), ``head`` (:data:`HEADS`), ``differs``.

    Examples
    --------
    >>> from norep.zoo.registry import paper_registry
    >>> paper_registry().status.value_counts().sort_index().to_dict()
    {'closest': 16, 'exact': 13, 'not public': 30}
    """
    from importlib.resources import files

    import pandas as pd

    with files("norep.resources").joinpath("paper_registry.csv").open("r", encoding="utf-8") as f:
        df = pd.read_csv(f, keep_default_na=False)
    df["paper_top1"] = df["paper_top1"].astype(float)
    df["paper_temperature"] = df["paper_temperature"].astype(float)
    df["table"] = df["table"].astype(int)
    return df[list(COLUMNS)]


def registry_entry(key: str) -> dict | None:
    """The registry row of a paper model name (``"CLIP-S"``) or of a load name.

    Parameters
    ----------
    key : str
        The paper's name (exact match) or a :func:`norep.zoo.load` name such as
        ``"timm:vgg19_bn.tv_in1k"``. A load name shared by several rows (``CLIP-S`` and
        ``CLIP-S-ZS``) returns the first row whose head is ``trained`` or ``zero-shot``
        (the head that needs no fitted classifier), else the first.

    Returns
    -------
    dict or None
        The row as a dict, or None if ``key`` is not in the registry.

    Examples
    --------
    >>> from norep.zoo.registry import registry_entry
    >>> registry_entry("timm:vgg19_bn.tv_in1k")["model"]
    'VGG19 BatchNorm'
    >>> registry_entry("open_clip:ViT-B-32.openai")["model"]
    'CLIP-S-ZS'
    >>> registry_entry("no-such-model") is None
    True
    """
    df = paper_registry()
    rows = df[df.model == key]
    if rows.empty and key:
        rows = df[df.load == key]
        if len(rows) > 1:
            preferred = rows[rows["head"].isin(["trained", "zero-shot"])]
            rows = preferred if not preferred.empty else rows
    if rows.empty:
        return None
    return rows.iloc[0].to_dict()


def format_registry(df: Any = None) -> str:
    """The registry as a fixed-width text table (what ``norep zoo list --paper`` prints).

    Examples
    --------
    >>> from norep.zoo.registry import format_registry
    >>> format_registry().split()[:4]
    ['table', 'model', 'category', 'method']
    """
    df = paper_registry() if df is None else df
    cols = ["table", "model", "category", "method", "head_type", "paper_top1", "status", "load", "head"]
    return df[cols].to_string(index=False, justify="left")


__all__ = [
    "COLUMNS",
    "HEADS",
    "HPARAM_SUBSTITUTES",
    "PAPER_BASE",
    "STATUSES",
    "format_registry",
    "paper_registry",
    "registry_entry",
]
