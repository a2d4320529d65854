"""The ``autoencoder`` recipe: learn to reconstruct images through a small code.

    paradigms run autoencoder --dataset mnist --set code=8 [--set denoise=0.3]

An encoder E (a :mod:`paradigms.nets` network whose head outputs the code) and a decoder D
(:class:`.models.Decoder`) minimise the squared reconstruction error per image,

    L = || sigmoid(D(E(x~))) - x ||^2,     x~ = x (plain) or x + N(0, denoise^2) (denoising: Vincent et al. 2008)

so a denoising run corrupts the input and is scored against the clean image. Evaluation: the test
reconstruction error per pixel beside PCA's (scikit-learn) at the same code size. ``finetune --from`` reuses
the encoder like any classifier's backbone.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from .. import optim
from ..data.subset import ImageRecipeConfig
from ..nets import NetConfig, build_net, card, is_convolutional
from ..optim import OptimConfig
from ..recipes import ImageRecipe, register
from .models import Decoder


class AutoencoderConfig(ImageRecipeConfig):
    recipe: str = "autoencoder"
    dataset: str = "digits"
    model: NetConfig = Field(NetConfig(name="mlp", hidden=[256, 128]), description="the encoder (its head outputs "
                             "the code)")
    code: int = Field(8, ge=1, le=4096, description="the code's size")
    decoder: Literal["auto", "mlp", "conv"] = Field("auto", description="auto: conv for a convolutional encoder on "
                                                    "images whose sides divide by 4, else mlp (hidden reversed)")
    denoise: float = Field(0.0, ge=0, le=10, description="denoising: sigma of the Gaussian noise added to the input "
                           "(the loss compares with the clean image); 0 = a plain autoencoder")
    probe_n: int = Field(5000, ge=0, description="feature learning: a linear probe (logistic regression) on the codes of "
                         "this many training images, against one on raw pixels and on PCA codes, at the end of "
                         "training; 0 = none")
    optim: OptimConfig = OptimConfig(name="adam", lr=2e-3, weight_decay=0.0)


def reconstruction_error(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """|| recon - x ||^2 per image, (N, C, H, W) -> (N,)."""
    return (recon - x).pow(2).flatten(1).sum(1)


@register
class Autoencoder(ImageRecipe):
    name = "autoencoder"
    family = "autoencoder"
    measures = "test reconstruction error per pixel against PCA at the same code size"
    encoder = "encoder"
    network = "encoder"
    Config = AutoencoderConfig
    about = ("An autoencoder learns without labels to squeeze each image through a small code and back: an encoder "
             "E maps x to `code` numbers, a decoder D maps them back to pixels, and both minimise the squared "
             "reconstruction error ||sigmoid(D(E(x))) - x||^2 (Hinton & Salakhutdinov 2006, \"Reducing the "
             "dimensionality of data with neural networks\", set deep autoencoders against PCA). With denoise > 0 "
             "the encoder reads the image plus Gaussian noise and the output is still compared with the clean image, "
             "the denoising autoencoder of Vincent, Larochelle, Bengio & Manzagol 2008, \"Extracting and composing "
             "robust features with denoising autoencoders\". The run measures the lecture's three uses: "
             "dimensionality reduction (the test error per pixel beside PCA's with as many components), feature "
             "learning (linear probes on the code against raw pixels and PCA codes, at the end of training) and, "
             "trained on one class, anomaly detection (paradigms anomaly: what it reconstructs badly is anomalous). "
             "The reconstructions show what the code keeps and what it blurs away; the scatter of codes shows "
             "whether classes the network was never told about still fall apart.")
    captions = {
        "reconstructions": "Test images, each followed by its reconstruction (with denoise: the image, the noisy "
                           "input the encoder read, then the reconstruction): look for what survives the code, the "
                           "overall shape, and what is lost, the fine detail.",
        "codes": "The codes of a batch of test images, coloured by class (never used in training): the code itself "
                 "when it has two numbers, else its first two principal components; separate clusters mean the "
                 "code keeps what tells the classes apart.",
    }
    commands = ("anomaly",)

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        if dataset in ("mnist", "fashion-mnist"):
            return {"train": {"epochs": 5, "batch_size": 128}}
        if dataset == "cifar10":
            return {"model": {"name": "lenet5", "width": 4}, "code": 64, "train": {"epochs": 10, "batch_size": 128}}
        return {"train": {"epochs": 30, "batch_size": 64}}

    def __init__(self, cfg: AutoencoderConfig, ctx):
        super().__init__(cfg, ctx)
        x, y, test_x, test_y = self.load_images()
        data = self.data
        self.enc = build_net(cfg.model, self.in_shape, cfg.code, data.mean, data.std).to(ctx.device)
        c, h, w = self.in_shape
        kind = cfg.decoder
        if kind == "auto":
            kind = "conv" if is_convolutional(self.enc) and h % 4 == 0 and w % 4 == 0 else "mlp"
        self.dec = Decoder(cfg.code, self.in_shape, kind, cfg.model.hidden, cfg.model.activation).to(ctx.device)
        self.modules = {"encoder": self.enc, "decoder": self.dec}
        self.train_enc, self.train_dec = ctx.distribute(self.enc), ctx.distribute(self.dec)
        params = [*self.enc.parameters(), *self.dec.parameters()]
        self.optimizers = {"opt": optim.build_optimizer([{"params": params}], cfg.optim)}
        self.make_loaders(x, y, test_x, test_y)
        self._pca, self._baselines = None, None
        self.trained_to: int | None = None  # the last training step run by this process (None: evaluating a run)

    def network_card(self) -> dict:
        stats = self.enc.standardize
        return {**card(self.cfg.model, self.in_shape, [f"code{i}" for i in range(self.cfg.code)],
                       stats.mean.flatten().tolist(), stats.std.flatten().tolist()), "kind": "encoder",
                "classes": None, "code": self.cfg.code}

    @classmethod
    def build_network(cls, card: dict):
        return build_net(NetConfig(**card["net"]), tuple(card["input_shape"]), card["code"], card["mean"], card["std"])

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input: x, or x + N(0, denoise^2) drawn afresh (denoising)."""
        return x + self.cfg.denoise * torch.randn_like(x) if self.cfg.denoise else x

    def reconstruct(self, x: torch.Tensor, enc=None, dec=None) -> torch.Tensor:
        enc, dec = enc or self.enc, dec or self.dec
        return torch.sigmoid(dec(enc(x)))                                     # pixels in [0, 1]

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        x, _ = batch                                                          # labels unused
        self.trained_to = step + 1
        opt = self.optimizers["opt"]
        lr = optim.set_lr(opt, optim.lr_at(step, self.total_steps, self.cfg.optim))
        self.train_enc.train()
        self.train_dec.train()
        with self.ctx.autocast():
            recon = self.reconstruct(self.corrupt(x), self.train_enc, self.train_dec).float()
        loss = reconstruction_error(recon, x).mean()                         # against the clean image
        optim.step(opt, loss, self.cfg.train.grad_clip)
        return {"loss": loss.detach(), "lr": lr}

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor) -> torch.Tensor:
        """Each image's reconstruction error (``paradigms anomaly``)."""
        self.enc.eval()
        self.dec.eval()
        return reconstruction_error(self.reconstruct(x).float(), x)

    @torch.no_grad()
    def test_error(self) -> float:
        """Mean squared error per pixel over the test set (the clean input)."""
        self.enc.eval()
        self.dec.eval()
        total, count = 0.0, 0
        for x, _ in self.test_loader.epoch(0):
            total += float(reconstruction_error(self.reconstruct(x).float(), x).sum())
            count += x[0].numel() * len(x)
        return total / max(count, 1)

    def pca_error(self) -> float | None:
        """PCA with ``code`` components fitted on (up to 20,000) training images: its test error per pixel."""
        if self._pca is None and self.train_x is not None and self.test_x is not None:
            from sklearn.decomposition import PCA

            train = self.train_x[:20_000].float().div(255).flatten(1).numpy()
            test = self.test_x.float().div(255).flatten(1).numpy()
            pca = PCA(n_components=min(self.cfg.code, *train.shape), random_state=self.cfg.seed).fit(train)
            recon = np.clip(pca.inverse_transform(pca.transform(test)), 0, 1)
            self._pca = float(((recon - test) ** 2).mean())
        return self._pca

    def figures(self):
        from ..engine.report import grid_figure

        x, y = next(iter(self.test_loader.epoch(0)))
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            self.enc.eval()
            self.dec.eval()
            shown = x[:16]
            noisy = self.corrupt(shown)                                      # shown itself unless denoising
            recon = self.reconstruct(noisy)
        rows = [shown, recon] if not self.cfg.denoise else [shown, noisy.clamp(0, 1), recon]
        what = "test images, reconstructions" if not self.cfg.denoise else "test images, noisy inputs, reconstructions"
        yield "reconstructions", grid_figure(torch.stack(rows, 1).flatten(0, 1), what, len(rows) * 4)
        yield "codes", code_scatter(self.codes(x), y, self.classes)

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        self.enc.eval()
        return torch.cat([self.enc(x[i:i + 1024]).float() for i in range(0, len(x), 1024)])

    def probes(self) -> dict[str, float]:
        """Linear-probe test accuracy on the codes, on raw pixels and on PCA codes of the same size (the one linear
        probe of every encoder: :func:`paradigms.evaluate.linear_probe`)."""
        n = self.cfg.probe_n
        if not n or self.train_x is None or self.test_x is None or len(set(self.train_y[:n].tolist())) < 2:
            return {}
        from sklearn.decomposition import PCA

        from ..evaluate import linear_probe

        tr_x, tr_y, te_y = self.train_x[:n], self.train_y[:n].numpy(), self.test_y.numpy()
        pixels = tr_x.float().div(255).flatten(1).numpy(), self.test_x.float().div(255).flatten(1).numpy()
        if self._baselines is None:  # the same at every evaluation
            pca = PCA(n_components=min(self.cfg.code, *pixels[0].shape), random_state=self.cfg.seed).fit(pixels[0])
            self._baselines = {"test/probe_pixels": linear_probe(pixels[0], tr_y, pixels[1], te_y),
                               "test/probe_pca": linear_probe(pca.transform(pixels[0]), tr_y, pca.transform(pixels[1]),
                                                              te_y)}
        dev = self.ctx.device
        code_tr = self.codes(tr_x.to(dev).float().div(255)).cpu().numpy()
        code_te = self.codes(self.test_x.to(dev).float().div(255)).cpu().numpy()
        return {"test/probe_code": linear_probe(code_tr, tr_y, code_te, te_y), **self._baselines}

    def evaluate(self) -> dict[str, float]:
        out = {"test/mse": self.test_error()}
        pca = self.pca_error()
        if pca is not None:
            out["test/pca_mse"] = pca
        # the probes fit logistic regressions: at the end of training (and `paradigms eval`), not every epoch
        if self.trained_to is None or self.trained_to >= self.total_steps:
            out.update(self.probes())
        return out


def code_scatter(codes: torch.Tensor, labels: torch.Tensor, classes: list[str]):
    """The codes of test images coloured by class: the code itself when it is 2-D, else its first two
    principal components (said in the title)."""
    import matplotlib.pyplot as plt

    c = codes.cpu().numpy()
    if c.shape[1] == 2:
        xy, title = c, "the 2-D code of test images"
    else:
        from sklearn.decomposition import PCA

        xy = PCA(n_components=2).fit_transform(c)
        title = f"the {c.shape[1]}-D code of test images, its first two principal components"
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    lab = labels.cpu().numpy()
    for k, name in enumerate(classes):
        ax.scatter(xy[lab == k, 0], xy[lab == k, 1], s=4, alpha=0.6, label=name)
    ax.legend(fontsize=7, markerscale=3, ncol=2)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
