"""Which fast function is the twin of which reference measure, and how to compare the two.

Every entry of :data:`TWINS` names a reference measure (a plain definition in :mod:`norep.measures.metrics`,
:mod:`norep.measures.ensembles`, :mod:`norep.measures.specialization` or :mod:`norep.measures.calibration`) and the fast
function of :mod:`norep.engine` that computes the same numbers, with a recipe that computes both on
a :class:`Case` (labels, logits and temperatures: a random store in the tests). ``compare(case)``
returns the reference's value and the twin's, which must be equal: the fast paths are exact, so
equal means identical (``numpy.testing.assert_equal``), not close, except where an entry's ``rtol``
says otherwise (one derived quantity rounds once more than its reference). ``devices`` lists where that
holds: ``"numpy"`` (the default path) and, where the torch backend gives identical results too,
``"cpu"``/``"cuda"``.

A new fast twin gets an entry here; ``tests/test_twins.py`` then checks it on random stores.

Examples
--------
>>> import numpy as np
>>> from norep.engine.twins import TWINS, Case
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 4, size=60)
>>> case = Case(y, [rng.normal(size=(60, 4)) + 2 * np.eye(4)[y] for _ in range(3)], [1.0, 0.5, 2.0])
>>> ref, fast = TWINS["norep.measures.ensembles.pairwise_ensemble_accuracy"].compare(case)
>>> bool(np.array_equal(ref, fast))
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

__all__ = ["Case", "Twin", "TWINS"]


@dataclass
class Case:
    """One split of a store: labels, M models' logits and temperatures, and optionally an evaluation
    split (for greedy selection). ``device`` is passed to the fast twin."""

    y: np.ndarray
    logits: Sequence[np.ndarray]
    temperatures: Sequence[float]
    eval_y: np.ndarray | None = None
    eval_logits: Sequence[np.ndarray] | None = None
    device: str | None = None
    names: list[str] = field(default_factory=list)

    def __post_init__(self):
        if not self.names:
            self.names = [f"m{i}" for i in range(len(self.logits))]

    @cached_property
    def probs(self) -> list[np.ndarray]:
        """The reference's calibrated probabilities of every model."""
        from norep.measures.calibration import softmax

        return [softmax(z, t) for z, t in zip(self.logits, self.temperatures, strict=True)]

    @cached_property
    def preds(self) -> np.ndarray:
        return np.stack([p.argmax(axis=1) for p in self.probs])

    @cached_property
    def pairs(self):
        """The fast all-pairs result of the case."""
        from norep.engine.pairs import pairwise_analysis

        return pairwise_analysis(
            self.y, list(self.logits), temperatures=list(self.temperatures), names=self.names, device=self.device
        )


@dataclass(frozen=True)
class Twin:
    """A reference measure and its fast twin.

    Attributes
    ----------
    reference, fast : str
        Dotted names of the two functions.
    output : str
        Where the fast function's result holds the value (an attribute or method), if not the result.
    compare : callable
        ``compare(case) -> (reference value, fast value)``.
    devices : tuple of str
        Devices on which the fast value equals the reference's.
    rtol : float
        0 (the default): identical. Otherwise the largest relative difference allowed, where the two
        round differently on purpose (said in the entry's comment).
    """

    reference: str
    fast: str
    compare: Callable[[Case], tuple[Any, Any]]
    output: str = ""
    devices: tuple[str, ...] = ("numpy", "cpu", "cuda")
    rtol: float = 0.0


def _outcomes(case: Case):
    from norep.measures.metrics import OUTCOMES, pairwise_outcomes

    return pairwise_outcomes(case.y, case.preds), {o: case.pairs[o] for o in OUTCOMES}


def _error_inconsistency(case: Case):
    from norep.measures.metrics import pairwise_error_inconsistency

    return pairwise_error_inconsistency(case.y, case.preds), case.pairs.error_inconsistency


def _accuracy(case: Case):
    from norep.measures.metrics import accuracy_score

    return np.array([accuracy_score(case.y, p) for p in case.preds]), case.pairs.accuracy


def _ensemble_accuracy(case: Case):
    from norep.measures.ensembles import pairwise_ensemble_accuracy

    return pairwise_ensemble_accuracy(case.y, case.probs), case.pairs.ensemble_accuracy


def _ensemble_gain(case: Case):
    from norep.measures.ensembles import pairwise_ensemble_gain

    return pairwise_ensemble_gain(case.y, case.probs), case.pairs.ensemble_gain


def _conversion_rate(case: Case):
    from norep.measures.ensembles import pairwise_conversion_rate

    return pairwise_conversion_rate(case.y, case.probs), case.pairs.conversion_rate


def _theta_histograms(case: Case):
    from norep.measures.specialization import theta_histogram

    m = len(case.logits)
    pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
    ref = [theta_histogram(case.y, case.probs[i], case.probs[j]).to_dict("list") for i, j in pairs]
    fast = [case.pairs.theta_histogram(i, j).to_dict("list") for i, j in pairs]
    return ref, fast


def _greedy(case: Case):
    from norep.engine.greedy import fast_greedy_selection
    from norep.measures.ensembles import greedy_selection

    steps = len(case.logits) - 1
    base, cands = case.names[0], case.names[1:]
    kw_ref, kw_fast = {}, {}
    if case.eval_y is not None:
        from norep.measures.calibration import softmax

        eprobs = [softmax(z, t) for z, t in zip(case.eval_logits, case.temperatures, strict=True)]
        kw_ref = {
            "eval_y_true": case.eval_y,
            "eval_base_probs": eprobs[0],
            "eval_candidates": dict(zip(cands, eprobs[1:], strict=True)),
        }
        kw_fast = {"eval_y_true": case.eval_y, "eval_logits": dict(zip(case.names, case.eval_logits, strict=True))}
    ref = greedy_selection(case.y, case.probs[0], dict(zip(cands, case.probs[1:], strict=True)), steps, **kw_ref)
    fast = fast_greedy_selection(
        case.y,
        dict(zip(case.names, case.logits, strict=True)),
        base,
        steps,
        temperatures=dict(zip(case.names, case.temperatures, strict=True)),
        device=case.device,
        **kw_fast,
    )
    as_tuple = lambda r: (r.selected, r.accuracies, r.eval_accuracies)  # noqa: E731
    return as_tuple(ref), as_tuple(fast)


def _calibrated_summary(case: Case):
    from norep.engine.summary import calibrated_summary

    ref, fast = [], []
    for z, t, p in zip(case.logits, case.temperatures, case.probs, strict=True):
        s = calibrated_summary(case.y, z, temperature=t)
        rows = np.arange(len(case.y))
        ref.append((p.argmax(axis=1), p.max(axis=1), p[rows, case.y]))
        fast.append((s.pred, s.conf, s.q))
    return ref, fast


def _fit_temperatures(case: Case):
    from norep.engine._device import fit_temperatures
    from norep.measures.calibration import fit_temperature

    return [fit_temperature(z, case.y) for z in case.logits], fit_temperatures(case.logits, case.y)


TWINS: dict[str, Twin] = {
    t.reference: t
    for t in [
        Twin(
            "norep.measures.metrics.pairwise_outcomes",
            "norep.engine.pairs.pairwise_analysis",
            _outcomes,
            output="both_correct, only_a, only_b, both_wrong",
        ),
        # only_a / n + only_b / n against the reference's (only_a + only_b) / n: the same counts, one
        # more rounding (at most one unit in the last place)
        Twin(
            "norep.measures.metrics.pairwise_error_inconsistency",
            "norep.engine.pairs.pairwise_analysis",
            _error_inconsistency,
            output="error_inconsistency",
            rtol=4e-16,
        ),
        Twin(
            "norep.measures.metrics.accuracy_score",
            "norep.engine.pairs.pairwise_analysis",
            _accuracy,
            output="accuracy",
        ),
        Twin(
            "norep.measures.ensembles.pairwise_ensemble_accuracy",
            "norep.engine.pairs.pairwise_analysis",
            _ensemble_accuracy,
            output="ensemble_accuracy",
        ),
        Twin(
            "norep.measures.ensembles.pairwise_ensemble_gain",
            "norep.engine.pairs.pairwise_analysis",
            _ensemble_gain,
            output="ensemble_gain",
        ),
        Twin(
            "norep.measures.ensembles.pairwise_conversion_rate",
            "norep.engine.pairs.pairwise_analysis",
            _conversion_rate,
            output="conversion_rate",
        ),
        Twin(
            "norep.measures.specialization.theta_histogram",
            "norep.engine.pairs.pairwise_analysis",
            _theta_histograms,
            output="theta_histogram(i, j)",
        ),
        Twin("norep.measures.ensembles.greedy_selection", "norep.engine.greedy.fast_greedy_selection", _greedy),
        Twin(
            "norep.measures.calibration.softmax",
            "norep.engine.summary.calibrated_summary",
            _calibrated_summary,
            output="pred, conf, q",
            devices=("numpy",),
        ),
        # on a torch device the fit agrees to its tolerance only, not bit for bit
        Twin(
            "norep.measures.calibration.fit_temperature",
            "norep.engine.fit_temperatures",
            _fit_temperatures,
            devices=("numpy",),
        ),
    ]
}
"""Reference measure (dotted name) -> its fast twin."""
