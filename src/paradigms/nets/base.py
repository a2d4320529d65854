"""What every image network here shares: pixels in [0, 1] in, standardised by its first layer.

A :class:`Classifier` is ``standardize`` (the dataset's per-channel mean and std, buffers saved with
the weights), a stack of ``blocks`` (the backbone) and a ``head``::

    x in [0, 1]  ->  (x - mean) / std  ->  blocks  ->  flatten  ->  head  ->  logits

so an attack's epsilon of 8/255 or a smoothing noise sigma means the same for every run, with or
without augmentation. ``features(x)`` runs everything but the head; ``embed_dim`` is its width.
Transfer learning freezes the first k blocks or swaps the head; other paradigms' encoders use
``features``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Standardize(nn.Module):
    """x -> (x - mean) / std per channel; ``mean`` and ``std`` are buffers (saved, never trained)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"Standardize needs one mean and one positive std per channel; got {mean}, {std}")
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return f"mean={self.mean.flatten().tolist()}, std={self.std.flatten().tolist()}"


class Classifier(nn.Module):
    def __init__(self, blocks: list[nn.Module], embed_dim: int, num_classes: int, in_shape: Sequence[int],
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        super().__init__()
        c = in_shape[0]
        self.input_shape = tuple(int(s) for s in in_shape)  # (C, H, W)
        self.standardize = Standardize(mean if mean is not None else [0.0] * c, std if std is not None else [1.0] * c)
        self.blocks = nn.ModuleList(blocks)
        self.embed_dim = embed_dim
        self.head = nn.Linear(embed_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.standardize(x)
        for block in self.blocks:
            x = block(x)
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
