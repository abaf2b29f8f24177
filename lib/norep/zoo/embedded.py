"""The embedded default study: a CPU-trained model zoo on Fashion-MNIST spanning the paper's five
categories (paper Sec. 3.1, Table 1), written into a prediction store.

The paper compares ImageNet models to a ResNet-50 base, grouped by how far their training diverges
from it: REINIT (another seed) -> HPARAM (other hyper-parameters) -> ARCH (other architecture) ->
FWORK (other objective on the same images) -> DATASET (representation learned on other data). Here
the base is a two-convolution CNN trained 3 epochs on 10,000 Fashion-MNIST training images, and each
category changes one thing:

* REINIT: the base recipe with other seeds;
* HPARAM: the base network and recipe with one training setting changed (learning rate, weight
  decay, label smoothing, dropout, batch size, shift augmentation, optimiser, epochs); the
  longer-trained runs are the high-accuracy models, a tiny learning rate and a huge batch low ones;
* ARCH: the base recipe with another network (MLPs, LeNet, wider / deeper / 5x5 / globally pooled
  CNNs, a VGG-style CNN, a small ResNet) or a scikit-learn learner (logistic regression, kNN, random
  forest, naive Bayes) whose log-probabilities are logits;
* FWORK: the same images and labels, another objective: knowledge distillation from the long-trained
  model and from the VGG (as DeiT was distilled from a CNN), and encoders learned without labels by
  SimCLR-style contrast, denoising reconstruction, masked-patch reconstruction or rotation
  prediction, frozen and read by an L-BFGS linear head (the paper's SimCLR and linear-probe rows);
* DATASET: frozen encoders learned on data other than Fashion-MNIST (procedural shapes, letters
  rendered with Pillow's font, crops of scikit-learn's two sample photographs; contrast, supervised
  letter classification, reconstruction or rotation prediction) and an untrained random encoder,
  adapted by an L-BFGS linear head only, as CLIP, ALIGN and BiT keep their representation.

Globally pooled readouts of some frozen encoders are the low-accuracy models of FWORK and DATASET.
The accuracy band (the paper's 74-78%) is the base's test accuracy +- ``band_halfwidth`` (fixed in
the preset); each model's ``tier`` is ``band``, ``high`` or ``low``. Training is incremental (a model
whose recipe and data are unchanged is skipped), resumable (the store writes each model atomically),
and deterministic for a seed on one machine. Pretrained encoders and teacher weights are cached under
``STORE/_cache``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ZooSpec", "PRESETS", "zoo_specs", "train_zoo", "zoo_report", "format_timing_table"]

ZOO_VERSION = 2
"""Bumped when a training loop changes in a way that changes results: invalidates every cache key."""

SOURCE = "norep.zoo.embedded"
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


def _representation_specs(p, seed, data):
    """FWORK (other objectives on the training images) and DATASET (representations learned on other data)."""
    n = p["n_other"]
    e = p["enc"]
    enc = f"encoder CNN ({e['c1']}+{e['c2']} channels, {e['c2'] * e['pool'] ** 2}-dim)"
    lin = dict(l2=1e-4, arch="encoder", arch_kw=dict(p["enc"]))
    gap = dict(lin, arch_kw=dict(p["enc"], pool=1))
    fwork = [
        ("simclr", "simclr", "Cont. (SimCLR)"),
        ("autoencoder", "autoencoder", "Reconstruction (denoising AE)"),
        ("inpainting", "inpaint", "Masked-patch reconstruction"),
        ("rotation", "rotation", "Rotation prediction"),
    ]
    other = [
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
    if not p["full"]:
        fwork, other = [fwork[1]], [other[1]]
    specs = []
    for k, (name, task, text) in enumerate(fwork):
        s = seed + 50 + k
        specs.append(_encoder(f"{name}-encoder", task, "fashion", f"{text} pretraining", data, p, s))
        specs.append(
            ZooSpec(
                f"{name}-linear",
                "FWORK",
                f"{text} {enc} on the training images (no labels), frozen, L-BFGS linear head",
                data,
                "L-BFGS",
                "linear",
                lin,
                s,
                deps=(f"{name}-encoder",),
            )
        )
    for k, (name, task, src, what, text) in enumerate(other):
        s = seed + 70 + k
        extra = dict(n_classes=52) if task == "supervised" else {}
        specs.append(_encoder(f"{name}-encoder", task, src, f"{text} pretraining on {what}", what, p, s, **extra))
        specs.append(
            ZooSpec(
                f"{name}-linear",
                "DATASET",
                f"{text} {enc} on {what}, frozen, L-BFGS linear head",
                what,
                "L-BFGS",
                "linear",
                lin,
                s,
                deps=(f"{name}-encoder",),
            )
        )
    specs.append(
        ZooSpec(
            "random-features-linear",
            "DATASET",
            f"Random (untrained) {enc} features, L-BFGS linear head",
            "none (random init)",
            "L-BFGS",
            "linear",
            lin,
            seed + 90,
        )
    )
    if p["full"]:  # low-accuracy readouts: the same frozen encoders, globally pooled
        for name, cat, of in (
            ("autoencoder-linear-gap", "FWORK", "autoencoder-linear"),
            ("rotation-linear-gap", "FWORK", "rotation-linear"),
            ("random-features-gap", "DATASET", "random-features-linear"),
            ("natural-linear-gap", "DATASET", "natural-linear"),
        ):
            src = specs[[x.name for x in specs].index(of)]
            specs.append(
                ZooSpec(
                    name,
                    cat,
                    src.method.replace(
                        "L-BFGS linear head", "globally pooled, L-BFGS linear head (low-accuracy model)"
                    ),
                    src.data,
                    "L-BFGS",
                    "linear",
                    gap,
                    src.seed,
                    deps=src.deps,
                )
            )
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


# ------------------------------------------------------------------------------------------ training


def _progress(total, desc, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, file=sys.stderr, unit="step")


def _steps(n, recipe):
    return recipe["epochs"] * max(1, n // recipe.get("batch_size", 128))


def _build(recipe, n_classes):
    import torch

    net = __import__("norep.zoo._nets", fromlist=["build"]).build(recipe["arch"], n_classes, **recipe["arch_kw"])
    if recipe["arch"] in ("resnet", "vgg", "lenet", "autoencoder"):
        net = net.to(memory_format=torch.channels_last)
    return net


class _Trainer:
    """Trains the specs of one store, caching pretrained representations under ``STORE/_cache``."""

    def __init__(self, store_path, splits, down, *, n_train, progress, precision="fp32", device="cpu"):
        self.cache = Path(store_path) / "_cache"
        self.s = splits
        self.down = down
        self.n_classes = len(splits.class_names)
        self.X = splits.X_train if n_train is None else splits.X_train[:n_train]
        self.y = splits.y_train if n_train is None else splits.y_train[:n_train]
        self.progress = progress
        self.precision = precision
        self.device = device
        self.nets: dict[str, Any] = {}

    # -- cache of networks (teachers, pretrained encoders)
    def _cache_path(self, name, key):
        return self.cache / f"{name}-{key}.pt"

    def cached_net(self, spec, key):
        import torch

        p = self._cache_path(spec.name, key)
        if not p.exists():
            return None
        recipe = spec.recipe
        net = _build(recipe, recipe.get("n_classes", self.n_classes))
        net.load_state_dict(torch.load(p, weights_only=True, map_location="cpu"))
        net.to(self.device).eval()
        return net

    def save_net(self, spec, key, net):
        import torch

        self.cache.mkdir(parents=True, exist_ok=True)
        p = self._cache_path(spec.name, key)
        tmp = p.with_suffix(".tmp")
        torch.save({k: v.cpu() for k, v in net.state_dict().items()}, tmp)
        tmp.replace(p)

    # -- the kinds
    def pretrain_data(self, r, seed):
        """Images (and labels, or None) a ``pretrain`` recipe learns from: the training images without
        labels (``fashion``) or other data (``procedural``, ``glyphs``, ``natural``; no Fashion-MNIST)."""
        from norep.data import glyph_images, natural_patches
        from norep.zoo._nets import procedural_images

        src = r["data"]
        if src == "fashion":
            return self.X, None
        if src == "procedural":
            return procedural_images(r["n_images"], seed=seed), None
        if src == "glyphs":
            return glyph_images(r["n_images"], seed=seed)
        if src == "natural":
            return natural_patches(r["n_images"], seed=seed), None
        raise ValueError(f"unknown pretraining data {src!r}")

    def _pretrain(self, spec, prec):
        from norep.zoo import _train as T

        r = spec.recipe
        net = _build(r, r.get("n_classes", self.n_classes))
        X, y = self.pretrain_data(r, spec.seed)
        kw = dict(epochs=r["epochs"], seed=spec.seed, precision=prec, device=self.device)
        if r["task"] == "simclr":
            with _progress(r["epochs"] * (len(X) // 256), spec.name, self.progress) as bar:
                T.fit_simclr(net, X, flip=r["data"] != "glyphs", progress=bar, **kw)
        elif r["task"] == "supervised":
            with _progress(_steps(len(X), r), spec.name, self.progress) as bar:
                T.fit_supervised(net, X, y, lr=0.05, shift=2, flip=False, progress=bar, **kw)
        else:
            with _progress(_steps(len(X), r), spec.name, self.progress) as bar:
                T.fit_pretext(net, X, task=r["task"], progress=bar, **kw)
        return net

    def _from_encoder(self, spec, enc):
        """A network of ``spec``'s architecture carrying ``enc``'s weights but a fresh head."""
        net = _build(spec.recipe, self.n_classes).to(self.device)
        if enc is not None:
            missing = net.load_state_dict(
                {k: v for k, v in enc.state_dict().items() if not k.startswith("head.")}, strict=False
            )
            assert all(k.startswith("head.") for k in missing.missing_keys), missing
        return net

    def train(self, spec, deps):
        import torch

        from norep.zoo import _train as T

        r = spec.recipe
        prec = spec.precision(self.precision)
        torch.manual_seed(spec.seed)
        if spec.kind == "pretrain":
            return self._pretrain(spec, prec)
        if spec.kind == "sklearn":
            evals = {"calib": self.s.X_calib, "test": self.s.X_test}
            return T.sklearn_logits(
                r["learner"], self.X, self.y, evals, n_classes=self.n_classes, seed=spec.seed, trees=r.get("trees", 60)
            )
        if spec.kind in ("supervised", "kd"):
            net = _build(r, self.n_classes)
            kw = {
                k: r[k]
                for k in ("epochs", "lr", "batch_size", "weight_decay", "label_smoothing", "optimizer", "shift", "flip")
            }
            if spec.kind == "kd":
                kw.update(teacher=deps[spec.deps[0]], kd_weight=r["kd_weight"], kd_temperature=r["kd_temperature"])
            with _progress(_steps(len(self.y), r), spec.name, self.progress) as bar:
                T.fit_supervised(
                    net, self.X, self.y, seed=spec.seed, progress=bar, precision=prec, device=self.device, **kw
                )
            return net
        if spec.kind == "linear":
            net = self._from_encoder(spec, deps[spec.deps[0]] if spec.deps else None)
            return T.fit_linear_head(net, self.X, self.y, l2=r["l2"], seed=spec.seed)
        raise ValueError(f"unknown kind {spec.kind!r}")

    def outputs(self, net):
        """Logits on calib/test and embeddings on calib/test/down_* of a network."""
        from norep.zoo._train import predict

        logits, emb = {}, {}
        for split, X in (("calib", self.s.X_calib), ("test", self.s.X_test)):
            logits[split], emb[split] = predict(net, X, batch_size=256)
        for split, (X, _) in self.down.items():
            _, emb[split] = predict(net, X, batch_size=256)
        return {k: v.astype(np.float16) for k, v in logits.items()}, {k: v.astype(np.float16) for k, v in emb.items()}


def _precision_text(spec, by_name, precision):
    """What the store records as a model's training precision (its own, or its encoder's for a head)."""
    own = spec.precision(precision)
    if spec.kind == "linear" and spec.deps:
        enc = by_name[spec.deps[0]].precision(precision)
        return "fp32" if enc == "fp32" else f"{enc} encoder, fp32 head"
    return own


def _tier(acc, band):
    if band is None:
        return None
    return "band" if band[0] <= acc <= band[1] else ("high" if acc > band[1] else "low")


def _store_splits(splits, down):
    labels = {"calib": splits.y_calib, "test": splits.y_test}
    labels.update({k: Y for k, (_, Y) in down.items()})
    return labels


def train_zoo(
    store_path,
    *,
    preset="fashion",
    quick=False,
    seed=0,
    only=None,
    data_path=None,
    progress=True,
    log=None,
    threads=2,
    precision="auto",
    device="cpu",
):
    """Train the embedded zoo into the store at ``store_path`` (created if absent); skip finished models.

    Parameters
    ----------
    store_path : path-like
    preset : {"fashion", "digits"}
    quick : bool, default False
        Fewer, shorter models (every category still present).
    seed : int, default 0
        Replicate number: every model's seed is ``SEED_STRIDE * seed`` plus its own offset (the data
        splits stay the same, so stores of several seeds are comparable replicates).
    only : list of str, optional
        Train only these models (plus ``base``, which defines the band, and their dependencies).
    data_path : path-like, optional
        Fashion-MNIST folder (default: ``NOREP_DATA``, Debian's package, the user cache).
    progress : bool, default True
        tqdm progress bars on stderr.
    log : callable, optional
        Receives one line per finished model (default: print to stderr).
    threads : int, default 2
        torch intra-op threads while training (results are deterministic for a given value).
    precision : {"auto", "fp32", "bf16"}, default "auto"
        Training arithmetic of the networks: ``bf16`` is bfloat16 autocast (float32 weights, optimiser
        and loss), about 1.2x faster on CPUs with native bfloat16 (AVX512-BF16, AMX); ``auto`` uses it
        there and ``fp32`` elsewhere. Inference (stored logits, embeddings, linear heads) is float32.
        Recorded in each model's metadata and part of its recipe key.
    device : {"cpu", "cuda", "auto"}, default "cpu"
        Where the networks train and predict (``auto``: a CUDA GPU when torch sees one). The recipes
        are the same; a model trained off the CPU records its device, which is part of its recipe key.

    Returns
    -------
    pandas.DataFrame
        The timing table: name, category, tier, test_accuracy, seconds (wall), cpu_seconds (CPU time of
        all threads: on a shared machine, cpu_seconds / threads estimates the unshared wall time),
        status (trained/skipped).

    Examples
    --------
    >>> import tempfile
    >>> from norep.zoo.embedded import train_zoo
    >>> t = train_zoo(tempfile.mkdtemp() + "/s", preset="digits", quick=True, only=["mlp"],
    ...               progress=False, log=lambda line: None, threads=1)
    >>> list(t["name"]), list(t["status"])
    (['base', 'mlp'], ['trained', 'trained'])
    """
    import pandas as pd

    from norep.data import load_splits
    from norep.downstream import embedded_downstream
    from norep.store import Store
    from norep.zoo._train import resolve_device, resolve_precision, torch_threads

    device = resolve_device(device)
    precision = resolve_precision(precision) if device == "cpu" else ("fp32" if precision == "auto" else precision)
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    specs = zoo_specs(preset, quick=quick, seed=seed)
    by_name = {s.name: s for s in specs}
    if only:
        unknown = [n for n in only if n not in by_name]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; this preset has: {', '.join(s.name for s in specs)}")
        wanted = {"base", *only}
        stack = list(wanted)
        while stack:
            for d in by_name[stack.pop()].deps:
                if d not in wanted:
                    wanted.add(d)
                    stack.append(d)
        specs = [s for s in specs if s.name in wanted]
    p = PRESETS[preset + ("-quick" if quick else "")]
    splits = load_splits(preset, path=data_path)
    down, down_names, down_text = embedded_downstream(preset, splits, sizes=p["down_sizes"], seed=0)
    fingerprint = (
        splits.fingerprint()
        + hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for v in down.values() for a in v)).hexdigest()[:8]
    )
    if p["n_train"]:
        fingerprint += f"-n{p['n_train']}"
    st = Store.open_or_create(
        store_path,
        dataset=splits.source,
        class_names=splits.class_names,
        splits=_store_splits(splits, down),
        split_class_names=dict.fromkeys(down, down_names),
        info={"base_model": "base", "preset": preset, "quick": quick, "class_groups": splits.class_groups},
    )
    st.update_info(
        base_model="base",
        preset=preset,
        quick=bool(quick),
        class_groups=splits.class_groups,
        downstream=down_text,
        n_train=p["n_train"] or len(splits.y_train),
        replicate_seed=int(seed),
    )
    trainer = _Trainer(
        store_path, splits, down, n_train=p["n_train"], progress=progress, precision=precision, device=device
    )
    keys: dict[str, str] = {}
    nets: dict[str, Any] = {}
    rows = []
    band = st.accuracy_band if "base" in st else None

    def need_net(name):
        """Load or train (into the cache) the network of dependency ``name``."""
        if name in nets:
            return nets[name]
        spec = by_name[name]
        net = trainer.cached_net(spec, keys[name])
        if net is None:
            t0, c0 = time.time(), time.process_time()
            with torch_threads(threads):
                net = trainer.train(spec, {d: need_net(d) for d in spec.deps})
            trainer.save_net(spec, keys[name], net)
            if not spec.in_store:
                rows.append(
                    dict(
                        name=name,
                        category="(pretrain)",
                        tier=None,
                        test_accuracy=None,
                        seconds=round(time.time() - t0, 1),
                        cpu_seconds=round(time.process_time() - c0, 1),
                        status="trained",
                    )
                )
                log(f"{name:24s} pretrained in {time.time() - t0:6.1f} s")
        nets[name] = net
        return net

    needed_by = {d for s in specs for d in s.deps}
    for spec in specs:
        keys[spec.name] = spec.key(fingerprint, keys, precision, device)
        if not spec.in_store:
            continue
        t0 = time.time()
        c0 = time.process_time()
        if spec.name in st and st.meta(spec.name).get("recipe_key") == keys[spec.name]:
            m = st.meta(spec.name)
            rows.append(
                dict(
                    name=spec.name,
                    category=spec.category,
                    tier=m.get("tier"),
                    test_accuracy=m["accuracy"]["test"],
                    seconds=0.0,
                    cpu_seconds=0.0,
                    status="skipped",
                )
            )
            continue
        deps = {d: need_net(d) for d in spec.deps}  # pretrained representations: timed on their own
        t0, c0 = time.time(), time.process_time()
        with torch_threads(threads):
            if spec.kind == "sklearn":
                logits = trainer.train(spec, {})
                emb = {}
            else:
                cached = trainer.cached_net(spec, keys[spec.name]) if spec.name in needed_by else None
                net = cached if cached is not None else trainer.train(spec, deps)
                if spec.name in needed_by:
                    trainer.save_net(spec, keys[spec.name], net)
                    nets[spec.name] = net
                logits, emb = trainer.outputs(net)
        acc = float(np.mean(np.argmax(logits["test"], 1) == splits.y_test))
        if spec.name == "base":
            hw = p["band_halfwidth"]
            band = (max(0.0, acc - hw), min(1.0, acc + hw))
            st.update_info(accuracy_band=band, band_halfwidth=hw)
        meta = dict(
            category=spec.category,
            method=spec.method,
            data=spec.data,
            head=spec.head,
            source=SOURCE,
            recipe=spec.recipe,
            seed=spec.seed,
            kind=spec.kind,
            recipe_key=keys[spec.name],
            preset=preset,
            tier=_tier(acc, band),
            train_seconds=round(time.time() - t0, 2),
            precision=_precision_text(spec, by_name, precision),
            deps=list(spec.deps),
            **({"device": device} if device != "cpu" else {}),
        )
        st.add_model(spec.name, logits=logits, embeddings=emb or None, meta=meta, overwrite=spec.name in st)
        secs = time.time() - t0
        rows.append(
            dict(
                name=spec.name,
                category=spec.category,
                tier=meta["tier"],
                test_accuracy=acc,
                seconds=round(secs, 1),
                cpu_seconds=round(time.process_time() - c0, 1),
                status="trained",
            )
        )
        log(f"{spec.name:24s} {spec.category:8s} test acc {acc:.4f}  tier {meta['tier']:5s} {secs:6.1f} s")
    _retier(st)
    table = pd.DataFrame(
        rows, columns=["name", "category", "tier", "test_accuracy", "seconds", "cpu_seconds", "status"]
    )
    tiers = {n: st.meta(n).get("tier") for n in st.model_names()}
    table["tier"] = [tiers.get(n, t) for n, t in zip(table["name"], table["tier"], strict=True)]
    return table


def _retier(st):
    """Re-write the ``tier`` of models whose tier no longer matches the store's band (e.g. new base)."""
    band = st.accuracy_band
    if band is None:
        return
    for name in st.model_names():
        m = st.meta(name)
        if m.get("source") != SOURCE:
            continue
        tier = _tier(m["accuracy"]["test"], band)
        if m.get("tier") != tier:
            logits = {s: np.array(st.logits(name, s)) for s in st.splits() if st.has_logits(name, s)}
            emb = {s: np.array(st.embeddings(name, s)) for s in st.splits() if st.has_embeddings(name, s)}
            keep = {
                k: v
                for k, v in m.items()
                if k
                not in (
                    "name",
                    "accuracy",
                    "added_at",
                    "schema_version",
                    "files",
                    "embedding_dim",
                    "temperature_fitted_on",
                )
            }
            keep["tier"] = tier
            st.add_model(name, logits=logits, embeddings=emb or None, meta=keep, overwrite=True)


def format_timing_table(table) -> str:
    """The per-model timing table as text (what ``norep zoo train`` prints at the end).

    Examples
    --------
    >>> import pandas as pd
    >>> from norep.zoo.embedded import format_timing_table
    >>> t = pd.DataFrame([dict(name="base", category="REINIT", tier="band", test_accuracy=0.9,
    ...                        seconds=1.0, status="trained")])
    >>> print(format_timing_table(t).splitlines()[-1])
    total: 1.0 s (1 trained, 0 skipped)
    """
    cpu = "cpu_seconds" in table.columns
    lines = [
        f"{'model':24s} {'category':10s} {'tier':5s} {'test acc':>8s} {'seconds':>8s}"
        + (f" {'cpu s':>8s}" if cpu else "")
        + "  status"
    ]
    for r in table.itertuples():
        acc = "" if r.test_accuracy is None or r.test_accuracy != r.test_accuracy else f"{r.test_accuracy:.4f}"
        lines.append(
            f"{r.name:24s} {r.category:10s} {(r.tier if isinstance(r.tier, str) else ''):5s} {acc:>8s} {r.seconds:8.1f}"
            + (f" {r.cpu_seconds:8.1f}" if cpu else "")
            + f"  {r.status}"
        )
    trained = int((table["status"] == "trained").sum())
    lines.append(
        f"total: {table['seconds'].sum():.1f} s ({trained} trained, {len(table) - trained} skipped)"
        + (f"; CPU time {table['cpu_seconds'].sum():.1f} s" if cpu else "")
    )
    return "\n".join(lines)


def zoo_report(store, **kw):
    """Per-category report of a store and the verdicts on claims C1-C3; see :func:`norep.zoo._report.zoo_report`."""
    from norep.zoo._report import zoo_report as _zr

    return _zr(store, **kw)
