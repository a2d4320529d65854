"""ResNet-18 for 32x32 images, the network of the Cutout and Mixup papers' CIFAR-10 results.

He, Zhang, Ren & Sun 2016, "Deep residual learning": a 3x3 stem (no max-pool at this size), four
stages of two basic blocks (two 3x3 conv-BN layers and an identity or 1x1 projection shortcut) at
w, 2w, 4w, 8w channels (w = 64 in the papers), global average pooling, a linear head.
``preact=True`` gives PreAct ResNet-18 (He et al. 2016, "Identity mappings in deep residual
networks": BN-ReLU before each convolution), which the Mixup paper trains.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Classifier


class BasicBlock(nn.Module):
    """y = relu(x' + BN(conv(relu(BN(conv(x)))))), or the pre-activation order when ``preact``."""

    def __init__(self, cin: int, cout: int, stride: int, preact: bool):
        super().__init__()
        self.preact = preact
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cin if preact else cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            proj = [nn.Conv2d(cin, cout, 1, stride, bias=False)]
            self.shortcut = nn.Sequential(*proj) if preact else nn.Sequential(*proj, nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:
            out = F.relu(self.bn1(x))
            skip = self.shortcut(out) if self.shortcut is not None else x
            out = self.conv1(out)
            return self.conv2(F.relu(self.bn2(out))) + skip
        skip = self.shortcut(x) if self.shortcut is not None else x
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + skip)


class ResNet18(Classifier):
    def __init__(self, in_shape: tuple[int, int, int], num_classes: int, width: int = 64, preact: bool = False,
                 mean=None, std=None):
        c = in_shape[0]
        w = width
        stem = [nn.Conv2d(c, w, 3, 1, 1, bias=False)]
        if not preact:
            stem += [nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        blocks = [nn.Sequential(*stem)]
        cin = w
        for i, cout in enumerate((w, 2 * w, 4 * w, 8 * w)):
            stride = 1 if i == 0 else 2
            blocks.append(nn.Sequential(BasicBlock(cin, cout, stride, preact), BasicBlock(cout, cout, 1, preact)))
            cin = cout
        tail = [nn.BatchNorm2d(cin), nn.ReLU(inplace=True)] if preact else []
        blocks.append(nn.Sequential(*tail, nn.AdaptiveAvgPool2d(1), nn.Flatten()))
        super().__init__(blocks, cin, num_classes, in_shape, mean, std)
