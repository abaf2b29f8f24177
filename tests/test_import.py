"""`norep import`: bring your own logits / embeddings into a store."""

from __future__ import annotations

import numpy as np
import pytest

from norep.cli import main
from norep.storage import Store


@pytest.fixture()
def store(tmp_path):
    y_calib = np.array([0, 1, 2, 0, 1, 2])
    y_test = np.array([2, 1, 0, 0])
    Store.create(
        tmp_path / "s",
        dataset="toy",
        class_names=["a", "b", "c"],
        splits={"calib": y_calib, "test": y_test, "down_train": np.eye(4, dtype=np.uint8)[:3]},
    )
    return tmp_path / "s"


def _imp(store, *extra, name="mine", category="DATASET", method="Cont. / WIT"):
    return main(["import", "--store", str(store), "--name", name, "--category", category, "--method", method, *extra])


def test_import_npy_and_npz_splits(tmp_path, store, capsys):
    test_logits = np.array([[0, 0, 5.0], [0, 5.0, 0], [0, 0, 5.0], [5.0, 0, 0]], dtype=np.float32)  # 3 of 4 right
    np.save(tmp_path / "test.npy", test_logits)
    np.save(tmp_path / "emb.npy", np.arange(8.0).reshape(4, 2))
    assert (
        _imp(
            store, "--split", "test", "--logits", str(tmp_path / "test.npy"), "--embeddings", str(tmp_path / "emb.npy")
        )
        == 0
    )
    st = Store.open(store)
    np.testing.assert_array_equal(st.logits("mine", "test"), test_logits)
    assert st.meta("mine")["accuracy"]["test"] == pytest.approx(0.75)
    assert st.embeddings("mine", "test").shape == (4, 2)

    # a second split of the same model, from an npz holding several arrays
    calib = np.random.default_rng(0).normal(size=(6, 3))
    np.savez(tmp_path / "calib.npz", logits=calib, other=np.zeros(3))
    assert _imp(store, "--split", "calib", "--logits", str(tmp_path / "calib.npz")) == 0
    st = Store.open(store)
    assert st.has_logits("mine", "test") and st.has_logits("mine", "calib")
    assert st.has_embeddings("mine", "test")
    assert st.meta("mine")["temperature_fitted_on"] == "calib"
    assert "calib imported" in capsys.readouterr().out

    # embeddings for a multi-label split
    np.savez(tmp_path / "down.npz", down_train=np.ones((3, 2)))
    assert _imp(store, "--split", "down_train", "--embeddings", str(tmp_path / "down.npz")) == 0
    assert Store.open(store).embeddings("mine", "down_train").shape == (3, 2)


@pytest.mark.parametrize(
    "arr, extra, match",
    [
        (np.zeros((5, 3)), [], "rows"),  # wrong N
        (np.zeros((4, 7)), [], "columns"),  # wrong C
        (np.zeros(4), [], "2-D"),  # not a matrix
        (np.zeros((4, 3)), ["--split", "nosuch"], "nosuch"),
    ],
)
def test_store_validation_errors_are_one_line(tmp_path, store, capsys, arr, extra, match):
    np.save(tmp_path / "x.npy", arr)
    argv = ["--split", "test", "--logits", str(tmp_path / "x.npy")]
    assert _imp(store, *argv, *extra) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("norep: ") and match in err[0]
    assert "mine" not in Store.open(store)


def test_category_mismatch_and_overwrite(tmp_path, store, capsys):
    np.save(tmp_path / "t.npy", np.zeros((4, 3)))
    assert _imp(store, "--split", "test", "--logits", str(tmp_path / "t.npy")) == 0
    assert _imp(store, "--split", "calib", "--logits", str(tmp_path / "t.npy"), category="ARCH") == 1
    assert "category" in capsys.readouterr().err
    np.save(tmp_path / "c.npy", np.zeros((6, 3)))
    assert _imp(store, "--split", "calib", "--logits", str(tmp_path / "c.npy"), "--overwrite", category="ARCH") == 0
    st = Store.open(store)
    # --overwrite allows the new category; the model's other split is kept
    assert st.meta("mine")["category"] == "ARCH" and st.has_logits("mine", "test") and st.has_logits("mine", "calib")


def test_create_store_from_labels(tmp_path):
    np.save(tmp_path / "y.npy", np.array([0, 1, 1]))
    (tmp_path / "names.txt").write_text("cat\ndog\n")
    np.save(tmp_path / "l.npy", np.array([[1.0, 0], [0, 1], [1, 0]]))
    assert (
        _imp(
            tmp_path / "new",
            "--split",
            "test",
            "--logits",
            str(tmp_path / "l.npy"),
            "--labels",
            str(tmp_path / "y.npy"),
            "--class-names",
            str(tmp_path / "names.txt"),
        )
        == 0
    )
    st = Store.open(tmp_path / "new")
    assert st.class_names == ["cat", "dog"] and st.meta("mine")["accuracy"]["test"] == pytest.approx(2 / 3)


def test_missing_store_and_bad_files(tmp_path, capsys):
    np.save(tmp_path / "l.npy", np.zeros((2, 2)))
    assert _imp(tmp_path / "absent", "--split", "test", "--logits", str(tmp_path / "l.npy")) == 1
    assert "no norep store" in capsys.readouterr().err
    (tmp_path / "l.txt").write_text("1 2")
    assert _imp(tmp_path / "absent", "--split", "test", "--logits", str(tmp_path / "l.txt")) == 1
    assert ".npy or .npz" in capsys.readouterr().err
    assert _imp(tmp_path / "absent", "--split", "test") == 1
