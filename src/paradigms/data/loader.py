"""Batches for the training loop: deterministic, sharded by rank, resumable mid-epoch.

The order of epoch ``e`` is a permutation drawn from a generator seeded by ``(seed, e)``, so a
run resumed at batch ``k`` sees exactly the batches an uninterrupted run would. Each global batch
is split across DDP ranks. Small datasets live on the training device as uint8 tensors and are
gathered there (no per-sample Python); a dataset too large for memory streams from disk through a
``DataLoader`` with workers, fed the same index batches. Images come out as float pixels in
[0, 1]: standardising them is the network's first layer (:class:`paradigms.nets.Standardize`).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    if not shuffle:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)


def index_batches(n: int, batch_size: int, seed: int, epoch: int, *, shuffle: bool = True,
                  drop_last: bool = True, rank: int = 0, world: int = 1) -> list[torch.Tensor]:
    """This rank's share of every global batch of the epoch, in order."""
    order = epoch_order(n, seed, epoch, shuffle)
    stop = (n // batch_size) * batch_size if drop_last else n
    return [order[i: min(i + batch_size, stop)][rank::world] for i in range(0, stop, batch_size)]


def unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float pixels in [0, 1]."""
    return x.float().mul_(1.0 / 255)


class ImageLoader:
    """Batches of (float images in [0, 1], labels) on ``device`` from uint8 tensors or a Dataset."""

    def __init__(self, x: torch.Tensor | None, y: torch.Tensor | None, *, batch_size: int, device,
                 seed: int = 0, shuffle: bool = True, drop_last: bool = True,
                 rank: int = 0, world: int = 1, stream: Dataset | None = None, workers: int = 2):
        self.stream, self.workers = stream, workers
        self.n = len(stream) if stream is not None else len(x)
        if stream is None:
            self.x, self.y = x.to(device), y.to(device)
        self.batch_size = min(batch_size, self.n) if drop_last else batch_size
        self.device, self.seed = device, seed
        self.shuffle, self.drop_last, self.rank, self.world = shuffle, drop_last, rank, world

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (0 if self.drop_last or rest == 0 else 1)

    def epoch(self, epoch: int = 0, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        batches = index_batches(self.n, self.batch_size, self.seed, epoch, shuffle=self.shuffle,
                                drop_last=self.drop_last, rank=self.rank, world=self.world)[start:]
        if self.stream is None:
            for idx in batches:
                idx = idx.to(self.device)
                yield unit(self.x[idx]), self.y[idx]
            return
        loader = DataLoader(self.stream, batch_sampler=[b.tolist() for b in batches],
                            num_workers=self.workers, pin_memory=self.device.type == "cuda")
        for x, y in loader:
            yield unit(x.to(self.device, non_blocking=True)), y.to(self.device, non_blocking=True)

    __iter__ = epoch
