"""Bad inputs at every entry point: refused in one line that says what to do, and a refused call
leaves the store byte-for-byte as it was (or absent, where it was absent)."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest

import norep.storage._check as check
import norep.storage._io as io_
from norep.cli import main
from norep.storage import Store, StoreError

C = 4
N_TEST, N_CALIB = 30, 40


def _labels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, C, n)


def _logits(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, C)).astype(np.float32)


def _meta(cat="ARCH", method="toy"):
    return {"category": cat, "method": method}


def _store(path) -> Store:
    st = Store.create(
        path,
        dataset="toy",
        class_names=list("abcd"),
        splits={"test": _labels(N_TEST, 0), "calib": _labels(N_CALIB, 1), "down": np.eye(3, dtype=np.uint8)},
        split_class_names={"down": ["x", "y", "z"]},
    )
    st.add_model("base", logits={"test": _logits(N_TEST, 2), "calib": _logits(N_CALIB, 3)}, meta=_meta("REINIT"))
    st.add_model("base", embeddings={"test": np.ones((N_TEST, 5))}, meta=_meta("REINIT"), merge=True)
    return Store.open(path)


def _unlocked(st: Store) -> Store:
    """``st`` without lock files (as a copied store may be), so that a snapshot also sees new ones."""
    shutil.rmtree(st.path / ".locks", ignore_errors=True)
    (st.path / ".lock").unlink(missing_ok=True)
    return st


def _snapshot(root) -> dict | None:
    """Every file below ``root`` (lock files included) with its SHA-256, and every directory; None if absent."""
    if not root.exists():
        return None
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
    return out


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("norep: ") and "Traceback" not in err, err
    return lines[0]


def _cli(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# ------------------------------------------------------------------------------------------- creating


BAD_CREATE = [
    ({"splits": {"test": np.array([], dtype=np.int64)}}, "has no examples"),
    ({"splits": {"down": np.zeros((3, 0), dtype=np.uint8)}}, "no columns"),
    ({"splits": {}}, "at least one split"),
    ({"class_names": ["a", " ", "c", "d"]}, "name 1 is empty"),
    ({"class_names": ["a", "a", "c", "d"]}, "repeated: a"),
    ({"class_names": []}, "must not be empty"),
    ({"dataset": ""}, "dataset must be a non-empty name"),
    ({"splits": {"test": np.array([0, 1, 9])}}, "labels out of range"),
    ({"splits": {"test": np.array([0.0, np.nan])}}, "integer class ids"),
    ({"splits": {"test": np.array([[0], [1], [1]])}}, r"give class ids as a 1-D array"),
    ({"splits": {"test": np.array([[0, 2], [1, 3]])}}, r"must be 0/1; give class ids as a 1-D array"),
    ({"info": {"class_groups": {"g": [0, 1]}}}, "at least two groups"),
    ({"info": {"class_groups": {"g": [0, 1], "h": [1, 2]}}}, "in groups 'g' and 'h'"),
    ({"info": {"class_groups": {"g": [0], "h": [7]}}}, "outside 0..3"),
    ({"info": {"accuracy_band": (0.9, 0.5)}}, "accuracy_band"),
    ({"split_class_names": {"other": ["x"]}}, "that splits does not give"),
]


@pytest.mark.parametrize(("change", "match"), BAD_CREATE, ids=[m for _, m in BAD_CREATE])
def test_create_refuses_and_leaves_nothing(tmp_path, change, match):
    kw = {"dataset": "toy", "class_names": list("abcd"), "splits": {"test": np.array([0, 1, 2])}, **change}
    target = tmp_path / "new" / "deeper" / "s"
    with pytest.raises(StoreError, match=match):
        Store.create(target, **kw)
    with pytest.raises(StoreError, match=match):
        Store.open_or_create(target, **kw)
    assert list(tmp_path.iterdir()) == []  # neither the store nor its parent folders


def test_create_with_model_is_one_step(tmp_path):
    target = tmp_path / "a" / "s"
    kw = {"dataset": "toy", "class_names": list("abcd"), "splits": {"test": _labels(N_TEST, 0)}}
    bad = {"name": "m", "logits": {"test": _logits(N_TEST + 1, 0)}, "meta": _meta()}
    with pytest.raises(StoreError, match="31 rows but split 'test' has 30 labels"):
        Store.create_with_model(target, model=bad, **kw)
    assert list(tmp_path.iterdir()) == []
    st, meta = Store.create_with_model(target, model={**bad, "logits": {"test": _logits(N_TEST, 0)}}, **kw)
    assert st.model_names() == ["m"] and meta["accuracy"]["test"] == pytest.approx(
        np.mean(_logits(N_TEST, 0).argmax(1) == _labels(N_TEST, 0))
    )
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["s"]  # no staging folder left
    with pytest.raises(FileExistsError):
        Store.create_with_model(target, model=bad, **kw)


# ------------------------------------------------------------------------------------ adding to a store


BAD_MODEL = [
    ({"embeddings": {"test": np.ones((N_TEST, 0))}}, "the array is empty"),
    ({"logits": {"test": _logits(N_TEST, 0)[:, :0]}}, "has 0 columns|the array is empty"),
    ({"logits": {"test": _logits(N_TEST - 1, 0)}}, "29 rows but split 'test' has 30 labels"),
    ({"logits": {"test": _logits(N_TEST, 0)[:, :3]}}, "3 columns but the store has 4 classes"),
    ({"logits": {"test": np.full((N_TEST, C), np.nan)}}, "NaN or Inf"),
    ({"logits": {"test": np.full((N_TEST, C), 0.25)}}, "probabilities, not logits"),
    ({"logits": {"down": np.ones((3, C))}}, "logits are for single-label splits"),
    ({"logits": {"nosuch": _logits(3, 0)}}, "unknown split 'nosuch'"),
    (
        {"embeddings": {"calib": np.ones((N_CALIB, 7))}, "merge": True, "name": "base", "meta": _meta("REINIT")},
        "different widths",
    ),
    (
        {"logits": {"test": _logits(N_TEST, 9)}, "merge": True, "name": "base", "meta": _meta("REINIT")},
        "with other values",
    ),
    ({"logits": {"test": _logits(N_TEST, 2)}, "merge": True, "name": "base", "meta": _meta("ARCH")}, "exists with"),
    ({"logits": {"test": _logits(N_TEST, 2)}, "name": "base"}, "already exists"),
    ({"logits": {"new": _logits(5, 0)}, "splits": {"new": _labels(6, 0)}}, "5 rows but split 'new' has 6 labels"),
    ({"logits": {"new": _logits(3, 0)}, "splits": {"new": np.array([0, 1, 4])}}, "labels out of range"),
    ({"logits": {"test": _logits(N_TEST, 0)}, "splits": {"test": _labels(N_TEST, 5)}}, "with different labels"),
    (
        {
            "embeddings": {"down": np.ones((3, 2))},
            "splits": {"down": np.eye(3)},
            "split_class_names": {"down": list("xyw")},
        },
        "label names given differ",
    ),
    ({"meta": {"category": "Architecture", "method": "x"}}, r"meta\['category'\] must be one of"),
    ({"meta": {"category": "ARCH", "method": " "}}, r"meta\['method'\]"),
]


@pytest.mark.parametrize(("change", "match"), BAD_MODEL, ids=[m for _, m in BAD_MODEL])
def test_add_model_refuses_and_leaves_the_store_as_it_was(tmp_path, change, match):
    st = _unlocked(_store(tmp_path / "s"))
    before = _snapshot(st.path)
    kw = {"name": "new", "meta": _meta(), **change}
    with pytest.raises(StoreError, match=match):
        st.add_model(**kw)
    assert _snapshot(st.path) == before


def test_add_model_with_a_new_split_is_one_step(tmp_path):
    st = _store(tmp_path / "s")
    y = _labels(12, 7)
    st.add_model("m", logits={"extra": _logits(12, 0)}, meta=_meta("arch"), splits={"extra": y})
    st = Store.open(st.path)
    assert "extra" in st.splits() and np.array_equal(st.labels("extra"), y)
    assert st.meta("m")["category"] == "ARCH"  # lower case accepted, stored normalised
    assert st.verify()["models"] == 2
    # the same split again with the same labels is accepted; new splits with multi-label names too
    st.add_model(
        "m2",
        embeddings={"extra": np.ones((12, 2)), "down2": np.ones((2, 2))},
        meta=_meta(),
        splits={"extra": y, "down2": np.eye(2, 4, dtype=np.uint8)},
        split_class_names={"down2": list("pqrs")},
    )
    assert Store.open(st.path).split_class_names("down2") == list("pqrs")


def test_add_split_refuses_and_leaves_the_store_as_it_was(tmp_path):
    st = _unlocked(_store(tmp_path / "s"))
    before = _snapshot(st.path)
    for split, labels, match in [
        ("e", np.array([], dtype=np.int64), "no examples"),
        ("e", np.array([0, 5]), "out of range"),
        ("test", _labels(N_TEST, 9), "different labels"),
        ("bad name", np.array([0]), "invalid split name"),
        ("down", np.eye(3), "different labels|label names"),
    ]:
        with pytest.raises(StoreError, match=match):
            st.add_split(split, labels, class_names=["x", "q", "z"] if split == "down" else None)
    with pytest.raises(StoreError, match="out of range"):  # through open_or_create: no lock taken either
        Store.open_or_create(st.path, dataset="toy", class_names=list("abcd"), splits={"e": np.array([0, 9])})
    assert _snapshot(st.path) == before


@pytest.mark.parametrize(
    ("extras", "match"),
    [
        ({"class_groups": {"g": [0, 1], "h": [1]}}, "each class belongs to one group"),
        ({"class_groups": {"g": [0, 1], "h": []}}, "is empty"),
        ({"class_groups": {"g": [0, 1], "h": ["2"]}}, "class ids are integers"),
        ({"class_groups": [[0], [1]]}, "must map group names"),
        ({"accuracy_band": (0.2, float("nan"))}, "accuracy_band"),
        ({"base_model": 3}, "base_model must be"),
        ({"dataset": "x"}, "cannot change"),
    ],
)
def test_update_info_refuses_and_leaves_the_store_as_it_was(tmp_path, extras, match):
    st = _unlocked(_store(tmp_path / "s"))
    before = _snapshot(st.path)
    with pytest.raises(StoreError, match=match):
        st.update_info(**extras)
    assert _snapshot(st.path) == before


def test_identical_merge_is_a_no_op(tmp_path):
    st = _store(tmp_path / "s")
    shutil.rmtree(st.path / ".locks")  # e.g. a copied store: not even a lock file appears
    before = _snapshot(st.path)
    meta = st.add_model("base", logits={"test": _logits(N_TEST, 2)}, meta=_meta("REINIT"), merge=True)
    assert _snapshot(st.path) == before and meta == st.meta("base")
    # with overwrite the same: nothing to replace; a different array is a change
    st.add_model("base", logits={"test": _logits(N_TEST, 2)}, meta=_meta("REINIT"), merge=True, overwrite=True)
    assert _snapshot(st.path) == before
    st.add_model("base", logits={"test": _logits(N_TEST, 4)}, meta=_meta("REINIT"), merge=True, overwrite=True)
    assert _snapshot(st.path) != before and st.has_embeddings("base", "test")


# ------------------------------------------------------------------------------------------ reading


def test_reader_refuses_a_flipped_byte(tmp_path):
    st = _store(tmp_path / "s")
    good = np.array(st.logits("base", "test"))
    f = next(st.path.glob("models/base/v*/logits.test.npy"))
    raw = bytearray(f.read_bytes())
    raw[-3] ^= 0x10
    f.write_bytes(bytes(raw))
    # a researcher's own script (a new process) reading the store
    code = f"from norep.storage import Store; Store.open({str(st.path)!r}).logits('base', 'test')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "does not match its checksum" in proc.stderr.splitlines()[-1], proc.stderr
    check._VERIFIED.clear()  # as in a new process
    with pytest.raises(StoreError, match=r"logits of 'test'.*does not match its checksum.*norep store verify"):
        Store.open(st.path).logits("base", "test")
    with pytest.raises(StoreError, match="does not match its checksum"):
        Store.open(st.path).probs("base", "test")
    changed = Store.open(st.path, verify=False).logits("base", "test")
    assert not np.array_equal(changed, good)  # the opt-out reads the bytes as they are
    assert not np.array_equal(Store.open(st.path).logits("base", "test", verify=False), good)
    lab = st.path / "splits" / "calib.labels.npy"
    raw = bytearray(lab.read_bytes())
    raw[-1] ^= 0x01
    lab.write_bytes(bytes(raw))
    check._VERIFIED.clear()
    with pytest.raises(StoreError, match="labels of split 'calib'.*does not match its checksum"):
        Store.open(st.path).labels("calib")


def test_reader_hashes_a_file_once_per_process(tmp_path, monkeypatch):
    st = _store(tmp_path / "s")
    check._VERIFIED.clear()
    calls = []
    real = check.sha256_file
    monkeypatch.setattr(check, "sha256_file", lambda p: calls.append(p) or real(p))
    st.logits("base", "test")
    st.logits("base", "test")
    Store.open(st.path).logits("base", "test")
    assert len(calls) == 1
    f = calls[0]
    f.write_bytes(f.read_bytes())  # rewritten in place (same bytes) a second later: checked again
    s = os.stat(f)
    os.utime(f, ns=(s.st_atime_ns, s.st_mtime_ns + 1_000_000_000))
    st.logits("base", "test")
    assert len(calls) == 2
    check._VERIFIED.clear()
    st.verify()  # a full verification counts as the first check of every file
    n = len(calls)
    st.logits("base", "calib")
    st.embeddings("base", "test")
    assert len(calls) == n


# ----------------------------------------------------------------------------------- norep import


def _imp(store, *extra, name="m", category="ARCH", method="toy"):
    return ["import", "--store", store, "--name", name, "--category", category, "--method", method, *extra]


def test_failed_first_import_creates_nothing_and_the_retry_works(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "l.npy", rng.normal(size=(100, 10)).astype(np.float32))
    np.save(tmp_path / "y40.npy", rng.integers(0, 10, 40))
    np.save(tmp_path / "y.npy", rng.integers(0, 10, 100))
    (tmp_path / "names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    (tmp_path / "names11.txt").write_text("\n".join(f"c{i}" for i in range(11)) + "\n")
    store = tmp_path / "t" / "new"
    common = ["--split", "test", "--logits", tmp_path / "l.npy", "--class-names"]
    for names, labels, match in [
        ("names.txt", "y40.npy", "100 rows but split 'test' has 40 labels"),
        ("names11.txt", "y.npy", "10 columns but the store has 11 classes"),
    ]:
        rc, _, err = _cli(_imp(store, *common, tmp_path / names, "--labels", tmp_path / labels), capsys)
        assert rc == 1 and match in _one_line(err)
        assert not (tmp_path / "t").exists()
    rc, out, err = _cli(_imp(store, *common, tmp_path / "names.txt", "--labels", tmp_path / "y.npy"), capsys)
    assert rc == 0, err
    assert Store.open(store).model_names() == ["m"] and Store.open(store).verify()["models"] == 1
    # the same command again: a no-op
    before = _snapshot(store)
    rc, out, _ = _cli(_imp(store, *common, tmp_path / "names.txt", "--labels", tmp_path / "y.npy"), capsys)
    assert rc == 0 and "nothing changed" in out and _snapshot(store) == before


def test_failed_import_into_a_store_changes_nothing(tmp_path, capsys):
    st = _unlocked(_store(tmp_path / "s"))
    np.save(tmp_path / "y.npy", _labels(12, 3))
    np.save(tmp_path / "l11.npy", _logits(11, 0))
    np.save(tmp_path / "l12.npy", _logits(12, 0))
    np.save(tmp_path / "p.npy", np.full((12, C), 0.25))
    np.save(tmp_path / "e0.npy", np.ones((12, 0)))
    np.save(tmp_path / "other.npy", _logits(N_TEST, 9))
    (tmp_path / "names.txt").write_text("a\nb\nc\nX\n")
    before = _snapshot(st.path)
    new_split = ["--split", "extra", "--labels", tmp_path / "y.npy"]
    cases = [
        (_imp(st.path, *new_split, "--logits", tmp_path / "l11.npy"), "11 rows but split 'extra' has 12 labels"),
        (_imp(st.path, *new_split, "--logits", tmp_path / "p.npy"), "probabilities, not logits"),
        (_imp(st.path, *new_split, "--embeddings", tmp_path / "e0.npy"), "the array is empty"),
        (
            _imp(st.path, *new_split, "--logits", tmp_path / "l12.npy", "--class-names", tmp_path / "names.txt"),
            "differs from the class names of store",
        ),
        (_imp(st.path, *new_split, "--logits", tmp_path / "l12.npy", category="DATASET", name="base"), "exists with"),
        (
            _imp(st.path, "--split", "test", "--logits", tmp_path / "other.npy", name="base", category="reinit"),
            "with other values; pass overwrite (--overwrite)",
        ),
        (_imp(st.path, "--split", "extra", "--logits", tmp_path / "l12.npy"), "give --labels to add it"),
        (_imp(st.path, *new_split, "--logits", tmp_path / "l12.npy", "--probabilities"), "not a probability"),
    ]
    for argv, match in cases:
        rc, _, err = _cli(argv, capsys)
        assert rc == 1 and match in _one_line(err), (argv, err)
        assert _snapshot(st.path) == before, argv


def test_probabilities_option_stores_their_logarithm(tmp_path, capsys):
    st = _store(tmp_path / "s")
    z = _logits(N_CALIB, 5) * 3
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "p.npy", p)
    assert _cli(_imp(st.path, "--split", "calib", "--logits", tmp_path / "z.npy", name="a"), capsys)[0] == 0
    rc, _, err = _cli(_imp(st.path, "--split", "calib", "--logits", tmp_path / "p.npy", name="b"), capsys)
    assert rc == 1 and "--probabilities" in _one_line(err)
    argv = _imp(st.path, "--split", "calib", "--logits", tmp_path / "p.npy", "--probabilities", name="b")
    assert _cli(argv, capsys)[0] == 0
    st = Store.open(st.path)
    # log-softmax differs from the logits by a constant per row: the same fitted temperature
    assert st.temperature("b") == pytest.approx(st.temperature("a"), rel=1e-3)
    np.testing.assert_allclose(st.probs("b", "calib"), st.probs("a", "calib"), atol=1e-4)


def test_usage_errors_are_one_line(tmp_path, capsys):
    rc, _, err = _cli(["import", "--store", tmp_path, "--name", "m", "--category", "ARCH", "--method", "x"], capsys)
    assert rc == 1 and "required: --split" in _one_line(err) and "norep import --help" in err
    rc, _, err = _cli(_imp(tmp_path, "--split", "t", "--logits", "x.npy", category="archi"), capsys)
    assert rc == 1 and "invalid choice" in _one_line(err)
    rc, _, err = _cli(["store", "set"], capsys)
    assert rc == 1 and "store" in _one_line(err)
    rc, _, err = _cli(["nosuch"], capsys)
    assert rc == 1 and "invalid choice" in _one_line(err)
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    out = capsys.readouterr().out
    assert "replace the arrays given here" in " ".join(out.split())


# ------------------------------------------------------------------------------- the other commands


def test_store_info_suggests_commands_that_work(tmp_path, capsys, monkeypatch):
    st = _store(tmp_path / "s")
    st.update_info(base_model="base")
    monkeypatch.chdir(tmp_path)
    rc, out, _ = _cli(["store", "info", st.path], capsys)
    assert rc == 0
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("06_"))
    command = next(part for part in line.split("`") if part.startswith("norep import"))
    assert command.startswith("norep import") and "--logits" not in command
    np.save(tmp_path / "down_train_labels.npy", np.eye(5, 3, dtype=np.uint8))
    (tmp_path / "attributes.txt").write_text("p\nq\nr\n")
    np.save(tmp_path / "down_train_embeddings.npy", np.ones((5, 5)))
    rc, _, err = _cli(shlex.split(command)[1:], capsys)
    assert rc == 0, err
    st = Store.open(st.path)
    assert st.is_multilabel("down_train") and st.has_embeddings("base", "down_train")


def test_store_set_class_groups(tmp_path, capsys):
    st = _unlocked(_store(tmp_path / "s"))
    (tmp_path / "g.json").write_text(json.dumps({"nature": ["a", 1], "made": [2, "d"]}))
    rc, out, err = _cli(["store", "set", st.path, "--class-groups", tmp_path / "g.json"], capsys)
    assert rc == 0, err
    assert Store.open(st.path).class_groups == {"nature": [0, 1], "made": [2, 3]} and "nature (2 classes)" in out
    before = _snapshot(st.path)
    for content, match in [
        ({"nature": ["a"], "made": ["a"]}, "each class belongs to one group"),
        ({"nature": ["zebra"], "made": [1]}, "does not have"),
        ({"nature": [0, 1, 2, 3]}, "at least two groups"),
        ({"nature": 0, "made": [1]}, "must be a list"),
        ([0, 1], "expected a JSON object"),
    ]:
        (tmp_path / "g.json").write_text(json.dumps(content))
        rc, _, err = _cli(["store", "set", st.path, "--class-groups", tmp_path / "g.json"], capsys)
        assert rc == 1 and match in _one_line(err)
    (tmp_path / "g.json").write_text("{nope")
    rc, _, err = _cli(["store", "set", st.path, "--class-groups", tmp_path / "g.json"], capsys)
    assert rc == 1 and "not a JSON file" in _one_line(err)
    for argv, match in [
        (["--band", "0.9", "0.5"], "needs 0 <= LO < HI <= 1"),
        (["--band", "74", "78"], "fractions, not percent"),
        (["--base-model", "nosuch"], "is not in store"),
        (["--base-model", "base", "--class-groups", tmp_path / "nofile.json"], "nofile.json"),
    ]:
        rc, _, err = _cli(["store", "set", st.path, *argv], capsys)
        assert rc == 1 and match in _one_line(err), argv
    assert _snapshot(st.path) == before


def test_notebooks_run_without_a_base_model(tmp_path, capsys):
    st = _store(tmp_path / "s")
    rc, _, err = _cli(["notebooks", "run", "--store", st.path, "--out", tmp_path / "out", "-q"], capsys)
    assert rc == 1 and f"norep store set {st.path} --base-model NAME" in _one_line(err)
    assert not (tmp_path / "out").exists()
    st.update_info(base_model="gone")
    rc, _, err = _cli(["notebooks", "run", "--store", st.path, "--out", tmp_path / "out", "-q"], capsys)
    assert rc == 1 and "'gone' is not in store" in _one_line(err)


def test_claims_say_why_a_claim_is_not_testable(tmp_path, capsys):
    st = _store(tmp_path / "s")
    st.update_info(base_model="base")
    rc, out, _ = _cli(["claims", st.path, "--ids", "C5,C1", "--resamples", "20"], capsys)
    assert rc == 0
    reasons = [ln for ln in out.splitlines() if ln.startswith("- ")]
    assert len(reasons) == out.count("| not testable |") == 2
    assert all(len(r.split(": ", 1)[1]) > 10 for r in reasons), reasons


def test_verify_after_normal_writes_reads_as_healthy(tmp_path, capsys):
    st = _store(tmp_path / "s")  # the base model was written twice (logits, then embeddings merged)
    rc, out, _ = _cli(["store", "verify", st.path], capsys)
    assert rc == 0 and "normal and harmless" in out and "interrupted" not in out
    assert Store.open(st.path).verify()["superseded"] == ["models/base/v1"]


def test_a_simulated_full_disk_during_a_first_import_leaves_nothing(tmp_path, capsys, monkeypatch):
    import errno

    np.save(tmp_path / "y.npy", _labels(10, 0))
    np.save(tmp_path / "l.npy", _logits(10, 0))
    (tmp_path / "names.txt").write_text("a\nb\nc\nd\n")

    def full(f, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io_, "_write_all", full)
    argv = _imp(
        tmp_path / "s",
        "--split",
        "test",
        "--labels",
        tmp_path / "y.npy",
        "--class-names",
        tmp_path / "names.txt",
        "--logits",
        tmp_path / "l.npy",
    )
    rc, _, err = _cli(argv, capsys)
    assert rc == 1 and "no space left on device" in _one_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.npy", "names.txt", "y.npy"]


def test_extract_refuses_bad_settings_before_any_work(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    for extra, match in [
        (["--workers", "-1"], "--workers must be 0 or more"),
        (["--train-per-class", "0"], "--train-per-class must be at least 1"),
        (["--chunk-size", "-64"], "--chunk-size must be a positive multiple"),
        (["--store", tmp_path / "afile"], "is a file"),
        (["--name", ".hidden"], "invalid model name"),
        (["--method", " "], "--method must describe"),
        (["--category", "bogus"], "must be one of"),
    ]:
        argv = ["extract", "--model", "timm:resnet18", "--data", f"imagefolder:{tmp_path / 'nodata'}"]
        argv += ["--store", tmp_path / "S", "--device", "cpu", "--random-init", "--no-progress", *extra]
        rc, _, err = _cli(argv, capsys)
        assert rc == 1 and match in _one_line(err), (extra, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_extras_must_be_json(tmp_path):
    with pytest.raises(StoreError, match="must be JSON values"):
        Store.create(tmp_path / "s", dataset="t", class_names=["a", "b"], splits={"t": [0, 1]}, info={"x": object()})
    assert not (tmp_path / "s").exists()


def test_concurrent_first_imports_into_one_new_store_all_land(tmp_path):
    np.save(tmp_path / "y.npy", _labels(20, 0))
    (tmp_path / "names.txt").write_text("a\nb\nc\nd\n")
    procs = []
    for i in range(4):
        np.save(tmp_path / f"l{i}.npy", _logits(20, i))
        argv = _imp(
            tmp_path / "s",
            "--split",
            "test",
            "--labels",
            tmp_path / "y.npy",
            "--class-names",
            tmp_path / "names.txt",
            "--logits",
            tmp_path / f"l{i}.npy",
            name=f"m{i}",
        )
        cmd = [sys.executable, "-m", "norep.cli", *map(str, argv)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    st = Store.open(tmp_path / "s")
    assert sorted(st.model_names()) == ["m0", "m1", "m2", "m3"] and st.verify()["models"] == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_claims_refuses_bad_options(tmp_path, capsys):
    st = _store(tmp_path / "s")
    for argv, match in [
        (["--resamples", "0"], "--resamples must be at least 1"),
        (["--ids", ","], "names no claim"),
        (["--ids", "C0"], "unknown claim id(s) C0"),
    ]:
        rc, _, err = _cli(["claims", st.path, *argv], capsys)
        assert rc == 1 and match in _one_line(err), argv
    rc, _, err = _cli(["claims", tmp_path / "nostore", "--ids", "C1"], capsys)
    assert rc == 1 and "no norep store" in _one_line(err)
