"""Data sets of the embedded study: Fashion-MNIST and scikit-learn's digits.

The embedded study stands in for the paper's ImageNet setting (Sec. 3) with Fashion-MNIST: every zoo
model is trained on (a subset of) ``train``, temperatures are fitted (and greedy selections made) on
``calib``, and every reported number comes from ``test``. ``calib`` and ``test`` are the two halves
of the official test set, so selection and evaluation see the same distribution (the paper's
calibration split is likewise held out of ImageNet's validation images).

Fashion-MNIST is looked up, in order, in

1. the folder named by the environment variable ``NOREP_DATA`` (or the ``path`` argument),
2. the files of Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``),
3. the user cache (``~/.cache/norep/fashion-mnist``, or ``$XDG_CACHE_HOME/norep``), filled by a
   checksummed download (:func:`download_fashion_mnist`),

and every file is checked against the SHA-256 of its decompressed IDX content (so the upstream
``.gz`` files and Debian's recompressed ones both pass). Where none is available a
:class:`DataNotFoundError` names the three ways to provide the data.

The ``digits`` preset uses scikit-learn's bundled 8x8 digits (1,797 images), upsampled to 28x28 so
the same networks apply; it is always present and makes the test suite fast.

Other data (no Fashion-MNIST image or label), for the ``DATASET`` category's pretraining:
:func:`glyph_images` (letters rendered with Pillow's bundled font) and :func:`natural_patches` (crops
of scikit-learn's two bundled photographs); :func:`norep.zoo._nets.procedural_images` draws shapes.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "DEBIAN_FASHION_MNIST_DIR",
    "DIGITS_CLASSES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_CLASS_GROUPS",
    "DataNotFoundError",
    "Splits",
    "digits_images",
    "download_fashion_mnist",
    "glyph_images",
    "natural_patches",
    "find_fashion_mnist",
    "load_fashion_mnist",
    "load_splits",
]

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
"""The ten Fashion-MNIST classes, in label order."""

FASHION_MNIST_CLASS_GROUPS = {
    "tops": [0, 2, 4, 6],
    "bottoms_dresses": [1, 3],
    "footwear": [5, 7, 9],
    "bags": [8],
}
"""Groups of Fashion-MNIST classes, the analogue of the paper's nature/anthropogenic split (Sec. 4.4)."""

DIGITS_CLASSES = [str(d) for d in range(10)]
"""Class names of scikit-learn's digits."""

DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
"""Where Debian's ``dataset-fashion-mnist`` package installs the four gzipped IDX files."""

FASHION_MNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
"""Upstream download location (Zalando Research)."""

# name -> (sha256 of the decompressed IDX bytes, md5 of the upstream .gz file)
_FILES = {
    "train-images-idx3-ubyte": (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    ),
    "train-labels-idx1-ubyte": (
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "25c81989df183df01b3e8a0aad5dffbe",
    ),
    "t10k-images-idx3-ubyte": (
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "bef4ecab320f06d8554ea6380940ec79",
    ),
    "t10k-labels-idx1-ubyte": (
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
}


class DataNotFoundError(FileNotFoundError):
    """Fashion-MNIST is in none of the places :func:`find_fashion_mnist` looks."""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "norep" / "fashion-mnist"


def _file_in(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _complete(folder: Path) -> bool:
    return folder.is_dir() and all(_file_in(folder, s) is not None for s in _FILES)


def _not_found_message(tried: list[str]) -> str:
    return (
        "Fashion-MNIST not found (looked in: " + "; ".join(tried) + "). Provide it in one of three ways: "
        "(1) set NOREP_DATA to a folder holding the four files train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; "
        "(2) install Debian's package: sudo apt-get install dataset-fashion-mnist; "
        f"(3) download them (checksummed) into {_cache_dir()} with "
        "python -c 'import norep.data as d; d.download_fashion_mnist()'"
    )


def find_fashion_mnist(path: str | os.PathLike | None = None) -> Path:
    """Return the folder holding the four Fashion-MNIST IDX files.

    Looks at ``path`` (or ``$NOREP_DATA``), then Debian's package folder, then the user cache.
    Files may be gzipped (``*.gz``) or not.

    Parameters
    ----------
    path : path-like, optional
        Explicit folder; overrides ``NOREP_DATA``. A folder that lacks the files is an error (no
        silent fallback from an explicit choice).

    Returns
    -------
    Path

    Raises
    ------
    DataNotFoundError
        With one message listing the three ways to provide the data.

    Examples
    --------
    >>> from norep.data import find_fashion_mnist, DataNotFoundError
    >>> try:
    ...     folder = find_fashion_mnist()
    ... except DataNotFoundError:
    ...     folder = None
    >>> folder is None or (folder / "t10k-labels-idx1-ubyte.gz").exists() or folder.is_dir()
    True
    """
    explicit = path if path is not None else os.environ.get("NOREP_DATA") or None
    tried = []
    if explicit is not None:
        folder = Path(explicit).expanduser()
        for cand in (folder, folder / "fashion-mnist"):
            if _complete(cand):
                return cand
        src = "path" if path is not None else "NOREP_DATA"
        raise DataNotFoundError(_not_found_message([f"{src}={folder}"]))
    for cand in (DEBIAN_FASHION_MNIST_DIR, _cache_dir()):
        tried.append(str(cand))
        if _complete(cand):
            return cand
    raise DataNotFoundError(_not_found_message(["NOREP_DATA (unset)"] + tried))


def _read_idx(path: Path, stem: str) -> np.ndarray:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    digest = hashlib.sha256(raw).hexdigest()
    if digest != _FILES[stem][0]:
        raise ValueError(
            f"{path}: checksum mismatch (sha256 of the IDX content {digest[:12]}..., expected "
            f"{_FILES[stem][0][:12]}...); the file is corrupted or not Fashion-MNIST"
        )
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """Load the official Fashion-MNIST arrays, checksum-verified.

    Parameters
    ----------
    path : path-like, optional
        Folder with the IDX files; default: see :func:`find_fashion_mnist`.

    Returns
    -------
    dict
        ``X_train`` (60000, 28, 28) uint8, ``y_train`` (60000,) int64, ``X_test`` (10000, 28, 28),
        ``y_test`` (10000,).

    Examples
    --------
    >>> from norep.data import load_fashion_mnist, DataNotFoundError
    >>> try:
    ...     d = load_fashion_mnist()
    ... except DataNotFoundError:
    ...     d = {"X_test": np.zeros((10000, 28, 28))}
    >>> d["X_test"].shape
    (10000, 28, 28)
    """
    folder = find_fashion_mnist(path)
    out = {}
    for key, stem in (
        ("X_train", "train-images-idx3-ubyte"),
        ("y_train", "train-labels-idx1-ubyte"),
        ("X_test", "t10k-images-idx3-ubyte"),
        ("y_test", "t10k-labels-idx1-ubyte"),
    ):
        arr = _read_idx(_file_in(folder, stem), stem)
        out[key] = arr.astype(np.int64) if key.startswith("y") else arr
    return out


def download_fashion_mnist(cache_dir: str | os.PathLike | None = None, *, url: str = FASHION_MNIST_URL) -> Path:
    """Download Fashion-MNIST into the user cache, verifying MD5 of each file and SHA-256 of its content.

    Parameters
    ----------
    cache_dir : path-like, optional
        Target folder (default ``~/.cache/norep/fashion-mnist``).
    url : str
        Base URL of the four ``.gz`` files.

    Returns
    -------
    Path
        The folder, ready for :func:`load_fashion_mnist`.

    Raises
    ------
    DataNotFoundError
        If the download fails (e.g. no network); the message lists the other ways.
    ValueError
        If a downloaded file fails its checksum (it is deleted).

    Examples
    --------
    >>> from norep.data import download_fashion_mnist
    >>> callable(download_fashion_mnist)  # no network in doctests
    True
    """
    import urllib.request

    folder = Path(cache_dir) if cache_dir is not None else _cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for stem, (sha, md5) in _FILES.items():
        target = folder / f"{stem}.gz"
        if target.exists():
            continue
        tmp = folder / f".{stem}.gz.part"
        try:
            with urllib.request.urlopen(url + f"{stem}.gz", timeout=60) as resp, open(tmp, "wb") as f:
                f.write(resp.read())
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise DataNotFoundError(
                f"download of {url}{stem}.gz failed ({exc}). " + _not_found_message([str(folder)])
            ) from None
        got = hashlib.md5(tmp.read_bytes()).hexdigest()
        if got != md5 or hashlib.sha256(gzip.decompress(tmp.read_bytes())).hexdigest() != sha:
            tmp.unlink(missing_ok=True)
            raise ValueError(f"downloaded {stem}.gz failed its checksum (md5 {got}, expected {md5}); deleted")
        os.replace(tmp, target)
    return folder


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits upsampled to 28x28 uint8 images (bilinear), with labels.

    Returns
    -------
    X : (1797, 28, 28) uint8
    y : (1797,) int64

    Examples
    --------
    >>> from norep.data import digits_images
    >>> X, y = digits_images()
    >>> X.shape, X.dtype.name, int(X.max()), int(y.max())
    ((1797, 28, 28), 'uint8', 255, 9)
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    img = d.images.astype(np.float64) / 16.0  # (N, 8, 8) in [0, 1]
    # 8x8 -> 24x24 bilinear (pixel centres), then pad 2 pixels: digits centred like MNIST-style images
    src = (np.arange(24) + 0.5) * 8 / 24 - 0.5
    i0 = np.clip(np.floor(src).astype(int), 0, 7)
    i1 = np.clip(i0 + 1, 0, 7)
    w = np.clip(src - i0, 0, 1)
    rows = img[:, i0, :] * (1 - w)[None, :, None] + img[:, i1, :] * w[None, :, None]
    up = rows[:, :, i0] * (1 - w)[None, None, :] + rows[:, :, i1] * w[None, None, :]
    out = np.zeros((img.shape[0], 28, 28))
    out[:, 2:26, 2:26] = up
    return np.round(np.clip(out, 0, 1) * 255).astype(np.uint8), d.target.astype(np.int64)


GLYPHS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
"""The 52 classes of :func:`glyph_images` (letters only: no digit, the downstream task's classes)."""


def glyph_images(n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 images of letters rendered with Pillow's bundled font, randomly sized, rotated, shifted
    and stroked, with their class (index into :data:`GLYPHS`).

    Examples
    --------
    >>> from norep.data import glyph_images
    >>> X, y = glyph_images(4, seed=0)
    >>> X.shape, X.dtype.name, bool(X.max() > 128), bool(y.max() < 52)
    ((4, 28, 28), 'uint8', True, True)
    """
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    fonts = {s: ImageFont.load_default(size=s) for s in range(14, 25, 2)}
    y = rng.integers(0, len(GLYPHS), size=n)
    out = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        img = Image.new("L", (40, 40), 0)
        size = int(rng.choice(list(fonts)))
        ImageDraw.Draw(img).text(
            (20, 20),
            GLYPHS[y[i]],
            fill=int(rng.integers(160, 256)),
            font=fonts[size],
            anchor="mm",
            stroke_width=int(rng.integers(0, 2)),
            stroke_fill=int(rng.integers(160, 256)),
        )
        img = img.rotate(
            float(rng.uniform(-20, 20)),
            resample=Image.BILINEAR,
            translate=tuple(int(t) for t in rng.integers(-3, 4, 2)),
        )
        out[i] = np.asarray(img.crop((6, 6, 34, 34)))
    return out, y.astype(np.int64)


def natural_patches(n: int, *, seed: int = 0) -> np.ndarray:
    """``n`` grey 28x28 crops (side 16-96 pixels, resized) of scikit-learn's two bundled photographs
    (``china.jpg``, ``flower.jpg``), each contrast-stretched to 0-255.

    Examples
    --------
    >>> from norep.data import natural_patches
    >>> P = natural_patches(3, seed=0)
    >>> P.shape, P.dtype.name, int(P.max())
    ((3, 28, 28), 'uint8', 255)
    """
    from PIL import Image
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(im).convert("L") for im in load_sample_images().images]
    out = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        ph = photos[int(rng.integers(len(photos)))]
        side = int(rng.integers(16, 97))
        x0, y0 = int(rng.integers(0, ph.width - side)), int(rng.integers(0, ph.height - side))
        a = np.asarray(ph.crop((x0, y0, x0 + side, y0 + side)).resize((28, 28), Image.BILINEAR), np.float32)
        lo, hi = a.min(), a.max()
        out[i] = np.round((a - lo) / max(hi - lo, 1.0) * 255).astype(np.uint8)
    return out


@dataclass
class Splits:
    """Train / calib / test images and labels of one preset (uint8 images, int64 labels)."""

    name: str
    class_names: list[str]
    X_train: np.ndarray
    y_train: np.ndarray
    X_calib: np.ndarray
    y_calib: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    class_groups: dict[str, list[int]] = field(default_factory=dict)
    source: str = ""

    def fingerprint(self) -> str:
        """SHA-256 (hex, 16 chars) over all arrays: part of every model's cache key."""
        h = hashlib.sha256(self.name.encode())
        for arr in (self.X_train, self.y_train, self.X_calib, self.y_calib, self.X_test, self.y_test):
            h.update(str(arr.shape).encode())
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]


def load_splits(
    preset: str = "fashion", *, path: str | os.PathLike | None = None, n_calib: int | None = None, seed: int = 0
) -> Splits:
    """The train / calib / test splits of a preset (paper Sec. 3.2: calibration split disjoint from test).

    ``fashion``: ``train`` = the official 60,000 training images; ``calib`` = 5,000 of the official
    10,000 test images (500 per class, fixed by ``seed``) and ``test`` = the other 5,000, so that the
    split that fits temperatures and selects models has the evaluation split's distribution.
    ``digits``: scikit-learn's 1,797 digits split 1,000 / 400 / 397.

    Parameters
    ----------
    preset : {"fashion", "digits"}
    path : path-like, optional
        Fashion-MNIST folder (see :func:`find_fashion_mnist`).
    n_calib : int, optional
        Size of ``calib`` (default 5,000 for fashion, a multiple of 10; 400 for digits).
    seed : int, default 0
        Seed of the held-out split (model seeds are separate).

    Returns
    -------
    Splits

    Examples
    --------
    >>> from norep.data import load_splits
    >>> s = load_splits("digits")
    >>> len(s.y_train), len(s.y_calib), len(s.y_test), s.X_train.shape[1:]
    (1000, 400, 397, (28, 28))
    """
    rng = np.random.default_rng(seed)
    if preset == "fashion":
        d = load_fashion_mnist(path)
        n_calib = 5_000 if n_calib is None else int(n_calib)
        yt = d["y_test"]
        cal = np.sort(np.concatenate([rng.permutation(np.flatnonzero(yt == c))[: n_calib // 10] for c in range(10)]))
        te = np.setdiff1d(np.arange(len(yt)), cal)
        return Splits(
            "fashion",
            list(FASHION_MNIST_CLASSES),
            d["X_train"],
            d["y_train"],
            d["X_test"][cal],
            yt[cal],
            d["X_test"][te],
            yt[te],
            {k: list(v) for k, v in FASHION_MNIST_CLASS_GROUPS.items()},
            source="fashion-mnist",
        )
    if preset == "digits":
        X, y = digits_images()
        n_calib = 400 if n_calib is None else int(n_calib)
        perm = rng.permutation(len(y))
        tr, cal, te = perm[:1000], perm[1000 : 1000 + n_calib], perm[1000 + n_calib :]
        groups = {"round": [0, 6, 8, 9], "straight": [1, 4, 7], "curved": [2, 3, 5]}
        return Splits(
            "digits", list(DIGITS_CLASSES), X[tr], y[tr], X[cal], y[cal], X[te], y[te], groups, source="sklearn-digits"
        )
    raise ValueError(f"unknown preset {preset!r}; choose 'fashion' or 'digits'")
