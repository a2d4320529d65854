"""Reusable networks: an MLP, LeNet-5, a small CIFAR ResNet and ResNet-18 / PreAct ResNet-18, built by name.

Every one takes pixels in [0, 1] and standardises them in its first layer (:class:`Standardize`).
A network's *card* (the run folder's ``model.json``) says everything needed to build it again
without the dataset: architecture, input shape, class names, mean and std (:mod:`.build`).
"""

from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same names, for type checkers and editors (importing the package imports none)
    from .base import Classifier, Standardize
    from .build import (NETS, NetConfig, build_encoder, build_net, card, encoder_card, encoder_from_card, from_card,
                        is_convolutional, to_device)
    from .lenet import LeNet5
    from .mlp import MLP
    from .resnet import ResNet
    from .resnet18 import ResNet18
    from .vit import ViT

__getattr__, __dir__, __all__ = attach(__name__, {
    "base": ["Classifier", "Standardize"],
    "build": ["NETS", "NetConfig", "build_encoder", "build_net", "card", "encoder_card", "encoder_from_card",
              "from_card", "is_convolutional", "to_device"],
    "lenet": ["LeNet5"],
    "mlp": ["MLP"],
    "resnet": ["ResNet"],
    "resnet18": ["ResNet18"],
    "vit": ["ViT"],
})
