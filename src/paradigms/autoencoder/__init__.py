"""Autoencoders and variational autoencoders (issue 14, in progress): the VAE's objective and bounds
(:mod:`.vae`)."""

from .vae import bernoulli_log_prob, elbo, gaussian_kl, gaussian_log_prob, iwae_bound, reparameterise

__all__ = ["bernoulli_log_prob", "elbo", "gaussian_kl", "gaussian_log_prob", "iwae_bound", "reparameterise"]
