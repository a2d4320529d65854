"""Autoencoders and variational autoencoders: the ``autoencoder`` and ``vae`` recipes (:mod:`.recipe`,
:mod:`.vae_recipe`), anomaly detection by reconstruction (:mod:`.anomaly`, ``paradigms anomaly``), and the VAE's
objective and bounds (:mod:`.vae`), usable alone on a user's own tensors."""

from .anomaly import auroc
from .vae import bernoulli_log_prob, elbo, gaussian_kl, gaussian_log_prob, iwae_bound, reparameterise

__all__ = ["auroc", "bernoulli_log_prob", "elbo", "gaussian_kl", "gaussian_log_prob", "iwae_bound", "reparameterise"]
