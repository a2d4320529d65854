"""Batched, per-sample random augmentation of image tensors (N, C, H, W) on their own device.

The two transforms the supervised recipe needs to reach its CIFAR-10 target: horizontal flip and
random crop after zero padding (pad-and-crop, the standard CIFAR policy of He et al. 2016). Random
numbers come from torch's global generator, which the engine seeds and checkpoints, so the same
seed gives the same batches and a resumed run continues the same stream.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .errors import unknown


def hflip(x: torch.Tensor, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability p."""
    flip = torch.rand(x.shape[0], device=x.device) < p
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def pad_crop(x: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Zero-pad by ``pad`` pixels, then cut an HxW window at a random offset per image."""
    n, _, h, w = x.shape
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device)
    rows = (dy + torch.arange(h, device=x.device)).view(n, 1, h, 1)
    cols = (dx + torch.arange(w, device=x.device)).view(n, 1, 1, w)
    out = xp.gather(2, rows.expand(n, xp.shape[1], h, xp.shape[3]))
    return out.gather(3, cols.expand(n, xp.shape[1], h, w))


TRANSFORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "flip": hflip,
    "crop": lambda x: pad_crop(x, max(1, x.shape[-1] // 8)),
}


def policy(names: list[str]) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Compose the named transforms in order; None when there are none."""
    for n in names:
        if n not in TRANSFORMS:
            raise unknown("augmentation", n, TRANSFORMS)
    if not names:
        return None

    def apply(x: torch.Tensor) -> torch.Tensor:
        for n in names:
            x = TRANSFORMS[n](x)
        return x

    return apply
