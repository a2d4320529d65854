"""Generative adversarial networks (Goodfellow et al. 2014) with Salimans et al. 2016's improved techniques and
semi-supervised learning; the losses and the classifier-FD are usable alone on a user's own tensors."""

from .frechet import classifier_features, frechet_distance
from .losses import (HistoricalAverage, MinibatchDiscrimination, discriminator_loss, feature_matching_loss,
                     generator_loss, real_fake_logit, with_fake_class)

__all__ = ["HistoricalAverage", "MinibatchDiscrimination", "classifier_features", "discriminator_loss",
           "feature_matching_loss", "frechet_distance", "generator_loss", "real_fake_logit", "with_fake_class"]
