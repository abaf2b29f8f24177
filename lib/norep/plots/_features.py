"""Figures of greedy ensembles and of features: Figs. 5-7 (greedy curves, embedding mixes, compression,
transfer)."""

from __future__ import annotations

import numpy as np

from norep import CATEGORY_LABELS
from norep.plots._pairs import category_strip, gain_vs_inconsistency
from norep.plots._style import _categories_present, _check_columns, _new_figure, category_palette


def greedy_curves(
    table,
    *,
    x: str = "step",
    y: str = "accuracy",
    start: str = "start",
    added_category: str | None = "added_category",
    title: str = "",
):
    """Greedy ensembles from high-accuracy starts adding only low-accuracy models (Fig. 5).

    Parameters
    ----------
    table : DataFrame
        Long table, one row per (start model, step): ``start`` (name of the first member),
        ``step`` (0 = the start alone), ``accuracy`` (evaluation-split accuracy of the
        ensemble) and optionally ``added_category`` (category of the model added at that step;
        sets the marker).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"start": ["h", "h"], "step": [0, 1], "accuracy": [0.8, 0.82],
    ...                   "added_category": ["none", "DATASET"]})
    >>> fig = greedy_curves(t)
    >>> len(fig.axes)
    1
    """
    import seaborn as sns

    _check_columns(table, [x, y, start], "table")
    fig, (ax,) = _new_figure(1, width=7.0, height=4.0)
    starts = list(dict.fromkeys(table[start]))
    colours = dict(zip(starts, sns.color_palette("tab10", len(starts)), strict=False))
    markers = {"none": "*", "REINIT": "o", "HPARAM": "s", "ARCH": "^", "FWORK": "D", "DATASET": "P"}
    seen = set()
    for s in starts:
        part = table[table[start] == s].sort_values(x)
        ax.plot(part[x], part[y], color=colours[s], lw=1.5, label=s)
        if added_category and added_category in part.columns:
            for _, row in part.iterrows():
                cat = str(row[added_category])
                lab = None
                if cat not in seen and cat != "none":
                    seen.add(cat)
                    lab = f"added: {CATEGORY_LABELS.get(cat, cat)}"
                ax.scatter(
                    row[x],
                    row[y],
                    color=colours[s],
                    marker=markers.get(cat, "o"),
                    s=70 if cat == "none" else 40,
                    edgecolor="black",
                    lw=0.5,
                    zorder=3,
                )
                if lab:
                    ax.scatter([], [], color="white", marker=markers.get(cat, "o"), edgecolor="black", label=lab)
    ax.set_xlabel("number of low-accuracy models added")
    ax.set_ylabel("ensemble accuracy (evaluation split)")
    ax.set_xticks(sorted(set(int(v) for v in table[x])))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the data, never over it
    ax.set_title(title)
    return fig


def rate_curves(
    table, *, x: str = "rate", y: str = "accuracy", hue: str = "category", label: str = "other", title: str = ""
):
    """Linear-probe accuracy of concatenated embeddings against the base's share (Fig. 6 center).

    Parameters
    ----------
    table : DataFrame
        One row per (pair, rate): ``rate`` (share of the base's dimensions, 0 to 1),
        ``accuracy``, ``category`` and ``other`` (the other model's name).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"rate": [0.0, 1.0], "accuracy": [0.8, 0.82], "category": ["ARCH"] * 2,
    ...                   "other": ["m", "m"]})
    >>> fig = rate_curves(t)
    >>> len(fig.axes)
    1
    """
    import seaborn as sns

    _check_columns(table, [x, y, hue, label], "table")
    order = _categories_present(table, hue)
    pal = category_palette()
    fig, (ax,) = _new_figure(1, width=5.6, height=4.0)
    sns.lineplot(
        data=table,
        x=x,
        y=y,
        hue=hue,
        hue_order=order,
        units=label,
        estimator=None,
        palette={c: pal.get(c, (0.5, 0.5, 0.5)) for c in order},
        marker="o",
        ax=ax,
    )
    rates = sorted(set(float(v) for v in table[x]))
    ax.set_xticks(rates)
    ax.set_xticklabels([f"{round(100 * r)}/{round(100 * (1 - r))}" for r in rates], fontsize=8)
    ax.invert_xaxis()  # base alone on the left, as in the paper
    ax.set_xlabel("base / other share of the dimension budget (%)")
    ax.set_ylabel("linear-probe accuracy (test)")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [CATEGORY_LABELS.get(t, t) for t in labels], fontsize=8)
    ax.set_title(title)
    return fig


def compression_curves(
    table,
    *,
    x: str = "dims",
    y: str = "accuracy",
    hue: str = "category",
    label: str = "other",
    target: float | None = None,
    title: str = "",
):
    """Accuracy as diversity-ranked dimensions are added (Fig. 6 right), on a log2 x-axis: the
    crossings of the target lie at tens of dimensions while the curves run to hundreds.

    Parameters
    ----------
    table : DataFrame
        One row per (pair, number of dimensions): ``dims``, ``accuracy``, ``category``, ``other``.
    target : float, optional
        Target accuracy, drawn as a horizontal line.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"dims": [8, 16], "accuracy": [0.7, 0.8], "category": ["ARCH"] * 2,
    ...                   "other": ["m", "m"]})
    >>> fig = compression_curves(t, target=0.75)
    >>> len(fig.axes[0].lines) >= 2
    True
    """
    import seaborn as sns

    _check_columns(table, [x, y, hue, label], "table")
    order = _categories_present(table, hue)
    pal = category_palette()
    fig, (ax,) = _new_figure(1, width=5.6, height=4.0)
    sns.lineplot(
        data=table,
        x=x,
        y=y,
        hue=hue,
        hue_order=order,
        units=label,
        estimator=None,
        palette={c: pal.get(c, (0.5, 0.5, 0.5)) for c in order},
        marker=".",
        ax=ax,
    )
    if target is not None:
        ax.axhline(target, color="black", ls="--", lw=1, label=f"target {target:.3f}")
    _log2_axis(ax, table[x])
    ax.set_xlabel("number of dimensions (most diverse first; log scale)")
    ax.set_ylabel("linear-probe accuracy (test)")
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [CATEGORY_LABELS.get(t, t) for t in labels], fontsize=8)
    ax.set_title(title)
    return fig


def _log2_axis(ax, values) -> None:
    """A base-2 log x-axis ticked at the powers of two that the data span, labelled as plain numbers."""
    from matplotlib.ticker import FixedLocator, NullFormatter

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    ax.set_xscale("log", base=2)
    if v.size:
        ticks = [2.0**k for k in range(int(np.floor(np.log2(v.min()))), int(np.ceil(np.log2(v.max()))) + 1)]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.set_xticklabels([f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())


def dims_to_target_bars(table, *, y: str = "dims", category: str = "category", title: str = ""):
    """Dimensions needed to reach a target accuracy, per category (Fig. 6 right, paper's numbers).

    Parameters
    ----------
    table : DataFrame
        One row per pair with ``category`` and ``dims`` (NaN where the target was not reached;
        such pairs are drawn as hollow markers at the top of the axis).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"category": ["REINIT", "DATASET"], "dims": [64.0, 16.0]})
    >>> fig = dims_to_target_bars(t)
    >>> len(fig.axes)
    1
    """
    fig = category_strip(
        table.fillna({y: np.nan}),
        [y],
        titles=[title or "dimensions to reach target"],
        category=category,
        ylabel="dimensions",
    )
    return fig


def transfer_scatter(
    table, *, x: str = "upstream_accuracy", y: str = "downstream_map", label: str | None = "name", title: str = ""
):
    """Downstream mAP of each model against its upstream accuracy (Fig. 7 left).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"category": ["ARCH"], "upstream_accuracy": [0.8],
    ...                   "downstream_map": [0.6], "name": ["m"]})
    >>> fig = transfer_scatter(t)
    >>> len(fig.axes)
    1
    """
    return gain_vs_inconsistency(
        table,
        x=x,
        y=y,
        fit=None,
        xlabel="upstream accuracy (test)",
        ylabel="downstream mAP (11-point, test)",
        title=title,
        label=label,
    )
