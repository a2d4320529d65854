"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
recognition"): two convolution + subsampling stages, then fully connected layers 120 -> 84 -> classes.

Modernised as most courses do: ReLU and max-pooling instead of scaled tanh and trainable average
subsampling, full C3 connectivity, batch norm after each convolution. ``width`` multiplies the
channel counts (6, 16) and the layer sizes (120, 84); the first convolution is padded so any input
of at least 8x8 works (28x28 MNIST gives the paper's 32x32 geometry).
"""

from __future__ import annotations

from torch import nn

from .base import Classifier


def conv_stage(cin: int, cout: int, pad: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 5, padding=pad, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True), nn.MaxPool2d(2))


class LeNet5(Classifier):
    def __init__(self, in_shape: tuple[int, int, int], num_classes: int, width: int = 1, dropout: float = 0.0,
                 mean=None, std=None):
        c, h, w = in_shape
        c1, c3, f5, f6 = 6 * width, 16 * width, 120 * width, 84 * width
        small = min(h, w) < 20  # 8x8 digits: keep the spatial size through both convolutions
        blocks = [conv_stage(c, c1, 2), conv_stage(c1, c3, 2 if small else 0)]
        # spatial size after the two stages
        for pad in (2, 2 if small else 0):
            h, w = (h + 2 * pad - 4) // 2, (w + 2 * pad - 4) // 2
        drop = [nn.Dropout(dropout)] if dropout else []
        blocks += [nn.Sequential(nn.Flatten(), nn.Linear(c3 * h * w, f5), nn.ReLU(inplace=True), *drop),
                   nn.Sequential(nn.Linear(f5, f6), nn.ReLU(inplace=True), *drop)]
        super().__init__(blocks, f6, num_classes, in_shape, mean, std)
