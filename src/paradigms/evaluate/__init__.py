"""Evaluation, once for every paradigm: how good is a classifier, and how good are an encoder's features?

- :mod:`.classifier`: accuracy and cross-entropy over a loader, summed across DDP ranks (the supervised recipe's test
  accuracy, an attack's robust accuracy, a smoothed classifier, a semi-supervised GAN's discriminator), and its
  pictures (confusion matrix, most confident mistakes);
- :mod:`.encoder`: the one protocol for a frozen encoder (feature extraction, weighted kNN, the linear probe, a t-SNE
  picture), the same for a supervised, autoencoder, SimCLR, MoCo, MAE or CLIP encoder, so they sit in one table.
"""

from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same names, for type checkers and editors (importing the package imports none)
    from .classifier import (class_probabilities, classify_images, confusion_figure, eval_images, evaluate_classifier,
                             fit_image, load_classifier, mistakes_figure, predict)
    from .encoder import (embedding_figure, encode, evaluate_encoder, extract, knn_predict, linear_probe, nearest,
                          probe_run)

__getattr__, __dir__, __all__ = attach(__name__, {
    "classifier": ["class_probabilities", "classify_images", "confusion_figure", "eval_images", "evaluate_classifier",
                   "fit_image", "load_classifier", "mistakes_figure", "predict"],
    "encoder": ["embedding_figure", "encode", "evaluate_encoder", "extract", "knn_predict", "linear_probe", "nearest",
                "probe_run"],
})
