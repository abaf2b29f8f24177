"""A synthetic prediction store of realistic structure for the analysis benchmark.

M models of controllable accuracy with correlated errors: a shared per-example difficulty, a global
confusion component, a "lineage" component shared with the base model whose weight falls from
REINIT to DATASET, own noise; logits on realistic scales including CLIP-like cosine logits that need
T ~ 0.01; float16 on disk.
"""

from __future__ import annotations

CATEGORY_SHARE = {"REINIT": 0.7, "HPARAM": 0.55, "ARCH": 0.35, "FWORK": 0.25, "DATASET": 0.12}
"""Weight of the base model's "lineage" noise in each category's logits (error correlation)."""


def _accuracy_to_margin(targets, n_classes, sigma_d, sigma_e, rng, n_draws=20000):
    """Mean label margin giving each target top-1 accuracy, by Monte Carlo on the noise model."""
    import numpy as np

    best_other = np.empty(n_draws)
    step = max(1, (1 << 22) // max(1, n_classes - 1))
    for a in range(0, n_draws, step):
        b = min(n_draws, a + step)
        best_other[a:b] = rng.standard_normal((b - a, n_classes - 1), dtype=np.float32).max(axis=1)
    x = (
        rng.standard_normal(n_draws)
        - best_other
        - sigma_d * rng.standard_normal(n_draws)
        + sigma_e * rng.standard_normal(n_draws)
    )
    # accuracy(mu) = P(mu + x > 0)  =>  mu = -quantile(x, 1 - accuracy)
    return [-float(np.quantile(x, 1.0 - t)) for t in targets]


def synthetic_spec(
    models: int, examples: int, classes: int, *, calib_examples=None, dtype: str = "float16", seed: int = 0
) -> dict:
    """The parameters of a synthetic store (recorded in its info, to reuse an identical one)."""
    return {
        "generator": "norep.bench.synthetic/1",
        "models": int(models),
        "examples": int(examples),
        "calib_examples": int(calib_examples or examples),
        "classes": int(classes),
        "dtype": dtype,
        "seed": int(seed),
    }


SIGMA_D, SIGMA_E, SHARE_GLOBAL = 1.0, 0.5, 0.15
"""Scale of the shared per-example difficulty, of each model's own margin noise, and the weight of
the global confusion component."""


def make_synthetic_store(path, spec: dict, *, progress: bool = False):
    """Create a synthetic store of ``spec`` at ``path`` (see DESCRIPTION for the structure).

    Model 0 is ``base`` (test accuracy about 0.76); the others cycle through the five categories
    with accuracies drawn per category; a third of the DATASET models have CLIP-like logit scales.
    Temperatures are left at 1.0 in the store (the benchmark fits them).
    """
    import numpy as np

    from norep.storage import Store

    c = spec["classes"]
    rng = np.random.default_rng(spec["seed"])
    models = _model_specs(spec["models"], c, rng)
    splits = {}
    shared = {}
    for split, ns in (("calib", spec["calib_examples"]), ("test", spec["examples"])):
        y = rng.integers(0, c, size=ns)
        splits[split] = y
        shared[split] = {
            "y": y,
            "d": rng.standard_normal(ns).astype(np.float32),
            "G": rng.standard_normal((ns, c), dtype=np.float32).astype(np.float16),
            "B": rng.standard_normal((ns, c), dtype=np.float32).astype(np.float16),
        }
    st = Store.create(
        path,
        dataset=f"synthetic-{c}",
        class_names=[f"class_{j}" for j in range(c)],
        splits=splits,
        info={"base_model": "base", "synthetic": spec, "accuracy_band": [0.74, 0.78]},
    )
    it = models
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(models, desc="synthetic store", unit="model")
    for i, spec_m in enumerate(it):
        mrng = np.random.default_rng([spec["seed"], 1 + i])
        logits = {split: _model_logits(spec_m, sh, mrng, c, np.dtype(spec["dtype"])) for split, sh in shared.items()}
        st.add_model(
            spec_m["name"],
            logits=logits,
            meta={
                "category": spec_m["category"],
                "method": f"synthetic ({spec_m['category'].lower()})",
                "data": "synthetic",
                "head": "linear",
                "source": "norep.bench",
                "temperature": 1.0,
                "recipe": {k: v for k, v in spec_m.items() if k != "name"},
                "seed": spec["seed"],
            },
        )
        del logits
    return st


def _model_specs(m: int, c: int, rng) -> list[dict]:
    """Name, category, lineage share, logit scale, label margin and target accuracy of each model."""
    from norep import CATEGORIES

    cats = ["ARCH"]
    order = ["ARCH", "DATASET", "FWORK", "HPARAM", "ARCH", "DATASET", "REINIT", "FWORK", "ARCH", "HPARAM"]
    while len(cats) < m:
        cats.append(order[(len(cats) - 1) % len(order)])
    acc_range = {
        "REINIT": (0.74, 0.78),
        "HPARAM": (0.68, 0.78),
        "ARCH": (0.60, 0.80),
        "FWORK": (0.60, 0.78),
        "DATASET": (0.50, 0.75),
    }
    targets = [0.76] + [float(rng.uniform(*acc_range[cat])) for cat in cats[1:]]
    margins = _accuracy_to_margin(targets, c, SIGMA_D, SIGMA_E, rng)
    counters = {cat: 0 for cat in CATEGORIES}
    models = []
    for i, cat in enumerate(cats):
        if i == 0:
            name, share = "base", 0.7
        else:
            counters[cat] += 1
            name, share = f"{cat.lower()}_{counters[cat]:02d}", CATEGORY_SHARE[cat]
        clip_like = cat == "DATASET" and counters[cat] % 3 == 1
        scale = float(rng.uniform(0.015, 0.03)) if clip_like else float(rng.uniform(1.5, 3.0))
        models.append(
            {
                "name": name,
                "category": cat,
                "share": share,
                "scale": scale,
                "margin": margins[i],
                "target_accuracy": targets[i],
                "clip_like": clip_like,
            }
        )
    return models


def _model_logits(spec_m: dict, sh: dict, mrng, c: int, dt):
    """One model's logits on one split: own noise, the global and lineage components, the margin."""
    import numpy as np

    ns = len(sh["y"])
    out = np.empty((ns, c), dtype=dt)
    a_g = np.float32(np.sqrt(SHARE_GLOBAL))
    a_b = np.float32(np.sqrt(spec_m["share"]))
    a_e = np.float32(np.sqrt(max(0.0, 1.0 - SHARE_GLOBAL - spec_m["share"])))
    margin = spec_m["margin"] - SIGMA_D * sh["d"] + SIGMA_E * mrng.standard_normal(ns).astype(np.float32)
    step = max(1, (1 << 21) // c)
    for a in range(0, ns, step):
        b = min(ns, a + step)
        z = mrng.standard_normal((b - a, c), dtype=np.float32)
        z *= a_e
        z += a_g * sh["G"][a:b]
        z += a_b * sh["B"][a:b]
        z[np.arange(b - a), sh["y"][a:b]] += margin[a:b]
        z *= np.float32(spec_m["scale"])
        out[a:b] = z
    return out


def open_or_make_store(workdir, spec: dict, *, progress: bool = False):
    """Reuse ``workdir/store`` if it holds a store of exactly ``spec``, else (re)build it."""
    import shutil
    from pathlib import Path

    from norep.storage import Store

    path = Path(workdir) / "store"
    if path.exists():
        try:
            st = Store.open(path, verify=False)  # the timings measure the analyses, not checksum checks
            if st.info.get("synthetic") == spec and len(st.model_names()) == spec["models"]:
                return st, False
        except Exception:  # noqa: BLE001 - anything unreadable is rebuilt
            pass
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return make_synthetic_store(path, spec, progress=progress), True
