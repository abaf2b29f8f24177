"""The zoo specification of the embedded study (see :mod:`norep.zoo.embedded`): the presets, one
:class:`ZooSpec` per model or pretrained representation, and :func:`zoo_specs`, the zoo of a preset
in training order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from norep import CONTROL_ROLE as CONTROL  # the role that the study leaves out of every category

ZOO_VERSION = 3
"""Bumped when a training loop changes in a way that changes results: invalidates every cache key."""

SOURCE = "norep.zoo.embedded"
"""The ``source`` every model of the embedded study records in its metadata."""

BF16_ARCHS = ("resnet", "vgg", "autoencoder")
"""Architectures trained under bfloat16 autocast when the zoo's precision is ``bf16`` (where it is
faster: not the LeNet, the MLP or the ViT)."""


@dataclass
class ZooSpec:
    """One zoo member (or a pretrained representation, ``category=None``) and how to train it."""

    name: str
    category: str | None
    method: str
    data: str
    head: str
    kind: str  # supervised | kd | sklearn | linear | pretrain
    recipe: dict
    seed: int
    deps: tuple[str, ...] = ()
    in_store: bool = True
    role: str = ""  # "control": a reference point, outside every category's statistics
    twin: str = ""  # a DATASET model: the FWORK model with the same recipe on the training images

    def precision(self, precision: str) -> str:
        """The arithmetic this spec trains in when the zoo's is ``precision`` (``fp32`` or ``bf16``).

        bfloat16 autocast is used only for the convolutional networks, where it is faster; the MLP and
        the ViT (slower under bf16 autocast on CPU), the linear heads and scikit-learn train in fp32.
        """
        if self.kind in ("sklearn", "linear") or self.recipe.get("arch") not in BF16_ARCHS:
            return "fp32"
        return precision

    def key(self, fingerprint: str, dep_keys: dict[str, str], precision: str = "fp32", device: str = "cpu") -> str:
        own = self.precision(precision)
        on_gpu = device != "cpu" and self.kind != "sklearn"
        blob = json.dumps(
            {
                "v": ZOO_VERSION,
                "kind": self.kind,
                "recipe": self.recipe,
                "seed": self.seed,
                "data": fingerprint,
                "deps": [dep_keys[d] for d in self.deps],
                **({"precision": own} if own != "fp32" else {}),
                **({"device": device} if on_gpu else {}),
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------ presets

QUICK_ROWS = dict(
    hparam=(
        "learning-rate-0.05",
        "learning-rate-0.2",
        "weight-decay-5e-5",
        "weight-decay-2e-3",
        "label-smoothing-0.1",
        "dropout-0.3",
        "batch-size-64",
        "learning-rate-0.003",
    ),
    arch=("mlp", "cnn-3conv", "cnn-5x5", "mlp-deep", "mlp-wide", "mlp-128", "mlp-256x2", "cnn-gap"),
    sklearn=("knn",),
    kd=("kd-from-long", "kd-from-long-t2"),
    fwork=("simclr", "autoencoder", "inpainting", "rotation"),
    dataset=(
        ("procedural", "simclr"),
        ("natural", "autoencoder"),
        ("glyphs", "autoencoder"),
        ("procedural", "inpainting"),
        ("procedural", "rotation"),
        ("glyphs", "rotation"),
        ("natural", "rotation"),
    ),
    gap=("autoencoder-linear-gap",),
)
"""The models of the ``-quick`` presets, by group (the full presets have every row). The fashion quick
preset keeps at least 5 candidates per category near the base's accuracy (a class sees every claim
tested; cheap MLPs and a second distillation only it has), models above the band (the long-trained
model, batch size 64, the three-convolution CNN) and low-accuracy models (a tiny learning rate, a
globally pooled CNN and readout)."""

PRESETS: dict[str, dict[str, Any]] = {
    "fashion": dict(
        n_train=10000,
        cnn=dict(c1=16, c2=32, pool=3),
        epochs=3,
        band_halfwidth=0.02,
        enc=dict(c1=16, c2=48, pool=2),
        n_reinit=6,
        long_epochs=(8, 15),
        mlp_epochs=6,
        pretrain_epochs=3,
        simclr_epochs=3,
        forest_trees=100,
        down_sizes=(3000, 1000, 2000),
        rows=None,
    ),
    "fashion-quick": dict(
        n_train=4000,
        cnn=dict(c1=16, c2=32, pool=3),
        epochs=4,
        band_halfwidth=0.02,
        enc=dict(c1=16, c2=32, pool=2),
        n_reinit=5,
        long_epochs=(10,),
        mlp_epochs=4,
        pretrain_epochs=2,
        simclr_epochs=1,
        forest_trees=30,
        down_sizes=(1500, 500, 1000),
        rows=QUICK_ROWS,
    ),
    "digits": dict(
        n_train=None,
        cnn=dict(c1=16, c2=32, pool=3),
        epochs=10,
        band_halfwidth=0.03,
        enc=dict(c1=16, c2=32, pool=3),
        n_reinit=3,
        long_epochs=(30,),
        mlp_epochs=30,
        pretrain_epochs=3,
        simclr_epochs=3,
        forest_trees=60,
        down_sizes=(300, 100, 200),
        rows=None,
    ),
    "digits-quick": dict(
        n_train=None,
        cnn=dict(c1=16, c2=32, pool=3),
        epochs=8,
        band_halfwidth=0.03,
        enc=dict(c1=16, c2=32, pool=3),
        n_reinit=1,
        long_epochs=(24,),
        mlp_epochs=20,
        pretrain_epochs=1,
        simclr_epochs=1,
        forest_trees=30,
        down_sizes=(200, 100, 200),
        rows=dict(
            hparam=("label-smoothing-0.1", "learning-rate-0.003"),
            arch=("mlp",),
            sklearn=("knn",),
            kd=("kd-from-long",),
            fwork=("autoencoder",),
            dataset=(("natural", "autoencoder"),),
            gap=(),
        ),
    ),
}
"""Sizes of each preset (``<preset>-quick`` is what ``--quick`` selects; ``rows``: the models of each
group, None for all). ``fashion``: every network trains on the first ``n_train`` = 10,000 official
training images; the base is a two-convolution CNN (16 and 32 channels) trained 3 epochs; the
accuracy band is the base's test accuracy +- 2 points (the paper's 74-78 % band is 4 points wide);
the representation learners (``FWORK``, ``DATASET``) use the ``encoder`` (a 5x5 convolution with 16
channels, a 3x3 one with 48, pooled to 2x2: a 192-dimensional embedding). A ``DATASET`` encoder has
the recipe and budget of its ``FWORK`` twin (the same optimiser steps on as many images), on a corpus
of other data as large as the images its twin processes: each image is seen once
(:func:`corpus_size`)."""


def _pick(rows, p, group, key=lambda r: r[0], extra=()):
    """The rows of ``group`` a preset keeps (all when its ``rows`` is None), in the preset's order;
    ``extra`` rows only a preset that names them (a quick one) can pick."""
    if p["rows"] is None:
        return rows
    want = p["rows"][group]
    by = {key(r): r for r in [*rows, *extra]}
    return [by[w] for w in want]


SEED_STRIDE = 1000
"""Model seeds are ``SEED_STRIDE * seed + offset``: the replicates of ``--seed K`` share no model seed."""


def _sgd(p):
    return dict(optimizer="sgd", lr=0.1, weight_decay=5e-4, batch_size=128, label_smoothing=0.0, shift=0, flip=False)


def _hparam_rows(p):
    """(name, text, recipe changes, seed offset) of the HPARAM category: one training setting each."""
    rows = [
        ("learning-rate-0.05", "learning rate 0.05 (base 0.1)", dict(lr=0.05)),
        ("learning-rate-0.2", "learning rate 0.2", dict(lr=0.2)),
        ("weight-decay-5e-5", "weight decay 5e-5 (base 5e-4)", dict(weight_decay=5e-5)),
        ("weight-decay-2e-3", "weight decay 2e-3", dict(weight_decay=2e-3)),
        ("label-smoothing-0.1", "label smoothing 0.1 (base none)", dict(label_smoothing=0.1)),
        ("dropout-0.3", "dropout 0.3 before the head (base none)", dict(dropout=0.3)),
        ("batch-size-64", "batch size 64 (base 128)", dict(batch_size=64)),
        (
            "adamw",
            "AdamW at learning rate 2e-3 (base SGD with Nesterov momentum)",
            dict(optimizer="adamw", lr=2e-3, weight_decay=0.05),
        ),
        ("learning-rate-0.003", "learning rate 0.003 (low-accuracy model)", dict(lr=0.003)),
        ("batch-size-1024", "batch size 1024 (low-accuracy model)", dict(batch_size=1024)),
    ]
    out = _pick([(n, t, ch, 10 + k) for k, (n, t, ch) in enumerate(rows)], p, "hparam")
    for k, e in enumerate(p["long_epochs"]):
        out.append(
            (
                "long-training" if k == len(p["long_epochs"]) - 1 else f"epochs-{e}",
                f"{e} epochs (base {p['epochs']}; high-accuracy model)",
                dict(epochs=e),
                30 + k,
            )
        )
    return out


def _arch_rows(p):
    """(name, text, arch, arch_kw, recipe changes, seed offset) of the neural ARCH models (base recipe,
    other network)."""
    c = p["cnn"]
    mlp = dict(epochs=p["mlp_epochs"], lr=0.05)
    rows = [
        ("mlp", "MLP 784-256-128", "mlp", {}, mlp),
        (
            "cnn-gap",
            "the base CNN with global average pooling (32-dim embedding; low-accuracy model)",
            "cnn",
            dict(c, pool=1),
            {},
        ),
        ("lenet", "LeNet-5 (ReLU, max-pool; low-accuracy model)", "lenet", {}, dict(lr=0.05)),
        (
            "cnn-wide",
            "the base CNN twice as wide (32 and 64 channels)",
            "cnn",
            dict(c, c1=2 * c["c1"], c2=2 * c["c2"]),
            {},
        ),
        ("cnn-3conv", "a three-convolution CNN (16, 32, 32 channels)", "cnn", dict(c, convs=3), {}),
        ("cnn-5x5", "the base CNN with 5x5 kernels", "cnn", dict(c, kernel=5), {}),
        ("mlp-deep", "MLP 784-512-256-128", "mlp", dict(hidden=[512, 256, 128]), mlp),
        ("vgg", "plain VGG-style CNN (5 conv + BN, no residuals; high-accuracy model)", "vgg", {}, dict(lr=0.05)),
        ("mlp-narrow", "MLP 784-32 (low-accuracy model)", "mlp", dict(hidden=[32]), dict(epochs=1, lr=0.05)),
        ("mlp-wide", "MLP 784-512", "mlp", dict(hidden=[512]), mlp),
    ]
    offsets = [40 + k for k in range(8)] + [97, 96]
    extra = [  # quick presets only
        ("mlp-128", "MLP 784-128", "mlp", dict(hidden=[128]), mlp, 98),
        ("mlp-256x2", "MLP 784-256-256", "mlp", dict(hidden=[256, 256]), mlp, 99),
    ]
    return _pick([(*r, off) for r, off in zip(rows, offsets, strict=True)], p, "arch", extra=extra)


def _sklearn_rows(p):
    """(name, learner, text) of the non-neural controls."""
    rows = [
        ("logreg", "logreg", "logistic regression on pixels"),
        ("knn", "knn", "10-NN (distance-weighted) on PCA-50"),
        ("random-forest", "forest", f"random forest ({p['forest_trees']} trees) on PCA-50"),
        ("naive-bayes", "bayes", "Gaussian naive Bayes on PCA-50"),
    ]
    return _pick(rows, p, "sklearn")


FWORK_ROWS = (
    ("simclr", "simclr", "Cont. (SimCLR)"),
    ("autoencoder", "autoencoder", "Reconstruction (denoising AE)"),
    ("inpainting", "inpaint", "Masked-patch reconstruction"),
    ("rotation", "rotation", "Rotation prediction"),
)
"""(name, pretext task, text) of the FWORK representation learners (on the training images, no labels)."""

OTHER_DATA = {
    "procedural": "procedural shape images",
    "glyphs": "rendered letters (no labels)",
    "natural": "crops of two photographs",
}
"""The other data of the DATASET encoders (generated by :mod:`norep.data`; no Fashion-MNIST image)."""

DATASET_ROWS = (
    ("procedural", "simclr"),
    ("natural", "simclr"),
    ("natural", "autoencoder"),
    ("glyphs", "autoencoder"),
    ("procedural", "inpainting"),
    ("procedural", "rotation"),
    ("glyphs", "rotation"),
    ("natural", "rotation"),
)
"""(other data, FWORK twin) of the DATASET representation learners: each has its twin's recipe."""


def corpus_size(p, epochs: int, batch_size: int) -> int:
    """Images of other data a DATASET encoder learns from: exactly the images its FWORK twin processes in
    ``epochs`` epochs of full batches over the training images (the digits presets train on 1,000), so
    that the encoder sees each image once in the same number of optimiser steps.

    Examples
    --------
    >>> corpus_size(PRESETS["fashion"], 3, 128)  # 3 epochs of 78 batches of 128 over 10,000 images
    29952
    """
    return epochs * ((p["n_train"] or 1000) // batch_size) * batch_size


def _encoder(name, fname, task, src, p, seed):
    """A pretrained encoder (not in the store): ``task`` on the training images (``src`` "fashion") or on
    a corpus of other data (one epoch over as many images as its twin processes)."""
    epochs = p["simclr_epochs"] if task == "simclr" else p["pretrain_epochs"]
    recipe = dict(task=task, data=src, arch="encoder", arch_kw=dict(p["enc"]), epochs=epochs)
    text = dict((f, t) for f, _, t in FWORK_ROWS)[fname]
    if src == "fashion":
        return ZooSpec(
            name, None, f"{text} pretraining", "training images", "", "pretrain", recipe, seed, in_store=False
        )
    n = corpus_size(p, epochs, 256 if task == "simclr" else 128)  # the loops' batch sizes
    recipe.update(epochs=1, n_images=n)
    what = f"{n:,} {OTHER_DATA[src]}"
    return ZooSpec(name, None, f"{text} pretraining on {what}", what, "", "pretrain", recipe, seed, in_store=False)


def _linear(name, category, method, data, recipe, seed, deps=(), **kw):
    """A store member read by an L-BFGS linear head from a frozen (or random) encoder."""
    return ZooSpec(name, category, method, data, "L-BFGS", "linear", recipe, seed, deps=deps, **kw)


def _gap_specs(specs, gap, p):
    """The low-accuracy readouts: the frozen encoders of some linear models, globally pooled."""
    by = {s.name: s for s in specs}
    rows = [
        ("autoencoder-linear-gap", "autoencoder-linear"),
        ("rotation-linear-gap", "rotation-linear"),
        ("natural-autoencoder-linear-gap", "natural-autoencoder-linear"),
        ("random-features-gap", "random-features-linear"),
    ]
    out = []
    for name, of in _pick(rows, p, "gap"):
        src = by[of]
        method = src.method.replace("L-BFGS linear head", "globally pooled, L-BFGS linear head (low-accuracy model)")
        twin = f"{src.twin}-gap" if src.twin else ""
        out.append(_linear(name, src.category, method, src.data, gap, src.seed, src.deps, role=src.role, twin=twin))
    return out


def _representation_specs(p, seed, data):
    """FWORK (other objectives on the training images) and DATASET (the same recipes on other data)."""
    e = p["enc"]
    enc = f"encoder CNN ({e['c1']}+{e['c2']} channels, {e['c2'] * e['pool'] ** 2}-dim)"
    lin = dict(l2=1e-4, arch="encoder", arch_kw=dict(p["enc"]))
    specs = []
    seeds = {}
    for k, (fname, task, text) in _pick(list(enumerate(FWORK_ROWS)), p, "fwork", key=lambda r: r[1][0]):
        s = seeds[fname] = seed + 50 + k
        specs.append(_encoder(f"{fname}-encoder", fname, task, "fashion", p, s))
        method = f"{text} {enc} on the training images (no labels), frozen, L-BFGS linear head"
        specs.append(_linear(f"{fname}-linear", "FWORK", method, data, lin, s, (f"{fname}-encoder",)))
    tasks = {f: (t, text) for f, t, text in FWORK_ROWS}
    for src, fname in _pick(list(DATASET_ROWS), p, "dataset", key=lambda r: r):
        task, text = tasks[fname]
        name = f"{src}-{fname}"
        # the twin's initial weights: the pair differs by its data only
        spec = _encoder(f"{name}-encoder", fname, task, src, p, seeds[fname])
        spec.recipe["corpus_seed"] = seed + 7  # one corpus per data source and replicate
        specs.append(spec)
        method = f"{text} {enc} on {spec.data}, frozen, L-BFGS linear head (the recipe of {fname}-linear)"
        specs.append(
            _linear(
                f"{name}-linear", "DATASET", method, spec.data, lin, seeds[fname], (spec.name,), twin=f"{fname}-linear"
            )
        )
    method = f"Control: random (untrained) {enc} features, L-BFGS linear head"
    specs.append(
        _linear("random-features-linear", "DATASET", method, "none (random init)", lin, seed + 90, role=CONTROL)
    )
    # low-accuracy readouts: the same frozen encoders, globally pooled
    specs += _gap_specs(specs, dict(lin, arch_kw=dict(p["enc"], pool=1)), p)
    return specs


def _kd_specs(p, seed, data, cnn, base_recipe):
    """The distilled FWORK models: the base recipe, taught by the long-trained model or the VGG."""
    rows = [
        ("kd-from-long", "the long-trained model", "long-training", 49, 0.7, 4.0),
        ("kd-from-vgg", "the VGG-style CNN", "vgg", 60, 0.7, 4.0),
    ]
    extra = [("kd-from-long-t2", "the long-trained model", "long-training", 61, 0.5, 2.0)]  # quick presets only
    return [
        ZooSpec(
            name,
            "FWORK",
            f"Knowledge distillation (T={t:g}, weight {w:g}) of {cnn} from {text}, base recipe",
            data,
            "Distilled",
            "kd",
            dict(base_recipe, kd_weight=w, kd_temperature=t),
            seed + off,
            deps=(teacher,),
        )
        for name, text, teacher, off, w, t in _pick(rows, p, "kd", extra=extra)
    ]


def is_control(meta) -> bool:
    """Whether a model's metadata (a ``meta.json`` dict or a row of :meth:`Store.models`) marks it as a
    control (``role`` "control": an untrained encoder or a non-neural learner), which no category's
    statistics may include.

    Examples
    --------
    >>> is_control({"category": "ARCH", "role": "control"}), is_control({"category": "ARCH"})
    (True, False)
    """
    return meta.get("role") == CONTROL


def zoo_specs(preset: str = "fashion", *, quick: bool = False, seed: int = 0) -> list[ZooSpec]:
    """The zoo of a preset, in training order (dependencies first; ``base`` first of the models).

    Parameters
    ----------
    preset : {"fashion", "digits"}
    quick : bool, default False
        Fewer and shorter models, still every category (for a class and for CI).
    seed : int, default 0
        Replicate: every model's seed is ``SEED_STRIDE * seed`` plus its own offset.

    Returns
    -------
    list of ZooSpec

    Examples
    --------
    >>> from norep.zoo.embedded import zoo_specs
    >>> specs = zoo_specs("fashion")
    >>> sorted({s.category for s in specs if s.in_store})
    ['ARCH', 'DATASET', 'FWORK', 'HPARAM', 'REINIT']
    >>> [s.name for s in specs][:2]  # the long-trained model early: it teaches the distilled one
    ['base', 'long-training']
    >>> by = {s.name: s for s in specs}
    >>> by["natural-rotation-linear"].twin, by["logreg"].role
    ('rotation-linear', 'control')
    """
    key = preset + ("-quick" if quick else "")
    if key not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose 'fashion' or 'digits'")
    p = PRESETS[key]
    seed = SEED_STRIDE * int(seed)
    data = "Fashion-MNIST train" if preset == "fashion" else "sklearn digits train"
    if p["n_train"]:
        data += f" (first {p['n_train']:,})"
    base_recipe = dict(arch="cnn", arch_kw=dict(p["cnn"]), epochs=p["epochs"], **_sgd(p))
    specs: list[ZooSpec] = []

    def sup(name, cat, method, seed_off, *, arch=None, **changes):
        r = json.loads(json.dumps(base_recipe))
        if arch is not None:
            r["arch"], r["arch_kw"] = arch
        if "dropout" in changes:
            r["arch_kw"]["dropout"] = changes.pop("dropout")
        r.update(changes)
        specs.append(ZooSpec(name, cat, method, data, "Trained", "supervised", r, seed + seed_off))

    cnn = "CNN-{c1}/{c2} (two conv layers)".format(**p["cnn"])
    sup("base", "REINIT", f"Sup. {cnn}, SGD, {p['epochs']} epochs on {data} (the base model)", 0)
    for k in range(1, p["n_reinit"] + 1):
        sup(f"reinit-{k}", "REINIT", f"Sup. {cnn}, base recipe, another seed (+{k})", k)
    for name, text, ch, off in _hparam_rows(p):
        sup(name, "HPARAM", f"Sup. {cnn}, base recipe but {text}", off, **ch)
    for name, text, arch, kw, ch, off in _arch_rows(p):
        sup(name, "ARCH", f"Sup. {text}, base recipe", off, arch=(arch, kw), **ch)
    for name, learner, text in _sklearn_rows(p):
        method = f"Control: scikit-learn {text}; log-probabilities as logits"
        recipe = dict(learner=learner, trees=p["forest_trees"])
        specs.append(ZooSpec(name, "ARCH", method, data, "Non-neural", "sklearn", recipe, seed + 48, role=CONTROL))
    specs += _kd_specs(p, seed, data, cnn, base_recipe)
    specs += _representation_specs(p, seed, data)
    # put dependencies before their users, keep base first and the teacher second
    order = {s.name: i for i, s in enumerate(specs)}
    order["long-training"] = 0.5
    return sorted(specs, key=lambda s: order[s.name])
