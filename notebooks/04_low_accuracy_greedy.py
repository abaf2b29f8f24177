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
# # Low-accuracy models can improve high-accuracy ones (the paper's Sec. 4.5, Fig. 5)
#
# Bagging-style ensembles of deep networks trained on subsets of the data rarely beat one network
# trained on all of it {cite}`nixon2020bootstrapped`, which suggests that low-accuracy models are
# of little use. The paper tests this with models trained *differently*: starting from a
# high-accuracy model, it greedily adds, one at a time, the low-accuracy model that most raises
# the ensemble's accuracy, and finds that the ensemble keeps improving and that the best first
# addition is one whose training methodology complements the start's.
#
# Selection uses the calibration split only; accuracies are reported on the evaluation split,
# so the choice cannot overfit the numbers shown.

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
base_model = None  # None: the store's base model (reported for reference)
accuracy_band = None  # (lo, hi) accuracy fractions; None: the store's band
split = "test"  # evaluation split
calib_split = "calib"  # selection split of the greedy procedure
starts = None  # start models; None: the six most accurate above the band on the calibration split
steps = 3  # most low-accuracy models to add (the length is chosen on the calibration split)
profile = "full"  # "student": lighter settings for a class (see Try it)
n_boot = 1000  # bootstrap resamples for confidence intervals
seed = 0  # seed of the bootstrap
fig_format = "png"  # inline figure format: png, svg or retina

# %%
import pandas as pd  # noqa: F401 (the exercise)
from IPython.display import display

from norep import plots
from norep.paper import ch04_greedy as chapter
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
t = chapter.tables(study, starts=starts, steps=steps)
results = {s: r["result"] for s, r in t["runs"].items()}
start_names = list(results) or "none (no model above the band has a pool by the error-rate rule; set starts)"
print(
    f"starts: {start_names}; pool rule: candidates with at least {chapter.LOW_ACCURACY_ERROR_RATIO}x the start's "
    f"error on {calib_split}; the best candidate of any pool has {100 * t['pool_top']:.1f} % on {calib_split}"
)

# %% [markdown]
# ## Greedy ensembles (the paper's Fig. 5)

# %%
fig = plots.greedy_curves(t["curves"]) if results else plots.message_figure("no start above the band with a pool")
glue_figure("fig_04_greedy", fig)

# %% [markdown]
# ```{glue:figure} fig_04_greedy
# :name: fig-04-greedy
#
# Re-makes the paper's Fig. 5 (left): evaluation accuracy of ensembles grown greedily (on the calibration
# split) from each start model (star) by adding only low-accuracy models (at least 1.25 times the
# start's error rate on the calibration split); markers give the category of each added model.
# ```

# %%
display(
    t["summary"]
    .round(4)
    .style.hide(axis="index")
    .format(precision=4)
    .set_caption("Re-makes the paper's Fig. 5 (right): the first model added to each start, and the gain C6 averages")
)

# %% [markdown]
# **Paper (claim C6).** ResNet-50 (76.2 %) + CLIP-S zero-shot (63.3 %) reaches 77.7 %; BiT-1k
# (82.85 %) with only models below 77.44 % reaches 86.66 %; the same holds from CLIP-L, ALIGN
# and EfficientNet-B3, and the best first addition complements the start's training methodology.
# `c6_low_accuracy_greedy` (in `norep.paper.ch04_greedy`, from the table above) takes the starts above
# the band, a pool fixed in advance by a rule on the error rate (a candidate errs at least 1.25 times
# as often as the start, on the calibration split) and the ensemble length with the best
# calibration-split accuracy (at least one addition). The mean test gain over starts is reported with
# an interval over test examples (the starts share their pools, so they are not independent units);
# ensembles of calibrated, diverse models gain whatever their categories, so the gain alone decides
# nothing. The claim is decided on methodology: the start with its best other-category candidate
# minus with its best same-category one (both chosen on the calibration split), compared at a common
# candidate accuracy, against a null that permutes the candidates' category labels among candidates
# of similar accuracy (a category that is merely more accurate makes no effect).

# %% tags=["remove-input"]
report_claim(
    chapter.c6_low_accuracy_greedy(study, starts=starts, steps=steps, n_boot=n_boot, seed=seed, chapter_tables=t)
)

# %% [markdown]
# ## Try it
#
# - For a class: `-p profile=student` makes this chapter finish in under a minute on the quick
#   store (`norep zoo train --quick`) on 2 CPU cores, with at most 200 bootstrap resamples.
# - Grow longer ensembles: `-p steps=8`. Does accuracy keep rising on the evaluation split?
# - Start from the base model instead: `-p starts=base` (use your base model's name).
#
# **Exercise.** The greedy procedure chooses its members on the calibration split. For each start,
# compare the gain over the start model that the chosen ensemble shows on the split that chose it
# with its gain on the evaluation split. Why compare gains, not accuracies?
#
# <details>
# <summary>Solution</summary>
#
# ```python
# rows = []
# for s in start_names:
#     r = results[s]
#     sel, ev = r.accuracies, r.eval_accuracies
#     rows.append({"start": s, "gain on selection": sel[-1] - sel[0], "gain on evaluation": ev[-1] - ev[0]})
# gains = pd.DataFrame(rows)
# print(gains.round(4).to_string(index=False))
# print("mean over starts:", gains[["gain on selection", "gain on evaluation"]].mean().round(4).to_dict())
# ```
#
# The two splits differ in difficulty, so their raw accuracies are not comparable (the evaluation
# split may be easier at every step); the gain over the same start model on the same split is. An
# ensemble chosen as the best of many candidates on one split looks better there than it is (a
# winner's curse): its gain on the selection split is biased upwards, and only the evaluation
# split, which played no part in the choice, measures it fairly. On a small store the bias is
# small next to the noise of a single start, and one start may even gain more on evaluation; it
# shows in the mean over starts, and grows with the number of candidates and steps.
#
# </details>
