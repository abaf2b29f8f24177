"""Image data sets read from local folders: ImageNet validation, PASCAL VOC 2007, any ImageFolder.

The paper evaluates on the ImageNet validation set (Sec. 3.2) and transfers to PASCAL VOC 2007
(Sec. 4.7). Nothing is downloaded: point ``norep extract --data KIND:PATH`` at folders you hold.

Kinds and expected layouts
--------------------------
``imagefolder:DIR``
    ``DIR/<class>/<image>`` (class ids follow the sorted folder names). All images go to one
    split, ``test`` by default.
``imagenet:DIR``
    the ILSVRC2012 validation set, either in class folders named by WordNet id
    (``DIR/n01440764/ILSVRC2012_val_00000293.JPEG``), or flat (``DIR/*.JPEG``) with a
    ground-truth file in ``DIR`` or its parent: ``LOC_val_solution.csv`` (Kaggle),
    ``ILSVRC2012_validation_ground_truth.txt`` together with the devkit's ``meta.mat``, or
    ``val_labels.txt`` (lines ``FILENAME LABEL``, LABEL a WordNet id or a class id). Class ids
    follow the standard order (sorted WordNet ids, as timm and torchvision use). The images are
    split deterministically (seed 0) into ``calib`` (10,000 images) and ``test`` (40,000);
    smaller folders are split in the same 1:4 proportion (``calib`` gets ``round(N / 5)``).
``imagenet-train:DIR``
    the ILSVRC2012 training set in class folders; a class-balanced subset feeds the L-BFGS
    linear heads (:func:`imagenet_train_subset`).
``voc2007:DIR``
    ``DIR`` = ``VOCdevkit`` or ``VOCdevkit/VOC2007`` with ``Annotations/*.xml``,
    ``ImageSets/Main/{train,val,test}.txt`` and ``JPEGImages/``. Splits ``down_train``,
    ``down_val``, ``down_test`` with 20-class multi-hot labels. A class is positive when the
    image has at least one object of it, ``difficult`` objects included (an interpretation: the
    VOC devkit instead ignores images whose only objects of a class are difficult).

Examples
--------
>>> from norep.data.imagedata import parse_data_spec, VOC_CLASSES
>>> parse_data_spec("voc2007:/data/VOCdevkit")
('voc2007', PosixPath('/data/VOCdevkit'))
>>> len(VOC_CLASSES)
20
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KINDS = ("imagefolder", "imagenet", "imagenet-train", "voc2007")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
VOC_CLASSES = (
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
"""The 20 PASCAL VOC classes, in the devkit's order (Sec. 4.7)."""

IMAGENET_VAL_SIZE = 50_000
IMAGENET_CALIB_SIZE = 10_000
_WNID = re.compile(r"^n\d{8}$")


class DataLayoutError(ValueError):
    """A data folder does not have the expected layout; the message names the layout."""


@dataclass
class ImageSplit:
    """The images of one store split: file paths and labels ((N,) class ids or (N, K) multi-hot)."""

    name: str
    files: list[Path]
    labels: np.ndarray
    root: Path

    def __len__(self) -> int:
        return len(self.files)

    def manifest_checksum(self) -> str:
        """SHA-256 of the split's manifest: relative paths, file sizes and labels, in order.

        Cheap (no image is read) and changes when a file is added, removed, resized or relabelled.

        Examples
        --------
        >>> import numpy as np, tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "a.jpg").write_bytes(b"x")
        >>> s = ImageSplit("test", [d / "a.jpg"], np.array([0]), d)
        >>> len(s.manifest_checksum())
        64
        """
        h = hashlib.sha256()
        h.update(self.name.encode())
        h.update(json.dumps(self.labels.tolist()).encode())
        for f in self.files:
            h.update(f"{f.relative_to(self.root).as_posix()}\0{f.stat().st_size}\n".encode())
        return h.hexdigest()


@dataclass
class ImageDataset:
    """Images and labels read from a local folder, ready to become store splits.

    Attributes
    ----------
    kind : str
        One of :data:`KINDS`.
    root : Path
    dataset : str
        The store's ``dataset`` field (``"imagenet-val"``, ``"voc2007"``, ``"imagefolder:<dir>"``).
    class_names : list of str
        Names of the single-label classes (ImageNet: CLIP's readable names, made unique).
    splits : dict of str to ImageSplit
    split_class_names : dict of str to list of str
        Label names of the multi-label splits.
    prompt_names : list of str
        Names to put in zero-shot prompts (CLIP's ImageNet names for ImageNet, else class_names).
    """

    kind: str
    root: Path
    dataset: str
    class_names: list[str]
    splits: dict[str, ImageSplit]
    split_class_names: dict[str, list[str]] = field(default_factory=dict)
    prompt_names: list[str] | None = None

    def select(self, names: list[str] | None) -> ImageDataset:
        """The same data set restricted to the splits ``names`` (None: all)."""
        if not names:
            return self
        missing = [n for n in names if n not in self.splits]
        if missing:
            raise DataLayoutError(
                f"{self.kind}:{self.root} has no split {missing[0]!r}; it has {', '.join(self.splits)}"
            )
        return ImageDataset(
            self.kind,
            self.root,
            self.dataset,
            self.class_names,
            {n: self.splits[n] for n in names},
            {n: v for n, v in self.split_class_names.items() if n in names},
            self.prompt_names,
        )


def parse_data_spec(spec: str) -> tuple[str, Path]:
    """Split ``"KIND:PATH"`` into the kind (one of :data:`KINDS`) and the path.

    Examples
    --------
    >>> parse_data_spec("imagefolder:/tmp/x")
    ('imagefolder', PosixPath('/tmp/x'))
    """
    kind, sep, path = str(spec).partition(":")
    if not sep or kind not in KINDS or not path:
        raise DataLayoutError(f"data {spec!r} must look like KIND:PATH with KIND one of {', '.join(KINDS)}")
    return kind, Path(path).expanduser()


def open_data(spec: str, *, split: str | None = None, seed: int = 0) -> ImageDataset:
    """Open a data spec ``KIND:PATH`` (module docstring) as an :class:`ImageDataset`.

    Parameters
    ----------
    spec : str
        e.g. ``"imagenet:/data/imagenet/val"``.
    split : str, optional
        For ``imagefolder``, the split name of all its images (default ``test``); for the other
        kinds, restrict to this one of their splits.
    seed : int, default 0
        Seed of the deterministic ImageNet calib/test split.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for c in ("cat", "dog"):
    ...     (d / c).mkdir()
    ...     Image.new("RGB", (8, 8)).save(d / c / "0.png")
    >>> ds = open_data(f"imagefolder:{d}")
    >>> ds.class_names, list(ds.splits), ds.splits["test"].labels.tolist()
    (['cat', 'dog'], ['test'], [0, 1])
    """
    kind, path = parse_data_spec(spec)
    if not path.is_dir():
        raise DataLayoutError(f"{kind} data folder {path} does not exist")
    if kind == "imagefolder":
        return image_folder(path, split=split or "test")
    if kind == "imagenet":
        ds = imagenet_val(path, seed=seed)
    elif kind == "imagenet-train":
        ds = imagenet_train_subset(path, split=split or "train")
        return ds
    else:
        ds = voc2007(path)
    return ds.select([split] if split else None)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def image_folder(root: str | Path, *, split: str = "test") -> ImageDataset:
    """A class-folder data set ``ROOT/<class>/<image>``, all images in one split.

    Class ids follow the sorted folder names (torchvision's ``ImageFolder`` order).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for c in ("b", "a"):
    ...     (d / c).mkdir()
    ...     Image.new("RGB", (8, 8)).save(d / c / "x.jpg")
    >>> ds = image_folder(d, split="calib")
    >>> ds.class_names, ds.splits["calib"].labels.tolist()
    (['a', 'b'], [0, 1])
    """
    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    files, labels = [], []
    for i, c in enumerate(classes):
        imgs = _images_in(root / c)
        files += imgs
        labels += [i] * len(imgs)
    if not files:
        raise DataLayoutError(
            f"no images found in {root}: expected the class-folder layout "
            f"{root}/<class>/<image>.jpg ({', '.join(IMAGE_EXTENSIONS)})"
        )
    y = np.asarray(labels, dtype=np.int64)
    return ImageDataset(
        "imagefolder", root, f"imagefolder:{root.name}", classes, {split: ImageSplit(split, files, y, root)}
    )


# ------------------------------------------------------------------------------------------- ImageNet


def imagenet_synsets() -> list[str]:
    """The 1,000 ImageNet-1k WordNet ids in the standard (sorted) class-id order.

    Examples
    --------
    >>> s = imagenet_synsets(); len(s), s[0]
    (1000, 'n01440764')
    """
    from importlib.resources import files

    return files("norep.resources").joinpath("imagenet_synsets.txt").read_text().split()


def imagenet_class_names(*, unique: bool = True) -> list[str]:
    """Readable ImageNet class names (CLIP's curated list, as shipped by open_clip).

    Parameters
    ----------
    unique : bool, default True
        CLIP's list names two classes "crane" and two "maillot"; with ``unique`` the second
        occurrence gets its WordNet id appended, as a store needs unique names. Prompts use
        ``unique=False``.

    Examples
    --------
    >>> names = imagenet_class_names()
    >>> len(names), len(set(names)), names[0]
    (1000, 1000, 'tench')
    """
    from importlib.resources import files

    names = json.loads(files("norep.resources").joinpath("imagenet_classnames.json").read_text())
    if unique:
        seen: set[str] = set()
        wnids = imagenet_synsets()
        for i, n in enumerate(names):
            if n in seen:
                names[i] = f"{n} ({wnids[i]})"
            seen.add(names[i])
    return names


_IMAGENET_LAYOUT = (
    "expected the ImageNet validation set as DIR/<wnid>/<image>.JPEG (class folders such as "
    "n01440764) or flat DIR/*.JPEG with LOC_val_solution.csv, ILSVRC2012_validation_ground_truth.txt "
    "+ meta.mat, or val_labels.txt ('FILENAME LABEL' lines) in DIR or its parent"
)


def _flat_imagenet_labels(root: Path, files: list[Path]) -> np.ndarray:
    wnids = imagenet_synsets()
    index = {w: i for i, w in enumerate(wnids)}
    for folder in (root, root.parent):
        csv = folder / "LOC_val_solution.csv"
        if csv.is_file():
            table = {}
            for line in csv.read_text().splitlines()[1:]:
                if line.strip():
                    image_id, pred = line.split(",", 1)
                    table[image_id.strip()] = index[pred.split()[0]]
            return _lookup(files, table, csv, key=lambda f: f.stem)
        gt = folder / "ILSVRC2012_validation_ground_truth.txt"
        if gt.is_file():
            meta = next(
                (
                    m
                    for m in (
                        folder / "meta.mat",
                        folder / "data" / "meta.mat",
                        folder / "ILSVRC2012_devkit_t12" / "data" / "meta.mat",
                    )
                    if m.is_file()
                ),
                None,
            )
            if meta is None:
                raise DataLayoutError(f"{gt} uses the devkit's ILSVRC2012_IDs: put the devkit's meta.mat next to it")
            ids = [int(v) for v in gt.read_text().split()]
            id_to_class = _devkit_id_to_class(meta, index)
            table = {f"ILSVRC2012_val_{i + 1:08d}": id_to_class[v] for i, v in enumerate(ids)}
            return _lookup(files, table, gt, key=lambda f: f.stem)
        txt = folder / "val_labels.txt"
        if txt.is_file():
            table = {}
            for line in txt.read_text().splitlines():
                if line.strip():
                    name, label = line.split()[:2]
                    table[name] = index[label] if _WNID.match(label) else int(label)
            return _lookup(files, table, txt, key=lambda f: f.name)
    raise DataLayoutError(f"no ground-truth file for the flat images in {root}: {_IMAGENET_LAYOUT}")


def _devkit_id_to_class(meta: Path, index: dict[str, int]) -> dict[int, int]:
    from scipy.io import loadmat

    synsets = loadmat(meta, squeeze_me=True)["synsets"]
    out = {}
    for row in np.atleast_1d(synsets):
        ilsvrc_id, wnid = int(row["ILSVRC2012_ID"]), str(row["WNID"])
        if wnid in index:
            out[ilsvrc_id] = index[wnid]
    return out


def _lookup(files: list[Path], table: dict, source: Path, key) -> np.ndarray:
    try:
        y = [table[key(f)] for f in files]
    except KeyError as exc:
        raise DataLayoutError(f"image {exc.args[0]} has no label in {source}") from None
    y = np.asarray(y, dtype=np.int64)
    if y.size and (y.min() < 0 or y.max() >= 1000):
        raise DataLayoutError(f"labels in {source} must be ImageNet class ids 0..999 or WordNet ids")
    return y


def _imagenet_files(root: Path) -> tuple[list[Path], np.ndarray]:
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    flat = _images_in(root)
    if subdirs and not flat:
        bad = [p.name for p in subdirs if not _WNID.match(p.name)]
        if bad:
            raise DataLayoutError(f"{root}/{bad[0]} is not a WordNet id folder: {_IMAGENET_LAYOUT}")
        index = {w: i for i, w in enumerate(imagenet_synsets())}
        unknown = [p.name for p in subdirs if p.name not in index]
        if unknown:
            raise DataLayoutError(f"{root}/{unknown[0]} is not one of the 1,000 ImageNet-1k classes")
        files, labels = [], []
        for d in subdirs:
            imgs = _images_in(d)
            files += imgs
            labels += [index[d.name]] * len(imgs)
        y = np.asarray(labels, dtype=np.int64)
    elif flat:
        files = flat
        y = _flat_imagenet_labels(root, files)
    else:
        raise DataLayoutError(f"no images found in {root}: {_IMAGENET_LAYOUT}")
    if not files:
        raise DataLayoutError(f"no images found in {root}: {_IMAGENET_LAYOUT}")
    return files, y


def calib_test_split(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic calib/test indices: 10,000/40,000 for the 50,000 ImageNet validation images.

    For other sizes, ``calib`` gets ``round(n / 5)`` images (the same 1:4 proportion), chosen by a
    seeded permutation; both index arrays are sorted.

    Examples
    --------
    >>> calib, test = calib_test_split(50_000)
    >>> len(calib), len(test)
    (10000, 40000)
    >>> [len(a) for a in calib_test_split(8)]
    [2, 6]
    """
    n_calib = int(round(n * IMAGENET_CALIB_SIZE / IMAGENET_VAL_SIZE))
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:n_calib]), np.sort(perm[n_calib:])


def imagenet_val(root: str | Path, *, seed: int = 0) -> ImageDataset:
    """The ImageNet validation set from a local folder, split into ``calib`` and ``test`` (Sec. 3.2).

    Layouts: module docstring. The split is :func:`calib_test_split` over the images sorted by path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "n01440764").mkdir()
    >>> for i in range(5):
    ...     Image.new("RGB", (8, 8)).save(d / "n01440764" / f"{i}.JPEG")
    >>> ds = imagenet_val(d)
    >>> {k: len(v) for k, v in ds.splits.items()}, ds.class_names[0]
    ({'calib': 1, 'test': 4}, 'tench')
    """
    root = Path(root)
    files, y = _imagenet_files(root)
    calib, test = calib_test_split(len(files), seed=seed)
    splits = {
        name: ImageSplit(name, [files[i] for i in idx], y[idx], root)
        for name, idx in (("calib", calib), ("test", test))
    }
    return ImageDataset(
        "imagenet",
        root,
        "imagenet-val",
        imagenet_class_names(),
        splits,
        prompt_names=imagenet_class_names(unique=False),
    )


def imagenet_train_subset(
    root: str | Path, *, per_class: int = 10, seed: int = 0, split: str = "train"
) -> ImageDataset:
    """A class-balanced subset of the ImageNet training set (class folders), for L-BFGS heads.

    Parameters
    ----------
    root : path
        ``ROOT/<wnid>/<image>`` (the ILSVRC2012 train layout).
    per_class : int, default 10
        Images drawn per class (seeded, without replacement; all when a class has fewer).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "n01443537").mkdir()
    >>> for i in range(5):
    ...     Image.new("RGB", (8, 8)).save(d / "n01443537" / f"{i}.JPEG")
    >>> imagenet_train_subset(d, per_class=3).splits["train"].labels.tolist()
    [1, 1, 1]
    """
    root = Path(root)
    files, y = _imagenet_files(root)
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        keep += sorted(rng.choice(idx, size=min(per_class, idx.size), replace=False).tolist())
    keep = np.asarray(sorted(keep), dtype=np.int64)
    s = ImageSplit(split, [files[i] for i in keep], y[keep], root)
    return ImageDataset(
        "imagenet-train",
        root,
        "imagenet-train",
        imagenet_class_names(),
        {split: s},
        prompt_names=imagenet_class_names(unique=False),
    )


# ------------------------------------------------------------------------------------------- VOC 2007

_VOC_LAYOUT = (
    "expected DIR = VOCdevkit or VOCdevkit/VOC2007 holding Annotations/*.xml, "
    "ImageSets/Main/{train,val,test}.txt and JPEGImages/*.jpg"
)
VOC_SPLITS = {"down_train": "train", "down_val": "val", "down_test": "test"}
"""Store split name -> VOC 2007 image set."""


def voc2007(root: str | Path) -> ImageDataset:
    """PASCAL VOC 2007 from the standard VOCdevkit layout as 20-class multi-hot splits (Sec. 4.7).

    Store splits ``down_train``, ``down_val``, ``down_test`` hold the VOC image sets ``train``,
    ``val`` and ``test`` (``trainval`` = train + val). Image sets missing from the folder (e.g.
    ``test`` when only the trainval archive is unpacked) are left out.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "VOC2007"
    >>> for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
    ...     (d / sub).mkdir(parents=True)
    >>> _ = (d / "ImageSets/Main/train.txt").write_text("000005")
    >>> Image.new("RGB", (8, 8)).save(d / "JPEGImages/000005.jpg")
    >>> _ = (d / "Annotations/000005.xml").write_text(
    ...     "<annotation><object><name>chair</name></object><object><name>person</name></object></annotation>")
    >>> ds = voc2007(d)
    >>> Y = ds.splits["down_train"].labels
    >>> Y.shape, [VOC_CLASSES[j] for j in Y[0].nonzero()[0]]
    ((1, 20), ['chair', 'person'])
    """
    import xml.etree.ElementTree as ET

    root = Path(root)
    base = root / "VOC2007" if (root / "VOC2007").is_dir() else root
    main = base / "ImageSets" / "Main"
    if not (base / "Annotations").is_dir() or not (base / "JPEGImages").is_dir() or not main.is_dir():
        raise DataLayoutError(f"{root} is not a VOC 2007 folder: {_VOC_LAYOUT}")
    index = {c: i for i, c in enumerate(VOC_CLASSES)}
    splits = {}
    for store_split, image_set in VOC_SPLITS.items():
        listing = main / f"{image_set}.txt"
        if not listing.is_file():
            continue
        ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        Y = np.zeros((len(ids), len(VOC_CLASSES)), dtype=np.uint8)
        files = []
        for row, image_id in enumerate(ids):
            ann = base / "Annotations" / f"{image_id}.xml"
            img = base / "JPEGImages" / f"{image_id}.jpg"
            if not ann.is_file() or not img.is_file():
                raise DataLayoutError(
                    f"VOC image {image_id} of {listing.name} lacks "
                    f"{ann.name if not ann.is_file() else img.name}: {_VOC_LAYOUT}"
                )
            for obj in ET.parse(ann).getroot().iter("object"):
                name = (obj.findtext("name") or "").strip()
                if name not in index:
                    raise DataLayoutError(f"{ann}: unknown VOC class {name!r}")
                Y[row, index[name]] = 1
            files.append(img)
        splits[store_split] = ImageSplit(store_split, files, Y, base)
    if not splits:
        raise DataLayoutError(f"no image sets in {main}: {_VOC_LAYOUT}")
    names = list(VOC_CLASSES)
    return ImageDataset("voc2007", base, "voc2007", names, splits, {s: names for s in splits})


def load_image(path: str | Path):
    """Open an image file as an RGB PIL image (decoded now, file closed).

    Examples
    --------
    >>> import tempfile
    >>> from PIL import Image
    >>> f = tempfile.mktemp(suffix=".png"); Image.new("L", (4, 3)).save(f)
    >>> load_image(f).mode, load_image(f).size
    ('RGB', (4, 3))
    """
    from PIL import Image

    with Image.open(path) as img:
        return img.convert("RGB")


__all__ = [
    "DataLayoutError",
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "ImageSplit",
    "KINDS",
    "VOC_CLASSES",
    "VOC_SPLITS",
    "calib_test_split",
    "image_folder",
    "imagenet_class_names",
    "imagenet_synsets",
    "imagenet_train_subset",
    "imagenet_val",
    "load_image",
    "open_data",
    "parse_data_spec",
    "voc2007",
]
