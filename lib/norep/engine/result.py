"""The result of the all-pairs analysis: matrices per pair, tables and theta histograms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from norep.measures._validation import check_theta_bins
from norep.measures.metrics import OUTCOMES

__all__ = ["AllPairsResult"]


@dataclass
class AllPairsResult:
    """All-pairs outcome fractions, ensemble accuracies, conversion rates and theta histograms.

    Matrices are (M, M) in the order of ``names`` and follow :mod:`norep.measures.metrics` /
    :mod:`norep.measures.ensembles`: ``both_correct[i, j]`` etc. with A = model i and B = model j;
    ``ensemble_accuracy`` has the single accuracies on its diagonal; ``conversion_rate`` is nan on
    the diagonal and where a pair has no error-inconsistent example. ``theta_counts[i, j]`` (only
    for ``i < j``, zeros elsewhere) is the (4, bins) histogram of the specialization angle per
    outcome (order of ``OUTCOMES``) over ``theta_edges`` degrees. ``counts`` holds the integer
    counts behind the fractions; ``levels`` how many (pair, example) decisions each level took.
    Indexing by key (``res["ensemble_accuracy"]``) works as for a dict.
    """

    names: list[str]
    n_examples: int
    accuracy: np.ndarray
    both_correct: np.ndarray
    only_a: np.ndarray
    only_b: np.ndarray
    both_wrong: np.ndarray
    ensemble_accuracy: np.ndarray
    conversion_rate: np.ndarray
    theta_edges: np.ndarray | None
    theta_counts: np.ndarray | None
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    levels: dict[str, int] = field(default_factory=dict)
    correct: np.ndarray | None = None
    conf: np.ndarray | None = None
    _summaries: dict | None = field(default=None, repr=False)
    _conf_bounds: Any = field(default=None, repr=False)

    def compute_theta(self, bins=18, *, pairs_per_block: int | None = None, n_jobs: int = 1) -> np.ndarray:
        """Fill ``theta_counts`` for every pair ``i < j`` from the kept confidences and correctness.

        ``theta = degrees(atan2(conf_i, conf_j))`` per example, binned as ``numpy.histogram`` bins
        (half-open, the last closed) and split by outcome, exactly as
        :func:`norep.measures.specialization.theta_histogram`. Vectorised over blocks of pairs; ``n_jobs``
        threads take blocks at once (each block fills its own pairs).
        """
        edges = check_theta_bins(bins)
        m, n = self.conf.shape
        ia, ib = np.triu_indices(m, 1)
        out = np.zeros((m, m, 4, len(edges) - 1), dtype=np.int64)
        cf = self.conf.astype(np.float64)
        block = pairs_per_block or max(1, (1 << 22) // max(1, n))
        starts = range(0, len(ia), block)

        def one(p0: int) -> int:
            a, b = ia[p0 : p0 + block], ib[p0 : p0 + block]
            out[a, b], n_exact = self._theta_block(edges, cf, a, b)
            return n_exact

        if n_jobs and int(n_jobs) > 1 and len(starts) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(int(n_jobs)) as pool:
                n_exact = sum(pool.map(one, starts))
        else:
            n_exact = sum(one(p0) for p0 in starts)
        if self._conf_bounds is not None:
            self.levels["theta_exact"] = self.levels.get("theta_exact", 0) + n_exact
        self.theta_edges, self.theta_counts = edges, out
        return out

    def _theta_block(self, edges: np.ndarray, cf: np.ndarray, a: np.ndarray, b: np.ndarray):
        """Theta counts (len(a), 4, bins) of the pairs ``(a[p], b[p])``, and how many examples the
        confidence bounds left to their exact confidences."""
        n_bins = len(edges) - 1
        th = np.degrees(np.arctan2(cf[a], cf[b]))
        idx = _theta_bins(edges, th)
        bounds, n_exact = self._conf_bounds, 0
        if bounds is not None:
            # confidences known to within bounds (torch backend): bins that the bounds leave
            # open are settled from the exact confidences of those examples
            lo, hi = bounds.lo, bounds.hi
            pad = 1e-9
            ilo = _theta_bins(edges, np.degrees(np.arctan2(lo[a], hi[b])) - pad)
            ihi = _theta_bins(edges, np.degrees(np.arctan2(hi[a], lo[b])) + pad)
            pp, ee = np.nonzero((ilo != ihi) | (ilo != idx))
            if len(pp):
                ca_ex = bounds.exact(a[pp], ee)
                cb_ex = bounds.exact(b[pp], ee)
                th_ex = np.degrees(np.arctan2(ca_ex.astype(np.float64), cb_ex.astype(np.float64)))
                idx[pp, ee] = _theta_bins(edges, th_ex)
                n_exact = len(pp)
        # outcome 0: both right, 1: only a, 2: only b, 3: both wrong; outside the edges: column n_bins
        wrong_a, wrong_b = ~self.correct[a], ~self.correct[b]
        outcome = wrong_a.view(np.uint8) * np.uint8(2)
        outcome += wrong_b.view(np.uint8)
        idx[idx < 0] = n_bins
        flat = np.arange(len(a), dtype=np.intp)[:, None] * 4 + outcome
        flat *= n_bins + 1
        flat += idx
        counts = np.bincount(flat.reshape(-1), minlength=len(a) * 4 * (n_bins + 1))
        return counts.reshape(len(a), 4, n_bins + 1)[:, :, :n_bins], n_exact

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def keys(self) -> list[str]:
        return [
            "accuracy",
            "both_correct",
            "only_a",
            "only_b",
            "both_wrong",
            "ensemble_accuracy",
            "conversion_rate",
            "theta_counts",
        ]

    @property
    def error_inconsistency(self) -> np.ndarray:
        """``only_a + only_b`` for every pair (Sec. 4.1)."""
        return self.only_a + self.only_b

    @property
    def ensemble_gain(self) -> np.ndarray:
        """Ensemble accuracy minus the members' mean accuracy (Sec. 4.2)."""
        return self.ensemble_accuracy - (self.accuracy[:, None] + self.accuracy[None, :]) / 2.0

    def _index(self, name) -> int:
        if isinstance(name, (int, np.integer)):
            return int(name)
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"unknown model {name!r}; models are {self.names}") from None

    def theta_histogram(self, a, b):
        """The pair's theta histogram as :func:`norep.measures.specialization.theta_histogram` returns it.

        ``a`` must come before ``b`` in ``names`` (angles are computed once per unordered pair, as
        ``atan2(conf_a, conf_b)``).
        """
        import pandas as pd

        if self.theta_counts is None:
            self.compute_theta()
        i, j = self._index(a), self._index(b)
        if not i < j:
            raise ValueError(
                f"theta histograms are stored for ordered pairs (a before b in names); swap {a!r} and {b!r}"
            )
        counts = self.theta_counts[i, j]
        total = int(counts.sum())
        rows = []
        edges = self.theta_edges
        for o, name in enumerate(OUTCOMES):
            n_o = int(counts[o].sum())
            for left, right, c in zip(edges[:-1], edges[1:], counts[o], strict=True):
                rows.append(
                    {
                        "outcome": name,
                        "bin_left": float(left),
                        "bin_right": float(right),
                        "count": int(c),
                        "fraction": c / total if total else float("nan"),
                        "within_outcome": c / n_o if n_o else float("nan"),
                    }
                )
        return pd.DataFrame(rows)

    def to_frame(self):
        """One row per unordered pair ``a < b``: the fractions, accuracies and conversion rate."""
        import pandas as pd

        i, j = np.triu_indices(len(self.names), 1)
        return pd.DataFrame(
            {
                "model_a": [self.names[x] for x in i],
                "model_b": [self.names[x] for x in j],
                "accuracy_a": self.accuracy[i],
                "accuracy_b": self.accuracy[j],
                "both_correct": self.both_correct[i, j],
                "only_a": self.only_a[i, j],
                "only_b": self.only_b[i, j],
                "both_wrong": self.both_wrong[i, j],
                "error_inconsistency": self.error_inconsistency[i, j],
                "ensemble_accuracy": self.ensemble_accuracy[i, j],
                "ensemble_gain": self.ensemble_gain[i, j],
                "conversion_rate": self.conversion_rate[i, j],
            }
        )


def _theta_bins(edges: np.ndarray, th: np.ndarray) -> np.ndarray:
    """Bin index as ``numpy.histogram`` assigns it (half-open bins, the last closed); -1 outside.

    For equal-width edges this is numpy's own computation (scaled index, then the +-1 corrections
    against the edge values), which is far faster than a sorted search; otherwise a sorted search.
    Both give the edge-consistent assignment numpy guarantees.
    """
    nb = len(edges) - 1
    lo, hi = edges[0], edges[-1]
    inside = (th >= lo) & (th <= hi)
    if not np.array_equal(edges, np.linspace(lo, hi, nb + 1)):
        idx = np.searchsorted(edges, th, side="right") - 1
        idx[th == hi] = nb - 1
    else:
        idx = ((np.where(inside, th, lo) - lo) / (hi - lo) * nb).astype(np.intp)
        np.clip(idx, 0, nb - 1, out=idx)
        idx[th < edges[idx]] -= 1
        np.clip(idx, 0, nb - 1, out=idx)
        idx[(th >= edges[idx + 1]) & (idx != nb - 1)] += 1
    idx[~inside] = -1
    return idx
