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
# # Downstream transfer (the paper's Sec. 4.7, Fig. 7)
#
# Does the best upstream model give the best features for a new task? Kornblith et al.
# {cite}`kornblith2019better` found ImageNet accuracy to predict transfer accuracy well. The
# paper revisits this on PASCAL VOC 2007 {cite}`everingham2010pascal` multi-label classification,
# with a one-vs-rest logistic-regression probe on frozen embeddings scored by the VOC 2007
# 11-point interpolated mean average precision (mAP), and then probes the concatenation of two
# models' full embeddings (stacked generalization {cite}`wolpert1992stacked`).
#
# In the embedded study the downstream task is a multi-label problem whose labels are not the
# upstream classes: canvases of one to four of scikit-learn's handwritten digits, labelled with the
# digits present (splits `down_train`, `down_val`, `down_test`, built from disjoint pools of digit
# images that no zoo model trained on). A probe must therefore find digit shapes in an embedding
# learned for clothing (or for other data), not re-read the upstream classifier. At paper scale
# the task is VOC 2007 extracted with `norep extract`.

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
accuracy_band = None  # (lo, hi) accuracy fractions; None: the store's band (not used to filter here)
split = "test"  # upstream evaluation split (for upstream accuracy)
calib_split = "calib"  # upstream calibration split (validated)
down_splits = ["down_train", "down_val", "down_test"]  # downstream train / validation / test splits
probe_Cs = [0.1, 1.0, 10.0]  # regularisation sweep of the multi-label probe
probe_refit = "train"  # final probe fitted on "train" or "train+val" (Kornblith et al.; slower)
top_k = 4  # concatenate every pair among the top_k models by downstream validation mAP
max_per_category = 2  # figure-only partners per middle category; all Reinit, Dataset partners tested
device = "auto"  # torch device of the probes: "auto" (a GPU when present, else the CPU), "cpu", "cuda"
threads = 1  # CPU threads of the probes (small probes run fastest on one); None: the libraries' default
profile = "full"  # "student": lighter settings for a class (see Try it)
n_boot = 1000  # bootstrap resamples for confidence intervals
seed = 0  # seed of the bootstrap
fig_format = "png"  # inline figure format: png, svg or retina

# %%
from IPython.display import display

from norep import plots
from norep.measures import transfer  # noqa: F401 (transfer: the exercise)
from norep.paper import ch06_transfer as chapter
from norep.paper import report_claim
from norep.study import check_parameters, glue_figure, limit_threads, load_study

# %% [markdown]
# ## Parameters and data
#
# The parameters are checked first, with a clear message for any bad value; then the store is
# opened. The models outside the accuracy band on the calibration split are listed: the band's
# members are chosen there, never on test, and are the same in every chapter.

# %% tags=["hide-input"]
n_boot, probe_Cs, top_k = check_parameters(
    n_boot=n_boot, seed=seed, fig_format=fig_format, profile=profile, probe_Cs=probe_Cs, top_k=top_k
)
limit_threads(threads)
where = dict(base_model=base_model, accuracy_band=accuracy_band, split=split, calib_split=calib_split)
study = load_study(store, **where, require_embeddings=list(down_splits))
probe_kw = dict(down_splits=tuple(down_splits), probe_Cs=tuple(probe_Cs), probe_refit=probe_refit, device=device)
probe_kw["max_per_category"] = max_per_category
t = chapter.tables(study, **probe_kw, top_k=top_k)  # every probe, shared with C9

# %% [markdown]
# ## One probe per model (the paper's Fig. 7 left)


# %%
singles, (tr, va, te) = t["singles"], down_splits
Y, scores = {s: study.store.labels(s) for s in down_splits}, {n: s["scores"] for n, s in t["probes"]["singles"].items()}
display(singles.sort_values("downstream_map", ascending=False).round(4).style.hide(axis="index").format(precision=4))
labels = dict(xlabel=f"upstream accuracy ({calib_split})", ylabel="downstream mAP (11-point, test)")
fig = plots.gain_vs_inconsistency(singles, x="upstream_accuracy", y="downstream_map", fit=None, **labels)
glue_figure("fig_06_transfer", fig)

# %% [markdown]
# ```{glue:figure} fig_06_transfer
# :name: fig-06-transfer
#
# Re-makes the paper's Fig. 7 (left): downstream 11-point mAP of a linear probe on each model's frozen
# embedding against the model's upstream accuracy (on the calibration split, which also picks the
# best upstream model).
# ```

# %% [markdown]
# ## Prediction diversity and transfer (the paper's Fig. 7 centre)
#
# For the base model paired with each partner: the pair's error inconsistency upstream against
# the gain of the concatenated embedding downstream over the better of its two members (the one
# with the better validation mAP).

# %%
centre = t["pairs"]
labels = dict(xlabel=f"error inconsistency with {study.base} (upstream, {split})")
labels["ylabel"] = "mAP of the pair minus its better member"
if len(centre):
    fig = plots.gain_vs_inconsistency(centre, x="error_inconsistency", y="pair_gain", fit=None, **labels)
else:
    fig = plots.message_figure("no in-band partner with downstream embeddings", width=4.2, height=3.4)
glue_figure("fig_06_centre", fig)

# %% [markdown]
# ```{glue:figure} fig_06_centre
# :name: fig-06-centre
#
# Re-makes the paper's Fig. 7 (centre): for the base model paired with each partner, the pair's upstream
# error inconsistency against the downstream gain of their concatenated embeddings over the better
# member alone.
# ```

# %% [markdown]
# ## Pairs of embeddings (the paper's Fig. 7 right)

# %%
top, cats = t["top"], [study.category(n) for n in t["top"]]
fig = plots.pairwise_heatmap(t["pair_map"].to_numpy(), top, cats, cbar_label="downstream mAP", cmap="viridis")
glue_figure("fig_06_pairs", fig)

# %% [markdown]
# ```{glue:figure} fig_06_pairs
# :name: fig-06-pairs
#
# Re-makes the paper's Fig. 7 (right): downstream test mAP of a probe on the concatenation of two models'
# full embeddings, for every pair among the best models on the downstream validation split
# (diagonal: each model alone).
# ```

# %% [markdown]
# **Paper (claim C9).** On VOC 2007 the best ImageNet model (MPL) is not the best transfer
# model, and concatenating two differently trained models' embeddings is best: 91.4 % mAP from a
# pair whose best member alone has 90.7 %.

# %% [markdown]
# `c9_transfer` (in `norep.paper.ch06_transfer`, from the tables above) chooses everything on
# validation splits (the best upstream model on the calibration split, the best transfer model and
# each pair's better member on the downstream validation split). Every partner is cut to the narrowest
# end partner's width, so all compared pairs have the same width: the pair gain of Dataset pairs
# minus that of Reinit pairs (the effect), and each Dataset and each Reinit model against the best
# upstream model at the same width: the Dataset models' mean margin over it minus the Reinit models'
# (a divergent model must transfer better than a non-divergent one of the same width, not just better
# than the best upstream model). The best pair against the best single model is reported beside them.
# Partners are resampled within categories, then downstream test examples.

# %% tags=["remove-input"]
report_claim(chapter.c9_transfer(study, **probe_kw, n_boot=n_boot, seed=seed, chapter_tables=t))

# %% [markdown]
# ## Try it
#
# - For a class: `-p profile=student` lightens this chapter (at most 200 bootstrap resamples, two
#   values of the probe's C, top_k at most 3); on the quick store (`norep zoo train --quick`) it
#   runs in well under a minute on 2 CPU cores (the README gives the measured times).
# - A GPU speeds up the probes on large embeddings: `device="auto"` (the default) uses one when
#   present; `-p device=cpu` forces the CPU.
# - Concatenate more models: `-p top_k=8` (the number of probes grows as top_k squared).
# - Replace the embedded downstream task by your own multi-label data: add `down_*` splits and
#   embeddings to a store (see {doc}`../store`).
#
# **Exercise.** The VOC 2007 11-point AP differs from scikit-learn's `average_precision_score`.
# Which is the larger on the same scores, and why? Compare them, class by class, for the best model
# on the downstream validation split.
#
# <details>
# <summary>Solution</summary>
#
# ```python
# from sklearn.metrics import average_precision_score
#
# best = top[0]
# for c in range(Y[te].shape[1]):
#     yc, sc = Y[te][:, c], scores[best][:, c]
#     if yc.any():
#         voc, skl = transfer.voc07_average_precision(yc, sc), average_precision_score(yc, sc)
#         print(f"class {c}: 11-point {voc:.4f}, scikit-learn {skl:.4f}, difference {voc - skl:+.4f}")
# ```
#
# Neither is always the larger. The 11-point AP averages the *interpolated* precision (the best
# precision at any recall at least t) at t = 0, 0.1, ..., 1: interpolation can only raise a
# precision, but the 11 samples weigh equally, and the last one, at full recall, is where the
# precision is lowest. scikit-learn sums the raw precision at every recall step, weighted by the
# recall it gains. Where a probe ranks most positives first (a high AP) the 11-point
# value tends to be the smaller; on a flatter precision-recall curve, interpolation wins.
#
# </details>
