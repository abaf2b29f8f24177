"""Fault injection on the prediction store: crashes, concurrent writers, damaged files, full disks, bad CLI use.

Every case checks one of the store's promises: nothing committed is lost, nothing damaged is read
silently, and every bad input ends in one ``norep: ...`` line naming the file and the cause.
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from norep.cli import main
from norep.storage import Store, StoreError, VerifyError

CLASSES = ["a", "b", "c", "d"]
N_TEST, N_CALIB = 40, 50
LIB = str(Path(__file__).resolve().parents[1] / "lib")


def _labels(n, seed):
    return np.random.default_rng(seed).integers(0, 4, size=n)


def _new_store(path) -> Store:
    return Store.create(
        path,
        dataset="toy",
        class_names=CLASSES,
        splits={"calib": _labels(N_CALIB, 1), "test": _labels(N_TEST, 2)},
        info={"base_model": "m"},
    )


def _meta(cat="ARCH", **kw):
    return {"category": cat, "method": "toy", **kw}


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("norep: "), err
    assert "Traceback" not in err
    return lines[0]


def _cli(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    return rc, out.out, out.err


# ------------------------------------------------------------------------------------------------
# SIGKILL at random moments: the store is always either the old or the new state


_WRITER = textwrap.dedent("""
    import os, sys, numpy as np
    sys.path.insert(0, {lib!r})
    from norep.storage import Store
    st = Store.open({path!r})
    mode = {mode!r}
    k = 1
    while True:
        k += 1
        v = float(k % 1000)
        if mode == "overwrite":
            st.add_model("m", logits={{"test": np.full(({nt}, 4), v), "calib": np.full(({nc}, 4), v)}},
                         embeddings={{"test": np.full(({nt}, 64), v)}},
                         meta={{"category": "ARCH", "method": "toy", "k": k, "temperature": 1.0}}, overwrite=True)
        elif mode == "merge":
            st.add_model("m", logits={{"calib": np.full(({nc}, 4), v)}},
                         meta={{"category": "ARCH", "method": "toy", "k": k}}, overwrite=True, merge=True)
        elif mode == "add":
            st.add_model(f"n{{os.getpid()}}-{{k}}", logits={{"test": np.full(({nt}, 4), v)}},
                         meta={{"category": "ARCH", "method": "toy", "k": k}})
        elif mode == "import":
            np.save({tmp!r} + f"/c{{k % 2}}.npy", np.full(({nc}, 4), v))
            from norep.cli import main
            main(["import", "--store", {path!r}, "--name", "m", "--category", "ARCH", "--method", "toy",
                  "--split", "calib", "--logits", {tmp!r} + f"/c{{k % 2}}.npy", "--overwrite"])
        print(k, flush=True)
""")


def _check_model_consistent(st: Store) -> None:
    meta = st.meta("m")
    assert st.has_logits("m", "test"), "the test logits of model m were lost"
    lt = np.asarray(st.logits("m", "test"))
    lc = np.asarray(st.logits("m", "calib"))
    assert np.unique(lt).size == 1 and np.unique(lc).size == 1
    if "k" in meta and meta.get("temperature_fitted_on") is None:
        # overwrite: every array and the metadata come from one and the same write
        assert float(lt[0, 0]) == float(lc[0, 0]) == float(meta["k"] % 1000)


@pytest.mark.parametrize("mode", ["overwrite", "merge", "add", "import"])
def test_sigkill_at_random_moments_never_loses_or_mixes(tmp_path, mode):
    st = _new_store(tmp_path / "s")
    st.add_model(
        "m",
        logits={"test": np.full((N_TEST, 4), 1.0), "calib": np.full((N_CALIB, 4), 1.0)},
        embeddings={"test": np.full((N_TEST, 64), 1.0)},
        meta=_meta(k=1, temperature=1.0),
    )
    script = _WRITER.format(lib=LIB, path=str(st.path), mode=mode, nt=N_TEST, nc=N_CALIB, tmp=str(tmp_path))
    rng = random.Random(mode)
    rounds = 3 if mode == "import" else 5
    for _ in range(rounds):
        proc = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        proc.stdout.readline()  # at least one write done: the interpreter and numpy are loaded
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err
        st = Store.open(st.path)
        report = st.verify()  # everything committed checks out
        _check_model_consistent(st)
        if mode == "merge":
            assert st.has_embeddings("m", "test"), "merge lost the embeddings"
        if mode == "add":
            assert all(st.has_logits(n, "test") for n in st.model_names())
    removed = st.clean()
    assert sorted(removed) == sorted(report["leftovers"])
    assert st.verify()["leftovers"] == []
    assert "m" in st


# ------------------------------------------------------------------------------------------------
# concurrent writers


_IMPORTER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {lib!r})
    from norep.cli import main
    while time.time() < {start}:
        time.sleep(0.001)
    sys.exit(main(["import", "--store", {path!r}, "--name", {name!r}, "--category", "ARCH", "--method", "toy",
                   "--split", {split!r}, "--logits", {file!r}]))
""")


def _import_at(start, path, name, split, file):
    code = _IMPORTER.format(lib=LIB, start=start, path=str(path), name=name, split=split, file=str(file))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_imports_of_one_models_splits_keep_both(tmp_path):
    st = _new_store(tmp_path / "s")
    np.save(tmp_path / "t.npy", np.eye(N_TEST, 4))
    np.save(tmp_path / "c.npy", np.eye(N_CALIB, 4))
    for i in range(3):
        start = time.time() + 1.5
        procs = [
            _import_at(start, st.path, f"m{i}", "test", tmp_path / "t.npy"),
            _import_at(start, st.path, f"m{i}", "calib", tmp_path / "c.npy"),
        ]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
        st = Store.open(st.path)
        assert st.has_logits(f"m{i}", "test") and st.has_logits(f"m{i}", "calib"), f"round {i}: a split was lost"
    assert st.verify()["arrays"] == 6


def test_concurrent_adds_of_one_name_one_wins_cleanly(tmp_path):
    st = _new_store(tmp_path / "s")
    np.save(tmp_path / "t.npy", np.eye(N_TEST, 4))
    np.save(tmp_path / "u.npy", np.eye(N_TEST, 4)[::-1].copy())
    start = time.time() + 1.5
    procs = [
        _import_at(start, st.path, "same", "test", tmp_path / "t.npy"),
        _import_at(start, st.path, "same", "test", tmp_path / "u.npy"),
    ]
    results = [(p.wait(60), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 1], results
    err = next(e for rc, e in results if rc == 1)
    assert "already has logits.test.npy" in _one_line(err)
    st = Store.open(st.path)
    st.verify()
    got = np.asarray(st.logits("same", "test"))
    assert np.array_equal(got, np.eye(N_TEST, 4)) or np.array_equal(got, np.eye(N_TEST, 4)[::-1])


def test_concurrent_writers_of_different_models_all_land(tmp_path):
    st = _new_store(tmp_path / "s")
    np.save(tmp_path / "t.npy", np.eye(N_TEST, 4))
    start = time.time() + 1.5
    procs = [_import_at(start, st.path, f"p{i}", "test", tmp_path / "t.npy") for i in range(4)]
    for p in procs:
        assert p.wait(60) == 0, p.stderr.read()
    assert sorted(Store.open(st.path).model_names()) == [f"p{i}" for i in range(4)]


# ------------------------------------------------------------------------------------------------
# merging keeps what is there, refuses to replace or to build on damage


def test_merge_keeps_arrays_and_metadata(tmp_path, capsys):
    st = _new_store(tmp_path / "s")
    np.save(tmp_path / "l.npy", np.eye(N_TEST, 4))
    np.save(tmp_path / "e.npy", np.ones((N_TEST, 8)))
    base = ["import", "--store", st.path, "--name", "m", "--category", "ARCH", "--method", "toy", "--split", "test"]
    assert _cli([*base, "--logits", tmp_path / "l.npy", "--data", "IN", "--head", "trained"], capsys)[0] == 0
    assert _cli([*base, "--embeddings", tmp_path / "e.npy"], capsys)[0] == 0
    st = Store.open(st.path)
    meta = st.meta("m")
    assert st.has_logits("m", "test") and st.has_embeddings("m", "test")
    assert meta["data"] == "IN" and meta["head"] == "trained"
    assert meta["accuracy"]["test"] == pytest.approx(np.mean(np.eye(N_TEST, 4).argmax(1) == st.labels("test")))
    # the same import again: a no-op; other values without --overwrite: refused, nothing changed
    before = (st.path / "store.json").read_bytes()
    rc, out, _ = _cli([*base, "--logits", tmp_path / "l.npy", "--data", "IN", "--head", "trained"], capsys)
    assert rc == 0 and "nothing changed" in out and (st.path / "store.json").read_bytes() == before
    np.save(tmp_path / "l2.npy", np.eye(N_TEST, 4)[::-1])
    rc, _, err = _cli([*base, "--logits", tmp_path / "l2.npy"], capsys)
    assert rc == 1 and "already has logits.test.npy with other values" in _one_line(err) and "--overwrite" in err
    assert Store.open(st.path).meta("m") == meta


def test_merge_refuses_to_build_on_a_corrupt_array(tmp_path, capsys):
    st = _new_store(tmp_path / "s")
    st.add_model("m", logits={"test": np.eye(N_TEST, 4)}, meta=_meta())
    f = next(st.path.glob("models/m/v*/logits.test.npy"))
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 0x40
    f.write_bytes(bytes(raw))
    np.save(tmp_path / "c.npy", np.eye(N_CALIB, 4))
    rc, _, err = _cli(
        [
            "import",
            "--store",
            st.path,
            "--name",
            "m",
            "--category",
            "ARCH",
            "--method",
            "toy",
            "--split",
            "calib",
            "--logits",
            tmp_path / "c.npy",
        ],
        capsys,
    )
    line = _one_line(err)
    assert rc == 1 and "logits.test.npy" in line and "checksum" in line
    with pytest.raises(VerifyError, match="checksum mismatch"):
        Store.open(st.path).verify()  # still reported: nothing re-sealed the damage


def test_create_overwrite_validates_first_and_swaps(tmp_path):
    st = _new_store(tmp_path / "s")
    st.add_model("m", logits={"test": np.eye(N_TEST, 4)}, meta=_meta())
    with pytest.raises(StoreError, match="labels out of range"):
        Store.create(st.path, dataset="t", class_names=CLASSES, splits={"test": [0, 9]}, overwrite=True)
    assert "m" in Store.open(st.path) and Store.open(st.path).verify()["arrays"] == 1
    new = Store.create(st.path, dataset="t2", class_names=CLASSES, splits={"test": [0, 1]}, overwrite=True)
    assert new.dataset == "t2" and len(new) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # nothing left beside it


# ------------------------------------------------------------------------------------------------
# damaged or edited files are reported, never read silently


@pytest.fixture()
def filled(tmp_path):
    st = _new_store(tmp_path / "s")
    rng = np.random.default_rng(0)
    st.add_model(
        "m",
        logits={"test": rng.normal(size=(N_TEST, 4)), "calib": rng.normal(size=(N_CALIB, 4))},
        embeddings={"test": rng.normal(size=(N_TEST, 8))},
        meta=_meta(),
    )
    st.add_model("other", logits={"test": rng.normal(size=(N_TEST, 4))}, meta=_meta("DATASET"))
    return st


def _vdir(st, name="m"):
    return next(st.path.glob(f"models/{name}/v*"))


def _reseal_meta(st, name, meta):
    """Write ``meta`` and make the manifest agree: a deliberate, crafted edit."""
    import hashlib

    from norep.storage._schema import _seal

    p = _vdir(st, name) / "meta.json"
    p.write_text(json.dumps(meta))
    info = json.loads((st.path / "store.json").read_text())
    info["models"][name]["meta_sha256"] = hashlib.sha256(p.read_bytes()).hexdigest()
    (st.path / "store.json").write_text(json.dumps(_seal(info)))


def _damage(st, how):
    v = _vdir(st)
    info_path = st.path / "store.json"
    if how == "byte flip":
        f = v / "logits.test.npy"
        raw = bytearray(f.read_bytes())
        raw[-5] ^= 0x01
        f.write_bytes(bytes(raw))
        return "checksum mismatch"
    if how == "truncated array":
        f = v / "logits.test.npy"
        f.write_bytes(f.read_bytes()[:-16])
        return "truncated"
    if how == "deleted meta":
        (v / "meta.json").unlink()
        return "meta.json is missing"
    if how == "deleted model":
        import shutil

        shutil.rmtree(st.path / "models" / "m")
        return "meta.json is missing"
    if how == "edited accuracy":
        meta = json.loads((v / "meta.json").read_text())
        meta["accuracy"]["test"] = 0.99
        (v / "meta.json").write_text(json.dumps(meta))
        return "does not match its checksum"
    if how == "edited category":
        meta = json.loads((v / "meta.json").read_text())
        meta["category"] = "REINIT"
        (v / "meta.json").write_text(json.dumps(meta))
        return "does not match its checksum"
    if how == "reordered class names":
        info = json.loads(info_path.read_text())
        info["class_names"] = info["class_names"][::-1]
        info_path.write_text(json.dumps(info))
        return "does not match its checksum"
    if how == "wrong split n":
        info = json.loads(info_path.read_text())
        info["splits"]["test"]["n"] = 39
        info_path.write_text(json.dumps(info))
        return "does not match its checksum"
    if how == "manifest entry removed":
        info = json.loads(info_path.read_text())
        del info["models"]["m"]
        info_path.write_text(json.dumps(info))
        return "does not match its checksum"
    if how == "crafted file key":
        meta = json.loads((v / "meta.json").read_text())
        meta["files"]["logits.test.npy/../../../../etc/passwd"] = meta["files"]["logits.test.npy"]
        _reseal_meta(st, "m", meta)
        return "not an array of a split"
    if how == "crafted split name":
        from norep.storage._schema import _seal

        info = json.loads(info_path.read_text())
        info["splits"]["../../etc"] = info["splits"].pop("calib")
        info_path.write_text(json.dumps(_seal(info)))
        return "invalid split name"
    if how == "crafted manifest dir":
        from norep.storage._schema import _seal

        info = json.loads(info_path.read_text())
        info["models"]["m"]["dir"] = "../../outside"
        info_path.write_text(json.dumps(_seal(info)))
        return "invalid 'dir'"
    if how == "edited accuracy, resealed":
        meta = json.loads((v / "meta.json").read_text())
        meta["accuracy"]["test"] = 0.99
        _reseal_meta(st, "m", meta)
        return "accuracy"
    if how == "invalid json":
        info_path.write_text("{not json")
        return "store.json is not valid JSON"
    if how == "meta is a list":
        _reseal_meta(st, "m", [1, 2])
        return "expected a JSON object"
    if how == "meta without name":
        meta = json.loads((v / "meta.json").read_text())
        del meta["name"]
        _reseal_meta(st, "m", meta)
        return "'name'"
    raise AssertionError(how)


DAMAGES = [
    "byte flip",
    "truncated array",
    "deleted meta",
    "deleted model",
    "edited accuracy",
    "edited category",
    "reordered class names",
    "wrong split n",
    "manifest entry removed",
    "crafted file key",
    "crafted split name",
    "crafted manifest dir",
    "edited accuracy, resealed",
    "invalid json",
    "meta is a list",
    "meta without name",
]


@pytest.mark.parametrize("how", DAMAGES)
def test_damage_is_detected_and_named(filled, how, capsys):
    expect = _damage(filled, how)
    with pytest.raises((StoreError, FileNotFoundError), match=expect):
        Store.open(filled.path).verify()
    rc, out, err = _cli(["store", "verify", filled.path], capsys)
    assert rc == 1 and "ok:" not in out and expect in err and "Traceback" not in err
    # analyses refuse it too, naming the problem (the verification cache does not hide it)
    from norep.study import load_study

    with pytest.raises(ValueError, match=expect):
        load_study(filled.path, needs=())
    # a command that reads the metadata only gives one line too
    if how not in ("byte flip", "truncated array", "edited accuracy, resealed"):
        rc, _, err = _cli(["zoo", "list", filled.path], capsys)
        assert rc != 0 and expect in _one_line(err)


def test_byte_flip_read_path_refuses_after_cached_ok(filled):
    from norep.study import load_study

    load_study(filled.path, needs=())  # verified and cached
    t0 = time.perf_counter()
    load_study(filled.path, needs=())  # cache hit: no array hashed
    assert time.perf_counter() - t0 < 2.0
    _damage(filled, "byte flip")
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_study(filled.path, needs=())


def test_verification_cache_skips_hashing_when_unchanged(filled, monkeypatch):
    import norep.storage._check as ns  # Store.verify's checksums

    filled.verify_cached()
    calls = {"n": 0}
    real = ns.sha256_file

    def counting(p):
        calls["n"] += 1
        return real(p)

    monkeypatch.setattr(ns, "sha256_file", counting)
    Store.open(filled.path).verify_cached()
    assert calls["n"] == 0
    filled.add_model("new", logits={"test": np.eye(N_TEST, 4)}, meta=_meta())
    Store.open(filled.path).verify_cached()
    assert calls["n"] > 0


def test_legacy_half_overwrite_is_reported_and_restored(tmp_path):
    """A version-1 store whose overwrite (two renames by an older norep) was interrupted."""
    import shutil

    st = _new_store(tmp_path / "s")
    st.add_model("m", logits={"test": np.eye(N_TEST, 4)}, meta=_meta())
    # rebuild the old layout: models/m/{meta.json,...}, no manifest, schema 1
    v = _vdir(st)
    info = json.loads((st.path / "store.json").read_text())
    for k in ("models", "checksum"):
        info.pop(k)
    info["schema_version"] = 1
    hidden = st.path / "models" / ".trash-0123456789ab"
    shutil.move(str(v), str(hidden))
    shutil.rmtree(st.path / "models" / "m")
    (st.path / "store.json").write_text(json.dumps(info))
    with pytest.raises(VerifyError, match=r"model 'm' is hidden in .*\.trash-.*`norep store clean` restores it"):
        Store.open(st.path).verify()
    assert main(["store", "clean", str(st.path)]) == 0
    st = Store.open(st.path)
    assert st.info["schema_version"] == 2 and st.verify()["arrays"] == 1
    np.testing.assert_array_equal(st.logits("m", "test"), np.eye(N_TEST, 4))


def test_load_study_names_what_it_leaves_out(tmp_path, capsys):
    from norep.study import load_study

    st = _new_store(tmp_path / "s")
    st.add_model("m", logits={"test": np.eye(N_TEST, 4), "calib": np.eye(N_CALIB, 4)}, meta=_meta())
    st.add_model("testonly", logits={"test": np.eye(N_TEST, 4)}, meta=_meta("DATASET"))
    study = load_study(st.path)
    assert "testonly" not in study.table["name"].tolist()
    assert "Left out of this page: testonly (no logits on 'calib', which this page needs)" in capsys.readouterr().out
    study = load_study(st.path, needs=())
    assert "testonly" in study.table["name"].tolist()
    assert "Left out" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# a full disk


def test_simulated_enospc_says_so_and_leaves_nothing(filled, monkeypatch, capsys):
    import norep.storage._io as io_

    real = io_._write_all
    calls = {"n": 0}

    def full(f, data):
        calls["n"] += 1
        if calls["n"] >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(f, data)

    before = sorted(p.relative_to(filled.path).as_posix() for p in filled.path.rglob("*"))
    monkeypatch.setattr(io_, "_write_all", full)
    with pytest.raises(StoreError, match="no space left on device"):
        filled.add_model("m", logits={"calib": np.eye(N_CALIB, 4)}, meta=_meta(), overwrite=True, merge=True)
    calls["n"] = 0
    np.save(filled.path.parent / "y.npy", np.zeros(7, dtype=np.int64))
    np.save(filled.path.parent / "e.npy", np.ones((7, 3)))
    monkeypatch.setattr(io_, "_write_all", full)
    rc, _, err = _cli(
        [
            "import",
            "--store",
            filled.path,
            "--name",
            "z",
            "--category",
            "ARCH",
            "--method",
            "x",
            "--split",
            "extra",
            "--labels",
            filled.path.parent / "y.npy",
            "--embeddings",
            filled.path.parent / "e.npy",
        ],
        capsys,
    )
    assert rc == 1 and "no space left on device" in _one_line(err)
    monkeypatch.setattr(io_, "_write_all", real)
    after = sorted(p.relative_to(filled.path).as_posix() for p in filled.path.rglob("*"))
    assert [p for p in after if p not in before and not p.startswith(".lock")] == []
    assert Store.open(filled.path).verify()["leftovers"] == []

    def no_chmod(fd, mode):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_.os, "fchmod", no_chmod)
    with pytest.raises(StoreError, match=r"cannot write .*store.json: no space left on device"):
        filled.update_info(base_model="other")
    monkeypatch.undo()
    assert not list(filled.path.glob(".*.tmp")) and Store.open(filled.path).base_model == "m"


@pytest.fixture()
def tiny_fs(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_real_full_filesystem(tiny_fs, capsys):
    st = _new_store(tiny_fs / "s")
    st.add_model("m", logits={"test": np.eye(N_TEST, 4)}, meta=_meta())
    big = np.random.default_rng(0).normal(size=(N_TEST, 4096)).astype(np.float32)  # 640 kB: does not fit
    with pytest.raises(StoreError, match="no space left on device"):
        st.add_model("m", logits={"test": np.eye(N_TEST, 4)}, embeddings={"test": big}, meta=_meta(), overwrite=True)
    with pytest.raises(StoreError, match="no space left on device"):
        st.add_model("n", embeddings={"test": big}, meta=_meta())
    np.save(tiny_fs.parent / "big.npy", big)
    rc, _, err = _cli(
        [
            "import",
            "--store",
            st.path,
            "--name",
            "m",
            "--category",
            "ARCH",
            "--method",
            "toy",
            "--split",
            "test",
            "--embeddings",
            tiny_fs.parent / "big.npy",
        ],
        capsys,
    )
    assert rc == 1 and "no space left on device" in _one_line(err)
    st = Store.open(st.path)
    assert st.model_names() == ["m"] and st.verify() == {
        "models": 1,
        "arrays": 1,
        "leftovers": [],
        "superseded": [],
        "notes": [],
    }
    np.testing.assert_array_equal(st.logits("m", "test"), np.eye(N_TEST, 4))
    leftovers = [p for p in tiny_fs.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".labels")]
    assert leftovers == []


def test_read_only_store_still_reads(tiny_fs, capsys):
    st = _new_store(tiny_fs / "s")
    st.add_model("m", logits={"test": np.eye(N_TEST, 4)}, meta=_meta())
    r = subprocess.run(["mount", "-o", "remount,ro", str(tiny_fs)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot remount read-only: {r.stderr.strip()}")
    st = Store.open_or_create(
        st.path, dataset="toy", class_names=CLASSES, splits={"calib": _labels(N_CALIB, 1), "test": _labels(N_TEST, 2)}
    )
    st.update_info(base_model="m")  # unchanged: no write, no lock
    assert st.verify()["arrays"] == 1 and st.logits("m", "test").shape == (N_TEST, 4)
    assert _cli(["store", "verify", st.path], capsys)[0] == 0
    assert _cli(["zoo", "list", st.path], capsys)[0] == 0
    with pytest.raises(StoreError, match="read-only file system"):
        st.add_model("n", logits={"test": np.eye(N_TEST, 4)}, meta=_meta())


# ------------------------------------------------------------------------------------------------
# one line for every bad input


def _bad_npy(tmp_path, kind) -> Path:
    p = tmp_path / f"{kind}.npy"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        np.save(p, np.eye(N_TEST, 4))
        p.write_bytes(p.read_bytes()[:-10])
    elif kind == "huge":  # a header promising 1.6e18 bytes: refused before anything is allocated
        header = "{'descr': '<f8', 'fortran_order': False, 'shape': (400000000000, 500000), }"
        header += " " * (-(10 + len(header) + 1) % 64) + "\n"
        p.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 64)
    elif kind == "garbage":
        p.write_bytes(b"this is not numpy at all" * 10)
    elif kind == "pickle":
        np.save(p, np.array([{"a": 1}] * 3, dtype=object), allow_pickle=True)
    return p


@pytest.mark.parametrize(
    "kind, expect",
    [
        ("empty", "empty file"),
        ("truncated", "truncated"),
        ("huge", "truncated"),
        ("garbage", "not a valid .npy"),
        ("pickle", "Python objects"),
    ],
)
def test_bad_npy_is_one_line(tmp_path, capsys, kind, expect):
    st = _new_store(tmp_path / "s")
    p = _bad_npy(tmp_path, kind)
    rc, _, err = _cli(
        [
            "import",
            "--store",
            st.path,
            "--name",
            "m",
            "--category",
            "ARCH",
            "--method",
            "x",
            "--split",
            "test",
            "--logits",
            p,
        ],
        capsys,
    )
    line = _one_line(err)
    assert rc == 1 and str(p) in line and expect in line


def test_cli_error_paths_are_one_line(tmp_path, capsys):
    st = _new_store(tmp_path / "s")
    st.add_model("m", logits={"test": np.eye(N_TEST, 4)}, meta=_meta())
    np.save(tmp_path / "t.npy", np.eye(N_TEST, 4))
    imp = [
        "import",
        "--store",
        st.path,
        "--category",
        "ARCH",
        "--method",
        "x",
        "--split",
        "test",
        "--logits",
        tmp_path / "t.npy",
    ]
    # a name over 255 bytes
    rc, _, err = _cli([*imp, "--name", "x" * 300], capsys)
    assert rc == 1 and "model name too long" in _one_line(err)
    # a split name with a dot, through --labels
    np.save(tmp_path / "y.npy", _labels(N_TEST, 2))
    rc, _, err = _cli(
        [
            "import",
            "--store",
            st.path,
            "--name",
            "q",
            "--category",
            "ARCH",
            "--method",
            "x",
            "--split",
            "a.b",
            "--labels",
            tmp_path / "y.npy",
            "--logits",
            tmp_path / "t.npy",
        ],
        capsys,
    )
    assert rc == 1 and "invalid split name 'a.b'" in _one_line(err)
    # an unknown split without --labels says how to add it
    rc, _, err = _cli([*imp[:-4], "--split", "extra", "--logits", tmp_path / "t.npy", "--name", "q"], capsys)
    assert rc == 1 and "give --labels" in _one_line(err)
    # --labels adds the new split to the existing store
    rc, _, err = _cli(
        [
            "import",
            "--store",
            st.path,
            "--name",
            "q",
            "--category",
            "ARCH",
            "--method",
            "x",
            "--split",
            "extra",
            "--labels",
            tmp_path / "y.npy",
            "--logits",
            tmp_path / "t.npy",
        ],
        capsys,
    )
    assert rc == 0, err
    st = Store.open(st.path)
    assert "extra" in st.splits() and st.has_logits("q", "extra")
    # --out pointing at a file
    (tmp_path / "afile").write_text("x")
    rc, _, err = _cli(["notebooks", "run", "--store", st.path, "--out", tmp_path / "afile", "-q"], capsys)
    assert rc != 0 and "afile" in _one_line(err) and "is a file" in err
    # a store path that is a file, a store that is absent
    rc, _, err = _cli(["store", "verify", tmp_path / "afile"], capsys)
    assert rc == 1 and "is a file" in _one_line(err)
    rc, _, err = _cli(["zoo", "list", tmp_path / "nope"], capsys)
    assert rc != 0 and "no norep store" in _one_line(err)


@pytest.mark.slow
def test_zoo_train_out_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    rc, _, err = _cli(["zoo", "train", "--preset", "digits", "--quick", "--out", tmp_path / "afile"], capsys)
    assert rc != 0 and "afile exists and is not a directory" in _one_line(err)


def test_broken_pipe_is_quiet(tmp_path):
    env = {**os.environ, "PYTHONPATH": LIB}
    r = subprocess.run(
        f"'{sys.executable}' -m norep.cli zoo list --paper | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.stdout.count("\n") == 1 and r.stderr == "", r.stderr


def test_nan_metadata_is_valid_json_and_files_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        st = _new_store(tmp_path / "s")
        st.add_model("m", logits={"test": np.eye(N_TEST, 4)}, meta=_meta(paper_top1=float("nan"), x=np.float32("inf")))
    finally:
        os.umask(old)

    def strict(text):
        return json.loads(text, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))

    v = _vdir(st)
    meta = strict((v / "meta.json").read_text())
    assert meta["paper_top1"] is None and meta["x"] is None
    strict((st.path / "store.json").read_text())
    for p in [st.path / "store.json", v / "meta.json", v / "logits.test.npy", st.path / "splits" / "test.labels.npy"]:
        assert p.stat().st_mode & 0o777 == 0o644, p


# ------------------------------------------------------------------------------------------------
# norep extract: the carry-over of a model's other splits


_EXTRACT = """
import sys
sys.path.insert(0, {lib!r})
import norep.extract as ex
ex.extract("timm:test_resnet.r160_in1k", sys.argv[1], sys.argv[2], split=sys.argv[3], random_init=True,
           device="cpu", batch_size=2, chunk_size=2, progress=False)
"""


def _images(root, per_class=3):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


@pytest.mark.slow
def test_sigkill_during_extract_keeps_the_other_split(tmp_path):
    import norep.extract as ex

    model = "timm:test_resnet.r160_in1k"
    spec = f"imagefolder:{_images(tmp_path / 'data')}"
    store = tmp_path / "S"
    ex.extract(
        model, spec, store, split="test", random_init=True, device="cpu", batch_size=2, chunk_size=2, progress=False
    )
    ref = np.array(Store.open(store).logits(model, "test"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    code = _EXTRACT.format(lib=LIB)
    rng = random.Random(1)
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", code, spec, str(store), "calib"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(rng.uniform(1.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        st = Store.open(store)
        st.verify()
        np.testing.assert_array_equal(st.logits(model, "test"), ref)
    subprocess.run(
        [sys.executable, "-c", code, spec, str(store), "calib"], env=env, check=True, timeout=300, capture_output=True
    )
    st = Store.open(store)
    assert st.has_logits(model, "calib") and st.has_embeddings(model, "test")
    np.testing.assert_array_equal(st.logits(model, "test"), ref)
    # a corrupted kept array stops the next extraction instead of being carried over with a new checksum
    f = next(store.glob("models/*/v*/logits.test.npy"))
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 1
    f.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"logits.test.npy does not match its checksum"):
        ex.extract(
            model, spec, store, split="down", random_init=True, device="cpu", batch_size=2, chunk_size=2, progress=False
        )


def test_plain_overwrite_repairs_a_damaged_model(filled):
    (_vdir(filled) / "meta.json").write_text("{}")
    with pytest.raises(VerifyError):
        Store.open(filled.path).verify()
    st = Store.open(filled.path)
    st.add_model("m", logits={"test": np.eye(N_TEST, 4)}, meta=_meta(), overwrite=True)
    assert st.verify()["models"] == 2
    assert st.clean() and Store.open(filled.path).verify()["leftovers"] == []
