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
# # Specialization (the paper's Secs. 4.3-4.4, Figs. 3 and 4)
#
# Why do divergent pairs ensemble better? The paper's answer: each model is *more confident*
# where it alone is right, so its vote prevails in the average. For every example it places the
# pair's confidences (each model's calibrated probability of its own top-1 class) in a plane
# and measures the angle
#
# $$\theta = \operatorname{atan2}(\mathrm{conf}_A, \mathrm{conf}_B)$$
#
# in degrees: 45° when both are equally confident, above 45° when A (the base model) is more
# confident. The paper's Fig. 3 shows histograms of $\theta$ split by who is correct, for a Reinit, an
# Architecture and a Dataset pair. The paper's Fig. 4 asks whether the specialization follows groups of
# classes: on ImageNet, CLIP is better on man-made objects and ResNet-50 on nature classes.

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
pair_models = None  # {"REINIT": name, "ARCH": name, "DATASET": name} in the figures; None: see below
# (None: the most accurate band model of each on the calibration split, closest in accuracy if none
# in the band)
class_groups = None  # {"group": [class ids]}; None: the store's class groups
bins = 18  # histogram bins over 0-90 degrees
profile = "full"  # "student": lighter settings for a class (see Try it)
n_boot = 1000  # bootstrap resamples for confidence intervals
seed = 0  # seed of the bootstrap
fig_format = "png"  # inline figure format: png, svg or retina

# %%
from IPython.display import display

from norep import plots
from norep.paper import ch03_specialization as chapter
from norep.paper import report_claim
from norep.study import check_parameters, glue_figure, load_study

# %% [markdown]
# ## Parameters and data
#
# The parameters are checked first, with a clear message for any bad value; then the store is
# opened and the chapter's tables computed (`norep.paper.ch03_specialization.tables`). The pairs
# shown in the figures are, per category, the partner most accurate on the calibration split
# inside the band (band on the calibration split, the same set in every chapter), unless
# `pair_models` names them.

# %% tags=["hide-input"]
n_boot = check_parameters(n_boot=n_boot, seed=seed, fig_format=fig_format, profile=profile)
study = load_study(store, base_model=base_model, accuracy_band=accuracy_band, split=split, calib_split=calib_split)
t = chapter.tables(study, pair_models=pair_models, class_groups=class_groups, bins=bins)
chosen, groups, base = t["chosen"], t["groups"], study.base
print(f"pairs shown: {chosen}; class groups: { {g: len(ids) for g, ids in groups.items()} }")
outside = [n for n in chosen.values() if n not in set(t["separation"]["name"])]
note = "lie outside the accuracy band; their comparison with the base mixes methodology with accuracy"
if outside:
    print(f"note: {outside} {note}")

# %% [markdown]
# ## The specialization angle by outcome (the paper's Fig. 3)

# %%
conf = chapter.confidence_pairs(study, chosen)
glue_figure("fig_03_confidence", plots.confidence_scatter(conf))

# %% [markdown]
# ```{glue:figure} fig_03_confidence
# :name: fig-03-confidence
#
# Re-makes the paper's Fig. 3 (upper left): confidence (top-1 probability) of the base model A
# against that of its partner B, on the test examples where exactly one of the two is right,
# coloured by which; $\theta$ is a dot's angle from the B axis, so dots above the diagonal
# ($\theta > 45°$) are examples where A is the more confident and wins the ensemble's vote.
# ```

# %%
no_pairs = plots.message_figure("no Reinit, Architecture or Dataset model besides the base") if not t["hists"] else None
fig = no_pairs or plots.theta_histograms(t["hists"], value="fraction")
glue_figure("fig_03_theta", fig)

# %% [markdown]
# ```{glue:figure} fig_03_theta
# :name: fig-03-theta
#
# Re-makes the paper's Fig. 3 (histograms): distribution of the specialization angle $\theta$ (A = base model) by
# outcome, for one pair per category, on the paper's population: the examples where at least one
# of the shown pairs has exactly one member correct (bars are shares of those examples). When only
# A is correct, mass above 45° means A is the more confident one and its vote wins in the
# ensemble; when only B is correct, mass below 45°.
# ```

# %%
display(t["separation_means"].round(2).to_frame("mean separation (deg)"))
sep = t["separation"]
display(sep[sep["name"].isin(list(chosen.values()))].round(2).style.hide(axis="index").format(precision=2))

# %% [markdown]
# **Paper (claim C4).** As methodology diverges, each model is more confident where only it is
# correct: the histograms separate by outcome, most for the Dataset pair (ResNet-50 vs CLIP-S),
# not at all for the Reinit pair. `c4_specialization_angle` (in `norep.paper.ch03_specialization`)
# summarises a pair by its separation (the tables above: category means over every in-band partner,
# then the pairs shown) and tests both halves over every in-band partner: Dataset pairs
# separate more than Reinit pairs (models within categories, then test examples, resampled), and
# the Reinit pairs' separation is absent: an equivalence test, its ratio to the Dataset pairs'
# separation inside a margin fixed in advance (a wide interval does not count as absent).

# %% tags=["remove-input"]
report_claim(chapter.c4_specialization_angle(study, n_boot=n_boot, seed=seed, chapter_tables=t))

# %% [markdown]
# ## Specialization by class (the paper's Fig. 4)

# %%
wins = t["class_wins"]
group_of = {int(c): g for c, g in zip(wins["class_id"], wins["group"], strict=True)}
ends = {"ARCH": "Architecture", "DATASET": "Dataset"}
panels = {f"{base} vs the {lab} partners": wins[wins["category"] == c] for c, lab in ends.items()}
panels = {k: v for k, v in panels.items() if len(v)}
if panels:
    fig = plots.per_class_bars(panels, value="d", group_of=group_of or None, ylabel="won: base minus partners")
else:
    fig = plots.message_figure("no in-band Architecture or Dataset partner, or no class groups")
glue_figure("fig_03_classes", fig)

# %% [markdown]
# ```{glue:figure} fig_03_classes
# :name: fig-03-classes
#
# Re-makes the paper's Fig. 4: who wins the disagreements, class by class. For each class, among the examples
# where exactly one model of a pair is right, the share the base wins minus the share the partner
# wins, $d_c = (\text{only base} - \text{only partner}) / (\text{only base} + \text{only partner})$,
# pooled over the in-band Architecture pairs (left) and the in-band Dataset pairs (right); bars are
# coloured by class group. This is the quantity claim C5 tests: group-structured specialization
# shows as bars of one sign within a group and the other sign in another.
# ```

# %%
by_class = chapter.class_theta_histograms(study, chosen, bins=bins)
glue_figure("fig_03_class_theta", plots.class_theta_heatmaps(by_class))

# %% [markdown]
# ```{glue:figure} fig_03_class_theta
# :name: fig-03-class-theta
#
# Re-makes the paper's Fig. 4: the angle $\theta$ of every test example where exactly one model of
# a pair is right, split by the example's class (rows), for the pairs of the histograms above;
# colour is the share of the pair's disagreements in that class and bin. Specialization that
# follows classes shows as rows whose mass lies on one side of 45°.
# ```

# %%
display(t["group_wins"].round(4).style.hide(axis="index").format(precision=4))

# %% [markdown]
# **Paper (claim C5).** Dataset pairs specialise along groups of classes (CLIP-S better on
# anthropogenic ImageNet classes, ids ~500-900; ResNet-50 on nature, ids ~0-300); Architecture
# pairs specialise without class structure. `c5_class_groups` measures, per class (the bars above),
# who wins the examples where exactly one model is right (so the measure is normalised by the
# pair's error inconsistency). The direction (which group each category's partners win on) is fixed
# on the calibration split; on test, the Dataset pairs' group structure in that direction must
# exceed the Architecture pairs' (the Dataset-minus-Architecture interval), and the Architecture pairs
# are "without structure" only by an equivalence test with a margin fixed in advance. A permutation
# test that moves classes between groups is shown as a description.

# %% tags=["remove-input"]
report_claim(chapter.c5_class_groups(study, class_groups=class_groups, n_boot=n_boot, seed=seed, chapter_tables=t))

# %% [markdown]
# ## Try it
#
# - For a class: `-p profile=student` makes this chapter finish in under a minute on the quick
#   store (`norep zoo train --quick`) on 2 CPU cores, with at most 200 bootstrap resamples.
# - Choose the pairs yourself: `-p "pair_models={'REINIT': 'NAME1', 'DATASET': 'NAME2'}"`.
# - Define your own class groups, e.g. for Fashion-MNIST
#   `-p "class_groups={'tops': [0, 2, 4, 6], 'rest': [1, 3, 5, 7, 8, 9]}"`.
#
# **Exercise.** If two models were equally confident on every example, all the mass of the
# histograms would lie at $\theta = 45°$ and the ensemble would toss a coin where they disagree.
# For each pair shown, on the examples where only A (the base) is right, how often is A the more
# confident one, and on those where only B is right?
#
# <details>
# <summary>Solution</summary>
#
# ```python
# conf["a_more_confident"] = conf["conf_a"] > conf["conf_b"]
# print(conf.groupby(["pair", "outcome"])["a_more_confident"].mean().unstack().round(3))
# ```
#
# Where only A is right, a share above one half means A usually wins the vote of the averaged
# probabilities; where only B is right, a share below one half means B usually does. The further
# both shares are from one half, the more the two models specialise, and the higher the
# ensemble's conversion rate (the previous chapter).
#
# </details>
