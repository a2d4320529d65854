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
from ..nets.vit import ViT, block_config, patchify, sincos_2d


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


def masked_patch_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                      norm_pix: bool = False) -> torch.Tensor:
    """Mean squared error per pixel on the hidden patches only: pred and target (N, L, P), mask (N, L) True = hidden.
    ``norm_pix``: each target patch standardised by its own mean and variance (+1e-6) first."""
    if norm_pix:
        mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
    per_patch = (pred.float() - target.float()).pow(2).mean(-1)          # (N, L)
    m = mask.to(per_patch.dtype)
    return (per_patch * m).sum() / m.sum().clamp_min(1)


class MAE(nn.Module):
    """A ViT encoder (any :class:`~paradigms.nets.vit.ViT`: its patch embedding, blocks and last norm) and a light
    transformer decoder that reconstructs every patch from the visible ones."""

    def __init__(self, encoder: ViT, decoder_dim: int = 128, decoder_depth: int = 2, decoder_heads: int = 4):
        super().__init__()
        self.encoder = encoder
        embed = encoder.embed
        self.patch, self.in_shape = embed.patch, encoder.input_shape
        C = self.in_shape[0]
        self.decoder_embed = nn.Linear(encoder.dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos", sincos_2d(decoder_dim, *embed.grid), persistent=False)
        cfg = block_config(decoder_dim, decoder_heads)
        self.decoder = nn.ModuleList(Block(cfg) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.pred = nn.Linear(decoder_dim, self.patch**2 * C)              # a patch's pixels (standardised space)
        nn.init.normal_(self.mask_token, std=0.02)
        for m in (self.decoder_embed, self.pred):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def encode(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """The encoder on the visible patches ``keep`` (N, V) only: (N, V [+1 class token], D)."""
        enc = self.encoder
        tokens = enc.embed.tokens(enc.standardize(x))                      # (N, L, D) all patches, with positions
        visible = tokens.gather(1, keep[..., None].expand(-1, -1, tokens.shape[-1]))   # (N, V, D)
        h = enc.embed.with_cls(visible)
        for block in enc.layers:
            h = block(h)
        return enc.pool.norm(h)

    def decode(self, h: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Encodings of the visible patches -> predicted pixels of every patch (N, L, p*p*C)."""
        N, L = keep.shape[0], self.decoder_pos.shape[0]
        h = self.decoder_embed(h)
        if self.encoder.embed.cls is not None:
            h = h[:, 1:]                                                   # the decoder works on patches only
        full = self.mask_token.expand(N, L, -1).clone()                    # (N, L, Dd): [mask] everywhere ...
        full.scatter_(1, keep[..., None].expand(-1, -1, h.shape[-1]), h)   # ... but where a patch was visible
        y = full + self.decoder_pos
        for block in self.decoder:
            y = block(y)
        return self.pred(self.decoder_norm(y))

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """The patches the decoder predicts: the standardised image's pixels, (N, L, p*p*C)."""
        return patchify(self.encoder.standardize(x), self.patch)

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x, keep), keep)


__all__ = ["MAE", "masked_patch_loss", "random_masking"]
