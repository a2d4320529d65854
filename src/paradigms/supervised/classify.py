"""Supervised classification by backpropagation: the recipe every other paradigm is compared with.

Learn f_theta: x -> p(y | x) from labelled pairs by minimising the empirical cross-entropy

    L(theta) = - 1/N sum_n log softmax(f_theta(x_n))_{y_n}

with minibatch SGD (Robbins & Monro 1951; gradients by backpropagation, Rumelhart et al. 1986).
Targets may be class indices or probability vectors (soft targets, as mixup/CutMix produce).
Networks: MLP, LeNet-5, a small ResNet (:mod:`paradigms.nets`); any image dataset of
:mod:`paradigms.data`.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from .. import augment
from ..augment import figures as augment_figures
from ..config import OptimConfig, RecipeConfig
from ..data import load_images
from ..errors import UserError
from ..engine import ImageLoader, Normalize
from ..nets import NetConfig, build_net, is_convolutional
from ..recipes import Recipe, register


class SupervisedConfig(RecipeConfig):
    recipe: str = "supervised"
    dataset: str = "digits"
    model: NetConfig = NetConfig()
    optim: OptimConfig = OptimConfig()
    augment: list[str | dict[str, dict | None]] = Field(
        [], description="train-time augmentation policy, e.g. [standard, cutout, mixup] (see paradigms.augment)")
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    train_size: int | None = Field(None, ge=1, description="use only the first N training images")
    val_size: int | None = Field(None, ge=1, description="hold out N training images (the N after the first "
                                 "train_size, else the last N) and evaluate on them instead of the test set: "
                                 "choose settings without reading the test set (metrics val/acc, val/loss)")
    classes: list[int] | None = Field(None, min_length=2, description="train and test on these classes only, "
                                      "relabelled 0..k-1 in this order (e.g. [0, 1, 2, 3, 4])")
    labels_per_class: int | None = Field(None, ge=1, description="keep N training images per class, drawn "
                                         "with the seed (few-label learning)")
    memory_mb: int = Field(4096, ge=0, description="an image folder larger than this streams from disk")


def make_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov momentum) or AdamW; no weight decay on biases and norm gains; frozen parameters left out.

    ``params`` is an iterable of parameters, or of groups ``{"params": [...], "lr_scale": s}`` whose
    learning rate is ``s`` times the schedule's (discriminative fine-tuning).
    """
    params = list(params)
    if params and not isinstance(params[0], dict):
        params = [{"params": params}]
    groups = []
    for g in params:
        ps = [p for p in g["params"] if p.requires_grad]
        scale = g.get("lr_scale", 1.0)
        groups += [{"params": [p for p in ps if p.ndim > 1], "weight_decay": cfg.weight_decay, "lr_scale": scale},
                   {"params": [p for p in ps if p.ndim <= 1], "weight_decay": 0.0, "lr_scale": scale}]
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise UserError("nothing to train: every parameter is frozen")
    if cfg.name == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)


def lr_at(step: int, total: int, cfg: OptimConfig) -> float:
    """The schedule as a pure function of the step (so a resumed run needs no scheduler state).

    onecycle: linear warm-up to lr over ``warmup`` of the steps, then linear decay to 0
    (Smith & Topin 2018); cosine: lr * (1 + cos(pi t / T)) / 2; constant: lr.
    """
    t = min(step / max(total, 1), 1.0)
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))
    if t < cfg.warmup:
        return cfg.lr * t / cfg.warmup
    return cfg.lr * (1 - t) / (1 - cfg.warmup)


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy for class indices (N,) or soft targets (N, K) that sum to 1."""
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


@register
class Supervised(Recipe):
    name = "supervised"
    family = "supervised"
    measures = "test accuracy of a classifier (MLP, LeNet-5, ResNet)"
    encoder = "model"
    Config = SupervisedConfig

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        if name == "full":  # paper-scale: a full-width ResNet-9, as in the DAWNBench CIFAR-10 entries
            return {"model": {"name": "resnet", "width": 64}, "augment": ["crop", "flip"],
                    "optim": {"lr": 0.4, "weight_decay": 5e-4}, "label_smoothing": 0.2,
                    "train": {"epochs": 24, "batch_size": 512}}
        if dataset in ("digits",):
            return {"model": {"name": "lenet5", "width": 2}, "optim": {"lr": 0.1, "weight_decay": 5e-4},
                    "train": {"epochs": 20, "batch_size": 64}}
        if dataset in ("mnist", "fashion-mnist"):
            return {"model": {"name": "lenet5", "width": 4}, "optim": {"lr": 0.1},
                    "train": {"epochs": 4, "batch_size": 128}}
        if dataset == "cifar10":
            return {"model": {"name": "resnet", "width": 16}, "augment": ["crop", "flip"], "label_smoothing": 0.2,
                    "optim": {"lr": 0.2, "weight_decay": 5e-4}, "train": {"epochs": 8, "batch_size": 256}}
        return {"model": {"name": "resnet", "width": 16}, "augment": ["crop", "flip"],
                "train": {"epochs": 10, "batch_size": 128}}

    def __init__(self, cfg: SupervisedConfig, ctx):
        super().__init__(cfg, ctx)
        self.data = data = load_images(cfg.dataset, cfg.data_dir, max_memory_mb=cfg.memory_mb)
        x, y, test_x, test_y, self.classes = select(data, cfg)
        self.num_classes = len(self.classes)
        self.net = self.make_net((data.channels, *data.size), self.num_classes).to(ctx.device)
        self.channels_last = is_convolutional(self.net) and ctx.device.type == "cpu"
        if self.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.modules = {"model": self.net}
        self.train_net = ctx.distribute(self.net)
        self.optimizers = {"opt": make_optimizer(self.param_groups(), cfg.optim)}
        self.augment = augment.build(cfg.augment, cfg.dataset, data.channels, mean=data.mean)
        self.norm = Normalize(data.mean, data.std, ctx.device, channels_last=self.channels_last)
        common = dict(device=ctx.device, normalize=self.norm.unit if self.augment else self.norm, seed=cfg.seed,
                      rank=ctx.rank, world=ctx.world,
                      workers=cfg.train.workers)
        self.train_loader = ImageLoader(x, y, batch_size=cfg.train.batch_size, stream=data.train_stream, **common)
        self.test_loader = ImageLoader(test_x, test_y, batch_size=1024, shuffle=False, drop_last=False,
                                       stream=data.test_stream, **{**common, "normalize": self.norm})
        # figures are drawn by rank 0 alone, over the whole test set
        self.figure_loader = ImageLoader(test_x, test_y, batch_size=1024, shuffle=False, drop_last=False,
                                         stream=data.test_stream, **{**common, "normalize": self.norm, "world": 1, "rank": 0})
        self.test_x = test_x
        self.total_steps = cfg.train.epochs * self.steps_per_epoch
        self.current_lr = lr_at(0, self.total_steps, cfg.optim)

    # hooks for recipes built on this one (fine-tuning builds its net from the source and freezes part of it)
    def make_net(self, in_shape: tuple[int, int, int], num_classes: int) -> torch.nn.Module:
        return build_net(self.cfg.model, in_shape, num_classes)

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.net.parameters())}]

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    def batches(self, epoch: int, start: int = 0):
        return self.train_loader.epoch(epoch, start)

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        x, y = batch
        if self.augment:  # on [0, 1] images, then standardised
            x, y = self.augment(x, y, self.num_classes)
            x = self.norm.standardize(x)
        opt = self.optimizers["opt"]
        self.current_lr = lr_at(step, self.total_steps, self.cfg.optim)
        for g in opt.param_groups:
            g["lr"] = self.current_lr * g.get("lr_scale", 1.0)
        self.train_net.train()
        with self.ctx.autocast():
            logits = self.train_net(x)
            loss = cross_entropy(logits.float(), y, self.cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hard = y if y.ndim == 1 else y.argmax(1)
        return {"loss": loss.detach(), "acc": (logits.detach().argmax(1) == hard).float().mean()}

    @torch.no_grad()
    def predict(self, loader: ImageLoader | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, labels, nll-sum) over this rank's share of the test set (or ``loader``'s)."""
        self.net.eval()
        outs, ys = [], []
        for x, y in (loader or self.test_loader).epoch(0):
            if len(y) == 0:
                continue
            with self.ctx.autocast():
                outs.append(self.net(x).float())
            ys.append(y)
        if not outs:
            return torch.zeros(0, self.num_classes), torch.zeros(0, dtype=torch.long), torch.zeros(())
        logits, labels = torch.cat(outs), torch.cat(ys)
        return logits, labels, F.cross_entropy(logits, labels, reduction="sum")

    def evaluate(self) -> dict[str, float]:
        logits, labels, nll = self.predict()
        correct = (logits.argmax(1) == labels).sum().float() if len(labels) else torch.zeros(())
        totals = self.ctx.all_reduce(torch.stack([correct.cpu(), nll.cpu(), torch.tensor(float(len(labels)))]))
        split = "val" if self.cfg.val_size else "test"
        return {f"{split}/acc": float(totals[0] / totals[2]), f"{split}/loss": float(totals[1] / totals[2])}

    def figures(self):
        logits, labels, _ = self.predict(self.figure_loader)
        pred = logits.argmax(1).cpu().numpy()
        labels = labels.cpu().numpy()
        if self.augment:
            yield "augmented_batch", self.augmented_batch_figure()
        yield "confusion", confusion_figure(labels, pred, self.classes)
        if self.test_x is not None:
            yield "mistakes", mistakes_figure(self.test_x, labels, pred, logits.softmax(1).cpu(), self.classes)

    def augmented_batch_figure(self):
        """The first training batch through the policy, each image labelled with what was done."""
        with torch.random.fork_rng(devices=[]):  # drawing the figure leaves the training stream alone
            torch.manual_seed(self.cfg.seed)
            x, y = next(iter(self.train_loader.epoch(0)))
            x, _, labels = self.augment.trace(x[:16], y[:16], self.num_classes)
        return augment_figures.batch_figure(x, labels)


def select(data, cfg: SupervisedConfig):
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
        g = torch.Generator().manual_seed(cfg.seed)
        order = torch.randperm(len(y), generator=g)
        picked = torch.cat([order[y[order] == c][: cfg.labels_per_class] for c in range(len(names))])
        picked = picked.sort().values
        x, y = x[picked], y[picked]
    if y is not None and len(y) == 0:
        raise UserError(f"the training selection of {cfg.dataset} is empty (train_size={cfg.train_size}, "
                        f"classes={cfg.classes})")
    return x, y, tx, ty, names


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


def mistakes_figure(images: torch.Tensor, labels: np.ndarray, pred: np.ndarray, probs: torch.Tensor, classes, n: int = 16):
    """The test images the model got wrong with the most confidence."""
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
