"""Masked autoencoders (He et al. 2021, "Masked autoencoders are scalable vision learners").

Hide a random share r of an image's patches (0.75 by default); the encoder, a ViT, sees only the visible ones; a
light decoder gets their encodings back in place, a shared learned [mask] token everywhere else, and predicts every
patch's pixels. The loss is the mean squared error on the hidden patches alone:

    L = (1 / |M|) sum_{i in M} || x_i - x^_i ||^2 / (p^2 C)          M = the masked patches, x_i a patch's pixels

with ``norm_pix_loss`` each target patch standardised by its own mean and variance first (the paper's better
representation). ``random_masking`` and ``masked_patch_loss`` work on any tensors, the recipe's or a user's own.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nets.transformer import Block
from ..nets.vit import ViT, block_config, patchify, sincos_2d, unpatchify


def random_masking(n: int, num_patches: int, ratio: float, generator: torch.Generator | None = None,
                   device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, a uniformly random set of ``round(num_patches * (1 - ratio))`` visible patches.

    Returns ``keep`` (n, V): the visible patches' indices in increasing order, and ``mask`` (n, L): True where a
    patch is hidden. Every image hides the same number, chosen afresh for each."""
    if not 0 < ratio < 1:
        raise ValueError(f"mask_ratio={ratio}: it must be in (0, 1) (the paper: 0.75)")
    visible = max(1, round(num_patches * (1 - ratio)))
    noise = torch.rand(n, num_patches, generator=generator, device=generator.device if generator else None)
    keep = noise.argsort(dim=1)[:, :visible].sort(dim=1).values.to(device)   # (n, V) a random subset, in order
    mask = torch.ones(n, num_patches, dtype=torch.bool, device=keep.device)
    mask.scatter_(1, keep, False)                                          # (n, L) True where hidden
    return keep, mask


def patch_stats(patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each patch's own mean and std, sqrt(var + 1e-6), (N, L, 1) each: the paper's per-patch normalisation."""
    return patches.mean(-1, keepdim=True), (patches.var(-1, keepdim=True) + 1e-6).sqrt()


def masked_patch_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                      norm_pix: bool = False) -> torch.Tensor:
    """Mean squared error per pixel on the hidden patches only: pred and target (N, L, P), mask (N, L) True = hidden.
    ``norm_pix``: each target patch standardised by its own mean and variance (+1e-6) first."""
    if norm_pix:
        mean, std = patch_stats(target)
        target = (target - mean) / std
    per_patch = (pred.float() - target.float()).pow(2).mean(-1)          # (N, L)
    m = mask.to(per_patch.dtype)
    return (per_patch * m).sum() / m.sum().clamp_min(1)


class MAEDecoder(nn.Module):
    """The light decoder: encodings of the visible patches back in place, a shared learned [mask] token everywhere
    else, fixed 2-D positions, a few transformer blocks, then each patch's pixels (in the encoder's standardised
    space)."""

    def __init__(self, encoder_dim: int, grid: tuple[int, int], patch_pixels: int, dim: int = 128, depth: int = 2,
                 heads: int = 4):
        super().__init__()
        self.embed = nn.Linear(encoder_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.register_buffer("pos", sincos_2d(dim, *grid), persistent=False)          # (L, Dd), fixed
        cfg = block_config(dim, heads)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pred = nn.Linear(dim, patch_pixels)                                    # a patch's p*p*C pixels
        nn.init.normal_(self.mask_token, std=0.02)
        for m in (self.embed, self.pred):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, h: torch.Tensor, keep: torch.Tensor, has_cls: bool = False) -> torch.Tensor:
        """h (N, V [+1], D) the visible patches' encodings, keep (N, V) their indices -> (N, L, p*p*C)."""
        N, L = keep.shape[0], self.pos.shape[0]
        h = self.embed(h)                                                  # (N, V [+1], Dd)
        if has_cls:
            h = h[:, 1:]                                                   # the decoder works on patches only
        full = self.mask_token.expand(N, L, -1).clone()                    # (N, L, Dd): [mask] everywhere ...
        full.scatter_(1, keep[..., None].expand(-1, -1, h.shape[-1]), h)   # ... but where a patch was visible
        y = full + self.pos
        for block in self.blocks:
            y = block(y)
        return self.pred(self.norm(y))                                     # (N, L, p*p*C)


class MAE(nn.Module):
    """A ViT encoder (any :class:`~paradigms.nets.vit.ViT`: its patch embedding, blocks and last norm) and a
    :class:`MAEDecoder` that reconstructs every patch from the visible ones. Its state is ``encoder.*`` (a ViT's
    own keys: ``finetune --from`` loads them) and ``decoder.*``."""

    def __init__(self, encoder: ViT, decoder_dim: int = 128, decoder_depth: int = 2, decoder_heads: int = 4):
        super().__init__()
        self.encoder = encoder
        embed = encoder.embed
        self.patch, self.in_shape = embed.patch, encoder.input_shape
        self.decoder = MAEDecoder(encoder.dim, embed.grid, self.patch**2 * self.in_shape[0], decoder_dim,
                                  decoder_depth, decoder_heads)

    @property
    def num_patches(self) -> int:
        return self.encoder.embed.num_patches

    def encode(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The encoder on the visible patches ``keep`` (N, V) only: (N, V [+1 class token], D)."""
        enc = self.encoder
        tokens = enc.embed.tokens(enc.standardize(x))                      # (N, L, D) all patches, with positions
        visible = tokens.gather(1, keep[..., None].expand(-1, -1, tokens.shape[-1]))   # (N, V, D)
        h = enc.embed.with_cls(visible)
        for block in enc.layers:
            h = block(h)
        return enc.pool.norm(h)

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The patches the decoder predicts: the standardised image's pixels, (N, L, p*p*C)."""
        return patchify(self.encoder.standardize(x), self.patch)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encode(x, keep), keep, self.encoder.embed.cls is not None)

    def pixels(self, pred: torch.Tensor, x: torch.Tensor, keep: torch.Tensor | None = None,
               norm_pix: bool = False) -> torch.Tensor:
        """Predicted patches (N, L, P) -> images in [0, 1], (N, C, H, W): the standardisation undone; with ``keep``
        the visible patches are the input's own (the paper's figures). ``norm_pix``: the prediction is in per-patch
        standardised units, scaled back with each true patch's mean and std (as the paper's visualisation)."""
        target = self.target(x)
        if norm_pix:
            mean, std = patch_stats(target)
            pred = pred * std + mean
        if keep is not None:
            pred = pred.scatter(1, keep[..., None].expand(-1, -1, pred.shape[-1]), target.gather(
                1, keep[..., None].expand(-1, -1, pred.shape[-1])))
        std = self.encoder.standardize
        return (unpatchify(pred.float(), self.patch, self.in_shape) * std.std + std.mean).clamp(0, 1)


def masked_image(x: torch.Tensor, mask: torch.Tensor, patch: int, fill: float = 0.5) -> torch.Tensor:
    """Images (N, C, H, W) with the hidden patches (mask (N, L) True) painted ``fill``: what the encoder sees."""
    shape = x.shape[1:]
    patches = patchify(x, patch)
    patches = patches.masked_fill(mask[..., None], fill)
    return unpatchify(patches, patch, shape)


__all__ = ["MAE", "MAEDecoder", "masked_image", "masked_patch_loss", "random_masking"]
