"""The ``semi-gan`` recipe: semi-supervised learning with a GAN (Salimans et al. 2016, section 5).

    paradigms run semi-gan --dataset mnist --data-dir ../shared/datasets      # 100 labels, all images unlabelled

The discriminator is a classifier with K + 1 classes, the last one "generated"; it outputs the K class logits l
(the fake class's logit fixed at 0, which loses nothing: :mod:`.losses`), so D(x) = sigmoid(logsumexp(l)):

    L_D = -E_{(x,y) labelled} log p(y | x, y <= K)                                  (cross-entropy on K logits)
          + w ( -E_{x unlabelled} log D(x) - E_z log(1 - D(G(z))) )                  (the GAN game on all images)
    L_G = || E_x f(x) - E_z f(G(z)) ||^2                                             (feature matching)

w = 1/2 as in the authors' code. Every step takes the loader's batch of training images (labels unused) and as
many labelled images drawn from the ``labels`` kept (``labels / K`` of each class, chosen with the seed). With
``unsupervised_weight=0`` no generator is trained: the same discriminator learns from the labelled images alone,
the baseline the paper improves on. Evaluation: the test error of argmax_k l_k.

The networks are the paper's for MNIST: D 784-1000-500-250-250-250-K on [0, 1] pixels with Gaussian noise (0.3 on
the input, 0.5 on the hidden layers) and weight normalisation; G 100-500-500-784 with softplus and batch norm. G's
last layer is a softplus, as in a public PyTorch reproduction (Sleepychord/ImprovedGAN-pytorch), where the paper's
sigmoid trained worse here (3 epochs on MNIST: 83% against 88% test accuracy without weight norm); so are
pixels in [-1, 1] into D (62%).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from .. import optim
from ..data.subset import per_class
from ..errors import UserError
from ..evaluate import evaluate_classifier
from ..optim import OptimConfig
from ..recipes import register
from .losses import discriminator_loss, real_fake_logit
from .models import DCGANDiscriminator, MLPDiscriminator, MLPGenerator
from .recipe import GAN, GANConfig


class SemiGANConfig(GANConfig):
    recipe: str = "semi-gan"
    arch: Literal["dcgan", "mlp"] = Field("mlp", description="mlp (the paper's MNIST networks, with Gaussian noise in D) | dcgan")
    hidden_g: list[int] = Field([500, 500], description="mlp: the generator's hidden sizes (softplus, batch norm)")
    hidden_d: list[int] = Field([1000, 500, 250, 250, 250], description="mlp: the discriminator's hidden sizes")
    input_noise: float = Field(0.3, ge=0, description="mlp: std of the Gaussian noise on D's input")
    hidden_noise: float = Field(0.5, ge=0, description="mlp: std of the Gaussian noise on D's hidden layers")
    weight_norm: bool = Field(True, description="mlp: weight normalisation of D's layers (the paper's)")
    feature_matching: bool = Field(True, description="the generator matches D's last hidden layer (the paper's "
                                   "semi-supervised setting); false: the non-saturating loss")
    labels: int = Field(100, ge=1, description="labelled training images, the same number of each class")
    unsupervised_weight: float = Field(0.5, ge=0, description="w: weight of the real/fake game in D's loss (the "
                                       "authors' code: 1/2); 0 = the labelled images alone, no generator")
    optim_d: OptimConfig = Field(OptimConfig(name="adam", lr=3e-3, betas=(0.5, 0.999), weight_decay=0.0,
                                             schedule="onecycle", warmup=0.0),
                                 description="the discriminator's optimiser (the paper: Adam 0.003, beta1 0.5, "
                                 "decaying to 0)")
    optim_g: OptimConfig = Field(OptimConfig(name="adam", lr=3e-3, betas=(0.5, 0.999), weight_decay=0.0,
                                             schedule="onecycle", warmup=0.0),
                                 description="the generator's optimiser")


@register
class SemiGAN(GAN):
    name = "semi-gan"
    family = "generative"
    measures = "test error of the K + 1-class discriminator trained with few labels"
    network = "discriminator"
    Config = SemiGANConfig
    about = ("Semi-supervised learning with a GAN (Salimans, Goodfellow, Zaremba, Cheung, Radford & Chen 2016, "
             "\"Improved techniques for training GANs\", section 5): the discriminator is a classifier of the K "
             "real classes plus a class \"generated\", so every training image teaches it what real data looks like "
             "while a few labelled ones (labels in all, as many of each class) teach it the classes. Its loss is the "
             "cross-entropy on the labelled images plus w times the GAN game on all training images and on "
             "generated ones, with D(x) = sigmoid(logsumexp of the K class logits); the generator is trained by "
             "feature matching, to match the mean of D's last hidden layer on real images. What is measured is the "
             "discriminator's test error as a classifier: compare it with a run with unsupervised_weight=0, the "
             "same discriminator trained on the labelled images alone, the baseline the paper improves on. The "
             "figures are the GAN's (samples, progress, interpolation, the game); the samples are a by-product "
             "here, since feature matching serves the classifier rather than the looks of the images, and a run "
             "with unsupervised_weight=0 trains no generator and draws none of them.")
    captions = {
        **GAN.captions,
        "game": "The game against the training step: the generator's feature-matching loss (the discriminator's "
                "own losses, loss_sup and loss_unsup, are in the learning curves), D's mean output on real images "
                "D(x) and on generated ones D(G(z)), and the generator's gradient norm (log scale).",
    }
    commands = ("sample", "attack", "certify")

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        if name == "full":  # the paper's 300 epochs on MNIST (public PyTorch reproductions: 100)
            return {"train": {"epochs": 300, "batch_size": 100}}
        if dataset in ("mnist", "fashion-mnist"):
            return {"train": {"epochs": 10, "batch_size": 100, "eval_every": 1}}
        if dataset == "digits":
            return {"labels": 50, "hidden_d": [256, 128, 64], "hidden_g": [128, 128],
                    "train": {"epochs": 60, "batch_size": 50}}
        return {"arch": "dcgan", "width": 32, "labels": 4000, "train": {"epochs": 20, "batch_size": 100}}

    def outputs(self) -> int:
        return len(self.classes)

    def build_players(self):
        cfg, shape = self.cfg, self.in_shape
        if cfg.arch == "dcgan":
            g, _ = super().build_players()
            return g, DCGANDiscriminator(shape, self.outputs(), cfg.width, cfg.minibatch_kernels, cfg.minibatch_dim)
        g = MLPGenerator(cfg.latent, shape, cfg.hidden_g, activation="softplus", batchnorm=True, output="softplus",
                         virtual_bn=cfg.virtual_batchnorm)
        d = MLPDiscriminator(shape, self.outputs(), cfg.hidden_d, activation="relu", input_noise=cfg.input_noise,
                             hidden_noise=cfg.hidden_noise, minibatch_kernels=cfg.minibatch_kernels,
                             kernel_dim=cfg.minibatch_dim, weight_norm=cfg.weight_norm)
        return g, d

    @property
    def trains_generator(self) -> bool:
        return self.cfg.unsupervised_weight > 0

    def select_training(self, x, y):
        """All training images stay (unlabelled); ``labels / K`` of each class are kept with their labels."""
        cfg, k = self.cfg, len(self.classes)
        if x is None:
            raise UserError(f"semi-gan needs {cfg.dataset} in memory (raise memory_mb)")
        if cfg.labels > len(y) or cfg.labels % k:
            raise UserError(f"labels={cfg.labels}: the labelled images must be a multiple of the {k} classes and at "
                            f"most the {len(y):,} training images of {cfg.dataset} (e.g. labels={10 * k})")
        fewest = int(torch.bincount(y, minlength=k).min())
        if cfg.labels // k > fewest:
            raise UserError(f"labels={cfg.labels} asks {cfg.labels // k} of each class; {cfg.dataset}'s smallest "
                            f"class has {fewest} training images (labels <= {fewest * k})")
        picked = per_class(y, cfg.labels // k, k, cfg.seed)
        self.lab_x, self.lab_y = x[picked].to(self.ctx.device), y[picked].to(self.ctx.device)
        return x, y

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        from ..data import unit

        x, _ = batch                                                   # unlabelled: the labels are not used
        cfg, opt = self.cfg, self.optimizers["d"]
        lr = optim.set_lr(opt, optim.lr_at(step, self.total_steps, cfg.optim_d))
        i = torch.randint(0, len(self.lab_y), (len(x),), device=self.lab_y.device)
        xl, yl = unit(self.lab_x[i]), self.lab_y[i]                     # a labelled batch as large
        self.train_D.train()
        with self.ctx.autocast():
            logits_lab = self.train_D(xl).float()
            loss_sup = F.cross_entropy(logits_lab, yl)                 # -log p(y | x, y <= K)
            loss, out = loss_sup, {}
            if self.trains_generator:
                self.train_G.train()
                with torch.no_grad():
                    fake = self.train_G(self.z(len(x)))
                real_l, fake_l = real_fake_logit(self.train_D(x).float()), real_fake_logit(self.train_D(fake).float())
                loss_unsup = discriminator_loss(real_l, fake_l)        # -E log D(x) - E log(1 - D(G(z)))
                loss = loss_sup + cfg.unsupervised_weight * loss_unsup
                out = {"loss_unsup": loss_unsup.detach(), "d_real": torch.sigmoid(real_l).mean().detach(),
                       "d_fake": torch.sigmoid(fake_l).mean().detach()}
        optim.step(opt, loss, cfg.train.grad_clip)
        out.update({"loss": loss.detach(), "loss_sup": loss_sup.detach(),
                    "acc": (logits_lab.argmax(1) == yl).float().mean().detach(), "lr": lr})
        if self.trains_generator:
            self.won.update(step, out["d_real"], out["d_fake"])
            if (step + 1) % cfg.k == 0:
                out.update(self.generator_step(x, step))
        return out

    def real_fake(self, logits: torch.Tensor) -> torch.Tensor:
        return real_fake_logit(logits.float())

    def sample(self, n: int, z: torch.Tensor | None = None) -> torch.Tensor:
        if not self.trains_generator:
            raise UserError("this semi-gan run trained no generator (unsupervised_weight=0: the labels alone), so it "
                            "cannot sample")
        return super().sample(n, z)

    def evaluate(self) -> dict[str, float]:
        m = evaluate_classifier(self.D, self.test_loader.epoch(0), self.ctx)
        out = {"test/acc": m["acc"], "test/error": 1 - m["acc"], "test/loss": m["loss"]}
        if self.trains_generator:
            out.update(super().evaluate())
        return out

    def figures(self):
        if self.trains_generator:
            yield from super().figures()

    # -- the network paradigms.load gives: the discriminator, a classifier of K classes ---------------
    def network_card(self) -> dict:
        cfg = self.cfg
        return {"kind": "classifier", "input_shape": list(self.in_shape), "classes": [str(c) for c in self.classes],
                "gan": {k: getattr(cfg, k) for k in ("arch", "width", "hidden_d", "input_noise", "hidden_noise",
                                                      "minibatch_kernels", "minibatch_dim", "weight_norm")}}

    @classmethod
    def build_network(cls, card: dict):
        g, shape, k = card["gan"], tuple(card["input_shape"]), len(card["classes"])
        if g["arch"] == "dcgan":
            return DCGANDiscriminator(shape, k, g["width"], g["minibatch_kernels"], g["minibatch_dim"])
        return MLPDiscriminator(shape, k, g["hidden_d"], activation="relu", input_noise=g["input_noise"],
                                hidden_noise=g["hidden_noise"], minibatch_kernels=g["minibatch_kernels"],
                                kernel_dim=g["minibatch_dim"], weight_norm=g["weight_norm"])
