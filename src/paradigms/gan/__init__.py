"""Generative adversarial networks (Goodfellow et al. 2014) with Salimans et al. 2016's improved techniques and
semi-supervised learning; the losses and the classifier-FD are usable alone on a user's own tensors."""

from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same names, for type checkers and editors (importing the package imports none)
    from .frechet import classifier_features, frechet_distance
    from .losses import (HistoricalAverage, MinibatchDiscrimination, discriminator_loss, feature_matching_loss,
                         generator_loss, real_fake_logit, with_fake_class)

__getattr__, __dir__, __all__ = attach(__name__, {
    "frechet": ["classifier_features", "frechet_distance"],
    "losses": ["HistoricalAverage", "MinibatchDiscrimination", "discriminator_loss", "feature_matching_loss",
               "generator_loss", "real_fake_logit", "with_fake_class"],
})
