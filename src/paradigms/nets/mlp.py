"""A multilayer perceptron: flatten, then Linear -> activation (-> dropout) per hidden layer."""

from __future__ import annotations

import math

from torch import nn

from .base import Classifier

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLP(Classifier):
    def __init__(self, in_shape: tuple[int, ...], num_classes: int, hidden: list[int] = (256, 256),
                 activation: str = "relu", dropout: float = 0.0, mean=None, std=None):
        dims = [math.prod(in_shape), *hidden]
        blocks = [nn.Flatten()] + [
            nn.Sequential(nn.Linear(a, b), ACTIVATIONS[activation](), *([nn.Dropout(dropout)] if dropout else []))
            for a, b in zip(dims[:-1], dims[1:])
        ]
        super().__init__(blocks, dims[-1], num_classes, in_shape, mean, std)
