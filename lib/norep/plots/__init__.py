"""Seaborn figure builders for the analogues of the paper's Figures 1-8.

Every function takes numbers that ``norep``'s analysis modules already computed (tidy
:class:`pandas.DataFrame` tables or square matrices) and returns a
:class:`matplotlib.figure.Figure`. Nothing here computes a measure: plotting functions only
place, colour and label what they are given, so a figure can never disagree with the number
printed beside it.

Importing this package has no side effects (no rcParams, no style); each builder works on its
own figure, and :func:`paper_style` is a context manager for callers that want the book's look.

Colours mark the paper's five categories (Sec. 3.1) consistently across every figure.

The builders live in three private modules, all re-exported here: ``_style`` (colours, labels,
:func:`paper_style` and the shared checks), ``_pairs`` (models and pairs by category: Figs. 1-4 and
the calibration check) and ``_features`` (greedy ensembles and features: Figs. 5-7).
"""

from __future__ import annotations

from norep import CATEGORY_LABELS
from norep.plots._features import (
    compression_curves,
    dims_to_target_bars,
    greedy_curves,
    rate_curves,
    transfer_scatter,
)
from norep.plots._interactive import interactive, model_table, pairs_heatmap, pairs_scatter
from norep.plots._overview import STATUS_COLOURS, claim_unit, verdict_forest
from norep.plots._pairs import (
    calibration_bars,
    category_strip,
    class_theta_heatmaps,
    confidence_scatter,
    gain_vs_inconsistency,
    pairwise_heatmap,
    per_class_bars,
    theta_histograms,
)
from norep.plots._style import OUTCOME_LABELS, category_palette, message_figure, paper_style
from norep.plots._zoo import calibration_dots, twin_pairs_plot

__all__ = [
    "CATEGORY_LABELS",
    "OUTCOME_LABELS",
    "category_palette",
    "paper_style",
    "category_strip",
    "pairwise_heatmap",
    "gain_vs_inconsistency",
    "theta_histograms",
    "per_class_bars",
    "confidence_scatter",
    "class_theta_heatmaps",
    "greedy_curves",
    "rate_curves",
    "compression_curves",
    "dims_to_target_bars",
    "transfer_scatter",
    "calibration_bars",
    "message_figure",
    "STATUS_COLOURS",
    "claim_unit",
    "verdict_forest",
    "interactive",
    "pairs_heatmap",
    "pairs_scatter",
    "model_table",
    "calibration_dots",
    "twin_pairs_plot",
]
