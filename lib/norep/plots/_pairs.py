"""Figures of models and pairs by category: Figs. 1-4 and the calibration check (Sec. 3.2)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import numpy as np

from norep import CATEGORY_LABELS
from norep.plots._style import (
    OUTCOME_LABELS,
    _categories_present,
    _check_columns,
    _new_figure,
    category_palette,
    message_figure,
)


def category_strip(
    table,
    values: Sequence[str],
    *,
    titles: Sequence[str] | None = None,
    category: str = "category",
    ylabel: str | None = None,
):
    """One panel per measure: each model as a dot, the category mean as a horizontal line (Figs. 1, 2, 8).

    The y-axis spans the data, not zero: the differences between categories that a chapter's verdict
    states (often a few points of a share near 0.8) stay visible.

    Parameters
    ----------
    table : DataFrame
        One row per model (or pair), with a ``category`` column and the columns named in
        ``values`` (numbers computed elsewhere, e.g. by :mod:`norep.measures.metrics`).
    values : sequence of str
        Columns to plot, one panel each.
    titles : sequence of str, optional
        Panel titles (default: the column names).
    category : str
        Name of the category column.
    ylabel : str, optional
        Shared y-axis label.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"category": ["REINIT", "DATASET"], "ei": [0.1, 0.3]})
    >>> fig = category_strip(t, ["ei"])
    >>> len(fig.axes)
    1
    """
    import seaborn as sns

    _check_columns(table, [category, *values], "table")
    order = _categories_present(table, category)
    pal = category_palette()
    palette = {c: pal.get(c, (0.5, 0.5, 0.5)) for c in order}
    fig, axes = _new_figure(len(values), width=3.9 if len(values) < 3 else 2.9, height=3.2)
    for i, (ax, col) in enumerate(zip(axes, values, strict=True)):
        common = dict(data=table, x=category, y=col, hue=category, order=order, hue_order=order, palette=palette, ax=ax)
        with _seeded_jitter(i):  # seaborn jitters with numpy's global RNG: the same figure every run
            sns.stripplot(**common, size=5, jitter=0.15, edgecolor="black", linewidth=0.5, legend=False)
        means = table.groupby(category)[col].mean()
        for j, cat in enumerate(order):
            if cat in means.index and np.isfinite(means[cat]):
                ax.hlines(means[cat], j - 0.35, j + 0.35, color=palette[cat], lw=3, alpha=0.8, zorder=1)
        ax.margins(y=0.12)
        ax.set_xticks(range(len(order)))
        ax.set_xticklabels([CATEGORY_LABELS.get(c, c) for c in order], rotation=30, ha="right", fontsize=8)
        ax.set_xlabel("")
        ax.set_title(titles[i] if titles else col)
        ax.set_ylabel(ylabel if (ylabel and i == 0) else ("" if ylabel else col))
    return fig


@contextlib.contextmanager
def _seeded_jitter(seed: int):
    """numpy's global RNG seeded with ``seed`` inside the block, its earlier state restored after."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def pairwise_heatmap(
    matrix,
    names: Sequence[str],
    categories: Sequence[str],
    *,
    title: str = "",
    cbar_label: str = "",
    cmap: str = "mako_r",
    annotate: bool | None = None,
):
    """An all-pairs matrix with rows and columns grouped by category (beyond the paper).

    Rows and columns are drawn in the order given; pass them already sorted by category.
    Thin lines separate the category blocks.

    Parameters
    ----------
    matrix : array-like of shape (M, M)
        Values computed elsewhere (e.g. :func:`norep.measures.metrics.pairwise_error_inconsistency`).
    names, categories : sequence of str, length M
        Model names and their categories, in the matrix's order.
    title, cbar_label : str
        Axes title and colour-bar label.
    cmap : str
        Colour map name.
    annotate : bool, optional
        Write the values in the cells (default: when M <= 12).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> fig = pairwise_heatmap(np.eye(2), ["a", "b"], ["REINIT", "ARCH"])
    >>> fig.axes[0].get_title()
    ''
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square, got shape {m.shape}")
    if len(names) != m.shape[0] or len(categories) != m.shape[0]:
        raise ValueError(
            f"names ({len(names)}) and categories ({len(categories)}) must match the matrix size {m.shape[0]}"
        )
    n = m.shape[0]
    if annotate is None:
        annotate = n <= 12
    # at most the book's text column (about 8.3 inches at 100 dpi), so that the page shows it at full
    # size; the labels get as much of a row's height as fits
    size = min(max(4.5, 0.33 * n + 2.5), 7.0)
    label_pt = min(8.0, max(4.0, 0.8 * (size - 2.0) * 72 / max(n, 1)))
    fig, ax = plt.subplots(figsize=(size + 1.3, size), layout="constrained")
    sns.heatmap(
        m,
        ax=ax,
        cmap=cmap,
        square=True,
        annot=annotate,
        fmt=".2f",
        annot_kws={"fontsize": 7},
        cbar_kws={"label": cbar_label, "shrink": 0.8},
        xticklabels=list(names),
        yticklabels=list(names),
    )
    ax.tick_params(labelsize=label_pt, length=2, pad=1)
    cats = list(categories)
    for i in range(1, n):
        if cats[i] != cats[i - 1]:
            ax.axhline(i, color="white", lw=2)
            ax.axvline(i, color="white", lw=2)
    pal = category_palette()
    for lab in list(ax.get_xticklabels()) + list(ax.get_yticklabels()):
        idx = list(names).index(lab.get_text()) if lab.get_text() in names else None
        if idx is not None and cats[idx] in pal:
            lab.set_color(pal[cats[idx]])
    ax.set_title(title)
    return fig


def gain_vs_inconsistency(
    table,
    *,
    x: str = "error_inconsistency",
    y: str = "gain",
    fit: Mapping[str, float] | None = None,
    xlabel: str = "error inconsistency with the base",
    ylabel: str = "ensemble gain over members' mean",
    title: str = "",
    label: str | None = "name",
    means=None,
):
    """Scatter of a pair measure against error inconsistency, coloured by category (Fig. 2).

    Parameters
    ----------
    table : DataFrame
        One row per pair, with columns ``x``, ``y`` and ``category``.
    fit : mapping, optional
        ``{"slope": a, "intercept": b}`` of a line computed elsewhere, drawn over the data
        range; ``{"r": r}`` may be added for the legend.
    label : str or None
        Column whose values annotate the points (None for no labels).
    means : DataFrame, optional
        Category means computed elsewhere (index: category; columns ``x`` and ``y``), drawn as large
        stars in the category's colour, as in the paper's Fig. 2.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"category": ["REINIT", "DATASET"], "error_inconsistency": [0.1, 0.3],
    ...                   "gain": [0.01, 0.03], "name": ["r", "d"]})
    >>> fig = gain_vs_inconsistency(t, fit={"slope": 0.1, "intercept": 0.0})
    >>> any(line.get_linestyle() == "--" for line in fig.axes[0].lines)
    True
    """
    import seaborn as sns

    cols = [x, y, "category"] + ([label] if label else [])
    _check_columns(table, cols, "table")
    order = _categories_present(table)
    pal = category_palette()
    fig, (ax,) = _new_figure(1, width=5.6, height=4.2)
    sns.scatterplot(
        data=table,
        x=x,
        y=y,
        hue="category",
        hue_order=order,
        palette={c: pal.get(c, (0.5, 0.5, 0.5)) for c in order},
        s=55,
        edgecolor="black",
        linewidth=0.5,
        ax=ax,
    )
    if fit is not None:
        xs = np.linspace(float(table[x].min()), float(table[x].max()), 50)
        lab = "linear fit" + (f" (r = {fit['r']:.2f})" if "r" in fit else "")
        ax.plot(xs, fit["slope"] * xs + fit["intercept"], color="black", ls="--", lw=1, label=lab)
    if means is not None:
        _check_columns(means, [x, y], "means")
        for cat, row in means.iterrows():
            if np.isfinite(row[x]) and np.isfinite(row[y]):
                ax.scatter(
                    row[x],
                    row[y],
                    marker="*",
                    s=260,
                    color=pal.get(cat, (0.5, 0.5, 0.5)),
                    edgecolor="black",
                    lw=0.8,
                    zorder=4,
                )
        ax.scatter([], [], marker="*", s=120, color="white", edgecolor="black", label="category mean")
    if label and len(table) <= 25:
        ax.margins(x=0.15, y=0.08)  # room for the labels
        _place_labels(ax, table[x].to_numpy(float), table[y].to_numpy(float), [str(v) for v in table[label]])
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, [CATEGORY_LABELS.get(t, t) for t in labels], fontsize=8, frameon=True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    return fig


_LABEL_OFFSETS = [(4, 4), (4, -10), (-4, 4), (-4, -10), (6, -3), (-6, -3), (0, 8), (0, -14), (10, 12), (-10, 12)]


def _place_labels(ax, xs, ys, texts, *, fontsize: float = 7):
    """Annotate each point with its text at the first of a few offsets where the label overlaps no
    label placed before it (nor the axes' edge); the first offset when none is free.

    Returns the annotations, in the order of ``texts``.
    """
    fig = ax.figure
    fig.draw_without_rendering()  # lay out the axes so that text extents are final
    placed, boxes = [], []
    axbox = ax.get_window_extent()
    for px, py, text in zip(xs, ys, texts, strict=True):
        best = None
        for dx, dy in _LABEL_OFFSETS:
            ann = ax.annotate(
                text,
                (px, py),
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=fontsize,
                ha="left" if dx >= 0 else "right",
            )
            box = ann.get_window_extent()
            free = (
                not any(box.overlaps(b) for b in boxes)
                and axbox.contains(box.x0, box.y0)
                and axbox.contains(box.x1, box.y1)
            )
            if free:
                best = (ann, box)
                break
            ann.remove()
        if best is None:
            ann = ax.annotate(text, (px, py), xytext=_LABEL_OFFSETS[0], textcoords="offset points", fontsize=fontsize)
            best = (ann, ann.get_window_extent())
        placed.append(best[0])
        boxes.append(best[1])
    return placed


def theta_histograms(histograms: Mapping[str, object], *, value: str = "fraction"):
    """Histograms of the specialization angle theta, split by pair outcome (Fig. 3).

    Parameters
    ----------
    histograms : mapping
        Panel title -> table as returned by :func:`norep.measures.specialization.theta_histogram`
        (columns ``outcome``, ``bin_left``, ``bin_right`` and ``value``).
    value : str
        Column to plot as bar height (``"fraction"`` or ``"count"``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> h = pd.DataFrame({"outcome": ["only_a", "only_b"], "bin_left": [0.0, 45.0],
    ...                   "bin_right": [45.0, 90.0], "count": [1, 1], "fraction": [1.0, 1.0]})
    >>> fig = theta_histograms({"pair": h})
    >>> len(fig.axes)
    1
    """
    import seaborn as sns

    outcomes = ["only_a", "only_b", "both_correct", "both_wrong"]
    cb = sns.color_palette("colorblind", 8)
    colours = {"only_a": cb[0], "only_b": cb[1], "both_correct": cb[2], "both_wrong": (0.45, 0.45, 0.45)}
    styles = {"only_a": "-", "only_b": "-", "both_correct": "--", "both_wrong": ":"}
    fig, axes = _new_figure(len(histograms), width=4.3)
    for ax, (title, hist) in zip(axes, histograms.items(), strict=True):
        _check_columns(hist, ["outcome", "bin_left", "bin_right", value], f"histogram {title!r}")
        for outcome in outcomes:
            part = hist[hist["outcome"] == outcome]
            if part.empty:
                continue
            lefts = part["bin_left"].to_numpy(float)
            widths = part["bin_right"].to_numpy(float) - lefts
            ax.step(
                np.r_[lefts, lefts[-1] + widths[-1]],
                np.r_[part[value].to_numpy(float), 0.0],
                where="post",
                color=colours[outcome],
                lw=1.8,
                ls=styles[outcome],
                label=OUTCOME_LABELS[outcome],
            )
        ax.axvline(45, color="grey", ls=":", lw=1)
        ax.set_xlim(0, 90)
        ax.set_xlabel("theta (degrees; > 45: A more confident)")
        ax.set_ylabel({"within_outcome": "share within outcome", "fraction": "share of examples"}.get(value, value))
        ax.set_title(title)
        ax.legend(fontsize=7)
    return fig


def confidence_scatter(table, *, max_points: int = 1500):
    """Confidence of model A against confidence of model B where exactly one is right (Fig. 3, left).

    One panel per pair; each example a dot, coloured by which model is right. Theta, the angle of a
    dot from the B axis, is what the histograms of Fig. 3 count: dots above the diagonal are examples
    where A is the more confident.

    Parameters
    ----------
    table : DataFrame
        Columns ``pair``, ``outcome`` (``only_a`` or ``only_b``), ``conf_a`` and ``conf_b``, e.g. from
        :func:`norep.paper.ch03_specialization.confidence_pairs`.
    max_points : int
        Draw at most this many examples per pair (a fixed, evenly spaced subset of the rows).

    An empty table gives a figure that says so (:func:`message_figure`).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"pair": ["p", "p"], "outcome": ["only_a", "only_b"],
    ...                   "conf_a": [0.9, 0.5], "conf_b": [0.6, 0.8]})
    >>> fig = confidence_scatter(t)
    >>> len(fig.axes), fig.axes[0].get_xlabel()
    (1, 'confidence of B (partner)')
    """
    import seaborn as sns

    _check_columns(table, ["pair", "outcome", "conf_a", "conf_b"], "table")
    if not len(table):
        return message_figure("no pair to show: no figure pair, or no example where exactly one is right")
    pairs = list(dict.fromkeys(table["pair"]))
    cb = sns.color_palette("colorblind", 8)
    colours = {"only_a": cb[0], "only_b": cb[1]}
    fig, axes = _new_figure(max(len(pairs), 1), width=2.9, height=3.0)
    for ax, pair in zip(axes, pairs, strict=False):
        part = table[table["pair"] == pair]
        if len(part) > max_points:
            part = part.iloc[np.linspace(0, len(part) - 1, max_points).astype(int)]
        for outcome in ("only_a", "only_b"):
            o = part[part["outcome"] == outcome]
            ax.scatter(o["conf_b"], o["conf_a"], s=5, alpha=0.5, color=colours[outcome], label=OUTCOME_LABELS[outcome])
        ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
        ax.set_xlim(0, 1.02)
        ax.set_ylim(0, 1.02)
        ax.set_aspect("equal")
        ax.set_xlabel("confidence of B (partner)")
        ax.set_title(str(pair), fontsize=8)
    axes[0].set_ylabel("confidence of A (base)")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, fontsize=8, markerscale=3, loc="outside lower center", ncols=2)
    return fig


def class_theta_heatmaps(tables: Mapping[str, object]):
    """Per-class histograms of the specialization angle, one panel per pair (Fig. 4).

    Parameters
    ----------
    tables : mapping
        Panel title -> DataFrame with one row per class (index: class name) and one column per
        theta bin (its left edge in degrees), e.g. from
        :func:`norep.paper.ch03_specialization.class_theta_histograms`. An empty mapping gives a
        figure that says so (:func:`message_figure`).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame([[0.5, 0.0], [0.0, 0.5]], index=["x", "y"], columns=[0.0, 45.0])
    >>> fig = class_theta_heatmaps({"a vs b": t})
    >>> fig.axes[0].get_xlabel()
    'theta (degrees; > 45: A more confident)'
    """
    import matplotlib.pyplot as plt

    if not tables:
        return message_figure("no pair to show")
    n = len(tables)
    fig, axes = plt.subplots(1, n, figsize=(2.75 * n + 0.9, 3.4), squeeze=False, layout="constrained", sharey=True)
    axes = list(axes[0])
    vmax = max([float(np.nanmax(t.to_numpy(float))) for t in tables.values() if t.size] + [1e-9])
    im = None
    for ax, (title, t) in zip(axes, tables.items(), strict=False):
        edges = [float(c) for c in t.columns]
        width = edges[1] - edges[0] if len(edges) > 1 else 90.0
        im = ax.imshow(
            t.to_numpy(float),
            aspect="auto",
            cmap="mako_r",
            vmin=0,
            vmax=vmax,
            extent=(edges[0], edges[-1] + width, len(t) - 0.5, -0.5),
            interpolation="nearest",
        )
        ax.axvline(45, color="white", ls=":", lw=1)
        ax.set_yticks(range(len(t)))
        ax.set_yticklabels([str(i) for i in t.index], fontsize=7)
        ax.set_xlabel("theta (degrees; > 45: A more confident)", fontsize=8)
        ax.set_title(str(title), fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.8, label="share of the pair's disagreements")
    return fig


def per_class_bars(
    tables: Mapping[str, object],
    *,
    value: str = "acc_diff",
    group_of: Mapping[int, str] | None = None,
    ylabel: str = "accuracy of A minus B",
):
    """Per-class specialization bars, one panel per pair, coloured by class group (Fig. 4).

    Parameters
    ----------
    tables : mapping
        Panel title -> table from :func:`norep.measures.specialization.per_class_specialization`
        (columns ``class_id``, ``class_name`` and ``value``).
    value : str
        Column to plot.
    group_of : mapping, optional
        Class id -> group name, for colouring.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"class_id": [0, 1], "class_name": ["a", "b"], "acc_diff": [0.1, -0.1]})
    >>> fig = per_class_bars({"A vs B": t}, group_of={0: "g1", 1: "g2"})
    >>> len(fig.axes)
    1
    """
    import seaborn as sns

    fig, axes = _new_figure(len(tables), width=4.0, height=3.4)
    groups = sorted(set(group_of.values())) if group_of else []
    gcol = dict(zip(groups, sns.color_palette("Set2", max(len(groups), 1)), strict=False))
    for ax, (title, table) in zip(axes, tables.items(), strict=True):
        _check_columns(table, ["class_id", "class_name", value], f"table {title!r}")
        t = table.sort_values("class_id")
        colours = [
            gcol.get(group_of.get(int(c)), (0.6, 0.6, 0.6)) if group_of else (0.4, 0.5, 0.7) for c in t["class_id"]
        ]
        ax.bar(range(len(t)), t[value].to_numpy(float), color=colours, edgecolor="black", lw=0.4)
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xticks(range(len(t)))
        ax.set_xticklabels([str(n) for n in t["class_name"]], rotation=60, ha="right", fontsize=7)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
    if groups:  # one legend for every panel, outside them
        from matplotlib.patches import Patch

        fig.legend(
            handles=[Patch(color=gcol[g], label=g) for g in groups],
            fontsize=8,
            title="class group",
            title_fontsize=8,
            loc="outside right upper",
        )
    return fig


def calibration_bars(table, *, before: str = "ece_before", after: str = "ece_after", name: str = "name"):
    """Expected calibration error of each model before and after temperature scaling (Sec. 3.2).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"name": ["m"], "ece_before": [0.05], "ece_after": [0.01]})
    >>> fig = calibration_bars(t)
    >>> len(fig.axes)
    1
    """
    import seaborn as sns

    _check_columns(table, [name, before, after], "table")
    long = table.melt(id_vars=[name], value_vars=[before, after], var_name="when", value_name="ECE")
    long["when"] = long["when"].map({before: "before (T = 1)", after: "after temperature scaling"})
    n = len(table)
    fig, (ax,) = _new_figure(1, width=max(5.0, 0.35 * n + 2), height=3.8)
    sns.barplot(data=long, x=name, y="ECE", hue="when", palette="Paired", ax=ax)
    ax.set_xticks(range(n))
    ax.set_xticklabels([str(v) for v in table[name]], rotation=60, ha="right", fontsize=7)
    ax.set_xlabel("")
    ax.set_ylabel("expected calibration error (test)")
    ax.legend(fontsize=8)
    return fig
