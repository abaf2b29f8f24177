"""Local image data: ImageFolder, ImageNet validation layouts, VOC 2007 (norep.data.imagedata)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from norep.data import imagedata
from norep.data.imagedata import DataLayoutError, calib_test_split, open_data


def _img(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).save(path)


def _voc(root, sets):
    """A VOCdevkit with generated XML annotations; ``sets`` maps image set -> {id: [(cls, difficult)]}."""
    base = root / "VOCdevkit" / "VOC2007"
    (base / "Annotations").mkdir(parents=True)
    (base / "ImageSets" / "Main").mkdir(parents=True)
    for image_set, images in sets.items():
        (base / "ImageSets" / "Main" / f"{image_set}.txt").write_text("".join(f"{i}\n" for i in images))
        for i, objects in images.items():
            _img(base / "JPEGImages" / f"{i}.jpg", seed=int(i))
            objs = "".join(f"<object><name>{c}</name><difficult>{int(d)}</difficult></object>" for c, d in objects)
            (base / "Annotations" / f"{i}.xml").write_text(
                f"<annotation><filename>{i}.jpg</filename>{objs}</annotation>"
            )
    return root / "VOCdevkit"


def test_image_folder_classes_sorted_and_labels(tmp_path):
    for c, n in (("zebra", 2), ("ant", 3)):
        for i in range(n):
            _img(tmp_path / c / f"{i}.png", seed=i)
    (tmp_path / "ant" / "notes.txt").write_text("not an image")
    ds = open_data(f"imagefolder:{tmp_path}")
    assert ds.class_names == ["ant", "zebra"]
    assert ds.splits["test"].labels.tolist() == [0, 0, 0, 1, 1]
    assert open_data(f"imagefolder:{tmp_path}", split="calib").splits.keys() == {"calib"}


def test_manifest_checksum_changes_with_content(tmp_path):
    _img(tmp_path / "a" / "0.png")
    first = open_data(f"imagefolder:{tmp_path}").splits["test"].manifest_checksum()
    assert first == open_data(f"imagefolder:{tmp_path}").splits["test"].manifest_checksum()
    _img(tmp_path / "a" / "1.png")
    assert open_data(f"imagefolder:{tmp_path}").splits["test"].manifest_checksum() != first


def test_calib_test_split_sizes_disjoint_deterministic():
    calib, test = calib_test_split(50_000)
    assert (calib.size, test.size) == (10_000, 40_000)
    assert np.intersect1d(calib, test).size == 0
    assert np.array_equal(np.sort(np.r_[calib, test]), np.arange(50_000))
    assert np.array_equal(calib, calib_test_split(50_000)[0])
    assert calib_test_split(101)[0].size == 20  # round(101 / 5)


def test_imagenet_class_folders_use_standard_ids(tmp_path):
    wnids = imagedata.imagenet_synsets()
    for w in (wnids[0], wnids[999]):
        for i in range(5):
            _img(tmp_path / w / f"ILSVRC2012_val_{i:08d}_{w}.JPEG", seed=i)
    ds = open_data(f"imagenet:{tmp_path}")
    assert set(ds.splits) == {"calib", "test"}
    assert len(ds.splits["calib"]) == 2 and len(ds.splits["test"]) == 8
    y = np.r_[ds.splits["calib"].labels, ds.splits["test"].labels]
    assert sorted(y.tolist()) == [0] * 5 + [999] * 5
    assert len(ds.class_names) == 1000 and ds.class_names[0] == "tench"
    # label follows the folder: file name encodes its wnid
    for s in ds.splits.values():
        for f, lab in zip(s.files, s.labels, strict=True):
            assert f.parent.name == wnids[lab]


def test_imagenet_flat_with_kaggle_csv_and_label_file(tmp_path):
    wnids = imagedata.imagenet_synsets()
    labels = [3, 7, 3, 500, 0]
    for i in range(5):
        _img(tmp_path / "val" / f"ILSVRC2012_val_{i + 1:08d}.JPEG", seed=i)
    rows = "".join(f"ILSVRC2012_val_{i + 1:08d},{wnids[c]} 1 2 3 4\n" for i, c in enumerate(labels))
    (tmp_path / "LOC_val_solution.csv").write_text("ImageId,PredictionString\n" + rows)
    ds = open_data(f"imagenet:{tmp_path / 'val'}")
    got = {f.name: int(y) for s in ds.splits.values() for f, y in zip(s.files, s.labels, strict=True)}
    assert got == {f"ILSVRC2012_val_{i + 1:08d}.JPEG": c for i, c in enumerate(labels)}

    (tmp_path / "LOC_val_solution.csv").unlink()
    (tmp_path / "val" / "val_labels.txt").write_text(
        "".join(f"ILSVRC2012_val_{i + 1:08d}.JPEG {wnids[c] if i % 2 else c}\n" for i, c in enumerate(labels))
    )
    ds = open_data(f"imagenet:{tmp_path / 'val'}")
    got = {f.name: int(y) for s in ds.splits.values() for f, y in zip(s.files, s.labels, strict=True)}
    assert got == {f"ILSVRC2012_val_{i + 1:08d}.JPEG": c for i, c in enumerate(labels)}


def test_imagenet_devkit_ground_truth(tmp_path):
    from scipy.io import savemat

    wnids = imagedata.imagenet_synsets()
    # devkit ids are not the sorted order: ILSVRC2012_ID 1 -> wnids[10], 2 -> wnids[20]
    synsets = np.zeros((2,), dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O")])
    synsets[0] = (1, wnids[10])
    synsets[1] = (2, wnids[20])
    savemat(tmp_path / "meta.mat", {"synsets": synsets})
    (tmp_path / "ILSVRC2012_validation_ground_truth.txt").write_text("2\n1\n1\n")
    for i in range(3):
        _img(tmp_path / f"ILSVRC2012_val_{i + 1:08d}.JPEG", seed=i)
    ds = open_data(f"imagenet:{tmp_path}")
    got = {f.name: int(y) for s in ds.splits.values() for f, y in zip(s.files, s.labels, strict=True)}
    assert got == {
        "ILSVRC2012_val_00000001.JPEG": 20,
        "ILSVRC2012_val_00000002.JPEG": 10,
        "ILSVRC2012_val_00000003.JPEG": 10,
    }


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: _img(p / "cats" / "0.jpg"), "WordNet id folder"),
        (lambda p: _img(p / "0.jpg"), "no ground-truth file"),
        (lambda p: None, "no images"),
    ],
)
def test_imagenet_layout_errors_name_the_layout(tmp_path, make, match):
    make(tmp_path)
    with pytest.raises(DataLayoutError, match=match) as err:
        open_data(f"imagenet:{tmp_path}")
    assert "n01440764" in str(err.value) or "no images" in str(err.value)


def test_voc2007_multi_hot(tmp_path):
    root = _voc(
        tmp_path,
        {
            "train": {"000001": [("dog", 0), ("person", 0)], "000002": [("cat", 1)]},
            "val": {"000003": [("tvmonitor", 0), ("tvmonitor", 0)]},
            "test": {"000004": [("aeroplane", 0)]},
        },
    )
    for spec in (root, root / "VOC2007"):
        ds = open_data(f"voc2007:{spec}")
        assert list(ds.splits) == ["down_train", "down_val", "down_test"]
        Y = ds.splits["down_train"].labels
        assert Y.dtype == np.uint8 and Y.shape == (2, 20)
        names = ds.split_class_names["down_train"]
        assert [names[j] for j in np.flatnonzero(Y[0])] == ["dog", "person"]
        assert [names[j] for j in np.flatnonzero(Y[1])] == ["cat"]  # difficult counts as positive
        assert ds.splits["down_val"].labels.sum() == 1
        assert ds.splits["down_test"].labels[0, 0] == 1
    assert list(open_data(f"voc2007:{root}", split="down_test").splits) == ["down_test"]


def test_voc_layout_error(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    with pytest.raises(DataLayoutError, match="Annotations"):
        open_data(f"voc2007:{tmp_path}")
    with pytest.raises(DataLayoutError, match="KIND:PATH"):
        open_data(f"cifar:{tmp_path}")


def test_imagenet_train_subset_balanced(tmp_path):
    wnids = imagedata.imagenet_synsets()
    for c in (1, 2):
        for i in range(6):
            _img(tmp_path / wnids[c] / f"{i}.JPEG", seed=i)
    ds = imagedata.imagenet_train_subset(tmp_path, per_class=4)
    assert np.bincount(ds.splits["train"].labels).tolist() == [0, 4, 4]
    again = imagedata.imagenet_train_subset(tmp_path, per_class=4)
    assert ds.splits["train"].files == again.splits["train"].files
