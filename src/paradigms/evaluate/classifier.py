"""Evaluating a classifier: accuracy and cross-entropy over a loader, summed across DDP ranks, and its pictures.

    acc  = 1/N sum_n [argmax_k f(x_n)_k = y_n]          loss = -1/N sum_n log softmax(f(x_n))_{y_n}

One function for every paradigm that measures a classifier: the supervised recipe's test accuracy,
an attack's robust accuracy (``perturb``: each batch goes through the attack first), a smoothed
classifier, a semi-supervised GAN's discriminator. Images are pixels in [0, 1].
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def _autocast(ctx):
    return ctx.autocast() if ctx is not None else contextlib.nullcontext()


def predict(net: nn.Module, batches: Batches, ctx=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) of every batch, in order (this rank's share under DDP), in eval mode."""
    was_training = net.training
    net.eval()
    outs, ys = [], []
    with torch.no_grad():
        for x, y in batches:
            if len(y) == 0:
                continue
            with _autocast(ctx):
                outs.append(net(x).float())
            ys.append(y)
    net.train(was_training)
    if not outs:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(outs), torch.cat(ys)


def evaluate_classifier(net: nn.Module, batches: Batches, ctx=None,
                        perturb: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> dict[str, float]:
    """``{"acc", "loss", "n"}`` of ``net`` over ``batches`` of (images, labels), reduced across DDP ranks.

    ``perturb(x, y) -> x'`` changes each batch first (an attack; it may use gradients). The network is
    evaluated in eval mode and left in the mode it was in.
    """
    was_training = net.training
    net.eval()
    totals = torch.zeros(3, dtype=torch.float64)  # correct, summed cross-entropy, count
    for x, y in batches:
        if len(y) == 0:
            continue
        if perturb is not None:
            x = perturb(x, y)
        with torch.no_grad(), _autocast(ctx):
            logits = net(x).float()
        totals += torch.stack([(logits.argmax(1) == y).sum().double().cpu(),
                               F.cross_entropy(logits, y, reduction="sum").double().cpu(),
                               torch.tensor(float(len(y)), dtype=torch.float64)])
    net.train(was_training)
    if ctx is not None:
        totals = ctx.all_reduce(totals)
    n = float(totals[2])
    return {"acc": float(totals[0]) / max(n, 1.0), "loss": float(totals[1]) / max(n, 1.0), "n": int(n)}


# -- pictures ---------------------------------------------------------------------------------------
def confusion_figure(labels: np.ndarray, pred: np.ndarray, classes: list[str]):
    from sklearn.metrics import confusion_matrix

    k = len(classes)
    cm = confusion_matrix(labels, pred, labels=list(range(k)))
    fig, ax = plt.subplots(figsize=(min(0.45 * k + 2, 14), min(0.45 * k + 1.6, 13)))
    ax.imshow(cm, cmap="Blues")
    if k <= 20:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, cm[i, j], ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
        ax.set_xticks(range(k), classes, rotation=60, fontsize=7, ha="right")
        ax.set_yticks(range(k), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion matrix (accuracy {np.mean(labels == pred):.2%})")
    fig.tight_layout()
    return fig


def mistakes_figure(images: torch.Tensor, labels: np.ndarray, pred: np.ndarray, probs: torch.Tensor, classes,
                    n: int = 16):
    """The test images (uint8 or [0, 1], (N, C, H, W)) the model got wrong with the most confidence."""
    wrong = np.flatnonzero(labels != pred)
    conf = probs.max(1).values.numpy()
    wrong = wrong[np.argsort(-conf[wrong])][:n]
    cols, rows = 8, max(1, math.ceil(len(wrong) / 8))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, 1.6 * rows + 0.2), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        img = images[i].permute(1, 2, 0).numpy()
        ax.imshow(img.squeeze(-1) if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
        ax.set_title(f"{classes[pred[i]]} ({conf[i]:.0%})\ntrue {classes[labels[i]]}", fontsize=6)
    fig.suptitle("most confident mistakes", fontsize=9)
    fig.tight_layout()
    return fig


# -- a trained run's classifier, on its own images or on yours -------------------------------------------------------
def load_classifier(run_dir, device: str = "cpu") -> nn.Module:
    """The trained classifier of a run folder (``paradigms.load``: eval mode, pixels in [0, 1]); a run whose network
    has no classes is refused in one line."""
    from ..api import load
    from ..errors import UserError

    net = load(run_dir, device)
    if not net.card.get("classes"):
        raise UserError(f"the network of {run_dir} ({net.card.get('recipe')}) is not a classifier: it has no classes")
    return net


def class_probabilities(net: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """softmax(net(x)) (N, K) for images ``x`` (N, C, H, W) in [0, 1], in batches, without gradients."""
    with torch.no_grad():
        return torch.cat([net(x[i: i + batch_size]).float().softmax(1) for i in range(0, len(x), batch_size)])


def fit_image(img: torch.Tensor, shape) -> torch.Tensor:
    """A picture (C, H, W) in [0, 1] made the network's input ``shape`` (C, H, W): grey <-> RGB, then resized
    (bilinear, antialiased), so any photo or drawing can be shown to any run's network."""
    c, h, w = shape
    if img.shape[0] != c:
        img = img.mean(0, keepdim=True) if c == 1 else img.expand(c, -1, -1)
    return F.interpolate(img[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)


def classify_images(net: nn.Module, images: list[torch.Tensor]) -> list[dict]:
    """What ``paradigms eval RUN --image F`` prints and the lab's classify panel shows, for pictures (C, H, W) in
    [0, 1] of any size: each one's predicted class and its probability for every class."""
    x = torch.stack([fit_image(img, net.input_shape) for img in images])
    probs = class_probabilities(net, x.to(next(net.parameters()).device))
    classes = net.classes
    return [{"prediction": classes[int(p.argmax())], "probabilities": dict(zip(classes, p.tolist()))} for p in probs]


def eval_images(run_dir, n: int, device="cpu"):
    """The first ``n`` images (in [0, 1]) and labels of the run's evaluation set, as the run selected it (its classes,
    its validation split), with its training images and labels: ``((x, y), (train_x, train_y))``."""
    from ..data import load_images, unit
    from ..data.subset import ImageRecipeConfig, select
    from ..engine.trainer import load_config
    from ..errors import UserError

    cfg = load_config(run_dir)
    data = load_images(cfg.dataset, cfg.data_dir)
    if data.test_x is None and data.train_x is None:
        raise UserError(f"dataset {cfg.dataset!r} is streamed from disk; this needs its images in memory")
    if isinstance(cfg, ImageRecipeConfig):  # the run's own selection (classes, val_size...)
        train_x, train_y, x, y, _ = select(data, cfg)
    else:
        x, y, train_x, train_y = data.test_x, data.test_y, data.train_x, data.train_y
    return (unit(x[:n].to(device)), y[:n].to(device)), (train_x, train_y)


__all__ = ["class_probabilities", "classify_images", "confusion_figure", "eval_images", "evaluate_classifier",
           "fit_image", "load_classifier", "mistakes_figure", "predict"]
