"""The GAN game (Goodfellow et al. 2014, "Generative adversarial nets") and the improved techniques of Salimans
et al. 2016 ("Improved techniques for training GANs"), as functions on logits.

A discriminator D(x) = sigmoid(l(x)) tells real images from a generator's G(z), z ~ p(z); they play

    min_G max_D  V(D, G) = E_x[ log D(x) ] + E_z[ log(1 - D(G(z))) ].

Per minibatch of m, the discriminator ascends (1/m) sum_i [ log D(x_i) + log(1 - D(G(z_i))) ], so its loss is the
negative; with log D = -softplus(-l) and log(1 - D) = -softplus(l) everything here stays finite for any logit.
The generator descends (1/m) sum_i log(1 - D(G(z_i))) (``minimax``, the game itself), whose gradient vanishes
when D rejects the samples confidently, early in training; the paper's fix is to ascend log D(G(z)) instead
(``non-saturating``: descend -(1/m) sum_i log D(G(z_i))).

Salimans et al.'s techniques (section 3), each usable alone:

    feature matching        G descends || E_x f(x) - E_z f(G(z)) ||^2, f: D's last hidden layer
    minibatch discrimination D sees, for each image, how close it is to the rest of its batch (a module)
    historical averaging    each player adds || theta - (1/t) sum_i theta_i ||^2 (theta_i: its past values)
    one-sided label smoothing  D's target for real images is 1 - s (fake ones stay 0)

and the semi-supervised discriminator (section 5): K + 1 classes, the last one "fake". Fixing its logit at 0 loses
nothing (a softmax is unchanged by subtracting l_{K+1} from every logit), so D outputs K class logits l and

    D(x) = 1 - p(y = K+1 | x) = Z(x) / (Z(x) + 1) = sigmoid(log Z(x)),    Z(x) = sum_k exp(l_k(x)),

so the real/fake game is played on the logit log Z = logsumexp(l) (:func:`real_fake_logit`).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_target: float = 1.0) -> torch.Tensor:
    """-(1/m) sum_i [ log D(x_i) + log(1 - D(G(z_i))) ]: the negative of the discriminator's objective.

    ``real_target`` < 1 is one-sided label smoothing: the real term becomes the cross-entropy against 1 - s,
    -(t log D(x) + (1 - t) log(1 - D(x))); fake images keep the target 0.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_target))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake                               # each a mean over the batch: (1/m) sum of both terms


def generator_loss(fake_logits: torch.Tensor, kind: Literal["minimax", "non-saturating"] = "non-saturating"
                   ) -> torch.Tensor:
    """The generator's loss on D's logits for its samples.

    minimax:         (1/m) sum_i log(1 - D(G(z_i)))  = -mean softplus(l)    (gradient -> 0 as D(G(z)) -> 0)
    non-saturating: -(1/m) sum_i log D(G(z_i))       =  mean softplus(-l)   (gradient -> -1 there)
    """
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    if kind == "non-saturating":
        return F.softplus(-fake_logits).mean()
    raise ValueError(f"generator loss kind {kind!r}: minimax or non-saturating")


def feature_matching_loss(real_features: torch.Tensor, fake_features: torch.Tensor) -> torch.Tensor:
    """|| E_x f(x) - E_z f(G(z)) ||_2^2 over a batch of each, features (N, F): zero when the batch means agree."""
    return (real_features.mean(0) - fake_features.mean(0)).pow(2).sum()


def real_fake_logit(class_logits: torch.Tensor) -> torch.Tensor:
    """The semi-supervised discriminator's real/fake logit from its K class logits: log Z = logsumexp_k l_k,
    so that sigmoid(log Z) = Z / (Z + 1) = 1 - p(fake | x) with the fake class's logit fixed at 0."""
    return torch.logsumexp(class_logits, dim=1)


def with_fake_class(class_logits: torch.Tensor) -> torch.Tensor:
    """The K + 1 logits the K class logits stand for: (N, K) -> (N, K + 1), the fake class's logit 0."""
    return torch.cat([class_logits, class_logits.new_zeros(len(class_logits), 1)], dim=1)


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. section 3.2: features f(x_i) in R^A, a tensor T in R^(A x B x C), M_i = f(x_i) T in R^(B x C),

        c_b(x_i, x_j) = exp(-|| M_i,b - M_j,b ||_L1),    o(x_i)_b = sum_j c_b(x_i, x_j),

    and the output is [f(x_i), o(x_i)] in R^(A + B): each image with how much it resembles the rest of its batch
    (the sum includes j = i, which adds 1 to every o_b, as in the paper), so a collapsed generator is easy to spot.
    """

    def __init__(self, in_features: int, kernels: int = 50, kernel_dim: int = 5):
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, kernels * kernel_dim) * 0.1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        m = (f @ self.T).view(len(f), self.kernels, self.kernel_dim)        # (N, B, C)
        l1 = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)                 # (N, N, B): ||M_i,b - M_j,b||_1
        o = torch.exp(-l1).sum(1)                                            # (N, B)
        return torch.cat([f, o], dim=1)                                      # (N, A + B)


class HistoricalAverage:
    """Historical averaging (Salimans et al. section 3.3) for one player: ``penalty()`` is
    || theta - (1/t) sum_{i<=t} theta_i ||^2 over its parameters; ``update()`` adds the current theta to the average
    after each of its steps. ``state()``/``load()`` carry the average through a checkpoint."""

    def __init__(self, module: nn.Module):
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.mean = [p.detach().clone() for p in self.params]
        self.t = 1

    def penalty(self) -> torch.Tensor:
        return sum((p - m).pow(2).sum() for p, m in zip(self.params, self.mean))

    @torch.no_grad()
    def update(self) -> None:
        self.t += 1
        for p, m in zip(self.params, self.mean):
            m.add_(p.detach() - m, alpha=1 / self.t)                         # running mean of theta_1 .. theta_t

    def state(self) -> dict:
        return {"t": self.t, "mean": [m.cpu() for m in self.mean]}

    def load(self, state: dict) -> None:
        self.t = int(state["t"])
        for m, saved in zip(self.mean, state["mean"]):
            m.copy_(saved)
