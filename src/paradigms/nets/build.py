"""The networks by name: the config section that names one (:class:`NetConfig`), building it (:func:`build_net`,
:func:`build_encoder`), and its *card* (the run folder's ``model.json``), which builds it again without the dataset."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from ..config import Section
from ..errors import UserError
from .base import Classifier
from .lenet import LeNet5
from .mlp import MLP
from .resnet import ResNet
from .resnet18 import ResNet18
from .vit import ViT

NETS = ("mlp", "lenet5", "resnet", "resnet18", "preact-resnet18", "vit")


class NetConfig(Section):
    name: Literal["mlp", "lenet5", "resnet", "resnet18", "preact-resnet18", "vit"] = Field(
        "lenet5", description="mlp | lenet5 | resnet (ResNet-9) | resnet18 | preact-resnet18 | vit (Vision Transformer)")
    width: int = Field(1, ge=1, le=1024, description="channel multiplier (lenet5) or base width (resnet: 16 quick, "
                       "64 paper; resnet18: 64 paper)")
    hidden: list[int] = Field([256, 256], description="hidden layer sizes (mlp)")
    activation: Literal["relu", "tanh", "gelu"] = Field("relu", description="hidden activation (mlp)")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout after hidden layers (mlp, lenet5)")
    patch: int = Field(4, ge=1, le=64, description="vit: patch side in pixels (the image sides must divide by it)")
    dim: int = Field(192, ge=4, le=4096, description="vit: token width (ViT-Tiny: 192; a multiple of 4 and of heads)")
    depth: int = Field(6, ge=1, le=48, description="vit: transformer blocks (ViT-Tiny: 12)")
    heads: int = Field(3, ge=1, le=64, description="vit: attention heads (ViT-Tiny: 3)")
    cls_token: bool = Field(False, description="vit: a class token (else the mean over the patches is the feature)")


def build_net(cfg: NetConfig, in_shape: tuple[int, int, int], num_classes: int, mean=None, std=None) -> Classifier:
    """The network ``cfg`` names, for images of ``in_shape`` standardised by ``mean``/``std`` (default 0/1)."""
    if cfg.name == "mlp":
        return MLP(in_shape, num_classes, cfg.hidden, cfg.activation, cfg.dropout, mean=mean, std=std)
    if cfg.name == "lenet5":
        return LeNet5(in_shape, num_classes, cfg.width, cfg.dropout, mean=mean, std=std)
    if cfg.name == "vit":
        H, W = in_shape[1:]
        if H % cfg.patch or W % cfg.patch:
            fits = [p for p in range(2, min(H, W) + 1) if H % p == 0 and W % p == 0]
            raise UserError(f"model.patch={cfg.patch} does not divide the {H}x{W} images: a ViT's patch side must be "
                            f"divisible into both (choose one of {fits or [1]})")
        return ViT(in_shape, num_classes, cfg.patch, cfg.dim, cfg.depth, cfg.heads, cfg.cls_token, mean=mean, std=std)
    if cfg.name in ("resnet18", "preact-resnet18"):
        return ResNet18(in_shape, num_classes, cfg.width, preact=cfg.name.startswith("preact"), mean=mean, std=std)
    return ResNet(in_shape, num_classes, cfg.width, mean=mean, std=std)


def build_encoder(cfg: NetConfig, in_shape: tuple[int, int, int], mean=None, std=None) -> Classifier:
    """The network ``cfg`` names with its head the identity: it outputs its feature (``embed_dim`` wide), and its state
    dict is a classifier's without the head, so ``finetune --from`` and a classifier load it. The encoder of every
    self-supervised recipe (MAE, SimCLR, MoCo)."""
    net = build_net(cfg, in_shape, 1, mean, std)
    net.head = nn.Identity()
    return net


def card(cfg: NetConfig, in_shape, classes: list[str], mean, std) -> dict:
    """What ``model.json`` keeps of a classifier: enough to build it again (:func:`from_card`)."""
    return {"kind": "classifier", "net": cfg.model_dump(mode="json"), "input_shape": [int(s) for s in in_shape],
            "classes": [str(c) for c in classes], "mean": [float(m) for m in mean], "std": [float(s) for s in std]}


def encoder_card(cfg: NetConfig, net: Classifier, in_shape) -> dict:
    """What ``model.json`` keeps of an encoder (:func:`build_encoder`): a card with no classes and its feature width."""
    stats = net.standardize
    return {**card(cfg, in_shape, [], stats.mean.flatten().tolist(), stats.std.flatten().tolist()),
            "kind": "encoder", "classes": None, "features": net.embed_dim}


def encoder_from_card(card: dict) -> Classifier:
    """The (untrained) encoder an :func:`encoder_card` describes."""
    return build_encoder(NetConfig(**card["net"]), tuple(card["input_shape"]), card["mean"], card["std"])


def from_card(card: dict) -> Classifier:
    """The (untrained) classifier a card describes."""
    return build_net(NetConfig(**card["net"]), tuple(card["input_shape"]), len(card["classes"]),
                     card["mean"], card["std"])


def is_convolutional(net: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in net.modules())


def to_device(net: nn.Module, device) -> nn.Module:
    """``net`` on ``device``; on a CPU a convolutional network in the channels_last memory format (oneDNN's fast
    layout there), as training and ``paradigms.load`` run it."""
    net = net.to(device)
    if torch.device(device).type == "cpu" and is_convolutional(net):
        net = net.to(memory_format=torch.channels_last)
    return net
