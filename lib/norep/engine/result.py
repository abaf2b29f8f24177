"""The result of the all-pairs analysis: matrices per pair, tables and theta histograms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from norep._validation import check_theta_bins
from norep.metrics import OUTCOMES

__all__ = ["AllPairsResult"]


@dataclass
class AllPairsResult:
    """All-pairs outcome fractions, ensemble accuracies, conversion rates and theta histograms.

    Matrices are (M, M) in the order of ``names`` and follow :mod:`norep.metrics` /
    :mod:`norep.ensembles`: ``both_correct[i, j]`` etc. with A = model i and B = model j;
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

    def compute_theta(self, bins=18, *, pairs_per_block: int | None = None) -> np.ndarray:
        """Fill ``theta_counts`` for every pair ``i < j`` from the kept confidences and correctness.

        ``theta = degrees(atan2(conf_i, conf_j))`` per example, binned as ``numpy.histogram`` bins
        (half-open, the last closed) and split by outcome, exactly as
        :func:`norep.specialization.theta_histogram`. Vectorised over blocks of pairs.
        """
        edges = check_theta_bins(bins)
        n_bins = len(edges) - 1
        m, n = self.conf.shape
        ia, ib = np.triu_indices(m, 1)
        out = np.zeros((m, m, 4, n_bins), dtype=np.int64)
        cf = self.conf.astype(np.float64)
        corr = self.correct
        block = pairs_per_block or max(1, (1 << 22) // max(1, n))
        bounds = self._conf_bounds
        for p0 in range(0, len(ia), block):
            a, b = ia[p0 : p0 + block], ib[p0 : p0 + block]
            th = np.degrees(np.arctan2(cf[a], cf[b]))
            idx = _theta_bins(edges, th)
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
                    self.levels["theta_exact"] = self.levels.get("theta_exact", 0) + len(pp)
            ca, cb = corr[a], corr[b]
            outcome = np.where(ca, np.where(cb, 0, 1), np.where(cb, 2, 3))
            keep = idx >= 0
            pair = np.broadcast_to(np.arange(len(a))[:, None], idx.shape)
            flat = (pair[keep] * 4 + outcome[keep]) * n_bins + idx[keep]
            out[a, b] = np.bincount(flat, minlength=len(a) * 4 * n_bins).reshape(len(a), 4, n_bins)
        self.theta_edges, self.theta_counts = edges, out
        return out

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
        """The pair's theta histogram as :func:`norep.specialization.theta_histogram` returns it.

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
