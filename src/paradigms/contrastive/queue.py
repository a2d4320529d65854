"""MoCo's dictionary of negatives: a first-in first-out queue of the most recent keys (He et al. 2020, section 3.2).

Each step the current batch's keys are enqueued and the oldest batch leaves, so the dictionary is as large as
``size`` (65,536 in the paper) while a step encodes one batch of keys. The queue is a module whose buffers
(the keys and the write position) are saved with the run's checkpoint and restored exactly on resume.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class KeyQueue(nn.Module):
    def __init__(self, size: int, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"a key queue needs size >= 1 and dim >= 1; got size={size}, dim={dim}")
        # the paper starts from random unit vectors: the first steps' negatives are noise until real keys arrive
        self.register_buffer("keys", F.normalize(torch.randn(size, dim, generator=generator), dim=1))   # (K, C)
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))                                  # next write

    @property
    def size(self) -> int:
        return self.keys.shape[0]

    @torch.no_grad()
    def push(self, keys: torch.Tensor) -> None:
        """Enqueue a batch of keys (N, C) in place of the N oldest. N must divide the queue's size, as in the paper
        (the batches then tile it exactly)."""
        n = len(keys)
        if self.size % n:
            raise ValueError(f"queue size {self.size} is not a multiple of the batch of keys ({n}): choose a queue "
                             f"size divisible by the global batch size")
        p = int(self.ptr)
        self.keys[p:p + n] = keys.detach().to(self.keys.dtype)
        self.ptr.fill_((p + n) % self.size)

    def forward(self) -> torch.Tensor:
        """The current negatives (K, C), oldest first."""
        p = int(self.ptr)
        return torch.cat([self.keys[p:], self.keys[:p]])


__all__ = ["KeyQueue"]
