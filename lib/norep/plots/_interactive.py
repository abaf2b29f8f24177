"""Interactive figures (Plotly) for the readers who want to explore: the all-pairs heatmap and the
per-pair scatter with hover and zoom, and a compact sortable model table.

Like the static builders, nothing here computes a measure: the functions place what they are given.
A figure is shown with :func:`interactive`, whose output works without the network wherever the
notebook is read:

* in the book, a ``<div>`` drawn by the ``plotly.js`` the book serves from its own ``_static/``
  folder (``book/_ext/norep_book.py`` adds it to the pages that hold such a figure);
* in JupyterLab (and VS Code), Plotly's own MIME type, drawn by the front end's Plotly renderer;
* on Colab, where the front end has no Plotly renderer, Plotly's HTML with its script from Plotly's
  CDN (Colab is online anyway).

``plotly`` is imported only when a builder is called (the ``book`` extra installs it).
"""

from __future__ import annotations

import html
import json
import sys
import uuid
from collections.abc import Mapping, Sequence

import numpy as np

from norep import CATEGORY_LABELS
from norep.plots._style import _check_columns, category_palette

PLOTLY_MIME = "application/vnd.plotly.v1+json"
_CONFIG = {"responsive": True, "displaylogo": False, "scrollZoom": False}


def _hex(rgb) -> str:
    return "#" + "".join(f"{round(255 * c):02x}" for c in rgb)


def pairs_heatmap(
    matrix,
    names: Sequence[str],
    categories: Sequence[str],
    *,
    value_name: str = "error inconsistency",
    title: str = "",
    colorscale: str = "Viridis",
    height: int | None = None,
):
    """An interactive all-pairs matrix: hover names the pair, both categories and the value; drag to zoom.

    Parameters
    ----------
    matrix : array-like of shape (M, M)
        Values computed elsewhere (e.g. :func:`norep.measures.metrics.pairwise_error_inconsistency`); NaN
        cells (the diagonal, say) stay empty.
    names, categories : sequence of str, length M
        Model names and their categories, in the matrix's order (sort them by category first).
    value_name : str
        What the values are, for the hover text and the colour bar.
    title : str
        Figure title.
    colorscale : str
        A Plotly colour scale name.
    height : int, optional
        Height in pixels (default: grows with M, 420 to 760).

    Returns
    -------
    plotly.graph_objects.Figure

    Examples
    --------
    >>> fig = pairs_heatmap([[np.nan, 0.2], [0.2, np.nan]], ["a", "b"], ["REINIT", "DATASET"])
    >>> fig.data[0].type, fig.data[0].customdata[0][1].tolist()
    ('heatmap', ['a', 'Reinit', 'b', 'Dataset'])
    """
    import plotly.graph_objects as go

    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square, got shape {m.shape}")
    n = m.shape[0]
    if len(names) != n or len(categories) != n:
        raise ValueError(f"names and categories must have {n} entries, got {len(names)} and {len(categories)}")
    cats = [CATEGORY_LABELS.get(c, c) for c in categories]
    labels = [str(x) for x in names]
    custom = np.empty((n, n, 4), dtype=object)
    for i in range(n):
        for j in range(n):
            custom[i, j] = (labels[i], cats[i], labels[j], cats[j])
    fig = go.Figure(
        go.Heatmap(
            z=np.where(np.isfinite(m), m, None),
            x=labels,
            y=labels,
            customdata=custom,
            colorscale=colorscale,
            colorbar={"title": {"text": value_name, "side": "right"}},
            hovertemplate=(
                "%{customdata[0]} (%{customdata[1]})<br>%{customdata[2]} (%{customdata[3]})<br>"
                + html.escape(value_name)
                + ": %{z:.4f}<extra></extra>"
            ),
            hoverongaps=False,
        )
    )
    fig.update_layout(
        title={"text": title} if title else None,
        height=height or int(min(760, max(420, 300 + 9 * n))),
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        xaxis={"showticklabels": n <= 40, "tickangle": -60, "tickfont": {"size": 10}, "constrain": "domain"},
        yaxis={"showticklabels": n <= 40, "autorange": "reversed", "tickfont": {"size": 10}, "scaleanchor": "x"},
        template="plotly_white",
    )
    return fig


def pairs_scatter(
    table,
    *,
    x: str = "error_inconsistency",
    y: str = "gain",
    pair: str = "pair",
    kappa: str | None = "kappa",
    xlabel: str = "error inconsistency",
    ylabel: str = "ensemble gain",
    title: str = "",
    height: int = 460,
):
    """An interactive per-pair scatter, one colour per category: hover gives the pair, its error
    inconsistency, kappa and gain; drag to zoom, double-click to reset, click a legend entry to hide it.

    Parameters
    ----------
    table : DataFrame
        One row per pair with columns ``pair`` (its name, e.g. ``"base + clip"``), ``category``,
        ``x``, ``y`` and, unless ``kappa`` is None, ``kappa`` (Cohen's kappa error consistency).
    x, y, pair, kappa : str
        Column names.
    xlabel, ylabel, title : str
        Axis labels and title.
    height : int
        Height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"pair": ["base + r1", "base + d1"], "category": ["REINIT", "DATASET"],
    ...                   "error_inconsistency": [0.05, 0.2], "kappa": [0.8, 0.3], "gain": [0.001, 0.03]})
    >>> fig = pairs_scatter(t)
    >>> [tr.name for tr in fig.data], list(fig.data[1].customdata[0])
    (['Reinit', 'Dataset'], ['base + d1', 0.2, 0.3, 0.03])
    """
    import plotly.graph_objects as go

    from norep.plots._style import _categories_present

    cols = [pair, "category", x, y] + ([kappa] if kappa else [])
    _check_columns(table, cols, "table")
    palette = category_palette()
    fig = go.Figure()
    for cat in _categories_present(table):
        rows = table[table["category"].astype(str) == cat]
        custom = np.column_stack(
            [rows[pair].astype(str), rows[x], rows[kappa] if kappa else np.full(len(rows), np.nan), rows[y]]
        ).astype(object)
        hover = f"%{{customdata[0]}}<br>{html.escape(xlabel)}: %{{customdata[1]:.4f}}"
        hover += "<br>kappa: %{customdata[2]:.3f}" if kappa else ""
        hover += f"<br>{html.escape(ylabel)}: %{{customdata[3]:.4f}}<extra>%{{fullData.name}}</extra>"
        fig.add_trace(
            go.Scatter(
                x=rows[x],
                y=rows[y],
                mode="markers",
                name=CATEGORY_LABELS.get(cat, cat),
                marker={"size": 9, "color": _hex(palette[cat]) if cat in palette else None, "opacity": 0.85},
                customdata=custom,
                hovertemplate=hover,
            )
        )
    fig.update_layout(
        title={"text": title} if title else None,
        height=height,
        xaxis_title=xlabel,
        yaxis_title=ylabel,
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        margin={"l": 10, "r": 10, "t": 60 if title else 30, "b": 10},
        template="plotly_white",
        hovermode="closest",
    )
    return fig


class InteractiveFigure:
    """A Plotly figure shown so that it draws offline in the book and in JupyterLab (see the module)."""

    def __init__(self, figure, *, caption: str = ""):
        self.figure, self.caption = figure, caption

    def _html(self, plotlyjs) -> str:
        import plotly.io as pio

        div = pio.to_html(
            self.figure,
            include_plotlyjs=plotlyjs,
            full_html=False,
            config=_CONFIG,
            div_id=f"norep-{uuid.uuid4().hex[:12]}",
            default_width="100%",
        )
        cap = f'<p class="norep-interactive-caption">{html.escape(self.caption)}</p>' if self.caption else ""
        return f'<div class="norep-interactive" style="max-width:100%;overflow-x:auto">{div}{cap}</div>'

    def _repr_mimebundle_(self, include=None, exclude=None):
        text = f"<interactive figure: {self.caption or 'Plotly'}; open the book or JupyterLab to explore it>"
        if "google.colab" in sys.modules:  # no Plotly renderer there; Colab is online
            return {"text/html": self._html("cdn"), "text/plain": text}
        return {
            PLOTLY_MIME: json.loads(self.figure.to_json()),
            "text/html": self._html(False),
            "text/plain": text,
        }


def interactive(figure, *, caption: str = "") -> InteractiveFigure:
    """Wrap a Plotly figure for display (``display(interactive(fig))`` or as a cell's last value).

    Examples
    --------
    >>> fig = pairs_heatmap(np.eye(2), ["a", "b"], ["REINIT", "ARCH"])
    >>> bundle = interactive(fig, caption="all pairs")._repr_mimebundle_()
    >>> sorted(bundle), "plotly-graph-div" in bundle["text/html"], " src=" in bundle["text/html"]
    (['application/vnd.plotly.v1+json', 'text/html', 'text/plain'], True, False)
    """
    return InteractiveFigure(figure, caption=caption)


_SORT_JS = """
(function () {
  var t = document.getElementById("%s"); if (!t) return;
  t.querySelectorAll("th").forEach(function (th, col) {
    th.style.cursor = "pointer"; th.title = "sort";
    th.addEventListener("click", function () {
      var body = t.tBodies[0], rows = Array.from(body.rows), up = th.dataset.order !== "asc";
      t.querySelectorAll("th").forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = up ? "asc" : "desc";
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return up ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
})();
"""


class ModelTable:
    """A compact sortable HTML table (click a header to sort) in a scrolling box, the other
    columns folded in a ``<details>`` per row; plain text elsewhere."""

    def __init__(self, table, columns: Sequence[str], details: Sequence[str], formats: Mapping[str, str], height: int):
        self.table, self.columns, self.details = table, list(columns), list(details)
        self.formats, self.height = dict(formats), int(height)

    def _cell(self, col, value) -> tuple[str, str]:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return "", ""
        fmt = self.formats.get(col)
        shown = format(value, fmt) if fmt and isinstance(value, (int, float, np.number)) else str(value)
        return html.escape(str(value)), html.escape(shown)

    def _repr_html_(self) -> str:
        tid = f"norep-table-{uuid.uuid4().hex[:12]}"
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.columns)
        rows = []
        for _, r in self.table.iterrows():
            cells = []
            for i, c in enumerate(self.columns):
                v, shown = self._cell(c, r[c])
                if i == 0 and self.details:
                    more = "".join(
                        f"<dt>{html.escape(str(d))}</dt><dd>{self._cell(d, r[d])[1] or '-'}</dd>" for d in self.details
                    )
                    shown = f"<details><summary>{shown}</summary><dl>{more}</dl></details>"
                cells.append(f'<td data-v="{v}">{shown}</td>')
            rows.append("<tr>" + "".join(cells) + "</tr>")
        style = f"max-height:{self.height}px;overflow:auto;max-width:100%;font-size:0.85em"
        return (
            f'<div class="norep-model-table" style="{style}"><table id="{tid}" class="table">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
            f"<script>{_SORT_JS % tid}</script>"
        )

    def __repr__(self) -> str:
        return self.table[self.columns].to_string(index=False)


def model_table(
    table,
    columns: Sequence[str],
    *,
    details: Sequence[str] = (),
    formats: Mapping[str, str] | None = None,
    height: int = 420,
) -> ModelTable:
    """A compact, sortable model table: ``columns`` shown, ``details`` folded under each row's first
    cell, the whole in a box ``height`` pixels high that scrolls.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"name": ["a<b", "c"], "accuracy": [0.91234, 0.8], "recipe": ["sgd", "adam"]})
    >>> out = model_table(t, ["name", "accuracy"], details=["recipe"], formats={"accuracy": ".3f"})._repr_html_()
    >>> "a&lt;b" in out, ">0.912<" in out, "<details>" in out, "max-height:420px" in out
    (True, True, True, True)
    """
    _check_columns(table, list(columns) + list(details), "table")
    return ModelTable(table, columns, details, formats or {}, height)
