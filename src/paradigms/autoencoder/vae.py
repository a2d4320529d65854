"""The variational autoencoder's objective (Kingma & Welling 2014, "Auto-encoding variational Bayes") and the
importance-weighted bound that measures it (Burda, Grosse & Salakhutdinov 2016).

An encoder gives q(z|x) = N(mu(x), diag(exp(logvar(x)))), a decoder p(x|z), the prior is p(z) = N(0, I).
Training maximises the evidence lower bound, one sample z = mu + exp(logvar / 2) * e, e ~ N(0, I)
(the reparameterisation trick):

    ELBO(x) = E_q[ log p(x|z) ] - KL( q(z|x) || N(0, I) ),
    KL = 1/2 sum_j ( mu_j^2 + exp(logvar_j) - 1 - logvar_j )                      (closed form)

and the test log-likelihood is estimated by the k-sample importance-weighted bound,

    log p(x) >= L_k(x) = E[ log 1/k sum_i p(x, z_i) / q(z_i|x) ],   z_i ~ q(z|x),

which is the ELBO at k = 1 and rises to log p(x) as k grows (the papers report k = 5,000).
Every function works per example, on a user's own tensors.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per example, (N, D) -> (N,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) of a Bernoulli decoder per example: sum_d x_d log s(l_d) + (1 - x_d) log(1 - s(l_d))."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def gaussian_log_prob(mean: torch.Tensor, logvar: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(logvar))) per example (a Gaussian decoder, or q(z|x) itself)."""
    return -0.5 * ((x - mean).pow(2) / logvar.exp() + logvar + LOG_2PI).flatten(1).sum(1)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * e, e ~ N(0, I): a sample of q(z|x) through which gradients flow to mu and logvar."""
    return mu + (0.5 * logvar).exp() * torch.randn_like(mu)


def elbo(log_px_given_z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The evidence lower bound per example from one sample's log p(x|z) and q's parameters."""
    return log_px_given_z - gaussian_kl(mu, logvar)


@torch.no_grad()
def iwae_bound(x: torch.Tensor, encode: Callable, log_px_given_z: Callable, k: int = 5000,
               chunk: int = 500) -> torch.Tensor:
    """L_k per example of ``x``: ``encode(x) -> (mu, logvar)``; ``log_px_given_z(x, z) -> (N,)``.

    The k samples are drawn ``chunk`` at a time and combined by a running log-sum-exp, so k = 5,000 fits
    in memory for any batch.
    """
    if k < 1 or int(k) != k:
        raise ValueError(f"k={k}: the number of importance samples must be a whole number >= 1")
    mu, logvar = encode(x)                                           # (N, D) each
    total = torch.full((len(x),), -math.inf, device=x.device)
    done = 0
    while done < k:
        m = min(chunk, k - done)
        z = mu.unsqueeze(0) + (0.5 * logvar).exp().unsqueeze(0) * torch.randn(m, *mu.shape, device=x.device)
        flat_z = z.flatten(0, 1)                                     # (m*N, D), sample-major
        xs = x.unsqueeze(0).expand(m, *x.shape).flatten(0, 1)        # each x beside its own samples
        log_p_xz = log_px_given_z(xs, flat_z) + gaussian_log_prob(torch.zeros_like(flat_z), torch.zeros_like(flat_z), flat_z)
        log_q = gaussian_log_prob(mu.repeat(m, 1), logvar.repeat(m, 1), flat_z)
        log_w = (log_p_xz - log_q).view(m, len(x))                   # log p(x, z_i) / q(z_i | x)
        total = torch.logaddexp(total, torch.logsumexp(log_w, 0))
        done += m
    return total - math.log(k)                                        # log 1/k sum_i w_i
