"""Tests of the prediction store."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest
from scipy.special import softmax as sp_softmax

from norep.storage import SCHEMA_VERSION, Store

CLASSES = ["a", "b", "c", "d"]


def _labels(n, seed=0, c=4):
    return np.random.default_rng(seed).integers(0, c, size=n)


@pytest.fixture
def store(tmp_path):
    return Store.create(
        tmp_path / "s",
        dataset="toy",
        class_names=CLASSES,
        splits={
            "calib": _labels(50, 1),
            "test": _labels(40, 2),
            "down_train": np.random.default_rng(3).integers(0, 2, size=(12, 3)),
        },
        split_class_names={"down_train": ["x", "y", "z"]},
        info={"base_model": "m0", "accuracy_band": [0.2, 0.9]},
    )


def _meta(cat="REINIT", **kw):
    return {"category": cat, "method": "random logits", **kw}


def test_create_open_roundtrip(store):
    st = Store.open(store.path)
    assert st.splits() == ["calib", "test", "down_train"]
    assert st.class_names == CLASSES
    np.testing.assert_array_equal(st.labels("test"), _labels(40, 2))
    assert st.labels("test").dtype == np.int64
    assert st.is_multilabel("down_train") and not st.is_multilabel("test")
    assert st.split_class_names("down_train") == ["x", "y", "z"]
    assert st.labels("down_train").shape == (12, 3)
    assert st.base_model == "m0"
    assert st.accuracy_band == (0.2, 0.9)
    assert st.info["schema_version"] == SCHEMA_VERSION
    assert len(st) == 0 and st.models().empty


def test_add_model_and_read_back(store):
    rng = np.random.default_rng(0)
    lt = rng.normal(size=(40, 4)).astype(np.float16)
    lc = rng.normal(size=(50, 4))
    emb = rng.normal(size=(12, 7))
    store.add_model(
        "m0",
        logits={"calib": lc, "test": lt},
        embeddings={"down_train": emb},
        meta=_meta(data="toy", head="linear", source="test", temperature=2.0, seed=3, recipe={"lr": 0.1}),
    )
    st = Store.open(store.path)
    got = st.logits("m0", "test")
    assert isinstance(got, np.memmap) and got.dtype == np.float16
    np.testing.assert_array_equal(got, lt)
    assert st.logits("m0", "calib").dtype == np.float32
    np.testing.assert_allclose(st.embeddings("m0", "down_train"), emb, rtol=1e-6)
    assert st.embeddings("m0", "test") is None
    assert st.has_logits("m0", "calib") and not st.has_embeddings("m0", "calib")
    df = st.models()
    row = df.iloc[0]
    assert list(df.columns[:7]) == ["name", "category", "method", "data", "head", "source", "temperature"]
    assert row["temperature"] == 2.0 and row["seed"] == 3
    # accuracy recorded = accuracy recomputed independently from the stored logits
    assert row["test_accuracy"] == pytest.approx(np.mean(lt.astype(np.float32).argmax(1) == st.labels("test")))
    assert row["calib_accuracy"] == pytest.approx(np.mean(lc.argmax(1) == st.labels("calib")))
    assert st.meta("m0")["recipe"] == {"lr": 0.1}
    # calibrated probabilities are softmax(logits / T), checked against scipy
    np.testing.assert_allclose(st.probs("m0", "test"), sp_softmax(lt.astype(np.float64) / 2.0, axis=1), atol=1e-6)
    np.testing.assert_allclose(
        st.probs("m0", "test", calibrated=False), sp_softmax(lt.astype(np.float64), axis=1), atol=1e-6
    )
    np.testing.assert_array_equal(st.predictions("m0", "test"), lt.argmax(1))


def test_temperature_is_fitted_on_calib(store):
    rng = np.random.default_rng(1)
    y = store.labels("calib")
    logits = rng.normal(size=(50, 4)) + 6.0 * np.eye(4)[y]  # overconfident: T > 1 expected
    meta = store.add_model("hot", logits={"calib": logits}, meta=_meta("ARCH"))
    t = meta["temperature"]
    nll = lambda T: -np.mean(np.log(sp_softmax(logits / T, axis=1)[np.arange(50), y]))  # noqa: E731
    grid = np.exp(np.linspace(np.log(t) - 0.3, np.log(t) + 0.3, 61))
    assert nll(t) <= min(nll(g) for g in grid) + 1e-7
    assert store.meta("hot")["temperature_fitted_on"] == "calib"
    # without a calib split the temperature defaults to 1
    assert store.add_model("cold", logits={"test": rng.normal(size=(40, 4))}, meta=_meta())["temperature"] == 1.0


def test_models_ordered_by_category(store):
    rng = np.random.default_rng(0)
    for name, cat in [("d", "DATASET"), ("r", "REINIT"), ("a", "ARCH"), ("h", "HPARAM"), ("f", "FWORK")]:
        store.add_model(name, logits={"test": rng.normal(size=(40, 4))}, meta=_meta(cat))
    assert store.models()["category"].tolist() == ["REINIT", "HPARAM", "ARCH", "FWORK", "DATASET"]
    assert set(store.model_names()) == {"d", "r", "a", "h", "f"}


@pytest.mark.parametrize(
    ("logits", "match"),
    [
        (np.zeros((39, 4)), r"model 'bad', split 'test', logits: 39 rows but split 'test' has 40"),
        (np.zeros((40, 3)), r"logits have 3 columns but the store has 4 classes"),
        (np.zeros(40), r"expected a 2-D array"),
        (np.full((40, 4), np.nan), r"model 'bad', split 'test', logits contains NaN or Inf"),
        (np.where(np.eye(40, 4) > 0, np.inf, 0.0), r"contains NaN or Inf \(first at row 0\)"),
        (np.array([["x"] * 4] * 40), r"expected floats"),
    ],
)
def test_bad_logits_named(store, logits, match):
    with pytest.raises(ValueError, match=match):
        store.add_model("bad", logits={"test": logits}, meta=_meta())
    assert "bad" not in store


def test_bad_embeddings_and_splits(store):
    with pytest.raises(ValueError, match=r"model 'e', split 'down_train', embeddings: 11 rows"):
        store.add_model("e", embeddings={"down_train": np.zeros((11, 3))}, meta=_meta())
    with pytest.raises(ValueError, match=r"unknown split 'tset'.*did you mean 'test'"):
        store.add_model("e", logits={"tset": np.zeros((40, 4))}, meta=_meta())
    with pytest.raises(ValueError, match=r"logits are for single-label splits"):
        store.add_model("e", logits={"down_train": np.zeros((12, 3))}, meta=_meta())
    with pytest.raises(ValueError, match=r"embeddings have different widths"):
        store.add_model("e", embeddings={"test": np.zeros((40, 3)), "calib": np.zeros((50, 4))}, meta=_meta())


def test_bad_meta(store):
    x = {"test": np.zeros((40, 4))}
    with pytest.raises(ValueError, match=r"meta\['category'\] must be one of REINIT, HPARAM, ARCH, FWORK, DATASET"):
        store.add_model("m", logits=x, meta={"category": "Architecture", "method": "x"})
    with pytest.raises(ValueError, match=r"meta\['method'\]"):
        store.add_model("m", logits=x, meta={"category": "ARCH"})
    with pytest.raises(ValueError, match="temperature must be a positive"):
        store.add_model("m", logits=x, meta=_meta(temperature=-1))
    with pytest.raises(ValueError, match="at least one split"):
        store.add_model("m", meta=_meta())


def test_duplicate_name_needs_overwrite(store):
    x = {"test": np.zeros((40, 4))}
    store.add_model("m", logits=x, meta=_meta())
    with pytest.raises(ValueError, match=r"model 'm' already exists.*overwrite=True"):
        store.add_model("m", logits=x, meta=_meta())
    store.add_model("m", logits={"test": np.eye(40, 4)}, meta=_meta("ARCH"), overwrite=True)
    assert store.meta("m")["category"] == "ARCH"
    np.testing.assert_array_equal(store.logits("m", "test"), np.eye(40, 4))
    assert not list((store.path / "models").glob(".t*"))


def test_unknown_model_suggests_closest(store):
    store.add_model("resnet50-seed1", logits={"test": np.zeros((40, 4))}, meta=_meta())
    with pytest.raises(ValueError, match=r"unknown model 'resnet50-seed2'.*did you mean 'resnet50-seed1'"):
        store.logits("resnet50-seed2", "test")
    with pytest.raises(ValueError, match=r"has no logits for split 'calib'"):
        store.logits("resnet50-seed1", "calib")


def test_labels_validated_at_creation(tmp_path):
    with pytest.raises(ValueError, match=r"split 'test': labels out of range: found 0..4, expected 0..3"):
        Store.create(tmp_path / "a", dataset="t", class_names=CLASSES, splits={"test": [0, 1, 4]})
    with pytest.raises(ValueError, match=r"split 'test': labels out of range"):
        Store.create(tmp_path / "b", dataset="t", class_names=CLASSES, splits={"test": [-1, 1]})
    with pytest.raises(ValueError, match=r"multi-hot"):
        Store.create(tmp_path / "c", dataset="t", class_names=CLASSES, splits={"d": [[0, 2]]})
    with pytest.raises(ValueError, match=r"integer class ids"):
        Store.create(tmp_path / "d", dataset="t", class_names=CLASSES, splits={"test": [0.5, 1]})
    with pytest.raises(ValueError, match=r"2 class names for 3 label columns"):
        Store.create(
            tmp_path / "e",
            dataset="t",
            class_names=CLASSES,
            splits={"d": np.zeros((2, 3))},
            split_class_names={"d": ["x", "y"]},
        )


def test_create_refuses_existing(store):
    with pytest.raises(ValueError, match="already exists"):
        Store.create(store.path, dataset="t", class_names=CLASSES, splits={"test": [0]})
    st = Store.create(store.path, dataset="t2", class_names=CLASSES, splits={"test": [0]}, overwrite=True)
    assert st.dataset == "t2" and st.splits() == ["test"]


def test_newer_schema_refused(store):
    p = store.path / "store.json"
    rec = json.loads(p.read_text())
    rec["schema_version"] = SCHEMA_VERSION + 1
    p.write_text(json.dumps(rec))
    with pytest.raises(ValueError, match=rf"schema version {SCHEMA_VERSION + 1}, newer than this norep supports"):
        Store.open(store.path)


def test_open_missing_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="no norep store"):
        Store.open(tmp_path)


def test_verify_detects_corruption(store):
    rng = np.random.default_rng(0)
    store.add_model("m", logits={"test": rng.normal(size=(40, 4))}, meta=_meta())
    assert store.verify() == {"models": 1, "arrays": 1, "leftovers": [], "superseded": [], "notes": []}
    f = next((store.path / "models").glob("m/v*/logits.test.npy"))
    raw = bytearray(f.read_bytes())
    raw[-3] ^= 0xFF
    f.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"model 'm': models/m/v1/logits.test.npy checksum mismatch"):
        store.verify()


def test_crash_mid_write_leaves_no_model(store, monkeypatch):
    import norep.storage._write as ns  # the model writer's arrays

    calls = {"n": 0}
    real = ns.save_npy

    def flaky(path, arr):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full (simulated)")
        return real(path, arr)

    monkeypatch.setattr(ns, "save_npy", flaky)
    with pytest.raises(OSError, match="simulated"):
        store.add_model(
            "m", logits={"test": np.zeros((40, 4)), "calib": np.zeros((50, 4))}, meta=_meta(temperature=1.0)
        )
    assert "m" not in store and store.model_names() == []
    assert list((store.path / "models").iterdir()) == [] and store.clean() == []


def test_model_names_with_special_characters(store):
    name = "timm:resnet50.a1_in1k/variant 1"
    store.add_model(name, logits={"test": np.zeros((40, 4))}, meta=_meta())
    assert store.model_names() == [name]
    assert store.logits(name, "test").shape == (40, 4)


def test_update_info_and_add_split(store):
    store.update_info(base_model="x", class_groups={"g1": [0, 1], "g2": [2, 3]})
    st = Store.open(store.path)
    assert st.base_model == "x" and st.class_groups == {"g1": [0, 1], "g2": [2, 3]}
    with pytest.raises(ValueError, match="accuracy_band"):
        st.update_info(accuracy_band=(0.9, 0.1))
    with pytest.raises(ValueError, match="cannot change"):
        st.update_info(splits={})
    st.add_split("extra", [0, 1, 2])
    st.add_split("extra", [0, 1, 2])  # identical: no-op
    with pytest.raises(ValueError, match="different labels"):
        st.add_split("extra", [0, 1, 3])
    assert Store.open(store.path).labels("extra").tolist() == [0, 1, 2]


# ---- concurrency: several processes fill one store (one model each, like a cluster job array)


def _worker(path: str, prefix: str, n: int, barrier) -> None:
    st = Store.open_or_create(
        path, dataset="toy", class_names=CLASSES, splits={"calib": _labels(50, 1), "test": _labels(40, 2)}
    )
    barrier.wait()
    rng = np.random.default_rng(abs(hash(prefix)) % 2**32)
    for i in range(n):
        st.add_model(
            f"{prefix}{i}",
            logits={"calib": rng.normal(size=(50, 4)), "test": rng.normal(size=(40, 4))},
            embeddings={"test": rng.normal(size=(40, 16))},
            meta=_meta("ARCH"),
        )


def test_two_processes_fill_one_store(tmp_path):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    path = str(tmp_path / "shared")
    procs = [ctx.Process(target=_worker, args=(path, p, 6, barrier)) for p in ("p", "q")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    st = Store.open(path)
    assert sorted(st.model_names()) == sorted([f"p{i}" for i in range(6)] + [f"q{i}" for i in range(6)])
    assert st.verify()["arrays"] == 36
    assert not list(Path(path, "models").glob(".tmp-*"))
