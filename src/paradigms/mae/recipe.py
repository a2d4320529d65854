"""The ``mae`` recipe: pre-train a ViT by reconstructing the patches hidden from it (the model: :mod:`.mae`).

    paradigms run mae --dataset cifar10 [--set mask_ratio=0.75] [--set norm_pix_loss=true]
    paradigms run finetune --from runs/mae-cifar10 --dataset cifar10        # its encoder, on labels

Every step hides a fresh random ``mask_ratio`` of each image's patches; the encoder (``model``, a ViT) runs on the
rest, the decoder predicts every patch, and the loss is the mean squared error on the hidden ones (in the encoder's
standardised pixels; per-patch normalised with ``norm_pix_loss``). Labels are never read. Evaluation: that loss
on ``eval_n`` test images under masks fixed by the seed (the same at every evaluation), and at the end of training
at each of ``ratios``. The encoder is what ``finetune --from`` and ``paradigms.load`` take: a ViT whose output is
its pooled feature.
"""

from __future__ import annotations

import torch
from pydantic import Field, field_validator

from .. import optim
from ..data.subset import ImageRecipeConfig
from ..nets import NetConfig, build_encoder
from ..optim import OptimConfig
from ..recipes import EncoderRecipe, register
from .mae import MAE, masked_image, masked_patch_loss, random_masking


class MAEConfig(ImageRecipeConfig):
    recipe: str = "mae"
    dataset: str = "digits"
    model: NetConfig = Field(NetConfig(name="vit", patch=2, dim=64, depth=4, heads=4),
                             description="the encoder, a ViT (model.name=vit); finetune --from builds the same")
    mask_ratio: float = Field(0.75, gt=0, lt=1, description="the share of each image's patches hidden (the paper: "
                              "0.75)")
    norm_pix_loss: bool = Field(False, description="the target is each patch standardised by its own mean and "
                                "variance (the paper's better representation); the figures scale predictions back "
                                "with the true patch's statistics")
    decoder_dim: int = Field(128, ge=4, le=4096, description="the decoder's width (a multiple of 4 and of its heads)")
    decoder_depth: int = Field(2, ge=1, le=32, description="the decoder's transformer blocks (the paper: 8, light)")
    decoder_heads: int = Field(4, ge=1, le=64, description="the decoder's attention heads")
    eval_n: int | None = Field(2000, ge=1, description="test images whose masked-patch loss is measured; None: all")
    ratios: list[float] = Field([0.25, 0.5, 0.75, 0.9], min_length=1, description="mask ratios of the figure and "
                                "of the end-of-training evaluation (test/masked_loss_R, R in percent)")
    optim: OptimConfig = OptimConfig(name="adamw", lr=1.5e-3, betas=(0.9, 0.95), weight_decay=0.05,
                                     schedule="warmup-cosine", warmup=0.1)

    @field_validator("model")
    @classmethod
    def _vit(cls, v: NetConfig) -> NetConfig:
        if v.name != "vit":
            raise ValueError(f"the MAE encoder is a Vision Transformer: set model.name=vit (not {v.name})")
        return v

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, v: list[float]) -> list[float]:
        bad = [r for r in v if not 0 < r < 1]
        if bad:
            raise ValueError(f"each mask ratio must be in (0, 1); {bad} is not")
        return v


encoder_net = build_encoder
"""The MAE's encoder: the ViT that ``cfg`` names, its head the identity (it outputs its pooled feature), so its state
dict is a supervised ViT's without the head."""


def build_mae(cfg: MAEConfig, in_shape, mean=None, std=None) -> MAE:
    """The MAE a config describes: its ViT encoder (``encoder_net``) and its decoder."""
    return MAE(encoder_net(cfg.model, in_shape, mean, std), cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads)


@register
class MaskedAutoencoder(EncoderRecipe):
    name = "mae"
    family = "self-supervised"
    measures = "test loss on the hidden patches (fixed masks); the encoder fine-tuned through finetune --from"
    encoder = "encoder"
    network = "encoder"
    Config = MAEConfig
    about = ("A masked autoencoder (He, Chen, Xie, Li, Dollár & Girshick 2021, \"Masked autoencoders are scalable "
             "vision learners\") pre-trains a Vision Transformer without labels: every step hides a random "
             "mask_ratio (75% by default) of each image's patches, the encoder sees only the visible ones, a light "
             "decoder puts a learned mask token in place of each hidden patch and predicts every patch's pixels, "
             "and the loss is the mean squared error on the hidden patches alone (with norm_pix_loss, each target "
             "patch standardised by its own mean and variance first). It is measured by that loss on test images "
             "under masks fixed by the seed, and at the end of training at each of several mask ratios; its real "
             "test is downstream, fine-tuning its encoder on labels with finetune --from. The figures show masked "
             "test images, their reconstructions and the originals, then the same images at several mask ratios: "
             "look at how much of an image the network infers from the few patches it sees, and how the reconstruction "
             "degrades as more is hidden. The predicted patches are blurry, since the squared error rewards the "
             "average of the plausible ones; the paper's point is that the encoder learns useful features anyway.")
    captions = {
        "reconstructions": "Three rows of test images: the input with the hidden patches in grey, the decoder's "
                           "prediction with the visible patches pasted back, and the original.",
        "mask_ratios": "The same test images at each mask ratio in ratios (the masked input, then its "
                       "reconstruction), the original last: look for the ratio at which the reconstructions stop "
                       "being recognisable.",
    }
    commands = ()

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        if name == "full":  # ViT-Tiny on 2 x 2 patches with the paper's long schedule (IcarusWizard/MAE on CIFAR-10)
            if dataset == "digits":
                return {"train": {"epochs": 400, "batch_size": 256}}
            return {"model": {"patch": 2, "dim": 192, "depth": 12, "heads": 3}, "decoder_dim": 192,
                    "decoder_depth": 4, "decoder_heads": 3, "optim": {"lr": 1.5e-4 * 4096 / 256, "warmup": 0.1},
                    "train": {"epochs": 2000, "batch_size": 4096, "eval_every": 50}, "eval_n": None}
        if dataset in ("mnist", "fashion-mnist"):  # 28 x 28: 49 patches of 4 x 4, 12 seen
            return {"model": {"patch": 4, "dim": 128, "depth": 4, "heads": 4}, "decoder_dim": 128,
                    "train": {"epochs": 5, "batch_size": 256}}
        if dataset == "cifar10":  # 32 x 32: 64 patches of 4 x 4, 16 seen
            return {"model": {"patch": 4, "dim": 128, "depth": 4, "heads": 4}, "decoder_dim": 128,
                    "train": {"epochs": 10, "batch_size": 256}}
        return {"train": {"epochs": 50, "batch_size": 128}}

    def __init__(self, cfg: MAEConfig, ctx):
        super().__init__(cfg, ctx)
        x, y, test_x, test_y = self.load_images()
        data = self.data
        self.mae = build_mae(cfg, self.in_shape, data.mean, data.std).to(ctx.device)
        self.enc = self.mae.encoder
        self.modules = {"encoder": self.enc, "decoder": self.mae.decoder}
        self.train_mae = ctx.distribute(self.mae)
        self.optimizers = {"opt": optim.build_optimizer(self.mae.parameters(), cfg.optim)}
        self.make_loaders(x, y, test_x, test_y)
        self.trained_to: int | None = None  # the last training step run by this process (None: evaluating a run)

    def masks(self, n: int, ratio: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return random_masking(n, self.mae.num_patches, ratio, generator, self.ctx.device)

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        x, _ = batch                                                          # labels unused
        cfg, ctx = self.cfg, self.ctx
        self.trained_to = step + 1
        # the masks of a step depend on (seed, step, rank) only: a resumed run draws the same ones
        g = torch.Generator().manual_seed((cfg.seed * 1_000_003 + step) * ctx.world + ctx.rank)
        keep, mask = self.masks(len(x), cfg.mask_ratio, g)                   # (N, V) visible, (N, L) hidden
        opt = self.optimizers["opt"]
        lr = optim.set_lr(opt, optim.lr_at(step, self.total_steps, cfg.optim))
        self.train_mae.train()
        with ctx.autocast():
            pred = self.train_mae(x, keep)                                    # (N, L, p*p*C) every patch
        loss = masked_patch_loss(pred, self.mae.target(x), mask, cfg.norm_pix_loss)   # on the hidden ones only
        optim.step(opt, loss, cfg.train.grad_clip)
        return {"loss": loss.detach(), "lr": lr}

    @torch.no_grad()
    def masked_loss(self, ratio: float) -> float:
        """The objective on the first ``eval_n`` evaluation images, each hiding ``ratio`` of its patches under masks
        drawn from the seed (the same images and masks at every evaluation)."""
        self.mae.eval()
        g = torch.Generator().manual_seed(self.cfg.seed + 7919)
        total, count, limit = 0.0, 0, self.cfg.eval_n or float("inf")
        for x, _ in self.test_loader.epoch(0):
            x = x[: int(min(len(x), limit - count))]
            keep, mask = self.masks(len(x), ratio, g)
            with self.ctx.autocast():
                pred = self.mae(x, keep)
            total += float(masked_patch_loss(pred, self.mae.target(x), mask, self.cfg.norm_pix_loss)) * len(x)
            count += len(x)
            if count >= limit:
                break
        return total / max(count, 1)

    def evaluate(self) -> dict[str, float]:
        cfg = self.cfg
        out = {"test/masked_loss": self.masked_loss(cfg.mask_ratio)}
        if self.trained_to is None or self.trained_to >= self.total_steps:   # the sweep: at the end, and on eval
            out.update({f"test/masked_loss_{round(r * 100)}": self.masked_loss(r) for r in cfg.ratios})
        return out

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, ratio: float, generator: torch.Generator):
        """(masked input, reconstruction with the visible patches pasted back), images in [0, 1]."""
        masked, pasted, _, _ = self.reconstruction(x, ratio, generator)
        return masked, pasted

    @torch.no_grad()
    def reconstruction(self, x: torch.Tensor, ratio: float, generator: torch.Generator):
        """Images x (N, C, H, W) in [0, 1], each hiding ``ratio`` of its patches under masks drawn from ``generator``:
        (masked input, reconstruction with the visible patches pasted back, mask (N, L) True where hidden, the
        objective on the hidden patches alone, L = (1/|M|) sum_{i in M} ||x_i - x^_i||^2 / (p^2 C), a float in the
        encoder's standardised pixels, per-patch normalised with ``norm_pix_loss``: what test/masked_loss averages)."""
        self.mae.eval()
        keep, mask = self.masks(len(x), ratio, generator)                    # (N, V) visible, (N, L) hidden
        pred = self.mae(x, keep)                                              # (N, L, p*p*C) every patch
        loss = masked_patch_loss(pred, self.mae.target(x), mask, self.cfg.norm_pix_loss)
        return (masked_image(x, mask, self.mae.patch), self.mae.pixels(pred, x, keep, self.cfg.norm_pix_loss), mask,
                float(loss))

    def figures(self):
        from ..engine.report import grid_figure

        cfg = self.cfg
        x, _ = next(iter(self.test_loader.epoch(0)))
        shown = x[:8]
        masked, pasted = self.reconstruct(shown, cfg.mask_ratio, torch.Generator().manual_seed(cfg.seed))
        yield "reconstructions", grid_figure(
            torch.cat([masked, pasted, shown]),
            f"test images, {cfg.mask_ratio:.0%} of patches hidden (grey); the reconstruction with the visible "
            f"patches pasted back; the original", len(shown))
        yield "mask_ratios", ratio_figure(self, x[:5])


def ratio_figure(recipe: MaskedAutoencoder, x: torch.Tensor):
    """One row per test image: for each mask ratio the masked input and its reconstruction, then the original."""
    import matplotlib.pyplot as plt

    ratios = recipe.cfg.ratios
    cells = []
    for r in ratios:
        masked, pasted = recipe.reconstruct(x, r, torch.Generator().manual_seed(recipe.cfg.seed))
        cells += [(f"{r:.0%} hidden", masked), ("reconstruction", pasted)]
    cells.append(("original", x))
    n, k = len(x), len(cells)
    fig, axes = plt.subplots(n, k, figsize=(1.1 * k, 1.15 * n + 0.4), squeeze=False)
    for j, (title, images) in enumerate(cells):
        for i in range(n):
            img = images[i].float().cpu().permute(1, 2, 0).numpy()
            ax = axes[i, j]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=7)
    fig.suptitle("the same test images at several mask ratios (the run trained at "
                 f"{recipe.cfg.mask_ratio:.0%})", fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["MAEConfig", "MaskedAutoencoder", "build_mae", "encoder_net", "ratio_figure"]
