"""The book's own figures and pages: the verdict overview (forest plot and table), the interactive
Plotly builders and the sortable model table, checked against values computed here independently."""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from norep import CATEGORY_LABELS  # noqa: E402
from norep.claims import (
    ClaimResult,  # noqa: E402
)
from norep.plots import (  # noqa: E402
    _overview,  # noqa: E402
    interactive,
    model_table,
    pairs_heatmap,
    pairs_scatter,
    verdict_forest,
)

plotly = pytest.importorskip("plotly")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _records():
    """Four verdicts of different kinds, as ClaimResult.record() writes them."""
    return [
        ClaimResult("C1", "errors decorrelate", "reproduced", 0.04, 0.02, 0.06, paper="0.085 to 0.230").record(),
        ClaimResult("C4", "angle separates", "inconclusive", 2.0, -3.0, 7.0, paper="theta separates").record(),
        ClaimResult("C8", "fewer dimensions", "not reproduced", -0.9, -1.5, -0.3, paper="512 vs 2304").record(),
        ClaimResult("C9", "transfer", "not testable", reason="no downstream split", paper="91.4 % mAP").record(),
    ]


# ------------------------------------------------------------------------------- verdict overview


def test_forest_rows_sit_at_effect_over_detectable_and_carry_the_verdict_colour():
    recs = _records()
    fig = verdict_forest(recs)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert [lab.split()[0] for lab in labels] == ["C1", "C4", "C8", "C9"]
    dots = [ln for ln in ax.lines if ln.get_marker() == "o"]
    bars = [ln for ln in ax.lines if ln.get_marker() in ("None", None, "") and len(ln.get_xdata()) == 2]
    bars = [b for b in bars if b.get_ydata()[0] == b.get_ydata()[1]]  # horizontal intervals, not the zero line
    assert len(dots) == 3 and len(bars) == 3  # the not-testable claim has neither
    for rec, dot, bar in zip(recs[:3], dots, bars, strict=True):
        se = (rec["high"] - rec["low"]) / (2 * 1.959964)  # standard error read off the 95 % interval
        det = (1.959964 + 0.841621) * se  # 80 % power at the 5 % level
        assert dot.get_xdata()[0] == pytest.approx(rec["effect"] / det, rel=1e-5)
        assert list(bar.get_xdata()) == pytest.approx([rec["low"] / det, rec["high"] / det], rel=1e-5)
        assert matplotlib.colors.to_hex(dot.get_color()) == _overview.STATUS_COLOURS[rec["status"]]
    texts = [t.get_text() for t in ax.texts]
    assert "0.04 [0.02, 0.06] fraction of test examples" in texts
    assert "2 [-3, 7] degrees" in texts and "-0.9 [-1.5, -0.3] concordance (probability - 1/2)" in texts
    assert "not testable on this store" in texts
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:3] == ["reproduced", "not reproduced", "inconclusive (interval includes 0)"]
    lo, hi = ax.get_xlim()
    assert lo < min(r["low"] for r in recs[:3]) / 1 and hi >= 3  # every interval inside the axes


def test_forest_refuses_no_claims():
    with pytest.raises(ValueError, match="at least one claim"):
        verdict_forest([])


def test_every_claim_has_a_unit_and_inconclusive_is_never_called_not_reproduced():
    from norep.paper import CLAIMS

    assert set(_overview.CLAIM_UNITS) == set(CLAIMS)
    assert all(_overview.CLAIM_UNITS.values())
    assert "reproduce" not in _overview.status_words("inconclusive")


def _executed_notebook(path, records):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("report_claim(r)")
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={"text/markdown": r["sentence"]}, metadata={"norep_claim": r})
        for r in records
    ]
    nb.cells.append(cell)
    nbformat.write(nb, str(path))


def test_overview_page_puts_the_paper_beside_this_run_and_links_each_chapter(tmp_path):
    from norep.notebooks import _pages

    recs = _records()
    _executed_notebook(tmp_path / "01_error_correlation.ipynb", recs[:1])
    _executed_notebook(tmp_path / "03_specialization.ipynb", recs[1:2])
    _executed_notebook(tmp_path / "05_feature_concatenation.ipynb", recs[2:])
    origin = {"store": "stores/x", "store_fingerprint": "f" * 64}
    page = _pages._write_overview(tmp_path, origin).read_text()
    assert "store fingerprint " + "f" * 64 in page.splitlines()[0]  # replaced when the store changes
    rows = [ln for ln in page.splitlines() if ln.startswith("| **C")]
    assert [re.match(r"\| \*\*(C\d+)\*\*", r).group(1) for r in rows] == ["C1", "C4", "C8", "C9"]
    c1, c4, c8, c9 = rows
    assert "0.085 to 0.230" in c1 and "**reproduced**: 0.04 [0.02, 0.06] fraction of test examples" in c1
    assert "{doc}`01 </book/generated/01_error_correlation>`" in c1
    assert "**inconclusive**: 2 [-3, 7] degrees" in c4 and "does not reproduce" not in page
    assert "**not reproduced**" in c8 and "{doc}`05 </book/generated/05_feature_concatenation>`" in c8
    assert "**not testable**: no downstream split" in c9
    assert "1 reproduced, 1 not reproduced, 1 inconclusive, 1 not testable" in page
    svg = ET.parse(tmp_path / _pages.OVERVIEW_FIGURE).getroot()
    assert svg.tag.endswith("svg")
    before = (tmp_path / _pages.OVERVIEW_FIGURE).stat().st_mtime_ns
    _pages._write_overview(tmp_path, origin)  # the same verdicts: the figure is not rewritten
    assert (tmp_path / _pages.OVERVIEW_FIGURE).stat().st_mtime_ns == before


def test_claims_table_has_titles_and_units(tmp_path):
    from norep.notebooks import _pages

    _executed_notebook(tmp_path / "03_specialization.ipynb", _records()[1:2])
    page = _pages._write_claims(tmp_path).read_text()
    row = next(ln for ln in page.splitlines() if ln.startswith("| C4 |"))
    assert "| **inconclusive** | 2 [-3, 7] degrees | angle separates |" in row


# ----------------------------------------------------------------------------- interactive figures


def test_heatmap_hover_names_the_pair_their_categories_and_the_value():
    m = np.array([[np.nan, 0.1, 0.3], [0.1, np.nan, 0.2], [0.3, 0.2, np.nan]])
    fig = pairs_heatmap(m, ["a", "b", "c"], ["REINIT", "ARCH", "DATASET"], value_name="error inconsistency")
    tr = fig.data[0]
    z = np.array(tr.z, dtype=float)
    assert np.isnan(z[0, 0]) and z[2, 0] == 0.3 and z[1, 2] == 0.2
    assert list(tr.customdata[2][0]) == ["c", CATEGORY_LABELS["DATASET"], "a", CATEGORY_LABELS["REINIT"]]
    assert "error inconsistency: %{z" in tr.hovertemplate and "%{customdata[0]}" in tr.hovertemplate
    assert fig.layout.dragmode in (None, "zoom")  # drag zooms
    with pytest.raises(ValueError, match="square"):
        pairs_heatmap(np.zeros((2, 3)), ["a", "b"], ["REINIT", "ARCH"])
    with pytest.raises(ValueError, match="3 entries"):
        pairs_heatmap(m, ["a", "b"], ["REINIT", "ARCH"])


def test_scatter_has_one_trace_per_category_with_pair_inconsistency_kappa_and_gain():
    rng = np.random.default_rng(1)
    cats = ["DATASET", "REINIT", "REINIT", "ARCH", "DATASET"]
    t = pd.DataFrame(
        {
            "pair": [f"base + m{i}" for i in range(5)],
            "category": cats,
            "error_inconsistency": rng.random(5),
            "kappa": rng.random(5),
            "gain": rng.random(5) / 10,
        }
    )
    fig = pairs_scatter(t)
    assert [tr.name for tr in fig.data] == [CATEGORY_LABELS[c] for c in ("REINIT", "ARCH", "DATASET")]
    for tr in fig.data:
        rows = t[t["category"].map(CATEGORY_LABELS) == tr.name]
        assert list(tr.x) == pytest.approx(list(rows["error_inconsistency"]))
        assert list(tr.y) == pytest.approx(list(rows["gain"]))
        for cd, (_, r) in zip(tr.customdata, rows.iterrows(), strict=True):
            assert cd[0] == r["pair"] and float(cd[2]) == pytest.approx(r["kappa"])
        assert "kappa" in tr.hovertemplate and "%{customdata[0]}" in tr.hovertemplate
    with pytest.raises(ValueError, match="kappa"):
        pairs_scatter(t.drop(columns="kappa"))
    assert "kappa" not in pairs_scatter(t.drop(columns="kappa"), kappa=None).data[0].hovertemplate


def test_interactive_output_draws_offline_in_the_book_and_in_jupyterlab(monkeypatch):
    fig = pairs_heatmap(np.eye(2), ["a", "b"], ["REINIT", "ARCH"])
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    bundle = interactive(fig, caption="all <pairs>")._repr_mimebundle_()
    page = bundle["text/html"]
    assert "plotly-graph-div" in page and "Plotly.newPlot" in page  # drawn by the book's own plotly.js
    assert not re.search(r"<script[^>]*\ssrc=", page) and "cdn" not in page.lower()
    assert "all &lt;pairs&gt;" in page
    assert bundle["application/vnd.plotly.v1+json"]["data"][0]["type"] == "heatmap"
    json.dumps(bundle)  # a notebook can store it
    monkeypatch.setitem(sys.modules, "google.colab", object())
    colab = interactive(fig)._repr_mimebundle_()
    assert "application/vnd.plotly.v1+json" not in colab and re.search(r"<script[^>]*\ssrc=", colab["text/html"])


def test_model_table_shows_few_columns_folds_the_rest_and_scrolls():
    t = pd.DataFrame(
        {
            "name": ["b<1>", "a", "c"],
            "accuracy": [0.9, 0.95, 0.85],
            "ece": [0.01, np.nan, 0.03],
            "recipe": ["sgd, 10 epochs", "adam", "sgd"],
        }
    )
    out = model_table(t, ["name", "accuracy", "ece"], details=["recipe"], formats={"accuracy": ".1%"}, height=300)
    page = out._repr_html_()
    head = re.findall(r"<th>(.*?)</th>", page)
    assert head == ["name", "accuracy", "ece"]  # recipe folded, not a column
    assert page.count("<details>") == 3 and "<dd>sgd, 10 epochs</dd>" in page
    assert "b&lt;1&gt;" in page and "<b<1>" not in page
    assert '<td data-v="0.95">95.0%</td>' in page  # shown formatted, sorted by the value
    assert '<td data-v=""></td>' in page  # NaN is an empty cell
    assert "max-height:300px;overflow:auto" in page and 'addEventListener("click"' in page
    assert "b<1>" in repr(out)
    with pytest.raises(ValueError, match="lacks column"):
        model_table(t, ["name", "missing"])


@pytest.mark.parametrize(
    "status", ["reproduced", "partly reproduced", "not reproduced", "inconclusive", "not testable"]
)
def test_a_chapter_states_each_status_in_its_own_words(monkeypatch, status):
    """What a chapter prints under a verdict names the status the claims page shows, never another one."""
    import IPython.display

    from norep.claims import ClaimResult
    from norep.paper import report_claim

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append(obj.data))
    report_claim(ClaimResult("C1", "t", status, sentence="s", paper="p"))
    lead = shown[0].split("\n")[0]
    statuses = {"reproduced", "partly reproduced", "not reproduced", "inconclusive", "not testable"}
    assert f"**{status}**" in lead
    assert not any(f"**{w}**" in lead for w in statuses - {status}), lead
    assert not any(w in lead for w in ("reproduces", "does not reproduce", "cannot test")), lead
