"""Which images a run learns from and is measured on: the settings every image recipe shares.

``train_size`` (the first N training images), ``val_size`` (hold out N training images and evaluate
on them instead of the test set, so a setting is chosen without reading it), ``classes`` (a subset of
the classes, relabelled 0..k-1) and ``labels_per_class`` (few-label learning). :func:`select` applies
them to a loaded dataset in that order.
"""

from __future__ import annotations

import torch
from pydantic import Field

from ..config import RecipeConfig
from ..errors import UserError


class ImageRecipeConfig(RecipeConfig):
    """A recipe that learns from an image dataset: which images it uses."""

    train_size: int | None = Field(None, ge=1, description="use only the first N training images")
    val_size: int | None = Field(None, ge=1, description="hold out N training images (the N after the first "
                                 "train_size, else the last N) and evaluate on them instead of the test set: "
                                 "choose settings without reading the test set (metrics val/acc, val/loss)")
    classes: list[int] | None = Field(None, min_length=1, description="train and test on these classes only, "
                                      "relabelled 0..k-1 in this order (e.g. [0, 1, 2, 3, 4]; one class: the "
                                      "normal data of anomaly detection)")
    labels_per_class: int | None = Field(None, ge=1, description="keep N training images per class, drawn "
                                         "with the seed (few-label learning)")
    memory_mb: int = Field(4096, ge=0, description="an image folder larger than this streams from disk")


def select(data, cfg: ImageRecipeConfig):
    """(train_x, train_y, eval_x, eval_y, class names) after val_size, train_size, classes and labels_per_class.

    The evaluation set is the test set, or with ``val_size`` the training images held out for validation.
    """
    x, y, tx, ty, names = data.train_x, data.train_y, data.test_x, data.test_y, list(data.classes)
    if (cfg.classes or cfg.labels_per_class or cfg.val_size) and x is None:
        raise UserError(f"dataset {cfg.dataset!r} is streamed from disk; classes, labels_per_class and val_size "
                        f"need it in memory (raise memory_mb above its size)")
    if cfg.val_size is not None:
        n = len(y)
        end = n if cfg.train_size is None else cfg.train_size + cfg.val_size
        if end > n or end - cfg.val_size < 1:
            raise UserError(f"val_size={cfg.val_size} with train_size={cfg.train_size} needs "
                            f"{max(end, cfg.val_size + 1):,} training images; {cfg.dataset} has {n:,} "
                            f"(lower val_size or train_size)")
        tx, ty = x[end - cfg.val_size: end], y[end - cfg.val_size: end]
        x, y = x[: end - cfg.val_size], y[: end - cfg.val_size]
    elif cfg.train_size is not None and x is not None:
        x, y = x[: cfg.train_size], y[: cfg.train_size]
    if cfg.classes:
        k = data.num_classes
        bad = [c for c in cfg.classes if not 0 <= c < k]
        if bad or len(set(cfg.classes)) != len(cfg.classes):
            raise UserError(f"classes={cfg.classes}: each must be a distinct class index of {cfg.dataset} "
                            f"(0..{k - 1}: {', '.join(names)})")
        relabel = torch.full((k,), -1, dtype=torch.long)
        relabel[torch.tensor(cfg.classes)] = torch.arange(len(cfg.classes))
        keep, tkeep = relabel[y] >= 0, relabel[ty] >= 0
        x, y, tx, ty = x[keep], relabel[y[keep]], tx[tkeep] if tx is not None else None, relabel[ty[tkeep]]
        names = [names[c] for c in cfg.classes]
    if cfg.labels_per_class:
        picked = per_class(y, cfg.labels_per_class, len(names), cfg.seed)
        x, y = x[picked], y[picked]
    if y is not None and len(y) == 0:
        raise UserError(f"the training selection of {cfg.dataset} is empty (train_size={cfg.train_size}, "
                        f"classes={cfg.classes})")
    return x, y, tx, ty, names


def per_class(y: torch.Tensor, n: int, num_classes: int, seed: int) -> torch.Tensor:
    """The sorted indices of ``n`` images of each class (fewer where a class has fewer), drawn with ``seed``."""
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return torch.cat([order[y[order] == c][:n] for c in range(num_classes)]).sort().values
