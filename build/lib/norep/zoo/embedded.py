"""The embedded default study: a CPU-trained model zoo on Fashion-MNIST spanning the paper's five
categories (paper Sec. 3.1, Table 1), written into a prediction store.

The paper compares ImageNet models to a ResNet-50 base, grouped by how far their training diverges
from it: REINIT (another seed) -> HPARAM (other hyper-parameters) -> ARCH (other architecture) ->
FWORK (other objective on the same images) -> DATASET (representation learned on other data). Here
the base is a small ResNet with augmentation trained a few epochs on 50,000 Fashion-MNIST images,
and every category is filled with the closest CPU-sized analogue:

* REINIT: the base recipe with other seeds;
* HPARAM: dropout, label smoothing, weight decay and learning rate varied, once jointly, as in
  Table 1 (each its own run, with its own seed); a 3x longer run is the high-accuracy model;
* ARCH: an MLP, a LeNet, a plain VGG-style CNN, a tiny ViT, and scikit-learn learners (logistic
  regression on pixels, kNN and a random forest on PCA features) whose log-probabilities are logits;
* FWORK: knowledge distillation (the base architecture distilled from the longer-trained model, as
  DeiT was distilled from a different CNN), SimCLR-style contrastive pretraining then an L-BFGS
  linear head or fine-tuning (the paper's SimCLR row is fine-tuned), and denoising-autoencoder
  pretraining then a linear head;
* DATASET: contrastive pretraining on procedurally generated shapes, supervised pretraining on
  scikit-learn's digits (upsampled to 28x28), and a random-feature network, each then given a
  linear head or fine-tuned on Fashion-MNIST (as BiT and ViT-S/21k were in the paper).

The accuracy band (the paper's 74-78%) is the base's test accuracy +- ``band_halfwidth``; each model's
``tier`` is ``band``, ``high`` or ``low``. Training is incremental (a model whose recipe and data are
unchanged is skipped), resumable (the store writes each model atomically), and deterministic for a
seed on CPU. Pretrained encoders and teacher weights are cached under ``STORE/_cache``.
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

ZOO_VERSION = 1
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
    kind: str  # supervised | kd | sklearn | linear | finetune | pretrain
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

    def key(self, fingerprint: str, dep_keys: dict[str, str], precision: str = "fp32") -> str:
        own = self.precision(precision)
        blob = json.dumps({"v": ZOO_VERSION, "kind": self.kind, "recipe": self.recipe, "seed": self.seed,
                           "data": fingerprint, "deps": [dep_keys[d] for d in self.deps],
                           **({"precision": own} if own != "fp32" else {})}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------ presets

PRESETS: dict[str, dict[str, Any]] = {
    "fashion": dict(width=24, epochs=3, long_epochs=9, mlp_epochs=10, lenet_epochs=6, vit_epochs=4,
                    ft_epochs=3, simclr_epochs=3, ae_epochs=2, proc_images=20000, proc_epochs=3,
                    digits_epochs=15, n_train=None, flip=True, band_halfwidth=0.015,
                    down_sizes=(3000, 1000, 2000), full=True),
    "fashion-quick": dict(width=16, epochs=2, long_epochs=6, mlp_epochs=5, lenet_epochs=0, vit_epochs=0,
                          ft_epochs=1, simclr_epochs=0, ae_epochs=1, proc_images=0, proc_epochs=0,
                          digits_epochs=5, n_train=20000, flip=True, band_halfwidth=0.015,
                          down_sizes=(1500, 500, 1000), full=False),
    "digits": dict(width=16, epochs=10, long_epochs=30, mlp_epochs=30, lenet_epochs=20, vit_epochs=0,
                   ft_epochs=5, simclr_epochs=6, ae_epochs=6, proc_images=2000, proc_epochs=3,
                   digits_epochs=0, n_train=None, flip=False, band_halfwidth=0.03,
                   down_sizes=(300, 100, 200), full=True),
    "digits-quick": dict(width=16, epochs=8, long_epochs=24, mlp_epochs=20, lenet_epochs=0, vit_epochs=0,
                         ft_epochs=4, simclr_epochs=0, ae_epochs=4, proc_images=0, proc_epochs=0,
                         digits_epochs=0, n_train=None, flip=False, band_halfwidth=0.03,
                         down_sizes=(200, 100, 200), full=False),
}
"""Sizes of each preset (``<preset>-quick`` is what ``--quick`` selects)."""


def zoo_specs(preset: str = "fashion", *, quick: bool = False, seed: int = 0) -> list[ZooSpec]:
    """The zoo of a preset, in training order (dependencies first; ``base`` first of the models).

    Parameters
    ----------
    preset : {"fashion", "digits"}
    quick : bool, default False
        Fewer and shorter models, still every category (for CI).
    seed : int, default 0
        Offset of every model's seed.

    Returns
    -------
    list of ZooSpec

    Examples
    --------
    >>> from norep.zoo.embedded import zoo_specs
    >>> specs = zoo_specs("fashion")
    >>> sorted({s.category for s in specs if s.in_store})
    ['ARCH', 'DATASET', 'FWORK', 'HPARAM', 'REINIT']
    >>> [s.name for s in specs][:3]  # the long-trained model early: it teaches the distilled one
    ['base', 'long-training', 'reinit-1']
    """
    key = preset + ("-quick" if quick else "")
    if key not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose 'fashion' or 'digits'")
    p = PRESETS[key]
    full = p["full"]
    w, E, flip = p["width"], p["epochs"], p["flip"]
    data = "Fashion-MNIST train" if preset == "fashion" else "sklearn digits train"
    if p["n_train"]:
        data += f" (first {p['n_train']})"
    sgd = dict(optimizer="sgd", lr=0.1, weight_decay=5e-4, batch_size=128, label_smoothing=0.0,
               shift=2, flip=flip)
    base_recipe = dict(arch="resnet", arch_kw=dict(width=w), epochs=E, **sgd)
    specs: list[ZooSpec] = []
    lin = dict(l2=1e-4, arch="resnet", arch_kw=dict(width=w))

    def sup(name, cat, method, seed_off, *, head="Trained", arch=None, **changes):
        r = json.loads(json.dumps(base_recipe))
        if arch is not None:
            r["arch"], r["arch_kw"] = arch
        r.update(changes)
        specs.append(ZooSpec(name, cat, method, data, head, "supervised", r, seed + seed_off))

    res = f"ResNet-{w} (small ResNet, width {w})"
    sup("base", "REINIT", f"Sup. {res}, SGD, flip+shift augmentation, {E} epochs (the base model)", 0)
    for k in range(1, 4 if full else 2):
        sup(f"reinit-{k}", "REINIT", f"Sup. {res}, base recipe, seed +{k}", k)
    hp = [("dropout-0.3", "dropout 0.3", dict(arch_kw=dict(width=w, dropout=0.3))),
          ("label-smoothing-0.1", "label smoothing 0.1", dict(label_smoothing=0.1)),
          ("label-smoothing-0.3", "label smoothing 0.3", dict(label_smoothing=0.3)),
          ("weight-decay-5e-5", "weight decay 5e-5 (base 5e-4)", dict(weight_decay=5e-5)),
          ("learning-rate-0.05", "learning rate 0.05 (base 0.1)", dict(lr=0.05)),
          ("lr-0.2-wd-1e-4", "learning rate 0.2 and weight decay 1e-4 jointly", dict(lr=0.2, weight_decay=1e-4))]
    for i, (name, text, ch) in enumerate(hp if full else hp[1:2]):
        sup(name, "HPARAM", f"Sup. {res}, {text}", 10 + i, **ch)
    sup("long-training", "HPARAM", f"Sup. {res}, base recipe trained {p['long_epochs']} epochs "
        "(high-accuracy model)", 20, epochs=p["long_epochs"])

    # ARCH
    sup("mlp", "ARCH", "Sup. MLP 784-256-128, SGD", 30, arch=("mlp", {}), epochs=p["mlp_epochs"],
        lr=0.05, shift=0)
    if p["lenet_epochs"]:
        sup("lenet", "ARCH", "Sup. LeNet-5 (ReLU, max-pool)", 31, arch=("lenet", {}), epochs=p["lenet_epochs"],
            lr=0.05)
    if full:
        sup("vgg", "ARCH", "Sup. plain VGG-style CNN (5 conv + BN, no residuals)", 32, arch=("vgg", {}),
            lr=0.05)
    if p["vit_epochs"]:
        sup("vit", "ARCH", "Sup. tiny ViT (7x7 patches, 4 blocks, dim 64), AdamW", 33, arch=("vit", {}),
            epochs=p["vit_epochs"], optimizer="adamw", lr=2e-3, weight_decay=0.05)
    for name, learner, text, full_only in (
            ("logreg", "logreg", "scikit-learn logistic regression on pixels", True),
            ("knn", "knn", "scikit-learn 10-NN (distance-weighted) on PCA-50", False),
            ("random-forest", "forest", "scikit-learn random forest (60 trees) on PCA-50", True)):
        if full or not full_only:
            specs.append(ZooSpec(name, "ARCH", text + "; log-probabilities as logits", data,
                                 "Non-neural", "sklearn", dict(learner=learner), seed + 34))

    # FWORK
    specs.append(ZooSpec("kd-from-long", "FWORK", f"Knowledge distillation (T=4, weight 0.7) of {res} "
                         "from the long-trained model", data, "Distilled", "kd",
                         dict(base_recipe, kd_weight=0.7, kd_temperature=4.0), seed + 40, deps=("long-training",)))
    if p["simclr_epochs"]:
        specs.append(ZooSpec("simclr-encoder", None, "SimCLR pretraining", data, "", "pretrain",
                             dict(task="simclr", arch="resnet", arch_kw=dict(width=w), epochs=p["simclr_epochs"],
                                  flip=flip), seed + 41, in_store=False))
        specs.append(ZooSpec("simclr-linear", "FWORK", f"Cont. (SimCLR) {res} on the training images, "
                             "frozen, L-BFGS linear head", data, "L-BFGS", "linear", lin, seed + 41,
                             deps=("simclr-encoder",)))
        specs.append(ZooSpec("simclr-finetune", "FWORK", f"Cont. (SimCLR) {res}, fine-tuned {p['ft_epochs']} "
                             "epoch(s) with labels", data, "Fine Tuned", "finetune",
                             dict(base_recipe, epochs=p["ft_epochs"], lr=0.05), seed + 42, deps=("simclr-encoder",)))
    specs.append(ZooSpec("autoencoder-encoder", None, "denoising autoencoder pretraining", data, "", "pretrain",
                         dict(task="autoencoder", arch="autoencoder", arch_kw=dict(width=w), epochs=p["ae_epochs"]),
                         seed + 43, in_store=False))
    specs.append(ZooSpec("autoencoder-linear", "FWORK", f"Reconstruction (denoising autoencoder) {res}, frozen, "
                         "L-BFGS linear head", data, "L-BFGS", "linear", lin, seed + 43,
                         deps=("autoencoder-encoder",)))

    # DATASET
    specs.append(ZooSpec("random-features-linear", "DATASET", f"Random (untrained) {res} features, "
                         "L-BFGS linear head", "none (random init)", "L-BFGS", "linear",
                         lin, seed + 50))
    if p["proc_epochs"]:
        other = f"{p['proc_images']} procedural shape images"
        specs.append(ZooSpec("procedural-encoder", None, "SimCLR on procedural images", other, "", "pretrain",
                             dict(task="procedural-simclr", arch="resnet", arch_kw=dict(width=w),
                                  epochs=p["proc_epochs"], n_images=p["proc_images"], flip=True), seed + 51,
                             in_store=False))
        specs.append(ZooSpec("procedural-linear", "DATASET", f"Cont. (SimCLR) {res} on {other}, frozen, "
                             "L-BFGS linear head", other, "L-BFGS", "linear", lin, seed + 51,
                             deps=("procedural-encoder",)))
        specs.append(ZooSpec("procedural-finetune", "DATASET", f"Cont. (SimCLR) {res} on {other}, fine-tuned "
                             f"{p['ft_epochs']} epoch(s) on the training images", other, "Fine Tuned", "finetune",
                             dict(base_recipe, epochs=p["ft_epochs"], lr=0.05), seed + 52,
                             deps=("procedural-encoder",)))
    if p["digits_epochs"]:
        other = "sklearn digits (1,797, upsampled to 28x28)"
        specs.append(ZooSpec("digits-encoder", None, "supervised pretraining on digits", other, "", "pretrain",
                             dict(task="digits", arch="resnet", arch_kw=dict(width=w), epochs=p["digits_epochs"]),
                             seed + 53, in_store=False))
        if full:
            specs.append(ZooSpec("digits-linear", "DATASET", f"Sup. {res} on {other}, frozen, L-BFGS linear "
                                 "head", other, "L-BFGS", "linear", lin, seed + 53, deps=("digits-encoder",)))
        specs.append(ZooSpec("digits-finetune", "DATASET", f"Sup. {res} on {other}, fine-tuned "
                             f"{p['ft_epochs']} epoch(s) on the training images", other, "Fine Tuned", "finetune",
                             dict(base_recipe, epochs=p["ft_epochs"], lr=0.05), seed + 54,
                             deps=("digits-encoder",)))
    # put dependencies before their users, keep base first
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

    def __init__(self, store_path, splits, down, *, n_train, progress, precision="fp32"):
        self.cache = Path(store_path) / "_cache"
        self.s = splits
        self.down = down
        self.n_classes = len(splits.class_names)
        self.X = splits.X_train if n_train is None else splits.X_train[:n_train]
        self.y = splits.y_train if n_train is None else splits.y_train[:n_train]
        self.progress = progress
        self.precision = precision
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
        net = _build(recipe, self.n_classes)
        net.load_state_dict(torch.load(p, weights_only=True))
        net.eval()
        return net

    def save_net(self, spec, key, net):
        import torch

        self.cache.mkdir(parents=True, exist_ok=True)
        p = self._cache_path(spec.name, key)
        tmp = p.with_suffix(".tmp")
        torch.save(net.state_dict(), tmp)
        tmp.replace(p)

    # -- the kinds
    def train(self, spec, deps):
        import torch

        from norep.zoo import _train as T

        r = spec.recipe
        prec = spec.precision(self.precision)
        torch.manual_seed(spec.seed)
        if spec.kind == "pretrain":
            net = _build(r, self.n_classes)
            if r["task"] in ("simclr", "procedural-simclr"):
                if r["task"] == "simclr":
                    X = self.X
                else:
                    from norep.zoo._nets import procedural_images

                    X = procedural_images(r["n_images"], seed=spec.seed)
                with _progress(r["epochs"] * (len(X) // 256), spec.name, self.progress) as bar:
                    T.fit_simclr(net, X, epochs=r["epochs"], flip=r["flip"], seed=spec.seed, progress=bar,
                                 precision=prec)
            elif r["task"] == "autoencoder":
                with _progress(_steps(len(self.X), r), spec.name, self.progress) as bar:
                    T.fit_autoencoder(net, self.X, epochs=r["epochs"], seed=spec.seed, progress=bar, precision=prec)
            elif r["task"] == "digits":
                from norep.data import digits_images

                Xd, yd = digits_images()
                with _progress(_steps(len(yd), r), spec.name, self.progress) as bar:
                    T.fit_supervised(net, Xd, yd, epochs=r["epochs"], lr=0.05, flip=False, seed=spec.seed,
                                     progress=bar, precision=prec)
            return net
        if spec.kind == "sklearn":
            evals = {"calib": self.s.X_calib, "test": self.s.X_test}
            logits = T.sklearn_logits(r["learner"], self.X, self.y, evals, n_classes=self.n_classes, seed=spec.seed)
            return logits
        if spec.kind in ("supervised", "kd", "finetune"):
            if spec.kind == "finetune":
                enc = deps[spec.deps[0]]
                net = _build(r, self.n_classes)
                missing = net.load_state_dict({k: v for k, v in enc.state_dict().items()
                                               if not k.startswith(("head.", "decoder."))}, strict=False)
                assert all(k.startswith("head.") for k in missing.missing_keys), missing
            else:
                net = _build(r, self.n_classes)
            teacher = deps[spec.deps[0]] if spec.kind == "kd" else None
            kw = {k: r[k] for k in ("epochs", "lr", "batch_size", "weight_decay", "label_smoothing",
                                    "optimizer", "shift", "flip")}
            if teacher is not None:
                kw.update(teacher=teacher, kd_weight=r["kd_weight"], kd_temperature=r["kd_temperature"])
            with _progress(_steps(len(self.y), r), spec.name, self.progress) as bar:
                T.fit_supervised(net, self.X, self.y, seed=spec.seed, progress=bar, precision=prec, **kw)
            return net
        if spec.kind == "linear":
            if spec.deps:
                src = deps[spec.deps[0]]
                net = _build(r, self.n_classes)
                net.load_state_dict({k: v for k, v in src.state_dict().items()
                                     if not k.startswith(("head.", "decoder."))}, strict=False)
            else:
                net = _build(r, self.n_classes)
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


def train_zoo(store_path, *, preset="fashion", quick=False, seed=0, only=None, data_path=None,
              progress=True, log=None, threads=2, precision="auto"):
    """Train the embedded zoo into the store at ``store_path`` (created if absent); skip finished models.

    Parameters
    ----------
    store_path : path-like
    preset : {"fashion", "digits"}
    quick : bool, default False
        Fewer, shorter models (every category still present).
    seed : int, default 0
        Offset of every model's seed.
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
    from norep.downstream import downstream_splits
    from norep.store import Store
    from norep.zoo._train import resolve_precision, torch_threads

    precision = resolve_precision(precision)
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
    down = downstream_splits(splits.X_calib, splits.y_calib, sizes=p["down_sizes"],
                             n_classes=len(splits.class_names), seed=0)
    fingerprint = splits.fingerprint() + hashlib.sha256(
        b"".join(np.ascontiguousarray(a).tobytes() for v in down.values() for a in v)).hexdigest()[:8]
    if p["n_train"]:
        fingerprint += f"-n{p['n_train']}"
    st = Store.open_or_create(
        store_path, dataset=splits.source, class_names=splits.class_names,
        splits=_store_splits(splits, down), split_class_names={k: splits.class_names for k in down},
        info={"base_model": "base", "preset": preset, "quick": quick, "class_groups": splits.class_groups})
    st.update_info(base_model="base", preset=preset, quick=bool(quick), class_groups=splits.class_groups,
                   downstream=("canvases of 1-4 items from calib images in a 2x2 grid, 56x56 average-pooled "
                               "to 28x28; multi-hot labels; disjoint item pools per split"))
    trainer = _Trainer(store_path, splits, down, n_train=p["n_train"], progress=progress, precision=precision)
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
                rows.append(dict(name=name, category="(pretrain)", tier=None, test_accuracy=None,
                                 seconds=round(time.time() - t0, 1),
                                 cpu_seconds=round(time.process_time() - c0, 1), status="trained"))
                log(f"{name:24s} pretrained in {time.time() - t0:6.1f} s")
        nets[name] = net
        return net

    needed_by = {d for s in specs for d in s.deps}
    for spec in specs:
        keys[spec.name] = spec.key(fingerprint, keys, precision)
        if not spec.in_store:
            continue
        t0 = time.time()
        c0 = time.process_time()
        if spec.name in st and st.meta(spec.name).get("recipe_key") == keys[spec.name]:
            m = st.meta(spec.name)
            rows.append(dict(name=spec.name, category=spec.category, tier=m.get("tier"),
                             test_accuracy=m["accuracy"]["test"], seconds=0.0, cpu_seconds=0.0,
                             status="skipped"))
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
        meta = dict(category=spec.category, method=spec.method, data=spec.data, head=spec.head, source=SOURCE,
                    recipe=spec.recipe, seed=spec.seed, kind=spec.kind, recipe_key=keys[spec.name],
                    preset=preset, tier=_tier(acc, band), train_seconds=round(time.time() - t0, 2),
                    precision=_precision_text(spec, by_name, precision),
                    deps=list(spec.deps))
        st.add_model(spec.name, logits=logits, embeddings=emb or None, meta=meta, overwrite=spec.name in st)
        secs = time.time() - t0
        rows.append(dict(name=spec.name, category=spec.category, tier=meta["tier"], test_accuracy=acc,
                         seconds=round(secs, 1), cpu_seconds=round(time.process_time() - c0, 1),
                         status="trained"))
        log(f"{spec.name:24s} {spec.category:8s} test acc {acc:.4f}  tier {meta['tier']:5s} {secs:6.1f} s")
    _retier(st)
    table = pd.DataFrame(rows, columns=["name", "category", "tier", "test_accuracy", "seconds", "cpu_seconds",
                                        "status"])
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
            keep = {k: v for k, v in m.items() if k not in ("name", "accuracy", "added_at", "schema_version",
                                                             "files", "embedding_dim", "temperature_fitted_on")}
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
    lines = [f"{'model':24s} {'category':10s} {'tier':5s} {'test acc':>8s} {'seconds':>8s}"
             + (f" {'cpu s':>8s}" if cpu else "") + "  status"]
    for r in table.itertuples():
        acc = "" if r.test_accuracy is None or r.test_accuracy != r.test_accuracy else f"{r.test_accuracy:.4f}"
        lines.append(f"{r.name:24s} {r.category:10s} {(r.tier if isinstance(r.tier, str) else ''):5s} {acc:>8s} {r.seconds:8.1f}"
                     + (f" {r.cpu_seconds:8.1f}" if cpu else "") + f"  {r.status}")
    trained = int((table["status"] == "trained").sum())
    lines.append(f"total: {table['seconds'].sum():.1f} s ({trained} trained, {len(table) - trained} skipped)"
                 + (f"; CPU time {table['cpu_seconds'].sum():.1f} s" if cpu else ""))
    return "\n".join(lines)


def zoo_report(store, **kw):
    """Per-category report of a store and the verdicts on claims C1-C3; see :func:`norep.zoo._report.zoo_report`."""
    from norep.zoo._report import zoo_report as _zr

    return _zr(store, **kw)
