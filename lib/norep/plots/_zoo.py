"""The model zoo's figures (chapter 00): calibration before and after temperature scaling as a dot
plot that fits a text column, and each Dataset model beside its Framework twin (the data effect)."""

from __future__ import annotations

from norep.plots._style import _check_columns, category_palette, message_figure


def calibration_dots(table, *, before: str = "ece_before", after: str = "ece_after", name: str = "name", per_panel=30):
    """Expected calibration error of each model before (open circle) and after (dot) temperature
    scaling, one row per model sorted by the error before, in panels of at most ``per_panel`` rows
    side by side, so that every label stays legible at a text column's width.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"name": list("abc"), "ece_before": [0.05, 0.1, 0.02], "ece_after": [0.01] * 3})
    >>> fig = calibration_dots(t, per_panel=2)
    >>> len(fig.axes), [tl.get_text() for tl in fig.axes[0].get_yticklabels()]
    (2, ['b', 'a'])
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    _check_columns(table, [name, before, after], "table")
    t = table.sort_values(before, ascending=False).reset_index(drop=True)
    n_panels = max(1, -(-len(t) // per_panel))
    rows = -(-len(t) // n_panels)
    fig, axes = plt.subplots(
        1, n_panels, figsize=(8.0, 0.9 + 0.17 * rows), squeeze=False, layout="constrained", sharex=True
    )
    xmax = float(max(t[before].max(), t[after].max())) * 1.08
    for k, ax in enumerate(axes[0]):
        part = t.iloc[k * rows : (k + 1) * rows]
        ys = list(range(len(part)))[::-1]
        ax.hlines(ys, part[after], part[before], color="0.6", lw=1)
        ax.scatter(part[before], ys, facecolors="white", edgecolors="#1f78b4", s=22, zorder=3)
        ax.scatter(part[after], ys, color="#e31a1c", s=18, zorder=3)
        ax.set_yticks(ys)
        ax.set_yticklabels([str(v) for v in part[name]], fontsize=7)
        ax.set_ylim(-0.7, rows - 0.3)
        ax.set_xlim(0, xmax)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    handles = [
        Line2D([], [], marker="o", ls="", mfc="white", mec="#1f78b4", label="before (T = 1)"),
        Line2D([], [], marker="o", ls="", color="#e31a1c", label="after temperature scaling"),
    ]
    fig.supxlabel("expected calibration error (test)", fontsize=8)
    fig.legend(handles=handles, loc="outside upper center", ncols=2, fontsize=8, frameon=False)
    return fig


def twin_pairs_plot(pairs, *, reinit: float | None = None, value: str = "ei", label: str | None = None):
    """Each Dataset model beside its Framework twin (one line per twin pair): the pair's
    ``{value}_twin`` and ``{value}_dataset`` columns (``ei``: error inconsistency with the base), with
    the in-band Reinit models' mean as a dashed line when ``reinit`` is given.

    Examples
    --------
    >>> import pandas as pd
    >>> p = pd.DataFrame({"dataset_model": ["d1", "d2"], "twin": ["f", "f"],
    ...                   "ei_twin": [0.08, 0.08], "ei_dataset": [0.10, 0.09]})
    >>> fig = twin_pairs_plot(p, reinit=0.06)
    >>> len(fig.axes[0].lines)  # two pairs and the Reinit line
    3
    """
    import matplotlib.pyplot as plt

    cols = [f"{value}_twin", f"{value}_dataset"]
    _check_columns(pairs, ["dataset_model", "twin", *cols], "pairs")
    if not len(pairs):
        return message_figure("no in-band Dataset model with an in-band Framework twin on this store")
    pal = category_palette()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    for _, r in pairs.iterrows():
        ax.plot([0, 1], [r[cols[0]], r[cols[1]]], color="0.55", lw=1, marker="", zorder=1)
    values = [*pairs[cols[0]], *pairs[cols[1]], *([reinit] if reinit is not None else [])]
    span = (max(values) - min(values)) or 1.0
    twins = pairs.drop_duplicates("twin")
    for x, names, ys, ha in (
        (1, pairs["dataset_model"], pairs[cols[1]], "left"),
        (0, twins["twin"], twins[cols[0]], "right"),
    ):
        for name, y, y_text in zip(names, ys, _spread(list(ys), 0.06 * span), strict=True):
            ax.annotate(
                str(name),
                (x, y),
                xytext=(x + (0.06 if ha == "left" else -0.06), y_text),
                fontsize=7,
                va="center",
                ha=ha,
                arrowprops=dict(arrowstyle="-", color="0.8", lw=0.6),
            )
    ax.scatter([0] * len(pairs), pairs[cols[0]], color=pal.get("FWORK"), s=28, zorder=3, label="Framework twin")
    ax.scatter([1] * len(pairs), pairs[cols[1]], color=pal.get("DATASET"), s=28, zorder=3, label="Dataset model")
    if reinit is not None:
        ax.axhline(reinit, color=pal.get("REINIT"), ls="--", lw=1, label="Reinit mean")
    ax.set_xticks([0, 1])
    ax.set_xticklabels(["Framework twin\n(training images)", "Dataset model\n(other data, same recipe)"], fontsize=8)
    ax.set_xlim(-0.9, 1.9)
    ax.set_ylabel(label or ("error inconsistency with the base (test)" if value == "ei" else value), fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    fig.legend(fontsize=7, loc="outside lower center", ncols=3, frameon=False)
    return fig


def _spread(ys: list[float], gap: float) -> list[float]:
    """Label positions near ``ys`` (same order) at least ``gap`` apart, so that labels never overlap:
    labels that would collide form a block centred on their values' mean, and blocks merge until none
    collide.

    Examples
    --------
    >>> [round(v, 2) for v in _spread([1.0, 1.0, 3.0], 0.5)]
    [0.75, 1.25, 3.0]
    >>> [round(v, 5) for v in _spread([0.095, 0.0956, 0.0984, 0.0994], 0.0027)]
    [0.09305, 0.09575, 0.09845, 0.10115]
    """
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    blocks = [[ys[i]] for i in order]

    def low(b):
        return sum(b) / len(b) - gap * (len(b) - 1) / 2

    k = 0
    while k < len(blocks) - 1:
        if low(blocks[k]) + gap * (len(blocks[k]) - 1) + gap > low(blocks[k + 1]) + 1e-12:
            blocks[k : k + 2] = [blocks[k] + blocks[k + 1]]
            k = max(k - 1, 0)
        else:
            k += 1
    pos = [low(b) + gap * i for b in blocks for i in range(len(b))]
    out = [0.0] * len(ys)
    for i, v in zip(order, pos, strict=True):
        out[i] = v
    return out


__all__ = ["calibration_dots", "twin_pairs_plot"]
