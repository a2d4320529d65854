"""Reusable networks: an MLP, LeNet-5, a small CIFAR ResNet and ResNet-18 / PreAct ResNet-18, built by name."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from ..config import Section
from .base import Classifier
from .lenet import LeNet5
from .mlp import MLP
from .resnet import ResNet
from .resnet18 import ResNet18

NETS = ("mlp", "lenet5", "resnet", "resnet18", "preact-resnet18")


class NetConfig(Section):
    name: Literal["mlp", "lenet5", "resnet", "resnet18", "preact-resnet18"] = "lenet5"
    width: int = Field(1, ge=1, le=1024, description="channel multiplier (lenet5) or base width (resnet: 16 quick, "
                       "64 paper; resnet18: 64 paper)")
    hidden: list[int] = Field([256, 256], description="hidden layer sizes (mlp)")
    activation: Literal["relu", "tanh", "gelu"] = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)


def build_net(cfg: NetConfig, in_shape: tuple[int, int, int], num_classes: int) -> Classifier:
    if cfg.name == "mlp":
        return MLP(in_shape, num_classes, cfg.hidden, cfg.activation, cfg.dropout)
    if cfg.name == "lenet5":
        return LeNet5(in_shape, num_classes, cfg.width, cfg.dropout)
    if cfg.name in ("resnet18", "preact-resnet18"):
        return ResNet18(in_shape, num_classes, cfg.width, preact=cfg.name.startswith("preact"))
    return ResNet(in_shape, num_classes, cfg.width)


def is_convolutional(net: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in net.modules())


__all__ = ["MLP", "NETS", "Classifier", "LeNet5", "NetConfig", "ResNet", "ResNet18", "build_net", "is_convolutional"]
