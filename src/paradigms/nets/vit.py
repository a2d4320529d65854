"""A Vision Transformer (Dosovitskiy et al. 2021) built from the one transformer's blocks.

    x in [0, 1] -> standardise -> patches p x p -> Linear (a p x p convolution of stride p)        (N, L, D)
                -> + fixed 2-D sine-cosine positions (MAE's)  [-> a class token in front]          (N, L[+1], D)
                -> Block x depth (:class:`paradigms.nets.transformer.Block`: pre-norm, bidirectional)
                -> LayerNorm -> the class token's state, or the mean over the patches              (N, D) -> head

It is a :class:`~paradigms.nets.base.Classifier` like every image network here: ``blocks`` are [patch embedding,
the transformer blocks..., pooling], so ``supervised`` trains it, transfer freezes its first k blocks, and the MAE
runs the same parts on the visible patches only (``embed`` without the class token, then the blocks, ``pool.norm``).
"""

from __future__ import annotations

import torch
from torch import nn

from .base import Classifier
from .transformer import Block, TransformerConfig


def sincos_1d(dim: int, pos: torch.Tensor) -> torch.Tensor:
    """(len(pos), dim): sin(pos w_k) for the first half, cos(pos w_k) for the second, w_k = 1 / 10000^(2k/dim)."""
    w = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))
    angles = pos.double()[:, None] * w[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_2d(dim: int, rows: int, cols: int) -> torch.Tensor:
    """(rows * cols, dim) fixed positions of a grid of patches (row-major): half the width encodes the row, half the
    column (the MAE's get_2d_sincos_pos_embed)."""
    if dim % 4:
        raise ValueError(f"2-D sine-cosine positions need a width divisible by 4; got {dim}")
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
    return torch.cat([sincos_1d(dim // 2, r.flatten()), sincos_1d(dim // 2, c.flatten())], dim=1)


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """Images (N, C, H, W) -> patches (N, L, p*p*C), L = (H/p)(W/p) in row-major order, each patch's pixels
    (row, column, channel)."""
    N, C, H, W = x.shape
    x = x.reshape(N, C, H // p, p, W // p, p)                              # (N, C, h, p, w, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(N, (H // p) * (W // p), p * p * C)


def unpatchify(patches: torch.Tensor, p: int, shape: tuple[int, int, int]) -> torch.Tensor:
    """The inverse of :func:`patchify`: (N, L, p*p*C) -> (N, C, H, W) for images of ``shape`` (C, H, W)."""
    C, H, W = shape
    N = patches.shape[0]
    x = patches.reshape(N, H // p, W // p, p, p, C)                        # (N, h, w, p, p, C)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(N, C, H, W)


class PatchEmbed(nn.Module):
    """Standardised images (N, C, H, W) -> patch tokens with their positions (N, L, D) [a class token in front]."""

    def __init__(self, in_shape: tuple[int, int, int], patch: int, dim: int, cls_token: bool):
        super().__init__()
        C, H, W = in_shape
        if H % patch or W % patch:
            raise ValueError(f"a ViT with patch {patch} needs image sides divisible by it; the images are {H}x{W}")
        self.patch, self.grid = patch, (H // patch, W // patch)
        self.proj = nn.Conv2d(C, dim, patch, stride=patch)                 # one Linear per patch, p*p*C -> D
        self.register_buffer("pos", sincos_2d(dim, *self.grid), persistent=False)   # (L, D), fixed
        self.cls = nn.Parameter(torch.zeros(1, 1, dim)) if cls_token else None

    @property
    def num_patches(self) -> int:
        return self.grid[0] * self.grid[1]

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The patch tokens with positions, no class token: (N, L, D)."""
        return self.proj(x).flatten(2).transpose(1, 2) + self.pos          # (N, D, h, w) -> (N, L, D)

    def with_cls(self, t: torch.Tensor) -> torch.Tensor:
        """Tokens (N, L', D) with the class token in front when there is one (its position: none, as the MAE)."""
        return t if self.cls is None else torch.cat([self.cls.expand(len(t), -1, -1), t], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.with_cls(self.tokens(x))


class Pool(nn.Module):
    """The last LayerNorm, then one vector per image: the class token's state, or the mean over the patches."""

    def __init__(self, dim: int, cls_token: bool):
        super().__init__()
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.cls_token = cls_token

    def forward(self, x: torch.Tensor) -> torch.Tensor:                    # (N, T, D) -> (N, D)
        x = self.norm(x)
        return x[:, 0] if self.cls_token else x.mean(1)


def block_config(dim: int, heads: int, dropout: float = 0.0) -> TransformerConfig:
    """The transformer blocks of a ViT: bidirectional, pre-norm, GELU MLP 4x wide."""
    return TransformerConfig(vocab_size=1, n_head=heads, n_embd=dim, dropout=dropout, causal=False, norm_first=True,
                             layer_norm_eps=1e-6)


class ViT(Classifier):
    def __init__(self, in_shape: tuple[int, int, int], num_classes: int, patch: int = 4, dim: int = 192,
                 depth: int = 6, heads: int = 3, cls_token: bool = False, mean=None, std=None):
        cfg = block_config(dim, heads)
        blocks = [PatchEmbed(in_shape, patch, dim, cls_token), *(Block(cfg) for _ in range(depth)),
                  Pool(dim, cls_token)]
        super().__init__(blocks, dim, num_classes, in_shape, mean, std)
        self.patch, self.dim, self.depth = patch, dim, depth
        self.apply(_init)

    @property
    def embed(self) -> PatchEmbed:
        return self.blocks[0]

    @property
    def layers(self) -> list[Block]:
        return list(self.blocks[1:-1])

    @property
    def pool(self) -> Pool:
        return self.blocks[-1]


def _init(m: nn.Module) -> None:
    """ViT/MAE initialisation: Linear layers Xavier-uniform, the patch projection as a Linear, biases zero."""
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        nn.init.xavier_uniform_(m.weight.view(m.weight.shape[0], -1))
        nn.init.zeros_(m.bias)
    elif isinstance(m, PatchEmbed) and m.cls is not None:
        nn.init.normal_(m.cls, std=0.02)


__all__ = ["PatchEmbed", "Pool", "ViT", "block_config", "patchify", "sincos_2d", "unpatchify"]
