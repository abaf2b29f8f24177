"""End-to-end tests of the embedded zoo (norep.zoo.embedded) and its report, on the digits preset
(and the quick Fashion-MNIST preset, marked slow). Training runs in subprocesses through the CLI,
as users run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from guards import HANG_S
from norep import CATEGORIES
from norep.data import DataNotFoundError, find_fashion_mnist
from norep.storage import Store

NEURAL_KINDS = {"supervised", "kd", "linear"}


def _train(out, *extra, preset="digits"):
    cmd = [
        sys.executable,
        "-m",
        "norep.cli",
        "zoo",
        "train",
        "--preset",
        preset,
        "--out",
        str(out),
        "--threads",
        "1",
        "--no-progress",
        *extra,
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=HANG_S, env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _statuses(stdout):
    rows = {}
    for line in stdout.splitlines():
        parts = line.split()
        if parts and parts[-1] in ("trained", "skipped"):
            rows[parts[0]] = parts[-1]
    return rows


@pytest.fixture(scope="module")
def digits_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("zoo") / "digits"
    stdout = _train(path, "--quick")
    return path, stdout


def test_store_contents_and_metadata(digits_store):
    path, stdout = digits_store
    st = Store.open(path)
    st.verify()
    models = st.models()
    assert set(models["category"]) == set(CATEGORIES)
    assert st.base_model == "base"
    lo, hi = st.accuracy_band
    base_acc = st.meta("base")["accuracy"]["test"]
    assert lo < base_acc < hi and np.isclose(hi - lo, 2 * st.info["band_halfwidth"])
    assert sorted(i for g in st.class_groups.values() for i in g) == list(range(10))
    for split in ("down_train", "down_val", "down_test"):
        assert st.is_multilabel(split)
        Y = st.labels(split)
        assert Y.shape[1] == 10 and (Y.sum(1) >= 1).all() and (Y.sum(1) <= 4).all()
    assert "train" not in st.splits()  # only calib/test logits are stored
    y = {s: st.labels(s) for s in ("calib", "test")}
    tiers = set()
    for name in st.model_names():
        m = st.meta(name)
        for key in ("category", "method", "data", "head", "source", "recipe", "seed", "tier"):
            assert key in m, (name, key)
        assert m["source"] == "norep.zoo.embedded"
        for s in ("calib", "test"):
            # recorded accuracy equals the accuracy recomputed from the stored logits
            acc = float(np.mean(np.argmax(np.asarray(st.logits(name, s), dtype=np.float32), 1) == y[s]))
            assert m["accuracy"][s] == pytest.approx(acc)
        acc = m["accuracy"]["test"]
        expected = "band" if lo <= acc <= hi else ("high" if acc > hi else "low")
        assert m["tier"] == expected, name
        tiers.add(m["tier"])
        if m["kind"] in NEURAL_KINDS:
            for s in ("calib", "test", "down_train", "down_val", "down_test"):
                e = st.embeddings(name, s)
                assert e is not None and e.shape[0] == st.n_examples(s) and np.isfinite(e).all()
        else:
            assert st.embeddings(name, "calib") is None
    assert "high" in tiers  # the long-trained model is above the band
    from norep.zoo.embedded import zoo_specs

    # controls and twins are recorded as planned, and a twin is in the store
    for spec in zoo_specs("digits", quick=True):
        if spec.in_store:
            m = st.meta(spec.name)
            assert (m.get("role"), m.get("twin")) == (spec.role or None, spec.twin or None), spec.name
    assert st.meta("natural-autoencoder-linear")["twin"] == "autoencoder-linear" and "autoencoder-linear" in st
    assert st.meta("knn")["role"] == "control" and st.meta("random-features-linear")["role"] == "control"
    assert "base" in stdout and "total:" in stdout  # the timing table
    assert "OpenMP threads waited by the environment's setting" in stdout  # the tests set OMP_WAIT_POLICY


def test_rerun_skips_everything(digits_store):
    path, _ = digits_store
    st = Store.open(path)
    before = {n: st.meta(n)["added_at"] for n in st.model_names()}
    stdout = _train(path, "--quick")
    statuses = _statuses(stdout)
    assert set(statuses) >= set(before) and set(statuses.values()) == {"skipped"}
    st = Store.open(path)
    assert {n: st.meta(n)["added_at"] for n in st.model_names()} == before


def test_resume_after_interruption_and_determinism(digits_store, tmp_path):
    path, _ = digits_store
    # an interrupted run: only some models written (plus a leftover temp dir of a half-written one)
    part = tmp_path / "part"
    stdout = _train(part, "--quick", "--only", "mlp", "kd-from-long")
    assert _statuses(stdout) == {
        "base": "trained",
        "long-training": "trained",
        "mlp": "trained",
        "kd-from-long": "trained",
    }
    st = Store.open(part)
    (part / "models" / ".tmp-reinit-1-deadbeef").mkdir()
    done = {n: st.meta(n)["added_at"] for n in st.model_names()}
    stdout = _train(part, "--quick")
    statuses = _statuses(stdout)
    assert all(statuses[n] == "skipped" for n in done)
    assert statuses["reinit-1"] == "trained" and statuses["autoencoder-linear"] == "trained"
    st = Store.open(part)
    assert all(st.meta(n)["added_at"] == t for n, t in done.items())
    # same seed -> identical logits, here between two independent stores
    ref = Store.open(path)
    assert ref.model_names() == st.model_names()
    for name in st.model_names():
        for s in ("calib", "test"):
            np.testing.assert_array_equal(st.logits(name, s), ref.logits(name, s), err_msg=name)


def test_other_seed_changes_models(digits_store, tmp_path):
    path, _ = digits_store
    _train(tmp_path / "s1", "--quick", "--only", "base", "--seed", "1")
    a = Store.open(path).logits("base", "test")
    b = Store.open(tmp_path / "s1").logits("base", "test")
    assert not np.array_equal(a, b)


def test_unknown_model_name_is_a_clean_error(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "norep.cli",
            "zoo",
            "train",
            "--preset",
            "digits",
            "--out",
            str(tmp_path / "x"),
            "--only",
            "resnet-9000",
        ],
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert proc.returncode == 1 and proc.stderr.startswith("norep: unknown model")
    assert "Traceback" not in proc.stderr


def test_precision_is_recorded_and_part_of_the_recipe_key(digits_store, tmp_path):
    path, _ = digits_store
    ref = Store.open(path)
    assert ref.meta("base")["precision"] == "fp32"  # the small CNNs, the MLP and the heads train in fp32
    assert ref.meta("mlp")["precision"] == "fp32" and ref.meta("knn")["precision"] == "fp32"
    out = tmp_path / "p"
    _train(out, "--only", "vgg", "--precision", "fp32")  # bf16 autocast applies to the VGG and the ResNet
    fp32 = np.array(Store.open(out).logits("vgg", "test"))
    assert Store.open(out).meta("vgg")["precision"] == "fp32"
    stdout = _train(out, "--only", "vgg", "--precision", "bf16")
    assert _statuses(stdout)["vgg"] == "trained" and _statuses(stdout)["base"] == "skipped"
    st = Store.open(out)
    assert st.meta("vgg")["precision"] == "bf16"
    bf16 = np.array(st.logits("vgg", "test"))
    assert not np.array_equal(fp32, bf16)  # autocast really changed the arithmetic
    assert np.mean(fp32.argmax(1) == bf16.argmax(1)) > 0.9  # ... but not the model
    stdout = _train(out, "--only", "vgg", "--precision", "fp32")
    assert _statuses(stdout)["vgg"] == "trained"  # back to fp32: retrained, and the same model as before
    np.testing.assert_array_equal(np.array(Store.open(out).logits("vgg", "test")), fp32)


def test_resolve_precision():
    from norep.zoo._train import native_bf16, resolve_precision

    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    assert resolve_precision("auto") == ("bf16" if native_bf16() else "fp32")
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_precision("fp16")


@pytest.mark.parametrize("env", [{"ATEN_CPU_CAPABILITY": "avx2"}, {"ONEDNN_MAX_CPU_ISA": "AVX2"}])
def test_native_bf16_is_false_under_an_avx2_cap(env):
    """An AVX2-only CPU is emulated by capping the kernels; auto precision must then be float32 as there."""
    code = "from norep.zoo._train import native_bf16, resolve_precision; print(native_bf16(), resolve_precision())"
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "fp32"]


def test_report_against_direct_computation(digits_store):
    from norep.commands.zoo_report import zoo_report

    path, _ = digits_store
    st = Store.open(path)
    rep = zoo_report(st, n_resamples=200, in_band_only=False)
    y = st.labels("test")
    base_ok = st.predictions("base", "test") == y
    controls = {n for n in st.model_names() if st.meta(n).get("role") == "control"}
    assert controls == {"knn", "random-features-linear"}  # the quick digits zoo's controls
    assert set(rep.per_model["name"]) == set(st.model_names()) - {"base"} - controls
    assert set(rep.excluded.loc[rep.excluded["tier"] == "control", "name"]) == controls
    for r in rep.per_model.itertuples():
        ok = st.predictions(r.name, "test") == y
        assert r.error_inconsistency == pytest.approx(np.mean(ok != base_ok))
        ens = (st.probs(r.name, "test") + st.probs("base", "test")).argmax(1) == y
        assert r.ensemble_gain == pytest.approx(ens.mean() - (ok.mean() + base_ok.mean()) / 2)
        incons = ok != base_ok
        if incons.any():
            assert r.conversion_rate == pytest.approx((ens & incons).sum() / incons.sum())
    for r in rep.per_category.itertuples():
        sub = rep.per_model[rep.per_model["category"] == r.category]
        assert r.error_inconsistency == pytest.approx(sub["error_inconsistency"].mean())
        assert r.ei_low <= r.error_inconsistency <= r.ei_high
        assert r.gain_low <= r.ensemble_gain <= r.gain_high
    assert list(rep.claims["claim"]) == ["C1", "C2", "C3"]
    assert set(rep.claims["verdict"]) <= {
        "reproduced",
        "partly reproduced",
        "not reproduced",
        "inconclusive",
        "not testable",
    }
    # the verdicts are norep.paper's (the book's), on the same study
    from norep import claims, paper

    study = claims.open_study(path, accuracy_band=(0.0, 1.0))
    study.table = study.table[~study.table["name"].isin(controls)].reset_index(drop=True)
    c = rep.claims.set_index("claim")
    for claim, fn in (
        ("C1", paper.c1_error_inconsistency),
        ("C2", paper.c2_ensemble_gain),
        ("C3", paper.c3_conversion_rate),
    ):
        res = fn(study, n_boot=200)
        assert c.loc[claim, "verdict"] == res.status, claim
        assert c.loc[claim, "n_pairs"] == res.n_pairs
    if c.loc["C1", "verdict"] != "not testable":
        pm = rep.per_model.groupby("category")["error_inconsistency"].mean()
        assert c.loc["C1", "statistic"] == pytest.approx(pm["DATASET"] - pm["REINIT"])
    # in-band only: every kept model lies in the band, every dropped one outside it
    banded = zoo_report(st, n_resamples=50)  # band membership on the selection split (calib)
    lo, hi = banded.band  # the store's band, re-centred on the base's calib accuracy
    base_calib = float(np.mean(st.predictions("base", "calib") == st.labels("calib")))
    assert (lo + hi) / 2 == pytest.approx(base_calib) or lo == 0.0 or hi == 1.0
    assert banded.per_model["selection_accuracy"].between(lo, hi).all()
    assert not banded.excluded["accuracy"].between(lo, hi).any()


def test_report_cli(digits_store):
    path, _ = digits_store
    proc = subprocess.run(
        [sys.executable, "-m", "norep.cli", "zoo", "report", str(path), "--resamples", "100"],
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert proc.returncode == 0, proc.stderr
    for word in ("REINIT", "C1:", "C2:", "C3:", "error inconsistency"):
        assert word in proc.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "norep.cli", "zoo", "report", str(path / "nope")],
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert bad.returncode == 1 and bad.stderr.startswith("norep: ")


def _fashion_available():
    try:
        find_fashion_mnist()
        return True
    except DataNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _fashion_available(), reason="Fashion-MNIST not installed")
def test_quick_fashion_preset(tmp_path):
    stdout = _train(tmp_path / "fq", "--quick", preset="fashion")
    st = Store.open(tmp_path / "fq")
    assert set(st.models()["category"]) == set(CATEGORIES)
    assert st.info["preset"] == "fashion" and st.info["quick"] is True
    assert st.n_examples("test") == 5000 and st.n_examples("calib") == 5000
    assert st.meta("base")["accuracy"]["test"] > 0.72
    assert st.split_class_names("down_train") == [str(d) for d in range(10)]  # digits: not the upstream classes
    assert json.loads(json.dumps(st.info["class_groups"]))["footwear"] == [5, 7, 9]
    assert all(
        st.embeddings(n, "down_test") is not None for n in st.model_names() if st.meta(n)["kind"] in NEURAL_KINDS
    )
    assert "total:" in stdout
    # what a class needs: >= 5 in-band models per category and >= 3 above the band, chosen on calib
    from norep.study import load_study

    study = load_study(tmp_path / "fq")
    t = study.table
    in_band = t[t["in_band"]].groupby("category").size()
    assert set(in_band.index) == set(CATEGORIES) and in_band.min() >= 5, in_band.to_dict()
    assert (t["tier"] == "high").sum() >= 3 and (t["tier"] == "low").sum() >= 3


def _record_pretraining(monkeypatch):
    """Instrument the training loops: every array a ``pretrain`` spec's loop receives, by spec name."""
    from norep.zoo import _train as T
    from norep.zoo import _trainer

    seen, current = {}, []

    def recorder(orig):
        def wrap(net, X, *args, **kw):
            if current:
                seen.setdefault(current[-1], []).append((np.array(X), None if not args else np.array(args[0])))
            return orig(net, X, *args, **kw)

        return wrap

    for fn in ("fit_supervised", "fit_simclr", "fit_pretext"):
        monkeypatch.setattr(T, fn, recorder(getattr(T, fn)))
    orig = _trainer._Trainer._pretrain

    def pretrain(self, spec, prec):
        current.append(spec.name)
        try:
            return orig(self, spec, prec)
        finally:
            current.pop()

    monkeypatch.setattr(_trainer._Trainer, "_pretrain", pretrain)
    return seen


def _check_pretraining_data(preset, path, monkeypatch, **kw):
    from norep.data import load_splits
    from norep.zoo.embedded import train_zoo, zoo_specs

    specs = zoo_specs(preset, quick=True)
    dataset = [s.name for s in specs if s.category == "DATASET"]
    fwork = [s.name for s in specs if s.category == "FWORK" and s.kind == "linear"]
    seen = _record_pretraining(monkeypatch)
    train_zoo(
        path, preset=preset, quick=True, only=dataset + fwork, progress=False, log=lambda line: None, threads=1, **kw
    )
    s = load_splits(preset, path=kw.get("data_path"))
    train_rows = {x.tobytes() for x in s.X_train}
    enc = {d for n in dataset for d in next(x for x in specs if x.name == n).deps}
    fenc = {d for n in fwork for d in next(x for x in specs if x.name == n).deps}
    assert enc and fenc and enc <= set(seen) and fenc <= set(seen)
    for name in enc:  # a DATASET encoder: no training image, no training label
        for X, y in seen[name]:
            assert not any(x.tobytes() in train_rows for x in X), name
            # labels, if any, are another task's (the 52 letters), not the training labels
            assert y is None or (int(y.max()) >= len(s.class_names) and not np.array_equal(y, s.y_train[: len(y)])), (
                name
            )
    for name in fenc:  # and the instrument works: FWORK encoders do learn from the training images
        assert all(any(x.tobytes() in train_rows for x in X[:50]) for X, _ in seen[name]), name


def test_dataset_encoders_never_see_training_images_digits(monkeypatch, tmp_path):
    _check_pretraining_data("digits", tmp_path / "d", monkeypatch)


@pytest.mark.skipif(not _fashion_available(), reason="Fashion-MNIST not installed")
def test_dataset_encoders_never_see_training_images_fashion(monkeypatch, tmp_path):
    _check_pretraining_data("fashion", tmp_path / "f", monkeypatch)


def test_device_choice(tmp_path):
    from norep.zoo._train import resolve_device

    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")
        assert resolve_device("auto") == "cpu"


def test_device_cpu_is_the_default_result(digits_store, tmp_path):
    """``--device cpu`` (and ``auto`` without a GPU) gives the default store's models bit for bit."""
    import torch

    path, _ = digits_store
    out = tmp_path / "dev"
    _train(out, "--quick", "--only", "knn", "kd-from-long", "--device", "cpu")
    st, ref = Store.open(out), Store.open(path)
    assert "device" not in st.meta("kd-from-long")
    for name in ("base", "long-training", "kd-from-long", "knn"):
        np.testing.assert_array_equal(st.logits(name, "test"), ref.logits(name, "test"), err_msg=name)
    if not torch.cuda.is_available():
        stdout = _train(out, "--quick", "--only", "kd-from-long", "--device", "auto")
        assert set(_statuses(stdout).values()) == {"skipped"}


def test_seeds_of_replicates_are_disjoint():
    from norep.zoo.embedded import zoo_specs

    for preset in ("fashion", "digits"):
        s0 = {s.seed for s in zoo_specs(preset)}
        s1 = {s.seed for s in zoo_specs(preset, seed=1)}
        assert s0 and not s0 & s1


def _members(preset, quick=False):
    from norep.zoo.embedded import zoo_specs

    return [s for s in zoo_specs(preset, quick=quick) if s.in_store]


def test_fashion_zoo_design_counts():
    """The full preset plans what the study needs: >= 7 candidates per category (controls not counted),
    every category but REINIT with low-accuracy models, the high-accuracy models, and DATASET encoders
    on other data only."""
    from collections import Counter

    from norep.zoo.embedded import zoo_specs

    specs = [s for s in _members("fashion") if s.role != "control"]
    counts = Counter(s.category for s in specs)
    assert set(counts) == set(CATEGORIES) and min(counts.values()) >= 7, counts
    low = {s.category for s in specs if "low-accuracy" in s.method}
    assert low == {"HPARAM", "ARCH", "FWORK", "DATASET"}
    assert sum("high-accuracy" in s.method for s in specs) >= 3
    by = {s.name: s for s in zoo_specs("fashion")}
    for s in specs:
        if s.category == "DATASET":
            assert s.kind == "linear" and all(by[d].recipe["data"] != "fashion" for d in s.deps)
        if s.category == "FWORK" and s.kind == "linear":
            assert all(by[d].recipe["data"] == "fashion" for d in s.deps)
        if s.category == "HPARAM":
            assert s.recipe["arch"] == "cnn"


@pytest.mark.parametrize("preset,quick", [("fashion", False), ("fashion", True), ("digits", False), ("digits", True)])
def test_controls_are_the_untrained_and_non_neural_models(preset, quick):
    """Every untrained encoder and every non-neural learner is a control, and nothing else is."""
    for s in _members(preset, quick):
        untrained = s.kind == "linear" and not s.deps
        assert (s.role == "control") == (s.kind == "sklearn" or untrained), s.name
        assert s.category in CATEGORIES


@pytest.mark.parametrize("preset,quick", [("fashion", False), ("fashion", True), ("digits", False), ("digits", True)])
def test_dataset_models_have_a_framework_twin_with_the_same_recipe(preset, quick):
    """A DATASET model differs from its FWORK twin by its data only: the same encoder, objective,
    initial weights, head and number of optimiser steps, on a corpus of other data larger than the
    training images its twin sees (each image seen once)."""
    from norep.zoo._specs import PRESETS
    from norep.zoo.embedded import zoo_specs

    p = PRESETS[preset + ("-quick" if quick else "")]
    n_train = p["n_train"] or 1000
    by = {s.name: s for s in zoo_specs(preset, quick=quick)}
    dataset = [s for s in by.values() if s.category == "DATASET" and s.role != "control"]
    assert dataset
    for s in dataset:
        twin = by[s.twin]
        assert twin.category == "FWORK" and twin.in_store and twin.kind == s.kind == "linear", s.name
        assert twin.recipe == s.recipe and twin.head == s.head and twin.seed == s.seed, s.name
        (enc,), (tenc,) = (by[d] for d in s.deps), (by[d] for d in twin.deps)
        assert tenc.recipe["data"] == "fashion" and enc.recipe["data"] in ("procedural", "glyphs", "natural")
        assert enc.seed == tenc.seed
        same = {k: v for k, v in enc.recipe.items() if k not in ("data", "n_images", "epochs", "corpus_seed")}
        assert same == {k: v for k, v in tenc.recipe.items() if k not in ("data", "epochs")}, s.name
        batch = 256 if enc.recipe["task"] == "simclr" else 128
        assert enc.recipe["epochs"] * (enc.recipe["n_images"] // batch) == tenc.recipe["epochs"] * (n_train // batch)
        assert enc.recipe["epochs"] == 1 and enc.recipe["n_images"] % batch == 0  # each image once, full batches
        assert enc.recipe["n_images"] > n_train or tenc.recipe["epochs"] == 1  # a larger corpus than the twin's


def test_quick_fashion_plans_every_category():
    """The quick preset plans at least 5 candidates per category for the band (the base included;
    controls, low- and high-accuracy models not counted), a model above the band and low-accuracy
    models for the greedy pools."""
    from collections import Counter

    specs = [s for s in _members("fashion", quick=True) if s.role != "control"]
    near = [s for s in specs if "low-accuracy" not in s.method and "high-accuracy" not in s.method]
    counts = Counter(s.category for s in near)
    assert set(counts) == set(CATEGORIES) and min(counts.values()) >= 5, counts
    assert any("high-accuracy" in s.method for s in specs)
    assert sum("low-accuracy" in s.method for s in specs) >= 2


def test_corpus_is_deterministic_and_extends(tmp_path):
    """A corpus of other data is the same for a seed, and a longer one starts with a shorter one."""
    from norep.zoo._trainer import CORPUS_CHUNK, _Trainer

    t = _Trainer.__new__(_Trainer)
    t.corpora = {}
    a = t.corpus("procedural", 10, 7)
    t2 = _Trainer.__new__(_Trainer)
    t2.corpora = {}
    b = t2.corpus("procedural", CORPUS_CHUNK + 10, 7)
    assert b.shape == (CORPUS_CHUNK + 10, 28, 28) and b.dtype == np.uint8
    np.testing.assert_array_equal(a, b[:10])
    assert not np.array_equal(b[:10], b[CORPUS_CHUNK : CORPUS_CHUNK + 10])  # chunks differ
    assert not np.array_equal(a, t.corpus("procedural", 10, 8))
    with pytest.raises(ValueError, match="unknown pretraining data"):
        t.corpus("imagenet", 10, 7)


def test_openmp_wait_policy_follows_idle_cpus(monkeypatch):
    from norep.commands import zoo_train

    idle = zoo_train.idle_cpus(0.05)
    assert idle is None or 0.0 <= idle <= (os.cpu_count() or 1) + 1e-9
    for var in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(zoo_train, "idle_cpus", lambda interval=0.5: 0.3)
    assert zoo_train.choose_omp_wait(2).startswith("sleeping")
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and "GOMP_SPINCOUNT" not in os.environ
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setattr(zoo_train, "idle_cpus", lambda interval=0.5: 1.9)
    assert zoo_train.choose_omp_wait(2).startswith("spinning briefly")
    assert os.environ["GOMP_SPINCOUNT"] == "3000" and "OMP_WAIT_POLICY" not in os.environ
    assert zoo_train.choose_omp_wait(4).startswith("the environment")  # the user's (or an earlier) choice stays
    monkeypatch.delenv("GOMP_SPINCOUNT")
    monkeypatch.setattr(zoo_train, "idle_cpus", lambda interval=0.5: None)
    assert "unknown" in zoo_train.choose_omp_wait(2) and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def test_keep_freed_memory_on_glibc():
    import platform

    from norep.zoo._train import keep_freed_memory

    assert keep_freed_memory() is (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
