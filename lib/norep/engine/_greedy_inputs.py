"""Checked inputs of a greedy ensemble selection (:func:`norep.engine.greedy.fast_greedy_selection`),
and the selection rule both backends step with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from norep.engine._rows import progress_bar
from norep.measures._validation import as_logits, check_labels, check_temperature


@dataclass
class _GreedyInputs:
    """Checked inputs of a greedy selection; models are numbered 0 (the base), 1, 2, ... (candidates)."""

    y: np.ndarray
    base: str
    names: list[str]
    temps: dict[str, float]
    mats: dict[str, np.ndarray]
    ey: np.ndarray | None
    e_mats: dict[str, np.ndarray] | None
    eval_logits: Mapping[str, Any] | None

    @property
    def has_eval(self) -> bool:
        return self.ey is not None

    def label(self, i: int) -> str:
        return self.base if i == 0 else self.names[i - 1]

    def eval_mat(self, name: str) -> np.ndarray:
        """The checked evaluation-split logits of ``name`` (checked once, on first use)."""
        if name not in self.e_mats:
            self.e_mats[name] = as_logits(
                self.eval_logits[name], f"eval_logits[{name!r}]", len(self.ey), self.mats[self.base].shape[1]
            )
        return self.e_mats[name]


def _check_greedy_inputs(
    y_true, logits, base, steps, temperatures, candidates, eval_y_true, eval_logits, replace
) -> _GreedyInputs:
    if not isinstance(logits, Mapping):
        raise ValueError("logits must be a mapping from model name to (N, C) logits")
    y0 = np.asarray(y_true)
    n0 = y0.shape[0] if y0.ndim == 1 else None
    if base not in logits:
        raise ValueError(f"base model {base!r} is not in logits")
    names = [m for m in logits if m != base] if candidates is None else [str(m) for m in candidates]
    for m in names:
        if m not in logits:
            raise ValueError(f"candidate {m!r} is not in logits")
        if m == base:
            raise ValueError(f"the base model {base!r} cannot be a candidate")
    if len(set(names)) != len(names):
        raise ValueError("candidates must be unique")
    temps = {m: check_temperature((temperatures or {}).get(m, 1.0)) for m in [base, *names]}
    base_lg = as_logits(logits[base], f"logits[{base!r}]", n0)
    n, c = base_lg.shape
    y = check_labels(y0, n, c)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not replace and steps > len(names):
        raise ValueError(
            f"steps={steps} exceeds the number of candidates ({len(names)}); "
            "pass replace=True to allow re-adding a candidate"
        )
    if steps > 0 and not names:
        raise ValueError("there are no candidates")
    has_eval = eval_y_true is not None or eval_logits is not None
    if has_eval:
        if eval_y_true is None or eval_logits is None:
            raise ValueError("eval_y_true and eval_logits must be given together")
        missing = [m for m in [base, *names] if m not in eval_logits]
        if missing:
            raise ValueError(f"eval_logits lacks {missing}")
    mats = {base: base_lg}
    for m in names:
        mats[m] = as_logits(logits[m], f"logits[{m!r}]", n, c)
    ey = e_mats = None
    if has_eval:
        ey0 = np.asarray(eval_y_true)
        e_mats = {
            base: as_logits(eval_logits[base], f"eval_logits[{base!r}]", ey0.shape[0] if ey0.ndim == 1 else None, c)
        }
        ey = check_labels(ey0, e_mats[base].shape[0], c, name="eval_y_true")
    return _GreedyInputs(y, base, names, temps, mats, ey, e_mats, eval_logits)


def greedy_steps(state, n_models: int, steps: int, replace: bool, progress: bool, desc: str, on_choice=None):
    """The greedy rule, shared by the numpy and torch backends: at each step the candidate whose
    addition gives the most correct examples (``state.counts(candidates)``), the first in candidate
    order on ties, is added (``state.add(j)``) and, unless ``replace``, leaves the candidates. Models
    are numbered 0 (the base, already in ``state``) to ``n_models - 1``; ``on_choice(j)`` is called
    with each choice before it is added. Returns the chosen indices and their correct counts."""
    selected: list[int] = []
    counts: list[int] = []
    available = list(range(1, n_models))
    for _ in progress_bar(range(steps), progress, desc=desc, unit="step"):
        cnt = state.counts(available)
        best = int(np.argmax(cnt))  # first best in candidate order
        j = available[best]
        if on_choice is not None:
            on_choice(j)
        state.add(j)
        selected.append(j)
        counts.append(int(cnt[best]))
        if not replace:
            available.pop(best)
    return selected, counts
