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
# # The model zoo
#
# The paper studies 82 ImageNet models, grouped by how far their training methodology diverges from
# a typical base model (ResNet-50): **Reinit** (same recipe, another seed), **Hyper-parameters**,
# **Architecture**, **Framework** (e.g. contrastive or semi-supervised learning) and **Dataset**
# (trained on other data, e.g. CLIP on WIT or ALIGN on a web corpus) {cite}`gontijolopes2022norep`.
# Its Tables 1-4 list every model with its category, temperature, accuracy, error
# inconsistency with the base model and the accuracy of its ensemble with the base model.
#
# This page builds the same table for the store at hand (by default the small embedded study
# trained on Fashion-MNIST by `norep zoo train`) and checks the paper's first methodological step:
# every model is calibrated by temperature scaling {cite}`guo2017calibration` before any
# ensembling (Sec. 3.2).

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
accuracy_band = None  # (lo, hi) accuracy fractions of the main analyses; None: the store's band
split = "test"  # evaluation split
calib_split = "calib"  # selection split: temperatures, the band's members and every choice
profile = "full"  # "student": lighter settings for a class (see Try it)
n_boot = 1000  # bootstrap resamples for confidence intervals
seed = 0  # seed of the bootstrap
fig_format = "png"  # inline figure format: png, svg or retina

# %%
from IPython.display import display

from norep import plots
from norep.paper import ch00_zoo as chapter
from norep.paper import data_effect, report_claim
from norep.study import check_parameters, glue_figure, load_study

# %% [markdown]
# ## Parameters and data
#
# The parameters are checked first, with a clear message for any bad value; then the store is
# opened. The models outside the accuracy band on the calibration split are listed: the band's
# members are chosen there, once, and every chapter and claim uses that same set.

# %% tags=["hide-input"]
n_boot = check_parameters(n_boot=n_boot, seed=seed, fig_format=fig_format, profile=profile)
study = load_study(store, base_model=base_model, accuracy_band=accuracy_band, split=split, calib_split=calib_split)
st, base = study.store, study.base

# %% [markdown]
# ## How the embedded zoo is designed
#
# The paper's categories differ in *what* changes between a model and its base. The embedded
# study (`norep zoo train --preset fashion`) keeps each category to that one change:
#
# - **Reinit**: the base recipe with another seed (another initialisation and batch order).
# - **Hyper-parameters**: the base network and recipe with *one* training setting changed (learning
#   rate, weight decay, label smoothing, dropout, batch size, shift augmentation, optimiser, number
#   of epochs).
# - **Architecture**: the base recipe with another network (MLPs, LeNet, wider, deeper or globally
#   pooled CNNs, a VGG-style CNN).
# - **Framework**: the same Fashion-MNIST training images, another objective: distillation from a
#   longer-trained teacher, and four self-supervised objectives (SimCLR-style contrast, denoising
#   reconstruction, masked-patch reconstruction, rotation prediction) that learn a frozen encoder
#   without labels, read out by a linear head fitted on the labelled images (like the paper's
#   SimCLR and linear-probe rows).
# - **Dataset**: an encoder that never saw a Fashion-MNIST image or label, learned on a corpus of
#   other data that ships with the software (procedural shapes, letters rendered with Pillow's font,
#   crops of scikit-learn's two sample photographs), larger than the base's training set (each image
#   seen once), adapted by a linear head only, as CLIP, ALIGN and BiT keep their representation and
#   reach ImageNet with a linear or zero-shot head. Every Dataset model has a **Framework twin**: the
#   same encoder, objective, initial weights, head and optimiser steps on the training images, so a
#   twin pair differs by its data only (see the data effect below).
# - **Controls** (no category): an untrained, random encoder with a linear head and scikit-learn's
#   non-neural learners (logistic regression, k-nearest neighbours, random forest, naive Bayes). They
#   are no training method of the paper's: they are shown as reference points, on a row of their own,
#   and never enter a category's statistics.
#
# **Where the base and the band are.** The paper's band (74-78 %) sits around its base (ResNet-50,
# 76 %) and well below its best models, so that models of every category can reach it. Here the base
# is a small two-convolution CNN trained for a few epochs on a subset of the training images, which
# puts it where a linear head on a frozen encoder learned elsewhere can also arrive; the band is the
# base's accuracy plus or minus a half-width fixed in the preset before any verdict was computed (2
# points: the paper's band is 4 points wide). Its members are chosen on `calib`, with the band
# centred on the base's `calib` accuracy, so that the test split chooses nothing; every chapter and
# every claim uses that one set. Models trained longer or with bigger networks land above it (the
# high-accuracy models of Sec. 4.5); deliberately weak variants of every category but Reinit (a tiny
# learning rate or a huge batch, a 32-unit MLP, globally pooled readouts of frozen
# encoders) land below it, the low-accuracy pool. Reinit has no low-accuracy member: another seed of
# the base recipe reaches the base's accuracy, and a recipe that does not would be a
# Hyper-parameters model.
#
# **Splits.** Temperatures are fitted, and models are selected, on `calib`, and every number is
# reported on `test`; both are halves of the official test set, so selection sees the evaluation
# distribution. The multi-label transfer task of Sec. 4.7 uses other labels than the upstream
# classes (see {doc}`06_voc_transfer`). The cell below prints these facts for the store at hand.

# %% tags=["hide-input"]
t = chapter.tables(study)
print("\n".join(chapter.design(study)))
display(t["tiers"])

# %% [markdown]
# ## The table of models (paper Tables 1-4)
#
# Error inconsistency is the share of test examples where exactly one of the two models is
# correct (Sec. 4.1); the ensemble is the mean of the two calibrated probability vectors
# (Sec. 4.2). The `tier` column places each model relative to the accuracy band on the calibration
# split: `band` models are the ones the main analyses compare (the paper's 74-78 % ImageNet band),
# `high` and `low` models serve the greedy-ensemble section. Click a column's header to sort by it,
# and a model's name for its method, head, temperature and calibration errors. The second table holds
# the controls, which no category's statistics include.

# %% tags=["hide-input"]
zoo = t["zoo"]
formats = dict.fromkeys(["accuracy_calib", "accuracy_test", "error_inconsistency", "ensemble"], ".4f")
compact = chapter.compact_table(zoo, split=split, calib_split=calib_split)
details = [c for c in compact.columns if c not in chapter.COMPACT_COLUMNS]
display(plots.model_table(compact, chapter.COMPACT_COLUMNS, details=details, formats=formats))
display(plots.model_table(chapter.compact_table(t["controls"]), chapter.COMPACT_COLUMNS, formats=formats, height=200))

# %%
fig = plots.category_strip(zoo, [f"{calib_split}_accuracy"], titles=["accuracy of every model"], ylabel="accuracy")
fig.axes[0].axhspan(*t["band"], color="grey", alpha=0.15, zorder=0)
glue_figure("fig_00_accuracy", fig)

# %% [markdown]
# ```{glue:figure} fig_00_accuracy
# :name: fig-00-accuracy
#
# Accuracy of every model of the store on the calibration split, where the accuracy band's members
# are chosen, by category (dots: models; bars: category means). The grey band is the accuracy band
# on that split: the models inside it (tier `band`) are the ones every chapter and claim compares.
# ```

# %% [markdown]
# ## Calibration by temperature scaling (Sec. 3.2)
#
# Each model's logits are divided by a temperature $T$ fitted by minimising the negative
# log-likelihood on the calibration split, which is disjoint from the evaluation split. The
# expected calibration error (ECE, 15 bins) on the evaluation split, before and after:

# %%
fig = plots.calibration_dots(zoo)
glue_figure("fig_00_calibration", fig)

# %% [markdown]
# ```{glue:figure} fig_00_calibration
# :name: fig-00-calibration
#
# Expected calibration error of every model on the evaluation split with the raw logits
# ($T = 1$, open circles) and after temperature scaling with the temperature fitted on the calibration
# split (dots), models sorted by the error before scaling.
# ```

# %% [markdown]
# **Paper (claim C10).** Every model is calibrated with temperature scaling before
# ensembling; the fitted temperatures in Tables 1-3 range from 0.01 (zero-shot CLIP/ALIGN heads,
# whose logits are scaled cosine similarities) to 1.70.

# %% [markdown]
# This is a step of the paper's method, not a finding: the check below (`c10_temperature_scaling` of
# `norep.paper.ch00_zoo`, read from the table above) confirms that every model carries a temperature
# fitted on the calibration split and that scaling lowers the expected calibration error on the
# evaluation split, on average over models (the interval resamples models).

# %% tags=["remove-input"]
report_claim(chapter.c10_temperature_scaling(study, n_boot=n_boot, seed=seed, chapter_tables=t))

# %% [markdown]
# ## Beyond the paper: how much of the Dataset effect is the data?
#
# The paper's Dataset models differ from its base in their data *and* in how they reach the task: a
# representation learned elsewhere, kept, and read by a new head. Its Dataset effect (Sec. 4.1: they
# disagree with the base most) mixes the two, and no peer separates them. Here every Dataset model has
# a Framework twin that differs by its data only. For each twin pair with both members in the band
# (chosen on `calib`), the error inconsistency with the base of the Dataset model minus its twin's is
# the data's part; compared with the gap between the Dataset models and the Reinit models, it gives
# the share of the Dataset effect that is data. The pairs are the units: the interval resamples them
# (and the Reinit models), then the test examples.

# %% tags=["hide-input"]
de_t = data_effect.tables(study)
reinit_mean = de_t["reinit"]["ei"].mean() if len(de_t["reinit"]) else None
glue_figure("fig_00_twins", plots.twin_pairs_plot(de_t["pairs"], reinit=reinit_mean))
shown = ["dataset_model", "twin", "ei_dataset", "ei_twin", "ei_difference", "ens_difference"]
display(de_t["pairs"][shown].style.hide(axis="index").format(precision=4))

# %% [markdown]
# ```{glue:figure} fig_00_twins
# :name: fig-00-twins
#
# Each in-band Dataset model (right) beside its Framework twin (left): the same encoder, objective,
# head and optimiser steps, pretrained on other data or on the training images. Lines join the pairs;
# the y-axis is the error inconsistency with the base on the evaluation split; the dashed line is the
# mean of the in-band Reinit models. Lines that rise are pairs where the data adds disagreement.
# ```

# %% tags=["remove-input"]
data_effect.report_data_effect(data_effect.data_effect(study, n_boot=n_boot, seed=seed, chapter_tables=de_t))

# %% [markdown]
# ## Try it
#
# - For a class: `-p profile=student` makes this chapter finish in under a minute on the quick
#   store (`norep zoo train --quick`) on 2 CPU cores, with at most 200 bootstrap resamples.
# - Point `store` at your own store (see {doc}`../store`) and run
#   `norep notebooks run --store PATH --only 00`.
# - Narrow or widen the band, e.g. `-p "accuracy_band=(0.85, 0.95)"`, and watch models move
#   between tiers.
#
# **Exercise 1.** Which three models are worst calibrated before temperature scaling, and are their
# fitted temperatures above or below 1? What does a temperature above 1 say about the raw logits?
#
# <details>
# <summary>Solution</summary>
#
# ```python
# print(zoo.sort_values("ece_before").tail(3)[["name", "temperature", "ece_before", "ece_after"]])
# ```
#
# A temperature above 1 flattens the softmax: the raw model was *over*-confident; below 1 it
# sharpens it (under-confident logits, typical of zero-shot heads built from cosine similarities).
#
# </details>
#
# **Exercise 2.** Does the accuracy of a model change with its temperature? Count the test examples
# where the base model's top-1 prediction changes after scaling.
#
# <details>
# <summary>Solution</summary>
#
# ```python
# changed = (st.predictions(base, split) != study.probs(base).argmax(1)).sum()
# print(f"{changed} of {st.n_examples(split)} predictions change")
# ```
#
# None do: dividing logits by a positive constant keeps their order, so the top-1 prediction and the
# accuracy are unchanged; only the confidences (and so ensembles of several models) change.
#
# </details>
#
# **Exercise 3.** How much more do the in-band models of each category disagree with the base than
# the Reinit models do, and where do the controls fall?
#
# <details>
# <summary>Solution</summary>
#
# ```python
# band = zoo[zoo["in_band"] & (zoo["name"] != base)]
# print(band.groupby("category")["error_inconsistency"].agg(["mean", "count"]).round(4))
# print(t["controls"][["name", "tier", "error_inconsistency"]].round(4))
# ```
#
# The means grow from Reinit towards Dataset (the paper's Fig. 2, left; chapter 01 tests it). The
# controls, which learn nothing or learn no representation, sit apart: they show how far from the
# base a model can fall without being a training method of the paper's.
#
# </details>
