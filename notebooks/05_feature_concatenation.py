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
# # Overlapping, not supersetting, representations (Sec. 4.6, Fig. 6)
#
# If differently trained models specialise, their penultimate-layer *features* should differ
# too. The paper concatenates a random share $r$ of the base model's embedding dimensions with
# a share $1 - r$ of another model's, under a fixed budget equal to the base's dimension, and
# evaluates each mix with a linear probe (multinomial logistic regression by L-BFGS, the
# regularisation chosen on a validation split), as in {cite}`kornblith2019better`. If neither
# model's features contain the other's, some mix beats both full embeddings.
#
# It then ranks the dimensions of the concatenation by a covariance-based diversity heuristic and
# adds them most-diverse first: divergently trained pairs should reach a target accuracy with
# fewer dimensions.
#
# ```{note}
# The paper says only that it "compute[s] the covariance of each dimension of embeddings from
# both models". `norep.features.diversity_order` reads this as each dimension's largest absolute
# correlation with any dimension of the *other* model: a dimension is diverse when the other
# model has nothing like it (see its docstring for the alternative, per-dimension variance).
# ```

# %% tags=["parameters"]
store = "stores/fashion"  # prediction store to analyse
base_model = None  # None: the store's base model
accuracy_band = None  # (lo, hi) accuracy fractions; None: the store's band
split = "test"  # evaluation split of the probes
calib_split = "calib"  # validation split of the probes (and training split if the store has no 'train' embeddings)
pair_models = None  # {category: model}; None: per category, the most accurate band model with embeddings (closest in accuracy if none in the band)
rates = [1.0, 0.75, 0.5, 0.25, 0.0]  # base model's share of the dimension budget
probe_Cs = [0.01, 0.1, 1.0, 10.0, 100.0]  # regularisation sweep of the linear probe
probe_max_iter = 200  # L-BFGS iterations per value of C
compression_step = None  # dimensions added per step of the compression curve; None: from compression_points
compression_points = 8  # points of each compression curve when compression_step is None
target = None  # accuracy the compression curves must reach; None: the base embedding's probe accuracy
device = "cpu"  # torch device of the probes ("auto" picks a GPU when present)
threads = 1  # CPU threads of the probes (small probes run fastest on one); None: the libraries' default
n_boot = 1000  # bootstrap resamples for confidence intervals
seed = 0  # seed of the dimension choice and of the bootstrap
fig_format = "png"  # inline figure format: png, svg or retina

# %%
import numpy as np
import pandas as pd
from IPython.display import display

from norep import CATEGORIES, features, metrics, plots
from norep.notebooks import (
    check_parameters,
    fmt_ci,
    glue_figure,
    limit_threads,
    load_study,
    report_claim,
    verdict,
)
from norep.stats import bootstrap_ci

# %% [markdown]
# ## Parameters and data
#
# The parameters are checked first, with a clear message for any bad value (expand the cell to
# see the checks); then the store is opened.

# %% tags=["hide-input"]
check_parameters(n_boot=n_boot, seed=seed, fig_format=fig_format)
limit_threads(threads)
study = load_study(store, base_model=base_model, accuracy_band=accuracy_band, split=split, calib_split=calib_split,
                   require_embeddings=[split, calib_split])
st, base = study.store, study.base
if not rates or any(not 0.0 <= float(r) <= 1.0 for r in rates):
    raise ValueError(f"parameter rates={rates!r} must be shares in [0, 1]")
with_emb = [n for n in study.table["name"] if st.has_embeddings(n, split) and st.has_embeddings(n, calib_split)]
if pair_models is None:
    chosen = {cat: study.pick(cat, embeddings_on=[split, calib_split]) for cat in CATEGORIES}
    chosen = {cat: name for cat, name in chosen.items() if name is not None}
else:
    chosen = dict(pair_models)
bad = [n for n in chosen.values() if n not in with_emb]
if bad:
    raise ValueError(f"parameter pair_models: {bad} have no embeddings on {split!r} and {calib_split!r}")
if not chosen:
    raise ValueError("no model besides the base has embeddings; nothing to concatenate")

# Probe splits: the store's 'train' split when every model has embeddings there, else halves of calib.
names_needed = [base, *chosen.values()]
if "train" in st.splits() and not st.is_multilabel("train") and all(st.has_embeddings(n, "train") for n in names_needed):
    y_all = {"train": st.labels("train"), "val": st.labels(calib_split), "test": st.labels(split)}
    take = {"train": ("train", slice(None)), "val": (calib_split, slice(None)), "test": (split, slice(None))}
else:
    n_cal = len(st.labels(calib_split))
    perm = np.random.default_rng(seed).permutation(n_cal)
    half_a, half_b = np.sort(perm[: n_cal // 2]), np.sort(perm[n_cal // 2:])
    take = {"train": (calib_split, half_a), "val": (calib_split, half_b), "test": (split, slice(None))}
    y_all = {k: st.labels(s)[i] for k, (s, i) in take.items()}


def emb(name):
    return {k: np.asarray(st.embeddings(name, s))[i].astype(np.float32) for k, (s, i) in take.items()}


E = {n: emb(n) for n in names_needed}
D = E[base]["train"].shape[1]
if compression_step is None:
    if not isinstance(compression_points, int) or compression_points < 1:
        raise ValueError(f"parameter compression_points={compression_points!r} must be a positive integer")
    step = max(1, -(-2 * D // compression_points))  # the concatenation has about 2 D dimensions
elif isinstance(compression_step, int) and compression_step >= 1:
    step = compression_step
else:
    raise ValueError(f"parameter compression_step={compression_step!r} must be None or a positive integer")
print(f"Parameters: store={store!r}, base_model={base!r}, accuracy_band={study.band}, pairs={chosen}, rates={rates}, "
      f"probe_Cs={probe_Cs}, probe_max_iter={probe_max_iter}, compression_step={step}, target={target}, device={device!r}, "
      f"threads={threads}, n_boot={n_boot}, seed={seed}, fig_format={fig_format!r}")
outside = [n for n in chosen.values() if not study.table.set_index("name").loc[n, "in_band"]]
if outside:
    print(f"note: {outside} lie outside the accuracy band (no model of their category with embeddings is inside it)")
print(f"probe splits: train {len(y_all['train'])}, validation {len(y_all['val'])}, test {len(y_all['test'])} "
      f"examples; base embedding has {D} dimensions")

# %% [markdown]
# ## Concatenation at rates (Fig. 6 left and center)

# %%
def probe(X):
    return features.linear_probe(X["train"], y_all["train"], X["val"], y_all["val"], X["test"], y_all["test"],
                                 Cs=probe_Cs, device=device, max_iter=probe_max_iter)


rows, test_preds = [], {}
for cat, other in chosen.items():
    for r in rates:
        X = {k: features.concat_at_rate(E[base][k], E[other][k], float(r), seed=seed)[0] for k in ("train", "val", "test")}
        res = probe(X)
        test_preds[(other, float(r))] = res.predict(X["test"])
        rows.append({"other": other, "category": cat, "rate": float(r), "dims": X["train"].shape[1],
                     "val_accuracy": res.val_accuracy, "accuracy": res.test_accuracy, "best_C": res.best_C})
mix = pd.DataFrame(rows)
fig = plots.rate_curves(mix)
glue_figure("fig_05_rates", fig)

# %% [markdown]
# ```{glue:figure} fig_05_rates
# :name: fig-05-rates
#
# Analogue of Fig. 6 (center): linear-probe test accuracy of concatenations of the base model's
# embedding (share on the left of each label) with another model's (share on the right), under a
# budget equal to the base's dimension, one line per partner, coloured by category.
# ```

# %%
display(mix.pivot_table(index=["category", "other"], columns="rate", values="accuracy", sort=False).round(4))

# %% [markdown]
# **Paper (claim C7).** Mixes of two embeddings (25/75, 50/50, 75/25) beat either full
# embedding under linear evaluation, more so for more divergent pairs; the best pair is
# ResNet-50 + CLIP-S. For each pair we pick the mixed rate with the best *validation* accuracy and
# compare its test accuracy with the better of the two full embeddings.

# %% tags=["remove-input"]
mixed_rates = [float(r) for r in rates if 0.0 < float(r) < 1.0]
if not mixed_rates or 1.0 not in map(float, rates) or 0.0 not in map(float, rates):
    raise ValueError("parameter rates must contain 1.0, 0.0 and at least one share in between")
y_test = y_all["test"]
gains = {}
for cat, other in chosen.items():
    part = mix[(mix["other"] == other) & mix["rate"].isin(mixed_rates)]
    best_r = float(part.sort_values("val_accuracy")["rate"].iloc[-1])
    gains[cat] = (best_r, test_preds[(other, best_r)], test_preds[(other, 1.0)], test_preds[(other, 0.0)])


def mix_gain(yy, pm, pa, pbb):
    return metrics.accuracy_score(yy, pm) - max(metrics.accuracy_score(yy, pa), metrics.accuracy_score(yy, pbb))


gain_table = pd.DataFrame([{"category": c, "other": chosen[c], "best_mixed_rate": g[0],
                            "gain_over_best_full": mix_gain(y_test, *g[1:])} for c, g in gains.items()])
display(gain_table.round(4).style.hide(axis="index").format(precision=4))
top_cat = [c for c in CATEGORIES if c in gains][-1]
ci = bootstrap_ci(mix_gain, y_test, *gains[top_cat][1:], n_resamples=n_boot, seed=seed)
best_pair = gain_table.sort_values("gain_over_best_full").iloc[-1]
report_claim(
    "C7", verdict(ci.low, ci.high),
    paper="a mix of two embeddings beats either full embedding, more for divergent pairs; best pair ResNet-50 + CLIP-S",
    this_run=(f"{top_cat} pair ({base} + {chosen[top_cat]}, mix {round(100 * gains[top_cat][0])}/"
              f"{round(100 * (1 - gains[top_cat][0]))}): {fmt_ci(ci, percent=True, digits=1, unit=' points')} over the better "
              f"full embedding; largest gain for the {best_pair['category']} pair "
              f"({100 * best_pair['gain_over_best_full']:+.1f} points)"),
)

# %% [markdown]
# ## Compression by the diversity heuristic (Fig. 6 right)

# %%
full = mix[mix["rate"] == 1.0]["accuracy"].iloc[0]
goal = float(target) if target is not None else float(full)
curves, reach = [], []
for cat, other in chosen.items():
    X = {k: np.concatenate([E[base][k], E[other][k]], axis=1) for k in ("train", "val", "test")}
    order = features.diversity_order(E[base]["train"], E[other]["train"])
    curve = features.compression_curve(X["train"], y_all["train"], X["val"], y_all["val"], X["test"], y_all["test"],
                                       order, step, Cs=probe_Cs, device=device, max_iter=probe_max_iter)
    curves.append(curve.assign(category=cat, other=other))
    reach.append({"category": cat, "other": other, "dims": features.dims_to_reach(curve, goal)})
curves = pd.concat(curves).rename(columns={"n_dims": "dims", "test_accuracy": "accuracy"})
reach = pd.DataFrame(reach)
fig = plots.compression_curves(curves, target=goal)
glue_figure("fig_05_compression", fig)

# %% [markdown]
# ```{glue:figure} fig_05_compression
# :name: fig-05-compression
#
# Analogue of Fig. 6 (right): test accuracy of linear probes on the first dimensions of each
# concatenation [base, partner] ranked most-diverse first; the dashed line is the target accuracy
# (by default the base model's full embedding).
# ```

# %%
display(reach.style.hide(axis="index"))

# %% [markdown]
# **Paper (claim C8).** Features needed to reach 76 % (multiples of 256): Reinit 2304,
# Hyper-parameters 2057, Architecture 1392, Dataset 512. Each pair has a single curve, so
# this comparison has no bootstrap interval: the verdict compares the point values.

# %% tags=["remove-input"]
dims = reach.set_index("category")["dims"]
lo_cat = [c for c in CATEGORIES if c in dims.index][0]
d_lo, d_hi = dims.get(lo_cat), dims.get(top_cat)
if lo_cat == top_cat or d_hi is None or (isinstance(d_hi, float) and np.isnan(d_hi)):
    status = "inconclusive" if lo_cat == top_cat else "not reproduced"
elif d_lo is None or (isinstance(d_lo, float) and np.isnan(d_lo)):
    status = "reproduced"
else:
    status = "reproduced" if d_hi < d_lo else "not reproduced"


def fmt_dims(v):
    return "never" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{int(v)}"


report_claim(
    "C8", status,
    paper="dims to reach 76 %: Reinit 2304, Hyper-parameters 2057, Architecture 1392, Dataset 512",
    this_run=(f"dims to reach {100 * goal:.1f} % in steps of {step}: "
              + ", ".join(f"{c} {fmt_dims(v)}" for c, v in dims.items())
              + " (single curve per pair, no interval)"),
)

# %% [markdown]
# ## Try it
#
# - Finer rates: `-p "rates=[1.0, 0.9, 0.75, 0.5, 0.25, 0.1, 0.0]"`.
# - A GPU makes the probes fast at paper scale: `-p device=auto`.
#
# **Exercise.** Why does the comparison keep the total number of dimensions fixed instead of
# concatenating both full embeddings?
#
# ```{admonition} Solution
# :class: dropdown
#
# A probe on twice the dimensions can win simply because it has more parameters. With a fixed
# budget, a mix beating both full embeddings shows that the two models' features are
# complementary (overlapping, not supersetting). The full concatenation (stacked generalization)
# is the subject of the next section.
# ```
