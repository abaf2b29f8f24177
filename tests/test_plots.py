"""norep.plots: the figure builders place what they are given (checked against pandas), and refuse bad input."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from norep import CATEGORIES, plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _table(seed=0):
    rng = np.random.default_rng(seed)
    cats = np.repeat(["DATASET", "REINIT", "ARCH"], [2, 3, 4])
    return pd.DataFrame(
        {
            "name": [f"m{i}" for i in range(len(cats))],
            "category": cats,
            "ei": rng.random(len(cats)),
            "gain": rng.random(len(cats)),
        }
    )


def test_palette_has_five_distinct_colours_in_paper_order():
    pal = plots.category_palette()
    assert list(pal) == list(CATEGORIES)
    assert len(set(pal.values())) == 5
    assert all(0 <= c <= 1 for rgb in pal.values() for c in rgb)


def test_category_strip_bars_are_category_means_in_paper_order():
    t = _table()
    fig = plots.category_strip(t, ["ei"])
    ax = fig.axes[0]
    labels = [lab.get_text() for lab in ax.get_xticklabels()]
    assert labels == ["Reinit", "Architecture", "Dataset"]  # paper order, whatever the row order
    from matplotlib.collections import LineCollection

    segments = [seg for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments()]
    centres = [float(np.mean(seg[:, 0])) for seg in segments]
    means = [float(seg[0, 1]) for seg in segments]
    expected = t.groupby("category")["ei"].mean().reindex(["REINIT", "ARCH", "DATASET"]).to_numpy()
    np.testing.assert_allclose(centres, [0, 1, 2], atol=1e-9)  # one mean line per category, in place
    np.testing.assert_allclose(means, expected)


def test_category_strip_axis_spans_the_data_not_zero():
    """Shares near 0.8 that differ by a few points: the axis starts near them, so the differences show."""
    t = _table()
    t["share"] = 0.8 + 0.01 * np.arange(len(t))
    lo, hi = plots.category_strip(t, ["share"]).axes[0].get_ylim()
    assert lo > 0.7 and hi < 0.9, (lo, hi)


def test_category_strip_jitter_is_the_same_every_run_and_leaves_the_global_rng_alone():
    t = _table()

    def offsets():
        fig = plots.category_strip(t, ["ei"])
        return np.concatenate([c.get_offsets() for c in fig.axes[0].collections])

    np.random.seed(1)
    first = offsets()
    after_first = np.random.random()
    np.random.seed(2)  # another global state: the same points, and that state untouched
    second = offsets()
    assert np.array_equal(first, second)
    np.random.seed(1)
    assert np.random.random() == after_first


def test_pairwise_heatmap_draws_the_matrix_and_checks_shapes():
    m = np.arange(9.0).reshape(3, 3)
    fig = plots.pairwise_heatmap(m, ["a", "b", "c"], ["REINIT", "REINIT", "ARCH"])
    mesh = fig.axes[0].collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(3, 3), m)
    with pytest.raises(ValueError, match="square"):
        plots.pairwise_heatmap(np.ones((2, 3)), ["a", "b"], ["REINIT", "ARCH"])
    with pytest.raises(ValueError, match="names"):
        plots.pairwise_heatmap(np.ones((2, 2)), ["a"], ["REINIT", "ARCH"])


def test_gain_scatter_places_points_and_the_given_line():
    t = _table()
    fig = plots.gain_vs_inconsistency(t, x="ei", y="gain", fit={"slope": 2.0, "intercept": 1.0, "r": 0.5})
    ax = fig.axes[0]
    pts = np.vstack([c.get_offsets() for c in ax.collections])
    assert sorted(map(tuple, pts)) == sorted(zip(t["ei"], t["gain"], strict=True))
    (line,) = [ln for ln in ax.lines if ln.get_linestyle() == "--"]
    xs, ys = line.get_data()
    np.testing.assert_allclose(ys, 2.0 * xs + 1.0)
    assert "r = 0.50" in [txt.get_text() for txt in ax.get_legend().get_texts()][-1]


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['gain'\]"):
        plots.gain_vs_inconsistency(_table().drop(columns="gain"), x="ei")


def test_theta_histograms_one_step_line_per_outcome():
    edges = np.linspace(0, 90, 4)
    rows = [
        {"outcome": o, "bin_left": lo, "bin_right": hi, "count": 1, "fraction": 0.1 * k}
        for k, o in enumerate(["both_correct", "only_a", "only_b", "both_wrong"])
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    fig = plots.theta_histograms({"A vs B": pd.DataFrame(rows), "A vs C": pd.DataFrame(rows)})
    assert len(fig.axes) == 2
    labels = {ln.get_label() for ln in fig.axes[0].lines}
    assert {"only A correct", "only B correct", "both correct", "both wrong"} <= labels


def test_greedy_curves_follow_the_table():
    t = pd.DataFrame(
        {
            "start": ["h1"] * 3 + ["h2"] * 3,
            "step": [0, 1, 2] * 2,
            "accuracy": [0.8, 0.82, 0.83, 0.7, 0.75, 0.74],
            "added_category": ["none", "DATASET", "ARCH"] * 2,
        }
    )
    fig = plots.greedy_curves(t)
    lines = {ln.get_label(): ln for ln in fig.axes[0].lines}
    np.testing.assert_allclose(lines["h2"].get_ydata(), [0.7, 0.75, 0.74])
