"""Small synthetic stores with a planted, absent or reversed effect for each claim (tests of norep.claims).

Each model is described by its accuracy, the weight of the noise it shares with the base model
(higher: errors correlated with the base's), a confidence rule and optional per-class accuracy
shifts; predictions are the label when a Gaussian copula draw falls below the accuracy threshold,
else a random wrong class. Logits put ``high`` (when correct) or ``low`` (when wrong) on the
predicted class: ``inform`` is confident when right, ``mild`` slightly so, ``flat`` equally confident
either way, ``anti`` confident when wrong. Embeddings are class means plus noise: ``same`` carries the
base's information (in another basis), ``comp`` the complementary classes, ``noise`` nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

C = 10
GROUPS = {"natural": [0, 1, 2, 3, 4], "made": [5, 6, 7, 8, 9]}
CONF = {
    "inform": (4.0, 1.5),
    "flat": (2.5, 2.5),
    "mild": (2.8, 2.35),
    "anti": (1.5, 6.0),
    "loud": (0.5, 9.0),
    "noise": (0.0, 0.0),
}
DOWN = np.array(
    [
        [1, 0, 0, 1],
        [1, 0, 1, 0],
        [0, 1, 0, 1],
        [0, 1, 1, 0],
        [1, 1, 0, 0],
        [0, 0, 1, 1],
        [1, 0, 0, 0],
        [0, 1, 0, 0],
        [0, 0, 1, 0],
        [0, 0, 0, 1],
    ]
)


@dataclass
class Spec:
    name: str
    category: str
    acc: float = 0.68
    share: float = 0.6
    conf: str | dict = "inform"  # a rule, or split -> rule
    shift: np.ndarray | None = None  # (C,) shift of the accuracy threshold (z units) per class
    emb: str | None = None  # "same", "comp", "noise" or None (no embeddings)
    scale: dict = field(default_factory=dict)  # split -> logit scale


def build(path, specs, *, n=800, band=(0.6, 0.75), seed=0, shuffle_test=False, down=False):
    from norep.storage import Store

    rng = np.random.default_rng(seed)
    sizes = {"calib": n, "test": n}
    if down:
        sizes.update({"down_train": 300, "down_val": 200, "down_test": 300})
    y = {s: rng.integers(0, C, k) for s, k in sizes.items()}
    labels = {s: y[s] for s in ("calib", "test")}
    for s in sizes:
        if s.startswith("down"):
            labels[s] = DOWN[y[s]].astype(np.uint8)
    u0 = {s: rng.normal(size=k) for s, k in sizes.items()}
    if shuffle_test:
        labels["test"] = np.random.default_rng(seed + 99).permutation(labels["test"])
    st = Store.create(
        path,
        dataset="synthetic-claims",
        class_names=[f"c{i}" for i in range(C)],
        splits=labels,
        info={"base_model": specs[0].name, "accuracy_band": list(band), "class_groups": GROUPS},
    )
    D = 16
    means_base = rng.normal(size=(C, D)) * np.where(np.arange(C) < 5, 2.0, 0.25)[:, None]
    means_comp = rng.normal(size=(C, D)) * np.where(np.arange(C) < 5, 0.25, 2.0)[:, None]
    for sp in specs:
        logits, emb = {}, {}
        rot = np.linalg.qr(rng.normal(size=(D, D)))[0]
        for s, k in sizes.items():
            own = rng.normal(size=k)
            z = np.sqrt(sp.share) * u0[s] + np.sqrt(1 - sp.share) * own
            thr = norm.ppf(sp.acc) + (0.0 if sp.shift is None else sp.shift[y[s]])
            ok = z < thr
            wrong = (y[s] + 1 + rng.integers(0, C - 1, k)) % C
            pred = np.where(ok, y[s], wrong)
            hi, lo = CONF[sp.conf if isinstance(sp.conf, str) else sp.conf.get(s, "inform")]
            lg = 0.3 * rng.normal(size=(k, C))
            lg[np.arange(k), pred] += np.where(ok, hi, lo)
            if s in ("calib", "test"):
                logits[s] = lg * sp.scale.get(s, 1.0)
            if sp.emb is not None:
                m = {"same": means_base @ rot, "comp": means_comp, "noise": np.zeros((C, D))}[sp.emb]
                if sp.name == specs[0].name:
                    m = means_base
                emb[s] = m[y[s]] + rng.normal(size=(k, D))
        st.add_model(
            sp.name,
            logits=logits,
            embeddings=emb or None,
            meta={"category": sp.category, "method": f"synthetic {sp.category.lower()}"},
        )
    return st


CATS = ("REINIT", "HPARAM", "ARCH", "FWORK", "DATASET")


def pair_specs(kind, *, per_cat=4, base_conf="flat"):
    """Stores for C1-C4 and C10. ``kind``: planted, null, reverse, anti (C2 reversed: partners informative
    on the selection split, confidently wrong on test, so their ensembles lose)."""
    shares = dict(zip(CATS, (0.9, 0.75, 0.6, 0.45, 0.3), strict=True))
    if kind == "reverse":
        shares = dict(zip(CATS, (0.3, 0.45, 0.6, 0.75, 0.9), strict=True))
    if kind == "null":
        shares = dict.fromkeys(CATS, 0.6)
    specs = [Spec("base", "REINIT", conf=base_conf, share=1.0)]
    for c in CATS:
        conf = {
            "planted": "flat" if c == "REINIT" else "inform",
            "reverse": "flat" if c == "DATASET" else "inform",
            "null": "flat",
            "anti": {"calib": "inform", "test": "anti"},
        }[kind]
        specs += [Spec(f"{c.lower()}_{i}", c, acc=0.66 + 0.02 * i, share=shares[c], conf=conf) for i in range(per_cat)]
    return specs


def group_specs(kind, *, per_cat=4, seed=5):
    """Stores for C5: Dataset (and Architecture) partners whose accuracy shifts with the class group.
    ``kind``: planted (Dataset grouped, Architecture scattered), null (no shifts), reverse (Architecture
    grouped, Dataset scattered), opposite (Dataset partners grouped in opposite directions, half each way;
    Architecture scattered) or both (Dataset and Architecture grouped alike)."""
    rng = np.random.default_rng(seed)
    grouped = np.where(np.arange(C) < 5, 0.6, -0.6)

    def scattered():  # as strong, but no group structure: each group's shifts sum to zero
        half = np.array([0.6, -0.6, 0.6, -0.6, 0.0])
        return np.concatenate([rng.permutation(half), rng.permutation(half)])

    specs = [Spec("base", "REINIT", share=0.5)]
    for c in ("REINIT", "ARCH", "DATASET"):
        for i in range(per_cat):
            shift = None
            if c == "DATASET" and kind in ("planted", "both") or c == "ARCH" and kind in ("reverse", "both"):
                shift = grouped if i % 2 == 0 else grouped * 0.8
            elif c == "DATASET" and kind == "opposite":
                shift = grouped if i % 2 == 0 else -grouped
            elif c == "ARCH" and kind in ("planted", "opposite") or c == "DATASET" and kind == "reverse":
                shift = scattered()
            specs.append(Spec(f"{c.lower()}_{i}", c, acc=0.68, share=0.3, shift=shift))
    return specs


def greedy_specs(kind, *, n_starts=3):
    """Stores for C6: high-accuracy starts (Architecture) and a pool of low-accuracy models of other
    categories: informative (planted), pure noise that calibration flattens (null), or informative on
    the selection split but confidently wrong on test (reverse)."""
    conf = {"planted": "inform", "null": "noise", "reverse": {"calib": "inform", "test": "loud"}}[kind]
    specs = [Spec("base", "REINIT", acc=0.68, conf="flat")]
    specs += [Spec(f"start_{i}", "ARCH", acc=0.86 + 0.01 * i, share=0.5, conf="flat") for i in range(n_starts)]
    for c in ("FWORK", "DATASET"):
        specs += [Spec(f"low_{c.lower()}_{i}", c, acc=0.5, share=0.1, conf=conf) for i in range(3)]
    return specs


def feature_specs(kind):
    """Stores for C7-C9: a Reinit and a Dataset partner whose embeddings repeat the base's information
    (``same``), complement it (``comp``) or carry none (``noise``)."""
    reinit, dataset = {"planted": ("same", "comp"), "null": ("same", "same"), "reverse": ("comp", "noise")}[kind]
    # the most accurate model upstream transfers worst when planted (C9's first part)
    top = "noise" if kind == "planted" else "same"
    return [
        Spec("base", "REINIT", emb="same"),
        Spec("reinit_0", "REINIT", emb=reinit),
        Spec("dataset_0", "DATASET", emb=dataset),
        Spec("arch_0", "ARCH", acc=0.8, emb=top),
    ]
