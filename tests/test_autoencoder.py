"""Autoencoders and VAEs (issue 14): the objective's pieces against independent computations."""

from __future__ import annotations

import math

import torch
from torch import distributions as D

from paradigms.autoencoder import bernoulli_log_prob, elbo, gaussian_kl, gaussian_log_prob, iwae_bound


def test_the_closed_form_kl_matches_a_monte_carlo_estimate():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3) * 0.5
    q = D.Normal(mu, (0.5 * logvar).exp())
    z = q.sample((200_000,))
    p = D.Normal(torch.zeros(3), torch.ones(3))
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    assert torch.allclose(gaussian_kl(mu, logvar), mc, atol=0.02)
    assert torch.allclose(gaussian_kl(mu, logvar), D.kl_divergence(q, p).sum(-1), atol=1e-5)


def test_the_bernoulli_and_gaussian_log_likelihoods_match_torch_distributions():
    torch.manual_seed(1)
    logits, x = torch.randn(5, 1, 4, 4), torch.randint(0, 2, (5, 1, 4, 4)).float()
    expected = D.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(bernoulli_log_prob(logits, x), expected, atol=1e-5)
    mean, logvar, y = torch.randn(5, 6), torch.randn(5, 6), torch.randn(5, 6)
    expected = D.Normal(mean, (0.5 * logvar).exp()).log_prob(y).sum(1)
    assert torch.allclose(gaussian_log_prob(mean, logvar, y), expected, atol=1e-5)


def test_the_iwae_bound_is_above_the_elbo_rises_with_k_and_reaches_the_exact_likelihood():
    """A linear-Gaussian model, z ~ N(0, 1), x | z ~ N(a z, s^2), has log p(x) in closed form: x ~ N(0, a^2 + s^2).
    With a deliberately poor q(z|x), L_1 (the ELBO) < L_10 < L_1000 <= log p(x), the last within a little."""
    torch.manual_seed(2)
    a, s = 2.0, 0.5
    x = torch.randn(64, 1) * math.sqrt(a * a + s * s)
    exact = D.Normal(0.0, math.sqrt(a * a + s * s)).log_prob(x).sum(1)

    def encode(xs):  # a poor posterior: the true one is N(a x / (a^2 + s^2), s^2 / (a^2 + s^2))
        return 0.3 * xs, torch.zeros_like(xs)

    def log_px_given_z(xs, z):
        return gaussian_log_prob(a * z, torch.full_like(xs, 2 * math.log(s)), xs)

    bounds = {k: float(iwae_bound(x, encode, log_px_given_z, k=k, chunk=300).mean()) for k in (1, 10, 1000)}
    xs = x.repeat(500, 1)  # the ELBO's expectation over many one-sample draws: what L_1 estimates
    mu, logvar = encode(xs)
    z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    expected_elbo = float(elbo(log_px_given_z(xs, z), mu, logvar).mean())
    l1 = float(iwae_bound(xs, encode, log_px_given_z, k=1).mean())
    assert bounds[1] < bounds[10] < bounds[1000] <= float(exact.mean()) + 0.02
    assert float(exact.mean()) - bounds[1000] < 0.1
    assert abs(expected_elbo - l1) < 0.1  # L_1 is the ELBO
