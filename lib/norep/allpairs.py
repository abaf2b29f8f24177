"""Exact, fast all-pairs analyses and greedy selection for paper-scale stores (paper Secs. 4.1-4.5).

The public names of the fast engine under one roof; the code lives in :mod:`norep.engine`:

* :func:`pairwise_analysis`, :func:`store_pairwise_analysis`, :class:`AllPairsResult`
  (:mod:`norep.engine.pairs`, :mod:`norep.engine.result`): outcome fractions, ensemble accuracy,
  conversion rate and theta histograms of every pair;
* :func:`fast_greedy_selection`, :func:`store_greedy_selection` (:mod:`norep.engine.greedy`);
* :func:`calibrated_summary`, :class:`CalibratedSummary` (:mod:`norep.engine.summary`).

Each computes the numbers of a reference measure exactly (:data:`norep.engine.twins.TWINS` maps
each reference to its twin; a common test checks every pair on random stores).

Examples
--------
>>> import numpy as np
>>> from norep.allpairs import pairwise_analysis
>>> rng = np.random.default_rng(0)
>>> y = rng.integers(0, 10, size=500)
>>> logits = [rng.normal(size=(500, 10)) + 3 * np.eye(10)[y] for _ in range(3)]
>>> res = pairwise_analysis(y, logits, temperatures=[1.0, 1.0, 2.0], names=["a", "b", "c"])
>>> res.ensemble_accuracy.shape, res.names
((3, 3), ['a', 'b', 'c'])
>>> bool(np.all(res.ensemble_accuracy >= 0.5))
True
"""

from norep.engine.greedy import fast_greedy_selection, store_greedy_selection
from norep.engine.pairs import pairwise_analysis, store_pairwise_analysis
from norep.engine.result import AllPairsResult
from norep.engine.summary import CalibratedSummary, calibrated_summary

__all__ = [
    "CalibratedSummary",
    "calibrated_summary",
    "AllPairsResult",
    "pairwise_analysis",
    "store_pairwise_analysis",
    "fast_greedy_selection",
    "store_greedy_selection",
]
