"""Checks of what a user hands the store: class names, extras, class groups, and logits that are
really probabilities. Pure functions (no file I/O), used by :mod:`norep.storage._create`,
:mod:`norep.storage._write`, :mod:`norep.storage` and the ``norep`` commands.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from norep.storage._io import StoreError, canonical_sha

_CHUNK_ROWS = 8192
PROBABILITY_TOLERANCE = 2e-3
"""Rows whose values lie in [0, 1] and sum to 1 within this are probabilities, not logits."""
LOG_FLOOR = 1e-30
"""Probabilities are clipped to at least this before their logarithm is taken (log 0 is -inf)."""


def check_class_names(names: Any, what: str = "class_names") -> list[str]:
    """``names`` as a list of unique, non-empty strings; raise :class:`StoreError` otherwise."""
    if isinstance(names, str) or names is None:
        raise StoreError(f"{what} must be a list of names, not {type(names).__name__}")
    names = [str(c) for c in names]
    if not names:
        raise StoreError(f"{what} must not be empty")
    blank = [i for i, c in enumerate(names) if not c.strip()]
    if blank:
        raise StoreError(f"{what}: name {blank[0]} is empty; every class needs a name")
    if len(set(names)) != len(names):
        dup = sorted({c for c in names if names.count(c) > 1})
        raise StoreError(f"{what} must be unique; repeated: {', '.join(dup[:5])}")
    return names


def names_differ(given: list[str], held: list[str]) -> str | None:
    """How ``given`` class names differ from the ``held`` ones (one phrase), or None if equal."""
    if list(given) == list(held):
        return None
    if len(given) != len(held):
        return f"{len(given)} names where the store has {len(held)}"
    i = next(i for i, (a, b) in enumerate(zip(given, held, strict=True)) if a != b)
    return f"name {i + 1} is {given[i]!r} where the store has {held[i]!r}"


def check_class_groups(groups: Any, n_classes: int) -> dict[str, list[int]]:
    """Class groups as ``{name: [class ids]}``: at least two non-empty groups of ids in ``[0, C)``,
    each class in at most one group (the paper's nature vs anthropogenic split, Sec. 4.4)."""
    if not isinstance(groups, dict):
        raise StoreError(
            f"class_groups must map group names to lists of class ids, got {type(groups).__name__} "
            '(e.g. {"nature": [0, 1], "anthropogenic": [2, 3]})'
        )
    out: dict[str, list[int]] = {}
    owner: dict[int, str] = {}
    for g, ids in groups.items():
        if not isinstance(g, str) or not g.strip():
            raise StoreError(f"class_groups: group name {g!r} must be a non-empty string")
        if isinstance(ids, (str, bytes, dict)) or not hasattr(ids, "__iter__"):
            raise StoreError(f"class_groups: group {g!r} must be a list of class ids, got {ids!r}")
        ids = list(ids)
        if not ids:
            raise StoreError(f"class_groups: group {g!r} is empty; give it class ids or leave it out")
        clean = []
        for c in ids:
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)):
                raise StoreError(f"class_groups: group {g!r} holds {c!r}; class ids are integers")
            c = int(c)
            if not 0 <= c < n_classes:
                raise StoreError(
                    f"class_groups: group {g!r} holds class id {c}, outside 0..{n_classes - 1} ({n_classes} classes)"
                )
            if c in owner:
                where = "twice" if owner[c] == g else f"in groups {owner[c]!r} and {g!r}"
                raise StoreError(f"class_groups: class {c} is {where}; each class belongs to one group")
            owner[c] = g
            clean.append(c)
        out[g] = clean
    if len(out) < 2:
        raise StoreError(f"class_groups needs at least two groups to compare, got {len(out)}")
    return out


def check_extras(extras: dict, n_classes: int) -> dict:
    """Check the extras of ``store.json`` (``base_model``, ``accuracy_band``, ``class_groups``, others);
    return them normalised (the band as ``[lo, hi]``)."""
    extras = dict(extras)
    base = extras.get("base_model")
    if base is not None and (not isinstance(base, str) or not base.strip()):
        raise StoreError(f"base_model must be a model name (a non-empty string) or None, got {base!r}")
    if extras.get("accuracy_band") is not None:
        band = extras["accuracy_band"]
        try:
            lo, hi = (float(v) for v in band)
        except (TypeError, ValueError):
            raise StoreError(f"accuracy_band must be (lo, hi) fractions, got {band!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi <= 1):
            raise StoreError(f"accuracy_band must be (lo, hi) fractions with 0 <= lo <= hi <= 1, got {(lo, hi)}")
        extras["accuracy_band"] = [lo, hi]
    if extras.get("class_groups"):  # an empty mapping means "no groups"
        extras["class_groups"] = check_class_groups(extras["class_groups"], n_classes)
    try:
        canonical_sha(extras)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"store extras must be JSON values (numbers, strings, lists, mappings): {exc}") from None
    return extras


def _prob_rows(block: np.ndarray) -> np.ndarray:
    b = np.asarray(block, dtype=np.float32)
    inside = ((b >= 0) & (b <= 1)).all(axis=1)
    return inside & (np.abs(b.sum(axis=1, dtype=np.float64) - 1) <= PROBABILITY_TOLERANCE)


def looks_like_probabilities(arr: np.ndarray) -> bool:
    """True when every row of the (N, C) ``arr`` (C >= 2, N >= 1) lies in [0, 1] and sums to 1, and
    some value lies strictly between 0 and 1 (one-hot rows alone are hard predictions, taken as logits)."""
    if arr.ndim != 2 or arr.shape[1] < 2 or arr.shape[0] == 0:
        return False
    soft = False
    for start in range(0, arr.shape[0], _CHUNK_ROWS):
        block = np.asarray(arr[start : start + _CHUNK_ROWS])
        if not _prob_rows(block).all():
            return False
        soft = soft or bool(((block > 0) & (block < 1)).any())
    return soft


def refuse_probabilities(arr: np.ndarray, what: str) -> None:
    """Raise :class:`StoreError` when ``arr`` holds probabilities where logits are expected."""
    if looks_like_probabilities(arr):
        raise StoreError(
            f"{what}: every row lies in [0, 1] and sums to 1, so these are probabilities, not logits; "
            "store their logarithm instead (np.log(np.clip(p, 1e-30, 1)) in Python, or `norep import "
            "--probabilities`)"
        )


def probabilities_to_logits(arr: Any, what: str) -> np.ndarray:
    """The logarithm (float32) of the probabilities ``arr`` (rows in [0, 1] summing to 1), clipped at
    :data:`LOG_FLOOR`; raise :class:`StoreError` when ``arr`` does not hold probabilities."""
    arr = np.asarray(arr)
    if arr.ndim != 2 or arr.shape[0] == 0 or not np.issubdtype(arr.dtype, np.floating):
        raise StoreError(f"{what}: expected a non-empty 2-D float array of probabilities, got {arr.shape} {arr.dtype}")
    out = np.empty(arr.shape, dtype=np.float32)
    for start in range(0, arr.shape[0], _CHUNK_ROWS):
        block = np.asarray(arr[start : start + _CHUNK_ROWS], dtype=np.float32)
        ok = _prob_rows(block)
        if not ok.all():
            bad = start + int(np.nonzero(~ok)[0][0])
            row = np.asarray(arr[bad], dtype=np.float64)
            raise StoreError(
                f"{what}: row {bad} is not a probability distribution (values {row.min():.3g}..{row.max():.3g}, "
                f"sum {row.sum():.4g}); give logits without the probabilities option"
            )
        out[start : start + block.shape[0]] = np.log(np.clip(block, LOG_FLOOR, 1.0))
    return out
