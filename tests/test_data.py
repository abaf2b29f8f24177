"""Tests of norep.data (Fashion-MNIST / digits loaders) and norep.data.downstream (multi-label canvases)."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from guards import HANG_S
from norep import data
from norep.data.downstream import downstream_splits, make_canvases

STEMS = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def _fashion_available() -> bool:
    try:
        data.find_fashion_mnist()
        return True
    except data.DataNotFoundError:
        return False


@pytest.fixture
def no_data(monkeypatch, tmp_path):
    """No NOREP_DATA, no Debian package, an empty user cache."""
    monkeypatch.delenv("NOREP_DATA", raising=False)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def test_missing_data_lists_the_three_ways(no_data):
    with pytest.raises(data.DataNotFoundError) as exc:
        data.load_fashion_mnist()
    msg = str(exc.value)
    assert "\n" not in msg
    assert "NOREP_DATA" in msg
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "download_fashion_mnist" in msg and str(no_data / "cache") in msg


def test_explicit_norep_data_pointing_nowhere_is_an_error(monkeypatch, tmp_path):
    # even where Debian's files exist, an explicit but wrong NOREP_DATA must not silently fall back
    monkeypatch.setenv("NOREP_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(data.DataNotFoundError, match="NOREP_DATA=.*nowhere"):
        data.find_fashion_mnist()


def test_cli_missing_data_is_one_clean_line(tmp_path):
    env = dict(os.environ, NOREP_DATA=str(tmp_path / "nowhere"))
    proc = subprocess.run(
        [sys.executable, "-m", "norep.cli", "zoo", "train", "--preset", "fashion", "--out", str(tmp_path / "store")],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("norep: ")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "store" / "store.json").exists()


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_corrupted_files_fail_the_checksum(monkeypatch, tmp_path):
    for stem in STEMS:
        shape = (3, 28, 28) if "images" in stem else (3,)
        _write_idx(tmp_path / f"{stem}.gz", np.zeros(shape))
    monkeypatch.setenv("NOREP_DATA", str(tmp_path))
    assert data.find_fashion_mnist() == tmp_path
    with pytest.raises(ValueError, match="checksum mismatch"):
        data.load_fashion_mnist()


def test_failed_download_names_the_other_ways(no_data):
    with pytest.raises(data.DataNotFoundError, match="apt-get install"):
        data.download_fashion_mnist(no_data / "dl", url="file:///nonexistent/")
    assert not list((no_data / "dl").glob("*.gz"))


@pytest.mark.skipif(not _fashion_available(), reason="Fashion-MNIST not installed")
def test_fashion_splits_partition_the_official_sets():
    raw = data.load_fashion_mnist()
    assert raw["X_train"].shape == (60000, 28, 28) and raw["X_test"].shape == (10000, 28, 28)
    # the official training set is balanced: 6,000 per class
    np.testing.assert_array_equal(np.bincount(raw["y_train"]), np.full(10, 6000))
    s = data.load_splits("fashion")
    assert (len(s.y_train), len(s.y_calib), len(s.y_test)) == (60000, 5000, 5000)
    np.testing.assert_array_equal(s.X_train, raw["X_train"])
    # calib and test: the two halves of the official test set, 500 per class in calib
    np.testing.assert_array_equal(np.bincount(s.y_calib), np.full(10, 500))
    np.testing.assert_array_equal(np.bincount(s.y_test) + np.bincount(s.y_calib), np.bincount(raw["y_test"]))
    h = lambda X: {hash(x.tobytes()) for x in X}  # noqa: E731
    assert h(s.X_calib) | h(s.X_test) == h(raw["X_test"])
    assert len(h(s.X_calib) & h(s.X_test)) < 10  # only exact duplicate images may coincide
    again = data.load_splits("fashion")
    np.testing.assert_array_equal(again.y_calib, s.y_calib)
    assert s.class_names[9] == "Ankle boot"
    assert sorted(i for g in s.class_groups.values() for i in g) == list(range(10))


def test_digits_match_scikit_learn():
    from sklearn.datasets import load_digits

    X, y = data.digits_images()
    ref = load_digits()
    np.testing.assert_array_equal(y, ref.target)
    # 3x3 block means of the 24x24 centre recover the 8x8 originals closely
    blocks = X[:, 2:26, 2:26].reshape(-1, 8, 3, 8, 3).mean(axis=(2, 4)) / 255 * 16
    corr = np.corrcoef(blocks.ravel(), ref.images.ravel())[0, 1]
    assert corr > 0.97
    s = data.load_splits("digits")
    assert len(s.y_train) + len(s.y_calib) + len(s.y_test) == 1797


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset"):
        data.load_splits("cifar")


def test_canvases_labels_are_the_items_present():
    # constant items whose grey level encodes the class: each 14x14 quadrant of a canvas is one item
    levels = np.array([20, 60, 100, 140, 180, 220])
    X = np.repeat(levels[:, None, None], 28 * 28, 1).reshape(6, 28, 28).astype(np.uint8)
    y = np.arange(6)
    imgs, Y = make_canvases(X, y, 300, seed=3)
    counts = []
    for img, lab in zip(imgs, Y, strict=True):
        quads = [img[r : r + 14, c : c + 14] for r in (0, 14) for c in (0, 14)]
        present = set()
        for q in quads:
            assert (q == q[0, 0]).all()
            if q[0, 0]:
                present.add(int(np.flatnonzero(levels == q[0, 0])[0]))
        counts.append(sum(int(q[0, 0] > 0) for q in quads))
        assert set(np.flatnonzero(lab)) == present
    assert set(counts) == {1, 2, 3, 4}


def test_downstream_pools_are_disjoint():
    rng = np.random.default_rng(0)
    X = rng.integers(1, 255, size=(90, 28, 28), dtype=np.uint8)
    y = np.arange(90) % 3
    d = downstream_splits(X, y, sizes=(40, 20, 20), seed=1)
    # recover which items each split used from the pooled quadrants
    pooled = X.reshape(90, 14, 2, 14, 2).astype(np.float64).mean(axis=(2, 4))
    lookup = {np.round(p).astype(np.uint8).tobytes(): i for i, p in enumerate(pooled)}
    used = {}
    for name, (imgs, _) in d.items():
        items = set()
        for img in imgs:
            for r in (0, 14):
                for c in (0, 14):
                    q = img[r : r + 14, c : c + 14]
                    if q.any():
                        items.add(lookup[q.tobytes()])
        used[name] = items
    assert not used["down_train"] & used["down_test"]
    assert not used["down_train"] & used["down_val"]
    assert not used["down_val"] & used["down_test"]


def test_other_data_is_deterministic_and_not_digits_or_fashion():
    X, y = data.glyph_images(60, seed=1)
    X2, y2 = data.glyph_images(60, seed=1)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert set(data.GLYPHS) & set("0123456789") == set()  # no digit: the downstream task's items
    assert X.reshape(60, -1).max(1).min() > 100  # every glyph was drawn
    P = data.natural_patches(20, seed=2)
    np.testing.assert_array_equal(P, data.natural_patches(20, seed=2))
    assert P.shape == (20, 28, 28) and P.std() > 20


def test_embedded_downstream_labels_are_digits_not_upstream():
    from norep.data.downstream import embedded_downstream

    class _S:  # the fashion downstream needs no Fashion-MNIST array
        X_calib = y_calib = None
        class_names = list(data.FASHION_MNIST_CLASSES)

    down, names, text = embedded_downstream("fashion", _S(), sizes=(30, 10, 20))
    assert names == list(data.DIGITS_CLASSES) and "digits" in text
    Xd, _ = data.digits_images()
    pooled = {np.round(x.reshape(14, 2, 14, 2).astype(float).mean(axis=(1, 3))).astype(np.uint8).tobytes() for x in Xd}
    imgs, Y = down["down_train"]
    assert Y.shape == (30, 10)
    quads = [img[r : r + 14, c : c + 14] for img in imgs for r in (0, 14) for c in (0, 14)]
    assert all(q.tobytes() in pooled for q in quads if q.any())  # every item is a scikit-learn digit
