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
# # Ensembles of differently trained models (the paper's Sec. 4.2, Fig. 2)
#
# If two models err on different examples, averaging their calibrated probabilities can fix
# the examples where only one of them is right. The paper's Fig. 2 plots, for each model paired
# with the base model, the ensemble's **gain** over the two members' mean accuracy against their
# error inconsistency (left), the ensemble's absolute accuracy (center), and the **conversion
# rate**: of the examples where exactly one member is correct, the share the ensemble gets right
# (right). Ensembles are equal-weight means of temperature-scaled probabilities (Sec. 3.2); the
# classic view that ensembles help by averaging out uncorrelated errors goes back to
# stacked generalization {cite}`wolpert1992stacked`.

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
calib_split = "calib"  # split the temperatures were fitted on
profile = "full"  # "student": lighter settings for a class (see Try it)
n_boot = 1000  # bootstrap resamples for confidence intervals
seed = 0  # seed of the bootstrap
fig_format = "png"  # inline figure format: png, svg or retina

# %%
from IPython.display import display

from norep import plots
from norep.measures import ensembles  # noqa: F401 (ensembles: Try it)
from norep.paper import ch02_ensembles as chapter
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
t = chapter.tables(study, all_pairs=True)  # every number of this page, from norep.measures
ens, base, y = t["pairs"], study.base, study.labels()

# %% [markdown]
# ## Each band model ensembled with the base model

# %%
cols = ["name", "category", "accuracy", "ensemble_accuracy", "gain", "error_inconsistency", "conversion_rate"]
display(
    ens[cols]
    .round(4)
    .style.hide(axis="index")
    .format(precision=4)
    .set_caption(f"Pairs with {base} (accuracy {t['base_accuracy']:.4f}) on {split}")
)

# %%
stars = dict(means=chapter.category_means(ens, ["error_inconsistency", "gain"]))
fig = plots.gain_vs_inconsistency(ens, fit=t["fit"], **stars)  # the slope: a description, not C2's test
glue_figure("fig_02_gain", fig)

# %% [markdown]
# ```{glue:figure} fig_02_gain
# :name: fig-02-gain
#
# Re-makes the paper's Fig. 2 (left): gain of the two-model ensemble over its members' mean accuracy
# against the pair's error inconsistency, one point per model paired with the base model, with
# the least-squares line and its Pearson correlation (a description: claim C2 below reports the
# slope but is decided on absolute ensemble accuracy, the next figure); stars are the category means.
# ```

# %%
stars = dict(means=chapter.category_means(ens, ["error_inconsistency", "ensemble_accuracy"]), label=None)
fig = plots.gain_vs_inconsistency(ens, y="ensemble_accuracy", ylabel="ensemble accuracy with the base", **stars)
fig.axes[0].axhline(t["base_accuracy"], color="black", ls=":", lw=1)
glue_figure("fig_02_centre", fig)

# %% [markdown]
# ```{glue:figure} fig_02_centre
# :name: fig-02-centre
#
# Re-makes the paper's Fig. 2 (centre): accuracy of each model's ensemble with the base model
# against the pair's error inconsistency (dots: models, stars: category means; dotted line: the
# base model alone). With members held to one accuracy band, a larger error inconsistency is an
# absolute gain.
# ```

# %%
fig = plots.category_strip(
    ens, ["ensemble_accuracy", "conversion_rate"], titles=["ensemble accuracy with the base", "conversion rate"]
)
fig.axes[0].axhline(t["base_accuracy"], color="black", ls="--", lw=1)
glue_figure("fig_02_accuracy", fig)

# %% [markdown]
# ```{glue:figure} fig_02_accuracy
# :name: fig-02-accuracy
#
# Re-makes the paper's Fig. 2 (right), by category: the accuracy of each model's ensemble with the
# base model (dashed line: the base model alone; the y-axis spans the data) and the conversion
# rate; dots are models, lines category means.
# ```

# %% [markdown]
# **Paper (claim C2).** The gain over the members' mean accuracy grows linearly with error
# inconsistency; with members held to a narrow band this is an absolute gain: ResNet-50 (76.5 %)
# with ALIGN zero-shot (75.5 %) reaches 83.4 % top-1, about +7 points.

# %% [markdown]
# `c2_ensemble_gain` (in `norep.paper.ch02_ensembles`) decides on what a zoo without the paper's
# effect cannot fake: the mean accuracy of the ensembles with the base, Dataset partners minus Reinit
# partners, compared at a common partner accuracy (a partner higher in the band makes a better
# ensemble whatever its category; the centre figure; models within categories, then test examples,
# resampled), and where
# the best pair comes from (the partner whose ensemble with the base is the most accurate on the
# *calibration* split: a Dataset partner, beating its better member on test). The slope of the line
# above is only described: the gain is about error inconsistency × (conversion rate − ½), so any
# calibrated zoo has a positive slope.

# %% tags=["remove-input"]
report_claim(chapter.c2_ensemble_gain(study, n_boot=n_boot, seed=seed, chapter_tables=t))

# %% [markdown]
# **Paper (claim C3).** The conversion rate also grows as methodology diverges (the paper's Fig. 2 right; no
# number is given). `c3_conversion_rate` compares the Dataset and Reinit partners of the table
# above, resampling models within categories, then test examples.

# %% tags=["remove-input"]
report_claim(chapter.c3_conversion_rate(study, n_boot=n_boot, seed=seed, chapter_tables=t))

# %% [markdown]
# ## All pairs (beyond the paper)
#
# Every pair of band models, not only pairs with the base: does the linear relation between
# gain and error inconsistency hold between any two models?

# %%
fig = plots.gain_vs_inconsistency(
    t["allpairs"], fit=t["allpairs_fit"], label=None, xlabel="error inconsistency of the pair"
)
glue_figure("fig_02_allpairs", fig)

# %% [markdown]
# ```{glue:figure} fig_02_allpairs
# :name: fig-02-allpairs
#
# Ensemble gain against error inconsistency for every pair of band models; a pair is coloured by
# the more divergent category of its two members.
# ```

# %% [markdown]
# ## Try it
#
# - For a class: `-p profile=student` makes this chapter finish in under a minute on the quick
#   store (`norep zoo train --quick`) on 2 CPU cores, with at most 200 bootstrap resamples.
# - Take the best partner found above as the new base model (`-p base_model=NAME`): is the
#   ranking of partners the same?
# - Drop temperature scaling to see why the paper calibrates first: compare
#   `ensembles.ensemble_accuracy(y, [study.probs(base, calibrated=False), study.probs(name, calibrated=False)])`
#   with the calibrated value for a Framework or Dataset model.
#
# **Exercise 1.** The gain is measured over the members' *mean* accuracy. Rank the pairs by gain
# and by ensemble accuracy: do the two rankings agree, and why could they differ?
#
# <details>
# <summary>Solution</summary>
#
# ```python
# cols = ["name", "category", "accuracy", "gain", "ensemble_accuracy"]
# print(ens[cols].sort_values("gain", ascending=False).round(4).to_string(index=False))
# rho = ens["gain"].corr(ens["ensemble_accuracy"], method="spearman")
# print(f"Spearman correlation of gain and ensemble accuracy: {rho:.3f}")
# ```
#
# The gain is relative: a weak partner lowers the members' mean, so a large gain may only bring
# the ensemble back near the base model. Within a narrow accuracy band the mean is nearly fixed,
# so gain and ensemble accuracy rank pairs much the same way (a correlation near 1); the fewer
# the pairs, the more a single pair can move it.
#
# </details>
#
# **Exercise 2.** The paper calibrates every model before ensembling. How much does the ensemble
# accuracy of each pair change without temperature scaling?
#
# <details>
# <summary>Solution</summary>
#
# ```python
# for name, cal in zip(ens["name"], ens["ensemble_accuracy"]):
#     raw = ensembles.ensemble_accuracy(
#         y, [study.probs(base, calibrated=False), study.probs(name, calibrated=False)]
#     )
#     print(f"{base} + {name}: calibrated {cal:.4f}, uncalibrated {raw:.4f}, difference {cal - raw:+.4f}")
# ```
#
# Averaging probabilities lets the more confident model win each disagreement. An over-confident
# model (a temperature far from 1) wins too often, whether or not it is right; after scaling,
# confidence tracks accuracy and the vote goes more often to the model that is right. The
# difference is small where both models were already calibrated.
#
# </details>
