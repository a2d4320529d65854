"""The two players: generators z -> images in [0, 1], and discriminators images -> logits.

A discriminator is a :class:`paradigms.nets.Classifier` like every image network here (pixels in [0, 1],
standardised by its first layer to [-1, 1]), so ``features(x)`` is its last hidden layer (feature matching) and
a semi-supervised discriminator is a classifier that ``paradigms.load``, ``attack`` and ``finetune --from`` take.

    dcgan (Radford et al. 2016), images whose sides divide by 4; w = ``width``:
      G: z -> Linear -> BN -> ReLU -> (4w, H/4, W/4) -> ConvT(4w->2w, /2) -> BN -> ReLU -> ConvT(2w->C, /2) -> sigmoid
         (BN, or virtual batch norm against a fixed reference batch: Salimans et al. section 3.4)
      D: x -> Conv(C->2w, /2) -> LeakyReLU -> Conv(2w->4w, /2) -> BN -> LeakyReLU -> flatten (features) -> Linear -> 1
    mlp (Goodfellow et al. 2014 on MNIST; Salimans et al. 2016 section 5), pixels in [0, 1] as in the papers:
      G: z -> [Linear -> act (-> BN)] x len(hidden) -> Linear -> sigmoid (or softplus) -> (C, H, W)
      D: x -> [noise -> Linear -> act (-> dropout)] x len(hidden) (features) -> noise -> Linear -> outputs
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..nets.base import Classifier
from .losses import MinibatchDiscrimination

ACT = {"relu": lambda: nn.ReLU(), "leaky_relu": lambda: nn.LeakyReLU(0.2), "softplus": lambda: nn.Softplus()}


class GaussianNoise(nn.Module):
    """x + N(0, std^2) while training, x itself in eval mode (the semi-supervised discriminator's regulariser)."""

    def __init__(self, std: float):
        super().__init__()
        self.std = std

    def forward(self, x):
        return x + self.std * torch.randn_like(x) if self.training and self.std else x

    def extra_repr(self) -> str:
        return f"std={self.std}"


class VirtualBatchNorm(nn.Module):
    """Virtual batch norm (Salimans et al. 2016, section 3.4): each example is normalised with the statistics of a
    reference batch R, fixed once at the start, together with its own, so no example depends on the others in its
    batch:

        mu_i = (|R| mean_R(x) + x_i) / (|R| + 1),   s_i = (|R| mean_R(x^2) + x_i^2) / (|R| + 1),
        y_i = gamma (x_i - mu_i) / sqrt(s_i - mu_i^2 + eps) + beta

    (means per channel, over the spatial positions too for images). The input carries the reference batch's own
    activations in its first ``n_ref`` rows (the generator passes R's codes through first); those rows are
    normalised by R's statistics alone."""

    def __init__(self, channels: int, n_ref: int, eps: float = 1e-5):
        super().__init__()
        self.n_ref, self.eps = n_ref, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:                 # (R + N, C) or (R + N, C, H, W)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        spatial = tuple(range(2, x.dim()))
        ref = x[: self.n_ref]
        mu_r = ref.mean((0, *spatial), keepdim=True)                        # (1, C, ...) the reference's statistics
        sq_r = ref.pow(2).mean((0, *spatial), keepdim=True)
        own = x[self.n_ref:]
        mu_x = own.mean(spatial, keepdim=True) if spatial else own         # (N, C, ...) each example's own
        sq_x = own.pow(2).mean(spatial, keepdim=True) if spatial else own.pow(2)
        w = 1.0 / (self.n_ref + 1)
        mu, sq = (1 - w) * mu_r + w * mu_x, (1 - w) * sq_r + w * sq_x
        out = torch.cat([(ref - mu_r) / (sq_r - mu_r**2 + self.eps).sqrt(),
                         (own - mu) / (sq - mu**2 + self.eps).clamp_min(self.eps).sqrt()])
        return out * self.weight.view(shape) + self.bias.view(shape)


class ReferenceBatch(nn.Module):
    """A generator wrapper for virtual batch norm: prepends the fixed reference codes z_R (a buffer: checkpointed)
    to every batch of codes and drops their images from the output."""

    def __init__(self, net: nn.Module, latent: int, n_ref: int, seed: int = 0):
        super().__init__()
        self.net, self.n_ref = net, n_ref
        self.register_buffer("z_ref", torch.randn(n_ref, latent, generator=torch.Generator().manual_seed(seed)))

    def forward(self, z):
        return self.net(torch.cat([self.z_ref.to(z.dtype), z]))[self.n_ref:]


def norm_layer(channels: int, dims: int, virtual: int) -> nn.Module:
    """Batch norm, or virtual batch norm against a reference batch of ``virtual`` codes (when > 0)."""
    if virtual:
        return VirtualBatchNorm(channels, virtual)
    return nn.BatchNorm2d(channels) if dims == 2 else nn.BatchNorm1d(channels)


class DCGANGenerator(nn.Module):
    def __init__(self, latent: int, out_shape: tuple[int, int, int], width: int = 64, virtual_bn: int = 0):
        super().__init__()
        c, h, w = out_shape
        if h % 4 or w % 4:
            raise ValueError(f"the dcgan generator needs image sides divisible by 4; the images are {h}x{w} "
                             f"(use arch=mlp)")
        self.latent, self.out_shape = latent, tuple(out_shape)
        net = nn.Sequential(
            nn.Linear(latent, 4 * width * (h // 4) * (w // 4), bias=False),
            nn.Unflatten(1, (4 * width, h // 4, w // 4)),                               # (N, 4w, H/4, W/4)
            norm_layer(4 * width, 2, virtual_bn), nn.ReLU(),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, 2, 1, bias=False),              # (N, 2w, H/2, W/2)
            norm_layer(2 * width, 2, virtual_bn), nn.ReLU(),
            nn.ConvTranspose2d(2 * width, c, 4, 2, 1), nn.Sigmoid())                   # (N, C, H, W) in [0, 1]
        self.net = ReferenceBatch(net, latent, virtual_bn) if virtual_bn else net

    def forward(self, z):
        return self.net(z)


class MLPGenerator(nn.Module):
    def __init__(self, latent: int, out_shape: tuple[int, int, int], hidden: list[int] = (1200, 1200),
                 activation: str = "relu", batchnorm: bool = False, output: str = "sigmoid", virtual_bn: int = 0):
        super().__init__()
        self.latent, self.out_shape = latent, tuple(out_shape)
        dims, layers = [latent, *hidden], []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), ACT[activation](), *([norm_layer(b, 1, virtual_bn)] if batchnorm else [])]
        last = nn.Sigmoid() if output == "sigmoid" else nn.Softplus()   # softplus: >= 0, unbounded above
        net = nn.Sequential(*layers, nn.Linear(dims[-1], math.prod(out_shape)), last,
                            nn.Unflatten(1, tuple(out_shape)))                         # (N, C, H, W)
        self.net = ReferenceBatch(net, latent, virtual_bn) if virtual_bn and batchnorm else net

    def forward(self, z):
        return self.net(z)


def discriminator_head(embed_dim: int, outputs: int, minibatch_kernels: int, kernel_dim: int,
                       noise: float = 0.0) -> nn.Module:
    """The last layer: features -> [noise] -> [minibatch discrimination] -> Linear -> logits."""
    layers = [GaussianNoise(noise)] if noise else []
    if minibatch_kernels:
        layers.append(MinibatchDiscrimination(embed_dim, minibatch_kernels, kernel_dim))
    layers.append(nn.Linear(embed_dim + minibatch_kernels, outputs))
    return nn.Sequential(*layers)


class DCGANDiscriminator(Classifier):
    def __init__(self, in_shape: tuple[int, int, int], outputs: int = 1, width: int = 64, minibatch_kernels: int = 0,
                 kernel_dim: int = 5):
        c, h, w = in_shape
        if h % 4 or w % 4:
            raise ValueError(f"the dcgan discriminator needs image sides divisible by 4; the images are {h}x{w}")
        blocks = [nn.Sequential(nn.Conv2d(c, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2)),                # (N, 2w, H/2, W/2)
                  nn.Sequential(nn.Conv2d(2 * width, 4 * width, 4, 2, 1, bias=False),                 # (N, 4w, H/4, W/4)
                                nn.BatchNorm2d(4 * width), nn.LeakyReLU(0.2))]
        embed = 4 * width * (h // 4) * (w // 4)
        super().__init__(blocks, embed, outputs, in_shape, [0.5] * c, [0.5] * c)            # [0, 1] -> [-1, 1]
        self.head = discriminator_head(embed, outputs, minibatch_kernels, kernel_dim)


class MLPDiscriminator(Classifier):
    def __init__(self, in_shape: tuple[int, int, int], outputs: int = 1, hidden: list[int] = (240, 240),
                 activation: str = "leaky_relu", dropout: float = 0.0, input_noise: float = 0.0,
                 hidden_noise: float = 0.0, minibatch_kernels: int = 0, kernel_dim: int = 5, weight_norm: bool = False):
        c = in_shape[0]
        norm = nn.utils.parametrizations.weight_norm if weight_norm else (lambda m: m)   # w = g v / ||v|| (Salimans)
        dims, blocks = [math.prod(in_shape), *hidden], [nn.Flatten()]
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            noise = input_noise if i == 0 else hidden_noise
            blocks.append(nn.Sequential(*([GaussianNoise(noise)] if noise else []), norm(nn.Linear(a, b)),
                                        ACT[activation](), *([nn.Dropout(dropout)] if dropout else [])))
        super().__init__(blocks, dims[-1], outputs, in_shape, [0.0] * c, [1.0] * c)   # [0, 1] pixels, as the papers
        self.head = discriminator_head(dims[-1], outputs, minibatch_kernels, kernel_dim, hidden_noise)
        if weight_norm:
            self.head[-1] = norm(self.head[-1])
