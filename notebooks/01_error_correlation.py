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
# # Error correlation (Sec. 4.1, Figs. 1 and 8)
#
# High-accuracy models are often said to make the same mistakes {cite}`mania2019model`. The
# paper asks whether that holds when the *training methodology* differs, and measures, for each
# model paired with the base model, the share of test examples where
#
# - both are correct, both are wrong, or
# - exactly one is correct: the **error inconsistency** (only-A + only-B).
#
# Its Fig. 1 shows error inconsistency rising as methodology diverges (Reinit, Hyper-parameters,
# Architecture, Framework, Dataset) among models of matched accuracy; Fig. 8 adds the both-correct
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
# ## Pairs with the base model (Figs. 1 and 8)

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
# Analogue of the paper's Figs. 1 and 8: for each model in the accuracy band paired with the
# base model, the share of evaluation examples where exactly one is correct (error
# inconsistency), both are correct, and both are wrong; dots are models, bars category means.
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
# Error inconsistency of every pair of models in the accuracy band, rows and columns grouped by
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
# Cohen's kappa error consistency (Geirhos et al., 2020) of every pair in the band: 1 when two
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
# **Exercise 1.** Error inconsistency can rise simply because a model is less accurate. Why does
# the paper restrict the comparison to a narrow accuracy band, and which column of the table
# above corrects for accuracy without a band?
#
# <details>
# <summary>Solution</summary>
#
# Two models at 60 % accuracy disagree on more examples than two at 95 % even if both make
# independent errors, so comparing pairs of different accuracies would confound accuracy with
# methodology. The band holds accuracy roughly fixed. Cohen's kappa (`kappa`) compares the
# observed agreement with what independent models of the same accuracies would reach, so it is
# comparable across accuracies.
#
# </details>
#
# **Exercise 2.** In the all-pairs matrix, are two Dataset-category models closer to each other
# than to the base model?
#
# <details>
# <summary>Solution</summary>
#
# Read the Dataset block on the diagonal of the first matrix against the Dataset columns of the
# base model's row: `pd.DataFrame(ei_matrix, index=names, columns=names)`. In the embedded study
# Dataset models trained on the same other data often agree more with each other than with the
# base, i.e. the training data, not only the seed, sets the errors.
#
# </details>
