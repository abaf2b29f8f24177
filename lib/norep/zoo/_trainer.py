"""Training of the embedded study (see :mod:`norep.zoo.embedded`): :func:`train_zoo` trains the specs
of :func:`norep.zoo._specs.zoo_specs` into a prediction store, caching pretrained representations and
teachers under ``STORE/_cache``.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from norep.zoo._specs import PRESETS, SOURCE, zoo_specs

CONV_ARCHS = ("cnn", "encoder", "resnet", "vgg", "lenet", "autoencoder")
"""Networks whose weights are kept channels-last (oneDNN's fast layout for convolutions on CPU)."""

CORPUS_CHUNK = 5000
"""Images of other data generated at a time (a corpus is a sequence of such chunks)."""


def _progress(total, desc, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=not enabled, file=sys.stderr, unit="step")


def _steps(n, recipe):
    return recipe["epochs"] * max(1, n // recipe.get("batch_size", 128))


def _build(recipe, n_classes):
    import torch

    net = __import__("norep.zoo._nets", fromlist=["build"]).build(recipe["arch"], n_classes, **recipe["arch_kw"])
    if recipe["arch"] in CONV_ARCHS:  # 1.5-1.7x less CPU time than NCHW for the small CNNs (AVX2 and AVX-512)
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
        self.corpora: dict[tuple, list] = {}

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
        labels (``fashion``) or the first ``n_images`` of a corpus of other data (``procedural``,
        ``glyphs``, ``natural``; no Fashion-MNIST), shared by the encoders of a run."""
        src = r["data"]
        if src == "fashion":
            return self.X, None
        return self.corpus(src, r["n_images"], r.get("corpus_seed", seed)), None

    def corpus(self, src, n, seed):
        """The first ``n`` images of the corpus ``src`` drawn with ``seed``, made in chunks of
        :data:`CORPUS_CHUNK` (chunk ``k`` seeded by ``(seed, k)``), so that a longer corpus extends a
        shorter one; kept in memory for the other encoders of the run."""
        from norep.data import glyph_images, natural_patches
        from norep.zoo._nets import procedural_images

        make = {
            "procedural": lambda m, s: procedural_images(m, seed=s),
            "glyphs": lambda m, s: glyph_images(m, seed=s)[0],
            "natural": lambda m, s: natural_patches(m, seed=s),
        }
        if src not in make:
            raise ValueError(f"unknown pretraining data {src!r}")
        chunks = self.corpora.setdefault((src, seed), [])
        while sum(len(c) for c in chunks) < n:
            chunks.append(make[src](CORPUS_CHUNK, int(seed) * 1000 + len(chunks)))
        return np.concatenate(chunks)[:n]

    def _pretrain(self, spec, prec):
        from norep.zoo import _train as T

        r = spec.recipe
        net = _build(r, r.get("n_classes", self.n_classes))
        X, _ = self.pretrain_data(r, spec.seed)
        kw = dict(epochs=r["epochs"], seed=spec.seed, precision=prec, device=self.device)
        if r["task"] == "simclr":
            with _progress(r["epochs"] * (len(X) // 256), spec.name, self.progress) as bar:
                T.fit_simclr(net, X, progress=bar, **kw)
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


def _with_dependencies(specs, by_name, only):
    """The specs of ``only``, ``base`` and their dependencies, in training order."""
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
    return [s for s in specs if s.name in wanted]


def _fingerprint(splits, down, n_train):
    """The data part of every recipe key: the splits, the downstream arrays and the training subset."""
    fingerprint = (
        splits.fingerprint()
        + hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for v in down.values() for a in v)).hexdigest()[:8]
    )
    if n_train:
        fingerprint += f"-n{n_train}"
    return fingerprint


def _open_store(store_path, splits, downstream, p, *, preset, quick, seed):
    """Open (or create) the zoo's store and record the preset, the data and the replicate in its info."""
    from norep.storage import Store

    down, down_names, down_text = downstream
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
    return st


def _row(name, category, tier, test_accuracy, seconds, cpu_seconds, status):
    """One row of the timing table."""
    return dict(
        name=name,
        category=category,
        tier=tier,
        test_accuracy=test_accuracy,
        seconds=seconds,
        cpu_seconds=cpu_seconds,
        status=status,
    )


class _ZooRun:
    """One :func:`train_zoo` call: the recipe keys, the networks kept in memory (dependencies), the
    accuracy band, and the timing rows."""

    def __init__(self, st, trainer, by_name, *, threads, log, preset, precision, device, band_halfwidth):
        self.st = st
        self.trainer = trainer
        self.by_name = by_name
        self.threads = threads
        self.log = log
        self.preset = preset
        self.precision = precision
        self.device = device
        self.band_halfwidth = band_halfwidth
        self.keys: dict[str, str] = {}
        self.nets: dict[str, Any] = {}
        self.rows: list[dict] = []
        self.band = st.accuracy_band if "base" in st else None

    def need_net(self, name):
        """Load or train (into the cache) the network of dependency ``name``."""
        from norep.zoo._train import torch_threads

        if name in self.nets:
            return self.nets[name]
        spec = self.by_name[name]
        net = self.trainer.cached_net(spec, self.keys[name])
        if net is None:
            t0, c0 = time.time(), time.process_time()
            with torch_threads(self.threads):
                net = self.trainer.train(spec, {d: self.need_net(d) for d in spec.deps})
            self.trainer.save_net(spec, self.keys[name], net)
            if not spec.in_store:
                secs, cpu = round(time.time() - t0, 1), round(time.process_time() - c0, 1)
                self.rows.append(_row(name, "(pretrain)", None, None, secs, cpu, "trained"))
                self.log(f"{name:24s} pretrained in {time.time() - t0:6.1f} s")
        self.nets[name] = net
        return net

    def skip(self, spec):
        """Whether store member ``spec`` is in the store with its current recipe key (recorded as skipped)."""
        st = self.st
        if spec.name not in st or st.meta(spec.name).get("recipe_key") != self.keys[spec.name]:
            return False
        m = st.meta(spec.name)
        self.rows.append(_row(spec.name, spec.category, m.get("tier"), m["accuracy"]["test"], 0.0, 0.0, "skipped"))
        return True

    def _outputs(self, spec, deps, keep):
        """Logits and embeddings of store member ``spec``; ``keep``: another spec needs its network."""
        from norep.zoo._train import torch_threads

        trainer = self.trainer
        with torch_threads(self.threads):
            if spec.kind == "sklearn":
                return trainer.train(spec, {}), {}
            cached = trainer.cached_net(spec, self.keys[spec.name]) if keep else None
            net = cached if cached is not None else trainer.train(spec, deps)
            if keep:
                trainer.save_net(spec, self.keys[spec.name], net)
                self.nets[spec.name] = net
            return trainer.outputs(net)

    def _meta(self, spec, acc, t0):
        return dict(
            category=spec.category,
            method=spec.method,
            data=spec.data,
            head=spec.head,
            source=SOURCE,
            recipe=spec.recipe,
            seed=spec.seed,
            kind=spec.kind,
            recipe_key=self.keys[spec.name],
            preset=self.preset,
            tier=_tier(acc, self.band),
            train_seconds=round(time.time() - t0, 2),
            precision=_precision_text(spec, self.by_name, self.precision),
            deps=list(spec.deps),
            **({"role": spec.role} if spec.role else {}),
            **({"twin": spec.twin} if spec.twin else {}),
            **({"device": self.device} if self.device != "cpu" else {}),
        )

    def member(self, spec, needed_by):
        """Train store member ``spec`` (its pretrained dependencies timed on their own) and write it."""
        st = self.st
        deps = {d: self.need_net(d) for d in spec.deps}
        t0, c0 = time.time(), time.process_time()
        logits, emb = self._outputs(spec, deps, spec.name in needed_by)
        acc = float(np.mean(np.argmax(logits["test"], 1) == self.trainer.s.y_test))
        if spec.name == "base":
            hw = self.band_halfwidth
            self.band = (max(0.0, acc - hw), min(1.0, acc + hw))
            st.update_info(accuracy_band=self.band, band_halfwidth=hw)
        meta = self._meta(spec, acc, t0)
        st.add_model(spec.name, logits=logits, embeddings=emb or None, meta=meta, overwrite=spec.name in st)
        secs = time.time() - t0
        cpu = round(time.process_time() - c0, 1)
        self.rows.append(_row(spec.name, spec.category, meta["tier"], acc, round(secs, 1), cpu, "trained"))
        self.log(f"{spec.name:24s} {spec.category:8s} test acc {acc:.4f}  tier {meta['tier']:5s} {secs:6.1f} s")


def _timing_table(rows, st):
    """The timing table, with every model's tier as the store has it now."""
    import pandas as pd

    table = pd.DataFrame(
        rows, columns=["name", "category", "tier", "test_accuracy", "seconds", "cpu_seconds", "status"]
    )
    tiers = {n: st.meta(n).get("tier") for n in st.model_names()}
    table["tier"] = [tiers.get(n, t) for n, t in zip(table["name"], table["tier"], strict=True)]
    return table


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
    from norep.data import load_splits
    from norep.data.downstream import embedded_downstream
    from norep.zoo._train import resolve_device, resolve_precision

    device = resolve_device(device)
    precision = resolve_precision(precision) if device == "cpu" else ("fp32" if precision == "auto" else precision)
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    specs = zoo_specs(preset, quick=quick, seed=seed)
    by_name = {s.name: s for s in specs}
    if only:
        specs = _with_dependencies(specs, by_name, only)
    p = PRESETS[preset + ("-quick" if quick else "")]
    splits = load_splits(preset, path=data_path)
    downstream = embedded_downstream(preset, splits, sizes=p["down_sizes"], seed=0)
    down = downstream[0]
    fingerprint = _fingerprint(splits, down, p["n_train"])
    before = _zoo_of(store_path)
    st = _open_store(store_path, splits, downstream, p, preset=preset, quick=quick, seed=seed)
    if before in (None, (preset, bool(quick), int(seed))):
        _remove_stale(st, by_name, log)
    trainer = _Trainer(
        store_path, splits, down, n_train=p["n_train"], progress=progress, precision=precision, device=device
    )
    run = _ZooRun(
        st,
        trainer,
        by_name,
        threads=threads,
        log=log,
        preset=preset,
        precision=precision,
        device=device,
        band_halfwidth=p["band_halfwidth"],
    )
    needed_by = {d for s in specs for d in s.deps}
    for spec in specs:
        run.keys[spec.name] = spec.key(fingerprint, run.keys, precision, device)
        if spec.in_store and not run.skip(spec):
            run.member(spec, needed_by)
    _retier(st)
    return _timing_table(run.rows, st)


def _zoo_of(store_path) -> tuple | None:
    """(preset, quick, replicate seed) of the zoo an existing store at ``store_path`` holds; None if none."""
    from norep.storage import Store

    if not (Path(store_path) / "store.json").exists():
        return None
    info = Store.open(store_path).info
    if "preset" not in info:
        return None
    return (info["preset"], bool(info.get("quick")), int(info.get("replicate_seed", 0)))


def _remove_stale(st, by_name, log):
    """Remove the members of an earlier version of this zoo (``source`` the embedded study, a name the
    preset no longer has), so that no left-over model enters a category. Models from elsewhere stay."""
    stale = [
        n for n in st.model_names() if st.meta(n).get("source") == SOURCE and not getattr(by_name.get(n), "in_store", 0)
    ]
    for name in stale:
        st.remove_model(name)
    if stale:
        log(f"removed {len(stale)} model(s) this preset no longer has: {', '.join(stale)}")


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
