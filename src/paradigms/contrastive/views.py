"""What SimCLR and MoCo share: two augmented views of every image, an encoder with a projection head, and the one
evaluation protocol for encoders.

Each training image x gives two views t(x) and t'(x), drawn independently from the ``views`` policy
(:mod:`paradigms.augment`: random resized crop, flip, colour jitter, greyscale; labels are never read). The encoder f
is a :mod:`paradigms.nets` network with its head removed (:func:`paradigms.nets.build_encoder`), so ``finetune --from``
and ``paradigms.load`` take it like any classifier's backbone; the projection head g (an MLP, SimCLR section 4.2) maps
its feature h = f(x) to the z the loss compares, and is thrown away after pre-training.

Evaluation (:mod:`paradigms.evaluate`, the same for every encoder): kNN accuracy of the test set against the
training features (k = 200, cosine, votes weighted by exp(cos / 0.1)) at every evaluation; the offline linear probe at
the end of training; figures: two views of eight test images and the t-SNE of the test features.
"""

from __future__ import annotations

import textwrap

import torch
from pydantic import Field, field_validator
from torch import nn

from .. import augment, optim
from ..data.subset import ImageRecipeConfig
from ..errors import UserError
from ..evaluate import embedding_figure, evaluate_encoder, extract
from ..nets import NetConfig, build_encoder, to_device
from ..recipes import EncoderRecipe


CIFAR_VIEWS = [{"resized_crop": {"min_area": 0.08}}, "flip", {"jitter": {"p": 0.8, "strength": 0.5}},
               {"greyscale": {"p": 0.2}}]
"""SimCLR's augmentation on CIFAR-10 (appendix B.9: no blur at 32 x 32), with lightly's benchmark's strengths."""
GREY_VIEWS = [{"resized_crop": {"min_area": 0.2}}, "flip", {"jitter": {"p": 0.8, "strength": 0.5}}]
"""Fashion-MNIST and other grey images: crop, flip, brightness and contrast."""



class ViewsConfig(ImageRecipeConfig):
    """A two-view contrastive recipe's settings (SimCLR's and MoCo's)."""

    dataset: str = "digits"
    model: NetConfig = Field(NetConfig(name="resnet", width=16), description="the encoder f (its head is dropped: "
                             "the projection head g follows it)")
    views: list[str | dict[str, dict | None]] = Field(
        [{"resized_crop": {"min_area": 0.3}}, {"jitter": {"p": 0.8}}],
        description="the augmentation each view draws independently (paradigms.augment names; SimCLR on CIFAR-10: "
                    "resized_crop from 8% of the area, flip, jitter p 0.8 strength 0.5, greyscale p 0.2)")
    proj_hidden: int | None = Field(None, ge=1, description="the projection head's hidden width (None: the encoder's "
                                    "feature width)")
    proj_dim: int = Field(128, ge=1, description="z's width, what the loss compares (SimCLR, MoCo v2: 128)")
    knn_k: int = Field(200, ge=1, description="kNN evaluation: the neighbours that vote (lightly's benchmark: 200)")
    knn_temperature: float = Field(0.1, gt=0, description="kNN evaluation: votes weighted by exp(cos / t)")
    probe: bool = Field(True, description="fit the offline linear probe on frozen features at the end of training")

    @field_validator("views")
    @classmethod
    def _views(cls, v):
        if not v:
            raise ValueError("two views of one image need an augmentation to differ: give at least one transform")
        return v


class TwoViews(EncoderRecipe):
    """Base of SimCLR and MoCo: data, views, the encoder f and head g, evaluation and figures. A subclass builds its
    modules and optimiser (``build``) and writes ``train_step``."""

    family = "contrastive"
    encoder = "encoder"
    network = "encoder"
    head_batchnorm = True
    captions = {   # SimCLR's and MoCo's figures (:meth:`figures`)
        "views": "Eight test images (top row) and two views of each drawn independently from the views policy "
                 "(the rows below): the network is taught that the two views in a column are the same image, so "
                 "what the policy changes is what its features learn to ignore.",
        "embedding": "t-SNE of the encoder's features of up to 1,000 test images, coloured by class: training never "
                     "read a label, so classes that form their own groups were found from the images alone.",
    }

    def __init__(self, cfg: ViewsConfig, ctx):
        super().__init__(cfg, ctx)
        x, y, test_x, test_y = self.load_images()
        data = self.data
        self.views = augment.build(cfg.views, cfg.dataset, data.channels, mean=data.mean)
        if self.views.mixes:
            mixes = "/".join(m.name for m in self.views.mixes)
            raise UserError(f"views: {mixes} mixes labels, which {self.name} never reads; drop it from views")
        self.enc = self.make_encoder()
        self.head = projection_head(self.enc.embed_dim, cfg.proj_hidden or self.enc.embed_dim, cfg.proj_dim,
                                    batchnorm=self.head_batchnorm).to(ctx.device)
        self.n_train = len(x) if x is not None else data.num_train
        self.build()
        self.make_loaders(x, y, test_x, test_y)
        self.feature_loader = self.whole_loader(x, y, data.train_stream)    # the evaluation reads every training image
        self.trained_to: int | None = None  # the last training step of this process (None: evaluating a run)

    def make_encoder(self) -> nn.Module:
        data = self.data
        return to_device(build_encoder(self.cfg.model, self.in_shape, data.mean, data.std), self.ctx.device)

    def build(self) -> None:
        raise NotImplementedError

    def two_views(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """t(x), t'(x): the policy drawn twice (from the engine's seeded, checkpointed generator)."""
        return self.views(x), self.views(x)

    def begin_step(self, batch, step: int):
        """What every step starts with: ``(x, t(x), t'(x), optimiser, learning rate)``, the rate set for ``step``."""
        x, _ = batch                                                          # (N, C, H, W); labels unused
        self.trained_to = step + 1
        v1, v2 = self.two_views(x)
        opt = self.optimizers["opt"]
        return x, v1, v2, opt, optim.set_lr(opt, optim.lr_at(step, self.total_steps, self.cfg.optim))

    # -- evaluation ------------------------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        if not self.data.labelled:   # a folder of unlabelled images: nothing to classify
            return {}
        cfg = self.cfg
        end = self.trained_to is None or self.trained_to >= self.total_steps
        scores, _, _ = evaluate_encoder(
            self.enc, self.feature_loader.epoch(0), self.test_loader.epoch(0), len(self.classes), self.ctx,
            k=cfg.knn_k, temperature=cfg.knn_temperature, probe=cfg.probe and end)
        split = "val" if cfg.val_size else "test"
        return {f"{split}/{k}": v for k, v in scores.items()}

    def figures(self):
        from ..engine.report import grid_figure

        with torch.random.fork_rng(devices=[]):   # drawing leaves the training stream alone
            torch.manual_seed(self.cfg.seed)
            x, _ = next(iter(self.test_loader.epoch(0)))
            x = x[:8]
            v1, v2 = self.two_views(x)
        yield "views", grid_figure(torch.cat([x, v1, v2]), textwrap.fill(
            f"test images (top) and two views of each, drawn independently: {self.views!r}", 90), len(x))
        if self.data.labelled:
            f, y = extract(self.enc, self.test_loader.epoch(0), self.ctx)
            yield "embedding", embedding_figure(
                f, y, self.classes, f"{self.name} encoder: t-SNE of {min(len(f), 1000)} test features (never trained "
                f"on labels)", seed=self.cfg.seed)


def views_preset(name: str, dataset: str, cifar_epochs: int = 8) -> dict:
    """The quick and full presets SimCLR and MoCo share (lightly's CIFAR-10 benchmark for full); ``cifar_epochs``:
    the quick CIFAR-10 run's epochs (about 30 minutes on 2 CPU cores: MoCo's step is the cheaper)."""
    if name == "full":  # lightly's benchmark: ResNet-18, 200 epochs, batch 512, lr 0.06 x batch / 256
        return {"model": {"name": "resnet18", "width": 64}, "views": CIFAR_VIEWS, "proj_hidden": 512,
                "train": {"epochs": 200, "batch_size": 512, "eval_every": 10}}
    if dataset == "cifar10":
        return {"model": {"name": "resnet", "width": 16}, "views": CIFAR_VIEWS,
                "train": {"epochs": cifar_epochs, "batch_size": 512, "eval_every": 4}}
    if dataset in ("mnist", "fashion-mnist"):
        views = GREY_VIEWS if dataset == "fashion-mnist" else [{"resized_crop": {"min_area": 0.2}}, "jitter"]
        return {"model": {"name": "resnet", "width": 16}, "views": views,
                "train": {"epochs": 5, "batch_size": 512, "eval_every": 5}}
    return {"train": {"epochs": 30, "batch_size": 128, "eval_every": 10}}


def projection_head(dim: int, hidden: int, out: int, batchnorm: bool = True) -> nn.Sequential:
    """g: h -> z, Linear-BN-ReLU-Linear (SimCLR 4.2 and lightly's head); without BN, MoCo v2's MLP (its batch
    statistics would be shared by a query and its key's neighbours)."""
    if not batchnorm:
        return nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out))
    return nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                         nn.Linear(hidden, out))


__all__ = ["CIFAR_VIEWS", "GREY_VIEWS", "TwoViews", "ViewsConfig", "projection_head", "views_preset"]
