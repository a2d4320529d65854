"""A small residual network for CIFAR-sized images (He et al. 2016, "Deep residual learning").

The ResNet-9 layout that trains CIFAR-10 fastest (Page 2018, the DAWNBench entries): a prep
convolution, then three stages (conv -> max-pool, with a two-conv residual branch after stages 1
and 3), global max-pooling and a linear head scaled by 1/8. ``width`` sets the channels
(w, 2w, 4w, 8w); width 64 is the paper-scale network, width 16 trains on two CPU cores in minutes.
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Classifier


def conv_bn(cin: int, cout: int, pool: bool = False) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    """x + F(x), F = two 3x3 conv-BN-ReLU layers."""

    def __init__(self, c: int):
        super().__init__()
        self.f = nn.Sequential(conv_bn(c, c), conv_bn(c, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


class Scale(nn.Module):
    def __init__(self, s: float):
        super().__init__()
        self.s = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.s


class ResNet(Classifier):
    def __init__(self, in_shape: tuple[int, int, int], num_classes: int, width: int = 16, mean=None, std=None):
        c, h, _ = in_shape
        w = width
        pool3 = h >= 16  # tiny inputs (8x8 digits) skip the last pooling
        blocks = [
            conv_bn(c, w),
            nn.Sequential(conv_bn(w, 2 * w, pool=True), Residual(2 * w)),
            conv_bn(2 * w, 4 * w, pool=True),
            nn.Sequential(conv_bn(4 * w, 8 * w, pool=pool3), Residual(8 * w)),
            nn.Sequential(nn.AdaptiveMaxPool2d(1), nn.Flatten(), Scale(0.125)),
        ]
        super().__init__(blocks, 8 * w, num_classes, in_shape, mean, std)
