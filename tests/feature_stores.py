"""Synthetic stores for the feature claims (C7-C9) and the greedy claim (C6) with several models per end, each
with a planted effect or a realistic null (an effect of the categories absent while everything else stays).

Feature stores: every model's embedding on every split (upstream ``calib``/``test`` and the multi-label
``down_*`` splits, whose labels are unions of the upstream classes) is its class mean plus Gaussian noise. A
model's class means carry one of three kinds of information: ``same`` (the base's: classes 0-4 well separated,
5-9 barely), ``comp`` (the complement: classes 5-9 well separated) or ``full`` (both), mapped to the model's own
width by orthonormal directions. The downstream task (``DOWN``) needs both kinds and classes 5-9 more, so
``comp`` complements ``same`` downstream and transfers better. Upstream logits are the label with the model's
accuracy, else a random wrong class.
"""

from __future__ import annotations

import numpy as np

from claims_stores import Spec, build

C = 10
DOWN = np.array(
    [[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 0, 0]]
    + [[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 1], [1, 0, 1, 0], [0, 1, 0, 1]]
)
"""The downstream labels of each upstream class: labels 0-1 mostly tell classes 0-4 apart, labels 2-3 only
classes 5-9 (so the two kinds of information complement each other downstream, and ``comp`` transfers better)."""
SIGNAL = {
    "same": np.where(np.arange(C) < 5, 2.0, 0.25),
    "comp": np.where(np.arange(C) < 5, 0.25, 2.0),
    "full": np.full(C, 2.0),
}


def build_features(path, models, *, n=600, seed=0, shuffle_test=False):
    """A store of ``models``: ``(name, category, accuracy, information, width)`` each, the base first; every
    model in the band (0, 1). ``shuffle_test`` permutes the upstream and downstream test labels (nothing else
    changes)."""
    from norep.storage import Store

    rng = np.random.default_rng(seed)
    sizes = {"calib": n, "test": n, "down_train": 400, "down_val": 300, "down_test": 500}
    y = {s: rng.integers(0, C, k) for s, k in sizes.items()}
    labels = {s: (DOWN[y[s]].astype(np.uint8) if s.startswith("down") else y[s]) for s in sizes}
    if shuffle_test:
        for s in ("test", "down_test"):
            labels[s] = labels[s][np.random.default_rng(seed + 99).permutation(sizes[s])]
    st = Store.create(
        path,
        dataset="synthetic-features",
        class_names=[f"c{i}" for i in range(C)],
        splits=labels,
        info={"base_model": models[0][0], "accuracy_band": [0.0, 1.0]},
    )
    base_means = rng.normal(size=(C, 16))
    for name, cat, acc, info, width in models:
        # 16 orthonormal directions of the model's width (all the information; a narrower model keeps a projection)
        basis = np.linalg.qr(rng.normal(size=(max(width, 16), max(width, 16))))[0][:16, :width]
        means = (base_means * SIGNAL[info][:, None]) @ basis
        emb, logits = {}, {}
        for s, k in sizes.items():
            emb[s] = means[y[s]] + rng.normal(size=(k, width))
            if not s.startswith("down"):
                ok = rng.random(k) < acc
                pred = np.where(ok, y[s], (y[s] + 1 + rng.integers(0, C - 1, k)) % C)
                lg = 0.3 * rng.normal(size=(k, C))
                lg[np.arange(k), pred] += 3.0
                logits[s] = lg
        st.add_model(name, logits=logits, embeddings=emb, meta={"category": cat, "method": f"synthetic {cat}"})
    return st


def feature_models(kind, *, per_end=3, wide=False, dataset_width=12):
    """The base, ``per_end`` Reinit and Dataset partners and the most accurate model upstream (Architecture).

    ``kind``: ``planted`` (Dataset partners complement the base, Reinit partners repeat it), ``null`` (both
    repeat it: no effect of the training method) or ``alike`` (both complement it: every pair gains from a mix,
    whatever the method). The Dataset partners are narrower (``dataset_width``
    dimensions against 16), as in the embedded study. ``wide`` adds an Architecture model four times as wide that
    carries every class: it transfers better than the best upstream model, by its width and information,
    without being divergent."""
    reinit, dataset = {"planted": ("same", "comp"), "null": ("same", "same"), "alike": ("comp", "comp")}[kind]
    models = [("base", "REINIT", 0.7, "same", 16)]
    models += [(f"reinit_{i}", "REINIT", 0.7 - 0.01 * i, reinit, 16) for i in range(per_end)]
    models += [(f"dataset_{i}", "DATASET", 0.7 - 0.01 * i, dataset, dataset_width) for i in range(per_end)]
    models.append(("arch_top", "ARCH", 0.8, "same", 16))
    if wide:
        models.append(("arch_wide", "ARCH", 0.72, "full", 64))
    return models


def greedy_models(kind, *, n_starts=3, per_category=4):
    """Specs (:func:`claims_stores.build`) for C6: Architecture starts above the band, and a pool of low-accuracy
    Architecture (the starts' methodology), Framework and Dataset models. ``planted``: the same-methodology
    candidates share the starts' errors (the shared noise weight 0.9), the others err independently (0.05);
    ``null``: every candidate alike (0.45), so that no methodology effect exists while the other categories
    still outnumber the start's own."""
    shares = {
        "planted": {"ARCH": 0.9, "FWORK": 0.05, "DATASET": 0.05},
        "null": dict.fromkeys(["ARCH", "FWORK", "DATASET"], 0.45),
    }[kind]
    specs = [Spec("base", "REINIT", acc=0.68, conf="flat")]
    specs += [Spec(f"start_{i}", "ARCH", acc=0.86 + 0.01 * i, share=0.5, conf="inform") for i in range(n_starts)]
    for c, share in shares.items():
        specs += [Spec(f"low_{c.lower()}_{i}", c, acc=0.6, share=share, conf="inform") for i in range(per_category)]
    return specs


def build_greedy(path, kind, *, n=1500, seed=0, shuffle_test=False):
    return build(path, greedy_models(kind), n=n, band=(0.6, 0.75), seed=seed, shuffle_test=shuffle_test)
