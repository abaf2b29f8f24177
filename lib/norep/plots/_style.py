"""Colours, labels and the shared helpers of the figure builders (no side effects on import)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from norep import CATEGORIES

"""Readable names of the paper's categories, as in its figure legends."""

OUTCOME_LABELS = {
    "both_correct": "both correct",
    "only_a": "only A correct",
    "only_b": "only B correct",
    "both_wrong": "both wrong",
}
"""Readable names of the four pair outcomes (Sec. 4.1, Fig. 3)."""


def category_palette() -> dict[str, tuple[float, float, float]]:
    """Colour of each of the paper's five categories (Sec. 3.1).

    Returns
    -------
    dict
        Category name (``"REINIT"`` ... ``"DATASET"``) to an RGB tuple (a colour-blind safe
        qualitative palette; Dataset in purple as in the paper's figures).

    Examples
    --------
    >>> pal = category_palette()
    >>> list(pal) == ["REINIT", "HPARAM", "ARCH", "FWORK", "DATASET"]
    True
    """
    colours = (
        "#0173B2",
        "#029E73",
        "#DE8F05",
        "#CC78BC",
        "#5B2A86",
    )  # colour-blind safe; Dataset purple as in the paper
    return {cat: _hex_to_rgb(col) for cat, col in zip(CATEGORIES, colours, strict=True)}


def _hex_to_rgb(code: str) -> tuple[float, float, float]:
    return tuple(int(code[i : i + 2], 16) / 255 for i in (1, 3, 5))


@contextlib.contextmanager
def paper_style(*, font_scale: float = 1.0, dpi: int = 110):
    """Temporarily apply the book's plotting style (white grid, compact fonts).

    Examples
    --------
    >>> with paper_style():
    ...     pass
    """
    import matplotlib as mpl
    import seaborn as sns

    rc = {"figure.dpi": dpi, "savefig.dpi": dpi, "axes.titlesize": "medium"}
    with mpl.rc_context(), sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=font_scale, rc=rc):
        yield


def _check_columns(table, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; it has {list(table.columns)}")


def _categories_present(table, column: str = "category") -> list[str]:
    present = set(table[column].astype(str))
    order = [c for c in CATEGORIES if c in present]
    order += sorted(present - set(order))
    return order


def _new_figure(ncols: int, *, width: float = 4.2, height: float = 3.4):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False, layout="constrained")
    return fig, list(axes[0])


def message_figure(text: str, *, width: float = 5.6, height: float = 4.0):
    """A figure holding only ``text``: what a chapter shows where the store gives nothing to draw.

    Examples
    --------
    >>> fig = message_figure("no in-band partner with embeddings")
    >>> fig.axes[0].texts[0].get_text()
    'no in-band partner with embeddings'
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=8)
    ax.set_axis_off()
    return fig
