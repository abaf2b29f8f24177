"""The zoo specification of the embedded study (see :mod:`norep.zoo.embedded`): the presets, one
:class:`ZooSpec` per model or pretrained representation, and :func:`zoo_specs`, the zoo of a preset
in training order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

ZOO_VERSION = 2
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

PRESETS: dict[str, dict[str, Any]] = {
    "fashion": dict(
        n_train=10000,
        cnn=dict(c1=16, c2=32, pool=3),
        epochs=3,
        band_halfwidth=0.02,
        enc=dict(c1=32, c2=32, pool=2),
        n_reinit=7,
        long_epochs=(8, 15),
        mlp_epochs=6,
        pretrain_epochs=3,
        simclr_epochs=4,
        n_other=10000,
        forest_trees=100,
        down_sizes=(3000, 1000, 2000),
        full=True,
    ),
    "fashion-quick": dict(
        n_train=4000,
        cnn=dict(c1=16, c2=32, pool=3),
        epochs=2,
        band_halfwidth=0.02,
        enc=dict(c1=16, c2=32, pool=3),
        n_reinit=1,
        long_epochs=(6,),
        mlp_epochs=3,
        pretrain_epochs=1,
        simclr_epochs=1,
        n_other=2000,
        forest_trees=30,
        down_sizes=(1500, 500, 1000),
        full=False,
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
        n_other=2000,
        forest_trees=60,
        down_sizes=(300, 100, 200),
        full=True,
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
        n_other=1000,
        forest_trees=30,
        down_sizes=(200, 100, 200),
        full=False,
    ),
}
"""Sizes of each preset (``<preset>-quick`` is what ``--quick`` selects). ``fashion``: every network
trains on the first ``n_train`` = 10,000 official training images; the base is a two-convolution CNN
(16 and 32 channels) trained 3 epochs; the accuracy band is the base's test accuracy +- 2 points
(the paper's 74-78 % band is 4 points wide); the representation learners (``FWORK``, ``DATASET``) use
the ``encoder`` (a 5x5 convolution with 32 channels, a 3x3 one with 32, pooled to 2x2: a
128-dimensional embedding) and ``n_other`` = 10,000 images of other data."""

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
        ("batch-size-256", "batch size 256", dict(batch_size=256)),
        ("shift-augmentation", "random shifts of up to 2 pixels (base none)", dict(shift=2)),
        (
            "adamw",
            "AdamW at learning rate 2e-3 (base SGD with Nesterov momentum)",
            dict(optimizer="adamw", lr=2e-3, weight_decay=0.05),
        ),
        ("learning-rate-0.003", "learning rate 0.003 (low-accuracy model)", dict(lr=0.003)),
        ("batch-size-1024", "batch size 1024 (low-accuracy model)", dict(batch_size=1024)),
    ]
    if not p["full"]:
        rows = [rows[4], rows[10]]
    out = [(n, t, ch, 10 + k) for k, (n, t, ch) in enumerate(rows)]
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
    """(name, text, arch, arch_kw, recipe changes) of the neural ARCH models (base recipe, other network)."""
    c = p["cnn"]
    rows = [
        ("mlp", "MLP 784-256-128", "mlp", {}, dict(epochs=p["mlp_epochs"], lr=0.05)),
        (
            "cnn-gap",
            "the base CNN with global average pooling (32-dim embedding; low-accuracy model)",
            "cnn",
            dict(c, pool=1),
            {},
        ),
        ("lenet", "LeNet-5 (ReLU, max-pool)", "lenet", {}, dict(lr=0.05)),
        (
            "cnn-wide",
            "the base CNN twice as wide (32 and 64 channels)",
            "cnn",
            dict(c, c1=2 * c["c1"], c2=2 * c["c2"]),
            {},
        ),
        ("cnn-3conv", "a three-convolution CNN (16, 32, 32 channels)", "cnn", dict(c, convs=3), {}),
        ("cnn-5x5", "the base CNN with 5x5 kernels", "cnn", dict(c, kernel=5), {}),
        ("mlp-deep", "MLP 784-512-256-128", "mlp", dict(hidden=[512, 256, 128]), dict(epochs=p["mlp_epochs"], lr=0.05)),
        ("vgg", "plain VGG-style CNN (5 conv + BN, no residuals)", "vgg", {}, dict(lr=0.05)),
        ("resnet", "small ResNet (width 16, two residual blocks)", "resnet", dict(width=16), {}),
        ("mlp-narrow", "MLP 784-32 (low-accuracy model)", "mlp", dict(hidden=[32]), dict(epochs=1, lr=0.05)),
    ]
    if not p["full"]:
        rows = [rows[0]]
    return rows


def _sklearn_rows(p):
    rows = [
        ("logreg", "logreg", "logistic regression on pixels", True),
        ("knn", "knn", "10-NN (distance-weighted) on PCA-50", False),
        ("random-forest", "forest", f"random forest ({p['forest_trees']} trees) on PCA-50", True),
        ("naive-bayes", "bayes", "Gaussian naive Bayes on PCA-50 (low-accuracy model)", True),
    ]
    return [r for r in rows if p["full"] or not r[3]]


def _encoder(name, task, data, text, other, p, seed, **extra):
    epochs = p["simclr_epochs"] if task == "simclr" else p["pretrain_epochs"]
    recipe = dict(task=task, data=data, arch="encoder", arch_kw=dict(p["enc"]), epochs=epochs, **extra)
    if data != "fashion":
        recipe["n_images"] = p["n_other"]
    return ZooSpec(name, None, text, other, "", "pretrain", recipe, seed, in_store=False)


def _fwork_rows(p):
    """(name, pretext task, text) of the FWORK representation learners (on the training images)."""
    rows = [
        ("simclr", "simclr", "Cont. (SimCLR)"),
        ("autoencoder", "autoencoder", "Reconstruction (denoising AE)"),
        ("inpainting", "inpaint", "Masked-patch reconstruction"),
        ("rotation", "rotation", "Rotation prediction"),
    ]
    return rows if p["full"] else [rows[1]]


def _other_data_rows(p):
    """(name, pretext task, data, what, text) of the DATASET representation learners (on other data)."""
    n = p["n_other"]
    rows = [
        ("procedural", "simclr", "procedural", f"{n} procedural shape images", "Cont. (SimCLR)"),
        ("glyphs", "supervised", "glyphs", f"{n} rendered letters (52 classes)", "Sup."),
        ("natural", "simclr", "natural", f"{n} crops of two photographs", "Cont. (SimCLR)"),
        (
            "natural-autoencoder",
            "autoencoder",
            "natural",
            f"{n} crops of two photographs",
            "Reconstruction (denoising AE)",
        ),
        ("procedural-rotation", "rotation", "procedural", f"{n} procedural shape images", "Rotation prediction"),
        ("glyphs-rotation", "rotation", "glyphs", f"{n} rendered letters (no labels)", "Rotation prediction"),
        ("natural-rotation", "rotation", "natural", f"{n} crops of two photographs", "Rotation prediction"),
    ]
    return rows if p["full"] else [rows[1]]


def _linear(name, category, method, data, recipe, seed, deps=()):
    """A store member read by an L-BFGS linear head from a frozen (or random) encoder."""
    return ZooSpec(name, category, method, data, "L-BFGS", "linear", recipe, seed, deps=deps)


def _gap_specs(specs, gap):
    """The low-accuracy readouts: the frozen encoders of some linear models, globally pooled."""
    out = []
    for name, cat, of in (
        ("autoencoder-linear-gap", "FWORK", "autoencoder-linear"),
        ("rotation-linear-gap", "FWORK", "rotation-linear"),
        ("random-features-gap", "DATASET", "random-features-linear"),
        ("natural-linear-gap", "DATASET", "natural-linear"),
    ):
        src = specs[[x.name for x in specs].index(of)]
        method = src.method.replace("L-BFGS linear head", "globally pooled, L-BFGS linear head (low-accuracy model)")
        out.append(_linear(name, cat, method, src.data, gap, src.seed, src.deps))
    return out


def _representation_specs(p, seed, data):
    """FWORK (other objectives on the training images) and DATASET (representations learned on other data)."""
    e = p["enc"]
    enc = f"encoder CNN ({e['c1']}+{e['c2']} channels, {e['c2'] * e['pool'] ** 2}-dim)"
    lin = dict(l2=1e-4, arch="encoder", arch_kw=dict(p["enc"]))
    specs = []
    for k, (name, task, text) in enumerate(_fwork_rows(p)):
        s = seed + 50 + k
        specs.append(_encoder(f"{name}-encoder", task, "fashion", f"{text} pretraining", data, p, s))
        method = f"{text} {enc} on the training images (no labels), frozen, L-BFGS linear head"
        specs.append(_linear(f"{name}-linear", "FWORK", method, data, lin, s, (f"{name}-encoder",)))
    for k, (name, task, src, what, text) in enumerate(_other_data_rows(p)):
        s = seed + 70 + k
        extra = dict(n_classes=52) if task == "supervised" else {}
        specs.append(_encoder(f"{name}-encoder", task, src, f"{text} pretraining on {what}", what, p, s, **extra))
        method = f"{text} {enc} on {what}, frozen, L-BFGS linear head"
        specs.append(_linear(f"{name}-linear", "DATASET", method, what, lin, s, (f"{name}-encoder",)))
    method = f"Random (untrained) {enc} features, L-BFGS linear head"
    specs.append(_linear("random-features-linear", "DATASET", method, "none (random init)", lin, seed + 90))
    if p["full"]:  # low-accuracy readouts: the same frozen encoders, globally pooled
        specs += _gap_specs(specs, dict(lin, arch_kw=dict(p["enc"], pool=1)))
    return specs


def zoo_specs(preset: str = "fashion", *, quick: bool = False, seed: int = 0) -> list[ZooSpec]:
    """The zoo of a preset, in training order (dependencies first; ``base`` first of the models).

    Parameters
    ----------
    preset : {"fashion", "digits"}
    quick : bool, default False
        Fewer and shorter models, still every category (for CI).
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
    for k, (name, text, arch, kw, ch) in enumerate(_arch_rows(p)):
        sup(name, "ARCH", f"Sup. {text}, base recipe", 40 + k, arch=(arch, kw), **ch)
    for name, learner, text, _ in _sklearn_rows(p):
        specs.append(
            ZooSpec(
                name,
                "ARCH",
                f"scikit-learn {text}; log-probabilities as logits",
                data,
                "Non-neural",
                "sklearn",
                dict(learner=learner, trees=p["forest_trees"]),
                seed + 48,
            )
        )
    specs.append(
        ZooSpec(
            "kd-from-long",
            "FWORK",
            f"Knowledge distillation (T=4, weight 0.7) of {cnn} from the long-trained model, base recipe",
            data,
            "Distilled",
            "kd",
            dict(base_recipe, kd_weight=0.7, kd_temperature=4.0),
            seed + 49,
            deps=("long-training",),
        )
    )
    if p["full"]:
        specs.append(
            ZooSpec(
                "kd-from-vgg",
                "FWORK",
                f"Knowledge distillation (T=4, weight 0.7) of {cnn} from the VGG-style CNN, base recipe",
                data,
                "Distilled",
                "kd",
                dict(base_recipe, kd_weight=0.7, kd_temperature=4.0),
                seed + 60,
                deps=("vgg",),
            )
        )
    specs += _representation_specs(p, seed, data)
    # put dependencies before their users, keep base first and the teacher second
    order = {s.name: i for i, s in enumerate(specs)}
    order["long-training"] = 0.5
    return sorted(specs, key=lambda s: order[s.name])
