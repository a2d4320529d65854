"""What every classifier network here shares: a stack of ``blocks`` (the backbone) and a ``head``.

``features(x)`` runs the blocks and flattens; ``forward(x) = head(features(x))``. Transfer
learning freezes the first k blocks or swaps the head; encoders for other paradigms use
``features``; ``embed_dim`` is the width of the features.
"""

from __future__ import annotations

import torch
from torch import nn


class Classifier(nn.Module):
    def __init__(self, blocks: list[nn.Module], embed_dim: int, num_classes: int):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.embed_dim = embed_dim
        self.head = nn.Linear(embed_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
