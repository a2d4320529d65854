"""A universal adversarial patch (Brown, Mané, Roy, Abadi & Gilmer 2017, "Adversarial patch").

One square "sticker" p, trained over images x and random transformations t (where it is pasted, its
rotation and scale: expectation over transformation), so that pasted anywhere it turns images into
the target class:

    p* = argmax_p  E_{x ~ X, t ~ T}  log P(target | A(p, x, t)),      p in [0, 1]

A(p, x, t) rotates and scales the patch (drawn through :mod:`paradigms.augment`'s ``rotate`` and
``scale``) and pastes it, whole, inside the image at a random position. The small-scale analogue of
the stickers on a stop sign (Eykholt et al. 2018).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import TRANSFORMS
from ..errors import UserError
from .attacks import evaluating


def side(size: float, h: int, w: int) -> int:
    """The side in pixels of a square patch covering ``size`` (a fraction) of an h x w image."""
    if not 0 < size <= 1:
        raise UserError(f"patch size={size} is out of range: the fraction of the image area it covers, in (0, 1]")
    return max(1, min(h, w, round(math.sqrt(size * h * w))))


def draw(n: int, k: int, h: int, w: int, degrees: float = 20.0, scale: tuple[float, float] = (0.8, 1.2),
         device="cpu") -> dict[str, torch.Tensor]:
    """Where and how to paste a k x k patch on each of n h x w images: top, left (the patch inside the
    image), angle and scale (drawn by the augment transforms)."""
    rotate, zoom = TRANSFORMS["rotate"](degrees=degrees), TRANSFORMS["scale"](low=scale[0], high=scale[1])
    return {"top": torch.randint(0, h - k + 1, (n,), device=device),
            "left": torch.randint(0, w - k + 1, (n,), device=device),
            **rotate.draw(n, k, k, device), **zoom.draw(n, k, k, device)}


def place(px: float, py: float, k: int, h: int, w: int, angle: float = 0.0, scale: float = 1.0,
          device="cpu") -> dict[str, torch.Tensor]:
    """The ``where`` of :func:`paste` for one h x w image: the k x k patch's centre as near to (px w, py h) as keeps it
    whole inside the image (px, py fractions of the width and height, in [0, 1]), rotated by ``angle`` degrees and
    scaled by ``scale`` about its centre. What a person chooses, where :func:`draw` draws at random."""
    if not (0 <= px <= 1 and 0 <= py <= 1):
        raise UserError(f"the patch's place px={px:g}, py={py:g} is out of range: fractions of the image, in [0, 1]")
    left = min(max(round(px * w - k / 2), 0), w - k)             # the centre at px * w, the tile inside [0, w)
    top = min(max(round(py * h - k / 2), 0), h - k)
    one = torch.ones(1, device=device)
    return {"top": torch.tensor([top], device=device), "left": torch.tensor([left], device=device),
            "angle": one * float(angle), "s": one * float(scale)}


def paste(x: torch.Tensor, patch: torch.Tensor, where: dict[str, torch.Tensor]) -> torch.Tensor:
    """Images (N, C, H, W) with the (C, k, k) patch, rotated and scaled, pasted at ``where``."""
    n, c, h, w = x.shape
    k = patch.shape[-1]
    tiles = patch.expand(n, c, k, k)
    masks = torch.ones(n, 1, k, k, device=x.device, dtype=x.dtype)  # where the patch covers the image
    for name in ("rotate", "scale"):
        t = TRANSFORMS[name]()
        tiles, masks = t.apply(tiles, where), t.apply(masks, where)
    pads = [(int(l), w - int(l) - k, int(t), h - int(t) - k) for t, l in zip(where["top"], where["left"])]
    canvas = torch.stack([F.pad(tiles[i], pads[i]) for i in range(n)])
    mask = torch.stack([F.pad(masks[i], pads[i]) for i in range(n)])
    return x * (1 - mask) + canvas * mask


def train_patch(model: nn.Module, images: torch.Tensor, target: int, size: float = 0.1, steps: int = 500,
                batch_size: int = 64, lr: float = 0.05, degrees: float = 20.0,
                scale: tuple[float, float] = (0.8, 1.2)) -> torch.Tensor:
    """The patch (C, k, k) in [0, 1] that makes ``model`` call ``images`` (N, C, H, W in [0, 1], none of
    the target class) ``target``: Adam on the expected log-probability of the target, over random images
    and placements (draws from torch's global generator, so the seed decides them)."""
    n, c, h, w = images.shape
    k = side(size, h, w)
    target_t = torch.full((batch_size,), int(target), device=images.device)
    with evaluating(model), torch.enable_grad():
        patch = torch.rand(c, k, k, device=images.device).requires_grad_(True)
        opt = torch.optim.Adam([patch], lr=lr)
        for _ in range(int(steps)):
            xb = images[torch.randint(0, n, (batch_size,), device=images.device)]
            where = draw(batch_size, k, h, w, degrees, scale, images.device)
            loss = F.cross_entropy(model(paste(xb, patch, where)), target_t)  # -log P(target | A(p, x, t))
            (patch.grad,) = torch.autograd.grad(loss, patch)  # the patch's gradient only: the model keeps none
            opt.step()
            with torch.no_grad():
                patch.clamp_(0, 1)
    return patch.detach()


@torch.no_grad()
def patch_success(model: nn.Module, patch: torch.Tensor, images: torch.Tensor, target: int, batch_size: int = 256,
                  degrees: float = 20.0, scale: tuple[float, float] = (0.8, 1.2)) -> float:
    """The fraction of ``images`` (none of the target class) that ``model`` calls ``target`` with the patch
    pasted at random positions, rotations and scales."""
    n, _, h, w = images.shape
    k = patch.shape[-1]
    hits = 0
    with evaluating(model):
        for i in range(0, n, batch_size):
            xb = images[i: i + batch_size]
            where = draw(len(xb), k, h, w, degrees, scale, images.device)
            hits += int((model(paste(xb, patch, where)).argmax(1) == target).sum())
    return hits / max(n, 1)
