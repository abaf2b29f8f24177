"""Small networks of the embedded study (28x28 grey images), built on demand (torch imported lazily:
the classes live in :mod:`norep.zoo._torchnets`).

Every network exposes ``features(x) -> (N, D)`` (the penultimate embedding stored for the
representation analyses, paper Secs. 4.6-4.7) and ``head`` (a linear layer), with
``forward(x) = head(dropout(features(x)))``. The base architecture of the Fashion-MNIST zoo is a
two-convolution CNN (``cnn``); the ``ARCH`` category swaps in other networks (MLPs, a LeNet, wider,
deeper or globally pooled CNNs, a VGG-style CNN, a small ResNet, a tiny ViT), and the representation
learners of ``FWORK`` and ``DATASET`` use a two-convolution ``encoder`` (5x5 then 3x3 kernels) whose
3x3-pooled feature map is the embedding a linear head reads.
"""

from __future__ import annotations

import numpy as np

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST pixel statistics, used for every preset


def build(arch: str, n_classes: int = 10, **kw):
    """Instantiate network ``arch`` (``cnn``, ``encoder``, ``resnet``, ``mlp``, ``lenet``, ``vgg``, ``vit``,
    ``autoencoder``) with ``n_classes`` outputs.

    Examples
    --------
    >>> import torch
    >>> from norep.zoo._nets import build
    >>> net = build("encoder", 10, c1=32, c2=32)
    >>> net.features(torch.zeros(2, 1, 28, 28)).shape, net.dim
    (torch.Size([2, 288]), 288)
    >>> build("cnn", 10).dim
    288
    """
    from norep.zoo._torchnets import ARCHS

    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHS)}")
    return ARCHS[arch](n_classes=n_classes, **kw)


def to_tensor(X):
    """uint8 (N, 28, 28) -> float32 tensor (N, 1, 28, 28) in [0, 1] (normalised inside the loops)."""
    import torch

    return torch.from_numpy(np.array(X, dtype=np.uint8)).unsqueeze(1).float().div_(255.0)


def procedural_images(n: int, *, seed: int = 0) -> np.ndarray:
    """``n`` procedurally generated 28x28 uint8 images of random shapes (no natural data involved).

    Each image overlays 1-4 primitives drawn at random: filled or hollow ellipses, rotated
    rectangles, strokes and sinusoidal gratings, with random intensities. They are the "other data"
    of the ``DATASET`` category's contrastive pretraining (cf. Baradad et al. 2021, learning from noise).

    Examples
    --------
    >>> from norep.zoo._nets import procedural_images
    >>> x = procedural_images(3, seed=0)
    >>> x.shape, x.dtype.name
    ((3, 28, 28), 'uint8')
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:28, 0:28].astype(np.float32)
    img = np.zeros((n, 28, 28), np.float32)
    k = rng.integers(1, 5, size=n)
    for s in range(4):
        on = k > s
        kind = rng.integers(0, 4, size=n)
        cx, cy = rng.uniform(4, 24, (2, n, 1, 1)).astype(np.float32)
        a, b = rng.uniform(2, 11, (2, n, 1, 1)).astype(np.float32)
        th = rng.uniform(0, np.pi, (n, 1, 1)).astype(np.float32)
        val = rng.uniform(0.3, 1.0, (n, 1, 1)).astype(np.float32)
        u = (xx - cx) * np.cos(th) + (yy - cy) * np.sin(th)
        v = -(xx - cx) * np.sin(th) + (yy - cy) * np.cos(th)
        r = (u / a) ** 2 + (v / b) ** 2
        hollow = rng.random((n, 1, 1)) < 0.4
        ell = np.where(hollow, (r <= 1) & (r >= 0.55), r <= 1)
        rect = (np.abs(u) <= a) & (np.abs(v) <= b * 0.6)
        stroke = (np.abs(v) <= 1.0) & (np.abs(u) <= a + 4)
        freq = rng.uniform(0.3, 1.2, (n, 1, 1)).astype(np.float32)
        grating = (0.5 + 0.5 * np.sin(freq * u)) * (r <= 2.0)
        shape = np.select(
            [kind[:, None, None] == 0, kind[:, None, None] == 1, kind[:, None, None] == 2], [ell, rect, stroke], grating
        ).astype(np.float32)
        img = np.where(on[:, None, None], np.maximum(img, shape * val), img)
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
