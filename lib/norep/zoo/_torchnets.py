"""The network classes of the embedded study (torch imported at the top: import through
:func:`norep.zoo._nets.build`, which loads this module only when a network is built).

Every network takes ``n_classes`` (the outputs of its linear ``head``) and ``dropout`` (before the
head). Each creates its head's parameters first, then its body's, in a fixed order, so the seed set
before :func:`~norep.zoo._nets.build` fixes the initial weights.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    """Base class: features + (dropout) + linear head."""

    def __init__(self, dim, dropout=0.0, n_classes=10):
        super().__init__()
        self.dim = dim
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x):
        return self.head(self.drop(self.features(x)))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return F.relu(x + self.b2(self.c2(F.relu(self.b1(self.c1(x))))))


class ResNet(Net):
    """Stem conv + max-pool, a residual block at 14x14, a strided conv, a residual block at 7x7, GAP."""

    def __init__(self, width=24, dropout=0.0, n_classes=10):
        super().__init__(2 * width, dropout, n_classes)
        w = width
        self.trunk = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1, bias=False),
            nn.BatchNorm2d(w),
            nn.ReLU(),
            nn.MaxPool2d(2),
            Block(w),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * w),
            nn.ReLU(),
            Block(2 * w),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def features(self, x):
        return self.trunk(x)


class MLP(Net):
    def __init__(self, hidden=(256, 128), dropout=0.0, n_classes=10):
        super().__init__(hidden[-1], dropout, n_classes)
        layers, d = [nn.Flatten()], 28 * 28
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        self.body = nn.Sequential(*layers)

    def features(self, x):
        return self.body(x)


class LeNet(Net):
    """LeCun et al. (1998) LeNet-5 layout with ReLU and max-pooling."""

    def __init__(self, dropout=0.0, n_classes=10):
        super().__init__(84, dropout, n_classes)
        self.body = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
        )

    def features(self, x):
        return self.body(x)


class VGG(Net):
    """Plain (non-residual) deeper CNN: 5 conv layers with BN, max-pooling, a fully connected layer."""

    def __init__(self, dropout=0.0, n_classes=10):
        super().__init__(128, dropout, n_classes)

        def cbr(i, o):
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]

        self.body = nn.Sequential(
            *cbr(1, 16),
            nn.MaxPool2d(2),
            *cbr(16, 32),
            *cbr(32, 32),
            nn.MaxPool2d(2),
            *cbr(32, 48),
            *cbr(48, 48),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(48 * 3 * 3, 128),
            nn.ReLU(),
        )

    def features(self, x):
        return self.body(x)


class ViT(Net):
    """Tiny vision transformer (Dosovitskiy et al. 2021): 7x7 patches (16 tokens), pre-norm blocks, mean pooling."""

    def __init__(self, dim=64, depth=4, heads=4, patch=7, dropout=0.0, n_classes=10):
        super().__init__(dim, dropout, n_classes)
        self.patch = nn.Conv2d(1, dim, patch, stride=patch)
        n = (28 // patch) ** 2
        self.pos = nn.Parameter(0.02 * torch.randn(1, n, dim))
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def features(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2) + self.pos
        return self.norm(self.blocks(t)).mean(1)


class AutoEncoder(ResNet):
    """The base trunk as encoder, a small transposed-conv decoder back to 28x28 (reconstruction)."""

    def __init__(self, width=24, dropout=0.0, n_classes=10):
        super().__init__(width, dropout, n_classes)
        self.decoder = nn.Sequential(
            nn.Linear(2 * width, 32 * 7 * 7),
            nn.ReLU(),
            nn.Unflatten(1, (32, 7, 7)),
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 4, stride=2, padding=1),
        )

    def reconstruct(self, x):
        return self.decoder(self.features(x))


class CNN(Net):
    """``convs`` conv (``kernel`` x ``kernel``) + BN + ReLU stages, the first two max-pooled, the feature map
    average-pooled to ``pool`` x ``pool``."""

    def __init__(self, c1=16, c2=32, pool=3, convs=2, kernel=3, dropout=0.0, n_classes=10):
        super().__init__(c2 * pool * pool, dropout, n_classes)
        layers, c = [], 1
        for i in range(convs):
            o = c1 if i == 0 else c2
            layers += [nn.Conv2d(c, o, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU()]
            if i < 2:
                layers.append(nn.MaxPool2d(2))
            c = o
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(pool), nn.Flatten())

    def features(self, x):
        return self.body(x)


class Encoder(Net):
    """Representation learner: 5x5 conv (``c1``) + BN + ReLU + max-pool, 3x3 conv (``c2``) + BN + ReLU,
    average-pooled to ``pool`` x ``pool``; at random initialisation (BN the identity) a random-feature map."""

    def __init__(self, c1=32, c2=128, pool=3, dropout=0.0, n_classes=10):
        super().__init__(c2 * pool * pool, dropout, n_classes)
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 5, padding=2, bias=False),
            nn.BatchNorm2d(c1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False),
            nn.BatchNorm2d(c2),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(pool),
            nn.Flatten(),
        )

    def features(self, x):
        return self.body(x)


ARCHS = {
    "cnn": CNN,
    "encoder": Encoder,
    "resnet": ResNet,
    "mlp": MLP,
    "lenet": LeNet,
    "vgg": VGG,
    "vit": ViT,
    "autoencoder": AutoEncoder,
}
"""The networks :func:`norep.zoo._nets.build` instantiates, by architecture name."""
