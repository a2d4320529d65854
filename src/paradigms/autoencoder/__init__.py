"""Autoencoders and variational autoencoders: the ``autoencoder`` and ``vae`` recipes (:mod:`.recipe`,
:mod:`.vae_recipe`), anomaly detection by reconstruction (:mod:`.anomaly`, ``paradigms anomaly``), and the VAE's
objective and bounds (:mod:`.vae`), usable alone on a user's own tensors."""

from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same names, for type checkers and editors (importing the package imports none)
    from .anomaly import anomaly_threshold, auroc, normal_scores
    from .vae import bernoulli_log_prob, elbo, gaussian_kl, gaussian_log_prob, iwae_bound, reparameterise

__getattr__, __dir__, __all__ = attach(__name__, {
    "anomaly": ["anomaly_threshold", "auroc", "normal_scores"],
    "vae": ["bernoulli_log_prob", "elbo", "gaussian_kl", "gaussian_log_prob", "iwae_bound", "reparameterise"],
})
