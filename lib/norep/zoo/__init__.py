"""Model zoos: the embedded CPU study (:mod:`norep.zoo.embedded`) and the paper's models
(:mod:`norep.zoo.registry`, :mod:`norep.zoo.loading`).

Attributes are imported lazily, so ``import norep.zoo`` stays cheap and side-effect free.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "load": "norep.zoo.loading",
    "ImageModel": "norep.zoo.loading",
    "parse_model_name": "norep.zoo.loading",
    "WeightsUnavailableError": "norep.zoo.loading",
    "UnknownModelError": "norep.zoo.loading",
    "paper_registry": "norep.zoo.registry",
    "registry_entry": "norep.zoo.registry",
    "format_registry": "norep.zoo.registry",
    "PAPER_BASE": "norep.zoo.registry",
    "HPARAM_SUBSTITUTES": "norep.zoo.registry",
    "train_zoo": "norep.zoo.embedded",
    "zoo_specs": "norep.zoo.embedded",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'norep.zoo' has no attribute {name!r}")


__all__ = sorted(_LAZY)
