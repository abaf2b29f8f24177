# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Error correlation (the paper's Sec. 4.1, Figs. 1 and 8)
#
# High-accuracy models are often said to make the same mistakes {cite}`mania2019model`. The
# paper asks whether that holds when the *training methodology* differs, and measures, for each
# model paired with the base model, the share of test examples where
#
# - both are correct, both are wrong, or
# - exactly one is correct: the **error inconsistency** (only-A + only-B).
#
# The paper's Fig. 1 shows error inconsistency rising as methodology diverges (Reinit, Hyper-parameters,
# Architecture, Framework, Dataset) among models of matched accuracy; its Fig. 8 adds the both-correct
# and both-wrong shares, which fall. Beyond the paper, this page shows the *all-pairs* matrix and
# Cohen's kappa error consistency {cite}`geirhos2020beyond`, which corrects the agreement of two
# models for what their accuracies alone would predict.

# %% tags=["remove-cell"]
# Google Colab (the launch button) opens this page alone: install the project when `import norep`
# fails (so a retry after a failed install tries again), then train the quick study once and run
# from the project's folder (norep.study.colab_setup). Anywhere else this cell does nothing.
import sys

if "google.colab" in sys.modules:
    try:
        import norep  # noqa: F401
    except ImportError:
        import subprocess

        subprocess.run(["git", "clone", "--depth", "1", "https://github.com/norep-companion/norep", "/content/norep"])
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", "/content/norep[book,zoo]"], check=True)
        sys.path.insert(0, "/content/norep/lib")
    from norep.study import colab_setup

    colab_setup("/content/norep")

# %% tags=["parameters"]
store = "stores/fashion"  # prediction store to analyse
base_model = None  # None: the store's base model
accuracy_band = None  # (lo, hi) accuracy fractions; None: the store's band
split = "test"  # evaluation split
calib_split = "calib"  # calibration split (not used for these measures; validated)
profile = "full"  # "student": lighter settings for a class (see Try it)
n_boot = 1000  # bootstrap resamples for confidence intervals
seed = 0  # seed of the bootstrap
fig_format = "png"  # inline figure format: png, svg or retina

# %%
import pandas as pd  # noqa: F401 (the exercise below)
from IPython.display import display

from norep import plots
from norep.paper import ch01_error_correlation as chapter
from norep.paper import report_claim
from norep.study import check_parameters, glue_figure, load_study

# %% [markdown]
# ## Parameters and data
#
# The parameters are checked first, with a clear message for any bad value; then the store is
# opened. The models outside the accuracy band on the calibration split are listed: the band's
# members are chosen there, never on test, and are the same in every chapter.

# %% tags=["hide-input"]
n_boot = check_parameters(n_boot=n_boot, seed=seed, fig_format=fig_format, profile=profile)
study = load_study(store, base_model=base_model, accuracy_band=accuracy_band, split=split, calib_split=calib_split)
t = chapter.tables(study, all_pairs=True)  # every number of this page, from norep.measures.metrics
pairs, base = t["pairs"], study.base
print(f"{len(pairs)} models in the band besides the base model {base}")

# %% [markdown]
# ## Pairs with the base model (the paper's Figs. 1 and 8)

# %%
display(
    pairs.round(4)
    .style.hide(axis="index")
    .format(precision=4)
    .set_caption(f"Outcomes of every band model paired with {base} on {split}")
)

# %%
fig = plots.category_strip(
    pairs,
    ["error_inconsistency", "both_correct", "both_wrong"],
    titles=["error inconsistency", "both correct", "both wrong"],
    ylabel="share of examples",
)
glue_figure("fig_01_outcomes", fig)

# %% [markdown]
# ```{glue:figure} fig_01_outcomes
# :name: fig-01-outcomes
#
# Re-makes the paper's Figs. 1 and 8: for each model in the accuracy band paired with the
# base model, the share of evaluation examples where exactly one is correct (error
# inconsistency), both are correct, and both are wrong; dots are models, lines category means (the
# y-axes span the data, not zero).
# ```

# %%
display(t["means"].round(4))

# %% [markdown]
# **Paper (claim C1).** Error inconsistency with ResNet-50 (Table 1): Reinit 0.085;
# Hyper-parameters 0.085-0.113; Architecture 0.103-0.147; Framework 0.125-0.128; Dataset
# 0.125-0.230. Both-correct and both-wrong shares shrink as methodology diverges.
#
# `c1_error_inconsistency` (in `norep.paper.ch01_error_correlation`, from the table above) tests it
# with the models as units: the mean error
# inconsistency of the Dataset partners minus that of the Reinit partners (models whose accuracy on
# the calibration split lies in the band), with a bootstrap that resamples models within categories
# and then test examples; the order of the categories in between and the both-correct and
# both-wrong shares decide between *reproduced* and *partly reproduced*. A store without two
# in-band Reinit and Dataset models cannot test the claim, and says so.

# %% tags=["remove-input"]
report_claim(chapter.c1_error_inconsistency(study, n_boot=n_boot, seed=seed, chapter_tables=t))

# %% [markdown]
# ## All pairs (beyond the paper)
#
# The paper compares every model with one base model. The full matrix shows whether the
# category structure holds between any two models: blocks along the diagonal are models of the
# same category.

# %%
names, cats, ei_matrix = t["names"], t["categories"], t["error_inconsistency_matrix"]
fig = plots.pairwise_heatmap(ei_matrix, names, cats, cbar_label="error inconsistency")
glue_figure("fig_01_allpairs", fig)

# %% [markdown]
# The same matrix to explore: hover a cell for the pair, their categories and their error
# inconsistency; drag to zoom into a block, double-click to zoom out.

# %%
heatmap = plots.pairs_heatmap(ei_matrix, names, cats, value_name="error inconsistency")
display(plots.interactive(heatmap, caption="Error inconsistency of every pair of band models (interactive)"))

# %% [markdown]
# ```{glue:figure} fig_01_allpairs
# :name: fig-01-allpairs
#
# Beyond the paper: error inconsistency of every pair of models in the accuracy band, rows and columns grouped by
# category (label colours) from Reinit to Dataset.
# ```

# %%
fig = plots.pairwise_heatmap(
    t["kappa_matrix"], names, cats, cbar_label="Cohen's kappa error consistency", cmap="rocket_r"
)
glue_figure("fig_01_kappa", fig)

# %% [markdown]
# ```{glue:figure} fig_01_kappa
# :name: fig-01-kappa
#
# Beyond the paper: Cohen's kappa error consistency (Geirhos et al., 2020) of every pair in the band: 1 when two
# models err on exactly the same examples, 0 when they agree only as often as two independent
# models of their accuracies would.
# ```

# %% [markdown]
# ## Try it
#
# - For a class: `-p profile=student` makes this chapter finish in under a minute on the quick
#   store (`norep zoo train --quick`) on 2 CPU cores, with at most 200 bootstrap resamples.
# - Re-run on another band: `norep notebooks run --store stores/fashion --only 01 -p "accuracy_band=(0.8, 0.95)"`.
# - Make another model the base: `-p base_model=NAME` (any name of the table above).
#
# **Exercise 1.** Error inconsistency can rise simply because a model is less accurate. Two models
# that err *independently*, with accuracies $p_A$ and $p_B$, disagree on a share
# $p_A (1 - p_B) + p_B (1 - p_A)$ of the examples. Compute it for every pair with the base model
# and compare it with the observed error inconsistency. Which column of the table corrects for
# accuracy without a band?
#
# <details>
# <summary>Solution</summary>
#
# ```python
# check = pairs[["name", "category", "error_inconsistency", "kappa"]].copy()
# pa, pb = pairs["both_correct"] + pairs["only_a"], pairs["both_correct"] + pairs["only_b"]  # accuracies
# check["independent"] = pa * (1 - pb) + pb * (1 - pa)
# print(check.round(4).to_string(index=False))
# ```
#
# Pairs of models err together far more often than independent models would: the observed error
# inconsistency lies well below the independent value, and it would rise with lower accuracies
# even without any change of methodology, which is why the paper holds accuracy in a narrow band.
# Cohen's kappa (`kappa`) compares the observed agreement with what independent models of the same
# accuracies would reach, so it is comparable across accuracies.
#
# </details>
#
# **Exercise 2.** In the all-pairs matrix, are two models of the same category closer (a lower
# error inconsistency) than two models of different categories?
#
# <details>
# <summary>Solution</summary>
#
# ```python
# m = pd.DataFrame(ei_matrix, index=names, columns=names)
# within, across = [], []
# for i in range(len(names)):
#     for j in range(i):
#         (within if cats[i] == cats[j] else across).append(m.iloc[i, j])
# print(f"within a category: {pd.Series(within, dtype=float).mean():.4f} over {len(within)} pairs")
# print(f"across categories: {pd.Series(across, dtype=float).mean():.4f} over {len(across)} pairs")
# ```
#
# On the stores of this book the pairs within a category usually disagree less than pairs across
# categories: the training methodology, not only the seed, sets which examples a model gets wrong.
# A store with one model per category has no pair within a category (the mean is `nan`).
#
# </details>
