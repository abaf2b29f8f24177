"""The registry of the paper's claims: each claim function registers itself where it is defined, with its
chapter, title and the paper's statement; the runner, the claims page and ``norep claims`` read it."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CHAPTERS = (
    "00_model_zoo",
    "01_error_correlation",
    "02_ensembles",
    "03_specialization",
    "04_low_accuracy_greedy",
    "05_feature_concatenation",
    "06_voc_transfer",
)
"""The section notebooks, in book order; ``norep.paper.chNN_*`` is the module of notebook ``NN_*``."""


@dataclass(frozen=True)
class Claim:
    """A registered claim: its id (``"C1"``), chapter (a name of :data:`CHAPTERS`), title, the paper's
    statement, kind (``"finding"`` or ``"method check"``) and the function that decides it."""

    id: str
    chapter: str
    title: str
    paper: str
    kind: str
    fn: Callable

    def __call__(self, study, **kwargs):
        """Run the claim with the keyword arguments its function accepts (others are ignored)."""
        params = inspect.signature(self.fn).parameters
        return self.fn(study, **{k: v for k, v in kwargs.items() if k in params})


REGISTRY: dict[str, Claim] = {}
"""Claim id -> :class:`Claim`, filled as the chapter modules are imported."""


def claim(cid: str, *, chapter: str, title: str, paper: str, kind: str = "finding"):
    """Register the decorated function as claim ``cid`` of ``chapter``.

    Examples
    --------
    >>> from norep.paper import REGISTRY
    >>> REGISTRY["C2"].chapter, REGISTRY["C10"].kind
    ('02_ensembles', 'method check')
    """
    if chapter not in CHAPTERS:
        raise ValueError(f"claim {cid}: unknown chapter {chapter!r}; chapters: {', '.join(CHAPTERS)}")

    def register(fn):
        if cid in REGISTRY and REGISTRY[cid].fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"claim {cid} is registered twice")
        REGISTRY[cid] = Claim(cid, chapter, title, paper, kind, fn)
        return fn

    return register


def registered(cid: str) -> tuple[str, str]:
    """The title and the paper's statement of claim ``cid`` (what its verdict repeats)."""
    c = REGISTRY[cid]
    return c.title, c.paper


def claim_ids() -> list[str]:
    """Every registered claim id, in number order (C1 ... C10)."""
    return sorted(REGISTRY, key=lambda c: int(c[1:]))


def claims_of(chapter: str) -> tuple[str, ...]:
    """The ids of the claims chapter ``chapter`` decides, in number order.

    Examples
    --------
    >>> claims_of("03_specialization")
    ('C4', 'C5')
    """
    return tuple(c for c in claim_ids() if REGISTRY[c].chapter == chapter)


def run_claims(study, ids: Sequence[str] | None = None, **kwargs) -> list:
    """Run the claims ``ids`` (default: all, in number order) with the keyword arguments each accepts.

    ``kwargs`` such as ``n_boot``, ``seed`` or ``probe_Cs`` are passed to every claim function that
    takes them.
    """
    return [REGISTRY[cid](study, **kwargs) for cid in (ids or claim_ids())]
