"""The ``moco`` recipe: MoCo v2, contrast each query with its key and a queue of earlier keys (He et al. 2020; Chen,
Fan, Girshick & He 2020, "Improved baselines with momentum contrastive learning").

    paradigms run moco --dataset cifar10 [--set queue_size=4096] [--set momentum=0.99]

The query q = g_q(f_q(t(x))) is trained; the key k = g_k(f_k(t'(x))) comes from a momentum copy that receives no
gradient and follows the query network,

    theta_k <- m theta_k + (1 - m) theta_q                                               (MoCo eq. 2)

(:func:`paradigms.optim.ema_update`, before the keys of each step are computed), and the negatives are the last
``queue_size`` keys (:class:`~paradigms.contrastive.queue.KeyQueue`, first in, first out; it is one of the run's
modules, so the checkpoint keeps it and a resumed run goes on with the same negatives). The loss is InfoNCE
(:func:`~paradigms.contrastive.losses.info_nce`) at temperature 0.2, with MoCo v2's MLP head. ``symmetric`` also
contrasts the second view's query with the first view's key and averages (lightly's benchmark; the paper: one way).

Batch-norm leakage (MoCo 3.3): a query and its own key must not be normalised with the same batch statistics, or the
network finds its positive by the statistics rather than by the image. MoCo shuffles the keys' batch across GPUs
("shuffling BN"). Here the encoders' batch norm is split (:class:`SplitBatchNorm`): each of ``bn_splits`` groups
of a batch is normalised on its own, the queries in their order and the keys after a random shuffle that is undone
after the key encoder; this is shuffling BN over ``bn_splits`` devices on one (lightly's and the MoCo CIFAR demo's
split BN). ``bn_splits=1`` turns it off (the leak; a ViT has no batch norm to split).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from .. import optim
from ..errors import UserError
from ..optim import OptimConfig
from ..recipes import register
from .losses import info_nce
from .queue import KeyQueue
from .views import TwoViews, ViewsConfig, views_preset


class MoCoConfig(ViewsConfig):
    recipe: str = "moco"
    temperature: float = Field(0.2, gt=0, le=10, description="tau of InfoNCE (MoCo v2: 0.2)")
    momentum: float = Field(0.99, ge=0, le=1, description="m of the key encoder's moving average (the paper: 0.999 "
                            "on ImageNet; lightly's CIFAR-10 benchmark: 0.99)")
    queue_size: int = Field(4096, ge=1, description="K, the negatives kept (the paper: 65,536; lightly's CIFAR-10 "
                            "benchmark: 4096); a multiple of the batch per rank")
    symmetric: bool = Field(False, description="also contrast view 2's query with view 1's key and average "
                            "(lightly's benchmark; twice the cost of a step; the paper: one way)")
    bn_splits: int = Field(8, ge=1, description="batch-norm groups per batch, the keys shuffled between them "
                           "(shuffling BN on one device); 1: no protection against BN leakage")
    optim: OptimConfig = OptimConfig(name="sgd", lr=0.06, momentum=0.9, nesterov=False, weight_decay=5e-4,
                                     schedule="cosine")

    @model_validator(mode="after")
    def _sizes(self):
        b = self.train.batch_size
        if b % self.bn_splits:
            raise ValueError(f"bn_splits={self.bn_splits} does not divide train.batch_size={b}: each batch-norm group "
                             f"must be the same size (choose a divisor of {b})")
        return self


class SplitBatchNorm(nn.BatchNorm2d):
    """Batch norm over ``splits`` groups of a batch, each with its own statistics in training (sample i in group
    i mod splits); the running statistics are the groups' average. The same parameters and buffers as BatchNorm2d,
    so the weights load into a plain network."""

    def __init__(self, channels: int, splits: int):
        super().__init__(channels)
        self.splits = splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = self.splits
        if not self.training or g == 1:
            return super().forward(x)
        mean, var = self.running_mean.repeat(g), self.running_var.repeat(g)     # (g C,)
        out = F.batch_norm(x.reshape(n // g, c * g, h, w), mean, var, self.weight.repeat(g), self.bias.repeat(g),
                           True, self.momentum, self.eps).reshape(n, c, h, w)
        self.running_mean.copy_(mean.view(g, c).mean(0))
        self.running_var.copy_(var.view(g, c).mean(0))
        self.num_batches_tracked.add_(1)
        return out


def split_batchnorm(net: nn.Module, splits: int) -> nn.Module:
    """Every BatchNorm2d of ``net`` made a :class:`SplitBatchNorm` of ``splits`` groups (weights kept), in place."""
    for name, child in net.named_children():
        if isinstance(child, nn.BatchNorm2d) and not isinstance(child, SplitBatchNorm):
            split = SplitBatchNorm(child.num_features, splits).to(child.weight.device)
            split.load_state_dict(child.state_dict())
            setattr(net, name, split)
        else:
            split_batchnorm(child, splits)
    return net


@register
class MoCo(TwoViews):
    name = "moco"
    measures = "kNN and linear-probe test accuracy of the frozen query encoder (labels never used in training)"
    Config = MoCoConfig
    head_batchnorm = False   # MoCo v2's MLP head
    about = ("MoCo v2 (He, Fan, Wu, Xie & Girshick 2020, \"Momentum contrast for unsupervised visual representation "
             "learning\"; Chen, Fan, Girshick & He 2020, \"Improved baselines with momentum contrastive learning\") "
             "learns an image encoder without labels from two augmented views of each image: the query q of one "
             "view must match the key k of the other against a queue of the keys of earlier batches, by the "
             "InfoNCE loss -log exp(q.k / tau) / (exp(q.k / tau) + sum over the queue of exp(q.k_neg / tau)), on "
             "unit vectors. The keys come from a momentum copy of the encoder that gets no gradient, theta_k <- m "
             "theta_k + (1 - m) theta_q, so the keys in the queue stay consistent while the negatives far outnumber "
             "a batch; batch norm is split into groups with the keys shuffled between them, so that a query cannot "
             "find its key through shared batch statistics. The query encoder is judged frozen, with labels "
             "training never read: by kNN accuracy and, at the end, a linear probe. The views figure shows the "
             "augmentations that define \"the same image\", and the t-SNE of the test features shows whether the "
             "classes separate without ever being named.")
    commands = ()

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        p = views_preset(name, dataset, cifar_epochs=12)   # lightly's CIFAR-10 benchmark: lr 0.06 x batch / 256
        return {**p, "optim": {"lr": 0.06 * p["train"]["batch_size"] / 256}}

    def make_encoder(self) -> nn.Module:
        return split_batchnorm(super().make_encoder(), self.cfg.bn_splits)

    def build(self) -> None:
        cfg, ctx = self.cfg, self.ctx
        per_rank = min(cfg.train.batch_size, self.n_train) // ctx.world   # a small training set is one batch
        if cfg.queue_size % per_rank:
            raise UserError(f"queue_size={cfg.queue_size} is not a multiple of the batch per rank ({per_rank}): the "
                            f"queue replaces its oldest keys a whole batch at a time (e.g. queue_size="
                            f"{max(1, round(cfg.queue_size / per_rank)) * per_rank})")
        self.key_enc, self.key_head = copy.deepcopy(self.enc), copy.deepcopy(self.head)
        for p in [*self.key_enc.parameters(), *self.key_head.parameters()]:
            p.requires_grad_(False)
        g = torch.Generator().manual_seed(cfg.seed + 1)
        self.queue = KeyQueue(cfg.queue_size, cfg.proj_dim, g).to(ctx.device)
        self.modules = {"encoder": self.enc, "head": self.head, "key_encoder": self.key_enc,
                        "key_head": self.key_head, "queue": self.queue}
        self.query = nn.Sequential(self.enc, self.head)
        self.key = nn.Sequential(self.key_enc, self.key_head)
        self.train_query = ctx.distribute(self.query)
        self.optimizers = {"opt": optim.build_optimizer(self.query.parameters(), cfg.optim)}

    @torch.no_grad()
    def keys(self, v: torch.Tensor) -> torch.Tensor:
        """k = g_k(f_k(v)) with the batch shuffled between the batch-norm groups and put back in order."""
        perm = torch.randperm(len(v), device=v.device)
        self.key.train()
        with self.ctx.autocast():
            k = self.key(v[perm]).float()
        return k[torch.argsort(perm)]

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        x, v1, v2, opt, lr = self.begin_step(batch, step)                     # x: (N, C, H, W), two views of it
        optim.ema_update(self.key, self.query, cfg.momentum)                  # theta_k <- m theta_k + (1-m) theta_q
        k2 = self.keys(v2)                                                    # (N, D), no gradient
        negatives = self.queue()                                              # (K, D), oldest first
        self.train_query.train()
        with self.ctx.autocast():
            q = self.train_query(torch.cat([v1, v2]) if cfg.symmetric else v1).float()
        loss = info_nce(q[:len(x)], k2, negatives, cfg.temperature)
        if cfg.symmetric:
            loss = (loss + info_nce(q[len(x):], self.keys(v1), negatives, cfg.temperature)) / 2
        optim.step(opt, loss, cfg.train.grad_clip)
        self.queue.push(k2)                                                   # the newest keys replace the oldest
        with torch.no_grad():                                                 # how often the key beats the queue
            ql, kl = F.normalize(q[:len(x)], dim=1), F.normalize(k2, dim=1)
            pos = (ql * kl).sum(1)
            top1 = pos > (ql @ F.normalize(negatives, dim=1).T).max(1).values
        return {"loss": loss.detach(), "key_acc": top1.float().mean(), "lr": lr}


__all__ = ["MoCo", "MoCoConfig", "SplitBatchNorm", "split_batchnorm"]
