"""The ``gan`` recipe: a generator and a discriminator trained against each other (the game: :mod:`.losses`).

    paradigms run gan --dataset mnist [--set loss=minimax] [--set feature_matching=true] [--set k=2]
    paradigms sample RUN_DIR --n 64

Each training step is one discriminator step on a fresh real batch and as many fake images; every ``k``-th step
is also one generator step (k discriminator steps per generator step, Goodfellow et al.'s algorithm 1):

    D:  descend -(1/m) sum_i [ log D(x_i) + log(1 - D(G(z_i))) ]       (+ historical averaging)
    G:  descend (1/m) sum_i log(1 - D(G(z_i)))  (minimax)  or  -(1/m) sum_i log D(G(z_i))  (non-saturating)
        or || E f(x) - E f(G(z)) ||^2  (feature matching)                (+ historical averaging)

The generator's gradient norm is logged (``g_grad_norm``): the minimax loss saturates while D rejects the samples.
Evaluation: D's mean output on test and generated images and, given a classifier run of the same dataset
(``fd_classifier``), the classifier-FD of ``fd_n`` samples against the test set beside the real-versus-real value
(:mod:`.frechet`). A run whose discriminator wins outright (D(x) > 0.99 and D(G(z)) < 0.01 on average) for
``diverge_steps`` steps stops, keeping the last checkpoint from before (NaN losses stop as every run's do).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from .. import optim
from ..data.subset import ImageRecipeConfig
from ..errors import UserError
from ..optim import OptimConfig
from ..recipes import ImageRecipe, register
from .figures import PROGRESS_SAMPLES, report_figures
from .frechet import ClassifierFD
from .losses import HistoricalAverage, discriminator_loss, feature_matching_loss, generator_loss
from .models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from .watch import WinWatch

ADAM = OptimConfig(name="adam", lr=2e-4, betas=(0.5, 0.999), weight_decay=0.0, schedule="constant")  # Radford et al.


class GANConfig(ImageRecipeConfig):
    recipe: str = "gan"
    dataset: str = "digits"
    arch: Literal["dcgan", "mlp"] = Field("dcgan", description="dcgan (Radford et al.; image sides divisible by 4) | "
                                          "mlp (Goodfellow et al.'s MNIST setting)")
    width: int = Field(32, ge=1, le=1024, description="dcgan: base channels (the paper: 64, 128)")
    hidden_g: list[int] = Field([1200, 1200], description="mlp: the generator's hidden sizes")
    hidden_d: list[int] = Field([240, 240], description="mlp: the discriminator's hidden sizes")
    dropout: float = Field(0.0, ge=0, lt=1, description="mlp: dropout in the discriminator")
    latent: int = Field(100, ge=1, le=4096, description="size of the generator's input z ~ N(0, I)")
    k: int = Field(1, ge=1, le=100, description="discriminator steps per generator step")
    loss: Literal["minimax", "non-saturating"] = Field(
        "non-saturating", description="the generator's loss: minimax log(1 - D(G(z))) | non-saturating -log D(G(z))")
    feature_matching: bool = Field(False, description="the generator matches the mean of D's last hidden layer "
                                   "on real images instead (Salimans et al. 3.1)")
    minibatch_kernels: int = Field(0, ge=0, le=1024, description="minibatch discrimination's B kernels (Salimans "
                                   "et al. 3.2); 0 = off")
    minibatch_dim: int = Field(5, ge=1, le=256, description="minibatch discrimination's kernel size C")
    historical_averaging: float = Field(0.0, ge=0, description="weight of || theta - mean of past theta ||^2 in both "
                                        "players' losses (Salimans et al. 3.3); 0 = off")
    virtual_batchnorm: int = Field(0, ge=0, le=4096, description="the generator's batch norm made virtual (Salimans "
                                   "et al. 3.4): each sample normalised with a fixed reference batch of this many "
                                   "codes and itself, independent of its batch (more generator work); 0: batch norm")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="one-sided: D's target for real images is 1 - this "
                                   "(Salimans et al. 3.4: 0.1)")
    optim_d: OptimConfig = Field(ADAM, description="the discriminator's optimiser")
    optim_g: OptimConfig = Field(ADAM, description="the generator's optimiser")
    fd_classifier: str | None = Field(None, description="a classifier run folder of the same dataset: its features "
                                      "give the classifier-FD at each evaluation (None: not measured)")
    fd_n: int = Field(10_000, ge=2, description="samples (and test images) of the classifier-FD")
    diverge_steps: int = Field(2000, ge=0, description="stop when D wins outright (D(x) > 0.99, D(G(z)) < 0.01 on "
                               "average) this many steps in a row; 0 = never")


@register
class GAN(ImageRecipe):
    name = "gan"
    family = "generative"
    measures = "classifier-FD of samples against the test set (the real-versus-real value beside it)"
    network = "generator"
    Config = GANConfig
    about = ("A generative adversarial network (Goodfellow et al. 2014, \"Generative adversarial nets\") learns to "
             "generate images through a game: a generator G turns noise z ~ N(0, I) into images, and a "
             "discriminator D learns to tell them from real training images. D descends -[log D(x) + log(1 - "
             "D(G(z)))] and, every k-th step, G descends log(1 - D(G(z))) (loss=minimax) or, by default, "
             "-log D(G(z)) (the non-saturating loss the paper advises, which keeps a gradient while D rejects the "
             "samples); the players are a DCGAN pair (Radford, Metz & Chintala 2016, \"Unsupervised representation "
             "learning with deep convolutional generative adversarial networks\") or the paper's MLPs, and the "
             "techniques of Salimans et al. 2016, \"Improved techniques for training GANs\", are options. Given a "
             "classifier run of the same dataset (fd_classifier), sample quality is measured as the Fréchet "
             "distance between that classifier's features of samples and of test images (classifier-FD, beside the "
             "real-versus-real value; not FID, which needs an Inception network). The samples and their progress "
             "over the epochs show what G has learned, and whether it covers every kind of image or only a few "
             "(mode collapse); in the game figure, look for D's outputs on real and generated images staying "
             "apart but away from 1 and 0, and for the generator's gradient norm, which collapses under the "
             "minimax loss once D wins.")
    captions = {
        "samples": "64 samples G(z) from the same fixed noise z at every redraw: look for realistic images, and for "
                   "variety (many near copies of one image is mode collapse).",
        "progress": "The same ten z after each epoch, one row per epoch: how the generator's images grow from "
                    "noise into shapes, and whether they settle or keep changing as the game goes on.",
        "interpolation": "Samples along straight lines between four pairs of z, one pair per row: a smooth change "
                         "from one image to the other means G has learned a continuous space rather than a lookup "
                         "of training images.",
        "game": "The game against the training step: both players' losses, D's mean output on real images D(x) "
                "and on generated ones D(G(z)), and the generator's gradient norm (log scale); D(x) near 1 with "
                "D(G(z)) near 0 means D is winning, and a gradient norm falling towards 0 is the minimax loss "
                "saturating.",
    }
    commands = ("sample",)

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        if name == "full":  # DCGAN at the paper's width, 25 epochs on 32x32 or 28x28 images
            return {"arch": "dcgan", "width": 64, "train": {"epochs": 25, "batch_size": 128}}
        if dataset in ("mnist", "fashion-mnist"):
            return {"arch": "dcgan", "width": 32, "train": {"epochs": 5, "batch_size": 64}}
        if dataset == "cifar10":
            return {"arch": "dcgan", "width": 32, "train": {"epochs": 10, "batch_size": 64}}
        return {"arch": "dcgan", "width": 16, "fd_n": 1000, "train": {"epochs": 100, "batch_size": 64}}

    # -- the networks ---------------------------------------------------------------------------------
    def outputs(self) -> int:
        """The discriminator's outputs: one real/fake logit (the semi-supervised one: K class logits)."""
        return 1

    def build_players(self):
        cfg, shape = self.cfg, self.in_shape
        if cfg.arch == "dcgan" and (shape[1] % 4 or shape[2] % 4):
            raise UserError(f"arch=dcgan needs image sides divisible by 4; {cfg.dataset} images are "
                            f"{shape[1]}x{shape[2]} (use --set arch=mlp)")
        if cfg.arch == "dcgan":
            g = DCGANGenerator(cfg.latent, shape, cfg.width, cfg.virtual_batchnorm)
            d = DCGANDiscriminator(shape, self.outputs(), cfg.width, cfg.minibatch_kernels, cfg.minibatch_dim)
        else:
            g = MLPGenerator(cfg.latent, shape, cfg.hidden_g)
            d = MLPDiscriminator(shape, self.outputs(), cfg.hidden_d, dropout=cfg.dropout,
                                 minibatch_kernels=cfg.minibatch_kernels, kernel_dim=cfg.minibatch_dim)
        return g, d

    def __init__(self, cfg: GANConfig, ctx):
        super().__init__(cfg, ctx)
        x, y, test_x, test_y = self.load_images()
        x, y = self.select_training(x, y)
        self.G, self.D = (m.to(ctx.device) for m in self.build_players())
        self.modules = {"generator": self.G, "discriminator": self.D}
        self.train_G, self.train_D = ctx.distribute(self.G), ctx.distribute(self.D)
        self.optimizers = {"d": optim.build_optimizer(self.D.parameters(), cfg.optim_d)}
        if self.trains_generator:
            self.optimizers["g"] = optim.build_optimizer(self.G.parameters(), cfg.optim_g)
        self.history = ({"d": HistoricalAverage(self.D), "g": HistoricalAverage(self.G)}
                        if cfg.historical_averaging else {})
        self.make_loaders(x, y, test_x if test_x is not None else x, test_y if test_y is not None else y)
        gen = torch.Generator().manual_seed(cfg.seed)
        self.fixed_z = torch.randn(64, cfg.latent, generator=gen).to(ctx.device)   # the same samples all along
        self.progress: list[tuple[int, torch.Tensor]] = []                         # (epoch, fixed-noise samples)
        self.won = WinWatch(cfg)                 # D winning outright for diverge_steps steps stops the run
        self.fd = None                           # the classifier-FD's classifier and real features
        if cfg.fd_classifier:                    # a bad path fails now, not after training
            self.fd = ClassifierFD(cfg.fd_classifier, str(ctx.device), cfg.dataset, self.in_shape,
                                   self.test_x[:cfg.fd_n], self.train_x[:cfg.fd_n])

    @property
    def trains_generator(self) -> bool:
        return True

    def select_training(self, x, y):
        return x, y

    # -- one step of the game -------------------------------------------------------------------------
    def z(self, m: int) -> torch.Tensor:
        return torch.randn(m, self.cfg.latent, device=self.ctx.device)

    def penalty(self, player: str) -> torch.Tensor | float:
        return self.cfg.historical_averaging * self.history[player].penalty() if self.history else 0.0

    def discriminator_step(self, batch, step: int) -> dict:
        x, _ = batch
        cfg, opt = self.cfg, self.optimizers["d"]
        lr = optim.set_lr(opt, optim.lr_at(step, self.total_steps, cfg.optim_d))
        self.train_D.train()
        self.train_G.train()
        with torch.no_grad():
            fake = self.train_G(self.z(len(x)))
        with self.ctx.autocast():
            real_logits = self.train_D(x).float().squeeze(1)
            fake_logits = self.train_D(fake).float().squeeze(1)
            loss = discriminator_loss(real_logits, fake_logits, 1 - cfg.label_smoothing)
        optim.step(opt, loss + self.penalty("d"), cfg.train.grad_clip)
        if self.history:
            self.history["d"].update()
        d_real, d_fake = torch.sigmoid(real_logits).mean().detach(), torch.sigmoid(fake_logits).mean().detach()
        self.won.update(step, d_real, d_fake)
        return {"loss_d": loss.detach(), "d_real": d_real, "d_fake": d_fake, "lr": lr}

    def generator_step(self, x: torch.Tensor, step: int) -> dict:
        cfg, opt = self.cfg, self.optimizers["g"]
        lr = optim.set_lr(opt, optim.lr_at(step, self.total_steps, cfg.optim_g))
        with self.ctx.autocast():
            fake = self.train_G(self.z(len(x)))
            if cfg.feature_matching:   # match the mean of D's last hidden layer on a real batch
                with torch.no_grad():
                    real_f = self.D.features(x).float()
                loss = feature_matching_loss(real_f, self.D.features(fake).float())
            else:
                loss = generator_loss(self.train_D(fake).float().squeeze(1), cfg.loss)
        norm = optim.step(opt, loss + self.penalty("g"), cfg.train.grad_clip, measure=True)
        if self.history:
            self.history["g"].update()
        return {"loss_g": loss.detach(), "g_grad_norm": norm.detach(), "lr_g": lr}

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        out = self.discriminator_step(batch, step)
        if self.trains_generator and (step + 1) % self.cfg.k == 0:
            out.update(self.generator_step(batch[0], step))
        return out

    def trouble_since(self) -> int | None:
        return self.won.since

    # -- what it has learned --------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, z: torch.Tensor | None = None) -> torch.Tensor:
        """n images G(z), z ~ N(0, I) (or the given z), generator in eval mode, pixels in [0, 1]."""
        self.G.eval()
        z = self.z(n) if z is None else z
        return torch.cat([self.G(z[i:i + 1000]).float() for i in range(0, len(z), 1000)]).clamp_(0, 1)

    @torch.no_grad()
    def interpolate(self, seed_a: int, seed_b: int, steps: int = 8) -> torch.Tensor:
        """G along the line between two codes (DCGAN's walk in latent space): z_a, z_b ~ N(0, I) drawn from the
        seeds, then

            z_t = (1 - t) z_a + t z_b,   t = 0, 1/(steps-1), ..., 1

        ``steps`` images in [0, 1]; smooth changes mean the generator has learned a space, not memorised images."""
        codes = []
        for seed in (seed_a, seed_b):
            gen = torch.Generator().manual_seed(seed)
            codes.append(torch.randn(1, self.cfg.latent, generator=gen).to(self.ctx.device))
        t = torch.linspace(0, 1, steps, device=self.ctx.device)[:, None]
        return self.sample(steps, (1 - t) * codes[0] + t * codes[1])

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        from ..data import unit

        self.D.eval()
        x = unit(self.test_x[:2000].to(self.ctx.device))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            fake = self.sample(len(x))
        out = {"test/d_real": float(torch.sigmoid(self.real_fake(self.D(x))).mean()),
               "test/d_fake": float(torch.sigmoid(self.real_fake(self.D(fake))).mean())}
        if self.fd is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.cfg.seed)
                fake = self.sample(self.cfg.fd_n)
            out.update({f"test/{k}": v for k, v in self.fd.scores(fake).items()})
        return out

    def real_fake(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float().squeeze(1)

    def end_epoch(self, epoch: int) -> str | None:
        if self.trains_generator:                                      # the fixed noise's samples, for the progress figure
            self.progress.append((epoch, self.sample(PROGRESS_SAMPLES, self.fixed_z[:PROGRESS_SAMPLES]).cpu()))
        return None

    def extra_state(self) -> dict:
        return {"progress": self.progress, "won_since": self.won.since,
                "history": {k: h.state() for k, h in self.history.items()}}

    def load_extra_state(self, state: dict) -> None:
        self.progress = [(int(e), t) for e, t in state.get("progress", [])]
        self.won.since = state.get("won_since")
        for k, h in self.history.items():
            h.load(state["history"][k])

    # -- the network paradigms.load gives: the generator, z -> images ---------------------------------
    def network_card(self) -> dict:
        cfg = self.cfg
        return {"kind": "generator", "arch": cfg.arch, "latent": cfg.latent, "out_shape": list(self.in_shape),
                "width": cfg.width, "hidden_g": cfg.hidden_g, "virtual_bn": cfg.virtual_batchnorm, "classes": None}

    @classmethod
    def build_network(cls, card: dict):
        shape = tuple(card["out_shape"])
        if card["arch"] == "dcgan":
            return DCGANGenerator(card["latent"], shape, card["width"], card.get("virtual_bn", 0))
        return MLPGenerator(card["latent"], shape, card["hidden_g"])

    # -- figures --------------------------------------------------------------------------------------
    def figures(self):
        yield from report_figures(self)
