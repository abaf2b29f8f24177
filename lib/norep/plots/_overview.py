"""The verdicts at a glance: a forest plot of every claim's effect and interval against the smallest
effect the study could detect, and the words and units the book prints beside them."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence

STATUS_COLOURS = {
    "reproduced": "#1b7837",
    "partly reproduced": "#7fbc41",
    "not reproduced": "#c51b7d",
    "inconclusive": "#737373",
    "not testable": "#bdbdbd",
}
"""Colour of each verdict (green for reproduced, magenta for not reproduced, greys for no decision)."""

STATUS_WORDS = {
    "reproduced": "reproduced",
    "partly reproduced": "partly reproduced",
    "not reproduced": "not reproduced",
    "inconclusive": "inconclusive",
    "not testable": "not testable",
}
"""How the overview prints each verdict: the status itself (*inconclusive* is never printed as "does
not reproduce")."""

_LEGEND = {"inconclusive": "inconclusive (interval includes 0)", "not testable": "not testable on this store"}

CLAIM_UNITS = {
    "C1": "fraction of test examples",
    "C2": "ensemble accuracy (fraction)",
    "C3": "conversion rate (fraction)",
    "C4": "degrees",
    "C5": "share of disagreements won (directed contrast)",
    "C6": "test accuracy (fraction)",
    "C7": "test accuracy (fraction)",
    "C8": "concordance (probability - 1/2)",
    "C9": "mAP (fraction)",
    "C10": "ECE (fraction)",
}
"""The unit of each claim's effect (see ``effect_name`` of its :class:`norep.claims.ClaimResult`)."""


def claim_unit(record: Mapping) -> str:
    """The unit of a claim record's effect (``""`` when unknown).

    Examples
    --------
    >>> claim_unit({"id": "C4"}), claim_unit({"id": "C99"})
    ('degrees', '')
    """
    return CLAIM_UNITS.get(str(record.get("id", "")), "")


def status_words(status: str) -> str:
    """The words the overview prints for a verdict.

    Examples
    --------
    >>> status_words("inconclusive")
    'inconclusive'
    """
    return STATUS_WORDS.get(status, status)


def _num(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def _detectable(r: Mapping) -> float | None:
    det = _num(r.get("detectable"))
    if det is None:
        low, high = _num(r.get("low")), _num(r.get("high"))
        if low is not None and high is not None:
            det = (1.959964 + 0.841621) * (high - low) / (2 * 1.959964)
    return det if det is not None and det > 0 else None


def effect_text(record: Mapping, *, unit: bool = True) -> str:
    """``effect [low, high] unit`` of a claim record, or ``"no effect computed"``.

    Examples
    --------
    >>> effect_text({"id": "C4", "effect": 3.21, "low": 1.05, "high": 5.5})
    '3.21 [1.05, 5.5] degrees'
    """
    eff, low, high = (_num(record.get(k)) for k in ("effect", "low", "high"))
    if eff is None or low is None or high is None:
        return "no effect computed"
    u = claim_unit(record) if unit else ""
    return f"{eff:.3g} [{low:.3g}, {high:.3g}]" + (f" {u}" if u else "")


def scaled_interval(record: Mapping) -> tuple[float, float, float] | None:
    """``(effect, low, high)`` divided by the smallest detectable effect, or None without an interval.

    One unit on this scale is the smallest effect the study would detect with 80 % power at the
    5 % level (:attr:`norep.claims.ClaimResult.detectable`), so claims measured in different units
    share one axis.

    Examples
    --------
    >>> scaled_interval({"effect": 0.028, "low": 0.0084, "high": 0.0476, "detectable": 0.028})
    (1.0, 0.3, 1.7)
    >>> scaled_interval({"effect": None}) is None
    True
    """
    eff, low, high = (_num(record.get(k)) for k in ("effect", "low", "high"))
    det = _detectable(record)
    if eff is None or low is None or high is None or det is None:
        return None
    return (round(eff / det, 6), round(low / det, 6), round(high / det, 6))


def verdict_forest(records: Sequence[Mapping], *, width: float = 8.0):
    """A forest plot of the claims' verdicts: one row per claim, its effect and 95 % interval in
    units of its smallest detectable effect, coloured by verdict, with the effect in its own units
    printed on the right.

    Parameters
    ----------
    records : sequence of mapping
        :meth:`norep.claims.ClaimResult.record` dictionaries (``id``, ``title``, ``status``,
        ``effect``, ``low``, ``high``, ``detectable``), in display order.
    width : float
        Figure width in inches.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = verdict_forest([{"id": "C1", "title": "t", "status": "reproduced", "effect": 0.02,
    ...                        "low": 0.01, "high": 0.03, "detectable": 0.014}])
    >>> fig.axes[0].get_yticklabels()[0].get_text()
    'C1  t'
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if not records:
        raise ValueError("verdict_forest needs at least one claim record")
    n = len(records)
    fig, ax = plt.subplots(figsize=(width, 0.75 * n + 1.2), layout="constrained")
    scaled = [scaled_interval(r) for r in records]
    reach = max([3.0] + [max(abs(s[1]), abs(s[2])) for s in scaled if s is not None])
    lim = math.ceil(reach + 0.5)
    ax.axvspan(-1, 1, color="#f0f0f0", zorder=0)
    ax.axvline(0, color="#525252", lw=1, zorder=1)
    for i, (r, s) in enumerate(zip(records, scaled, strict=True)):
        colour = STATUS_COLOURS.get(r.get("status", ""), "#000000")
        if s is None:
            note = "not testable on this store"
        else:
            ax.plot([s[1], s[2]], [i, i], color=colour, lw=2.5, solid_capstyle="butt", zorder=2)
            ax.plot(s[0], i, "o", ms=7, color=colour, zorder=3)
            note = effect_text(r)
        ax.text(-lim + 0.1, i - 0.3, note, va="center", ha="left", fontsize=8.5, color="#404040", zorder=4)
    labels = [
        f"{r['id']}  " + textwrap.fill(str(r.get("title", "")), 40, max_lines=2, placeholder="...") for r in records
    ]
    ax.set_yticks(range(n), labels, fontsize=9)
    ax.set_ylim(n - 0.5, -0.75)
    ax.set_xlim(-lim, lim)
    ax.set_xlabel("effect / smallest detectable effect (grey band: too small for this study to detect)")
    ax.grid(axis="x", color="#e0e0e0", lw=0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    used = [s for s in STATUS_COLOURS if any(r.get("status") == s for r in records)]
    handles = [
        Line2D([], [], color=STATUS_COLOURS[s], marker="o", lw=2.5, label=_LEGEND.get(s, status_words(s))) for s in used
    ]
    fig.legend(handles=handles, loc="outside upper center", ncol=min(3, len(handles)), frameon=False)
    return fig
