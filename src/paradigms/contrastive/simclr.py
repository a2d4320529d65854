"""The ``simclr`` recipe: learn an encoder by finding each image's other view among the batch's (Chen et al. 2020).

    paradigms run simclr --dataset cifar10 [--set temperature=0.5]
    paradigms run finetune --from runs/simclr-cifar10 --dataset cifar10 --set labels_per_class=10

A batch of N images gives 2N views; each view's z = g(f(view)) must pick its partner out of the other 2N - 1 (NT-Xent,
:func:`~paradigms.contrastive.losses.nt_xent`):

    l(i, j) = -log  exp(cos(z_i, z_j) / tau) / sum_{k != i} exp(cos(z_i, z_k) / tau)

Both views go through the network in one batch, so batch norm sees 2N images (SimCLR's global BN on one device).
Under DDP each rank's negatives are its own views (the paper gathers them across devices). Optimiser: SGD with
momentum and a cosine schedule, lightly's CIFAR-10 benchmark (the paper's LARS serves batches of 4096).
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from .. import optim
from ..optim import OptimConfig
from ..recipes import register
from .losses import nt_xent
from .views import TwoViews, ViewsConfig, views_preset


class SimCLRConfig(ViewsConfig):
    recipe: str = "simclr"
    temperature: float = Field(0.5, gt=0, le=10, description="tau of NT-Xent (the paper: 0.5 on CIFAR-10)")
    optim: OptimConfig = OptimConfig(name="sgd", lr=0.06, momentum=0.9, nesterov=False, weight_decay=5e-4,
                                     schedule="warmup-cosine", warmup=0.05)


@register
class SimCLR(TwoViews):
    name = "simclr"
    measures = "kNN and linear-probe test accuracy of the frozen encoder (labels never used in training)"
    Config = SimCLRConfig
    about = ("SimCLR (Chen, Kornblith, Norouzi & Hinton 2020, \"A simple framework for contrastive learning of "
             "visual representations\") learns an image encoder without labels: two random augmentations of each "
             "image (crops, colour changes, flips: the views policy) go through the encoder f and a projection "
             "head g, and each view must pick out its partner among the 2N views of the batch. The loss is "
             "NT-Xent, l(i, j) = -log exp(cos(z_i, z_j) / tau) / sum_{k != i} exp(cos(z_i, z_k) / tau), so the "
             "features learn to ignore what the augmentations change while keeping different images apart; the "
             "head is thrown away after training. The encoder is judged frozen, with labels training never read: "
             "by the kNN accuracy of test images against the training images' features and, at the end, by a "
             "linear probe; finetune --from reuses it. The views figure shows what the network is asked to treat "
             "as one image, and the t-SNE of the test features shows whether classes it was never told about form "
             "separate groups.")
    commands = ()

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        p = views_preset(name, dataset)   # lightly's CIFAR-10 benchmark: lr 0.06 x batch / 256
        return {**p, "optim": {"lr": 0.06 * p["train"]["batch_size"] / 256}}

    def build(self) -> None:
        self.modules = {"encoder": self.enc, "head": self.head}
        self.train_model = self.ctx.distribute(nn.Sequential(self.enc, self.head))      # x -> z = g(f(x))
        self.optimizers = {"opt": optim.build_optimizer(self.train_model.parameters(), self.cfg.optim)}

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        x, v1, v2, opt, lr = self.begin_step(batch, step)                     # x: (N, C, H, W), two views of it
        self.train_model.train()
        with self.ctx.autocast():
            z = self.train_model(torch.cat([v1, v2]))                        # (2N, proj_dim), one BN batch
        z1, z2 = z.float().chunk(2)
        loss = nt_xent(z1, z2, cfg.temperature)
        optim.step(opt, loss, cfg.train.grad_clip)
        with torch.no_grad():                                                 # how often the partner is the nearest
            top1 = (torch.nn.functional.normalize(z1, dim=1) @ torch.nn.functional.normalize(z2, dim=1).T
                    ).argmax(1) == torch.arange(len(z1), device=z1.device)
        return {"loss": loss.detach(), "pair_acc": top1.float().mean(), "lr": lr}


__all__ = ["SimCLR", "SimCLRConfig"]
