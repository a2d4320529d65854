"""The ``vae`` recipe: Kingma & Welling 2014 on images (the objective and bounds: :mod:`.vae`).

    paradigms run vae --dataset mnist          # dynamically binarised MNIST, Bernoulli decoder

Encoder: a :mod:`paradigms.nets` network whose head outputs (mu, logvar) of q(z|x), 2 x ``code`` numbers.
Decoder: :class:`.models.Decoder`, pixel logits. Greyscale data is binarised afresh at every step,
x ~ Bernoulli(pixels) (dynamic binarisation, as the IWAE paper), with a Bernoulli decoder; colour data
keeps its pixels with a Gaussian decoder (mean sigmoid(logits), one learned log-variance per pixel).
Loss: the negative ELBO per image, -log p(x|z) + KL(q(z|x) || N(0, I)), z by reparameterisation.
Evaluation: the test negative ELBO and the test negative log-likelihood by the IWAE bound with
``iwae_k`` samples (5,000 in the papers) on ``iwae_n`` test images, both in nats per image.
``paradigms.load(RUN_DIR)`` gives the encoder: pixels in [0, 1] -> (mu, logvar), 2 x ``code`` numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from .. import optim
from ..data.subset import ImageRecipeConfig
from ..errors import UserError
from ..nets import NetConfig, build_net, card
from ..optim import OptimConfig
from ..recipes import ImageRecipe, register
from .models import Decoder
from .vae import bernoulli_log_prob, elbo, gaussian_kl, gaussian_log_prob, iwae_bound, reparameterise

MANIFOLD_SIDE = 15  # the manifold figure's grid: 15 x 15 codes


class VAEConfig(ImageRecipeConfig):
    recipe: str = "vae"
    dataset: str = "digits"
    model: NetConfig = Field(NetConfig(name="mlp", hidden=[200, 200], activation="tanh"),
                             description="the encoder (its head outputs mu and logvar); the decoder mirrors it")
    code: int = Field(20, ge=1, le=4096, description="the latent size (the IWAE paper: 50)")
    likelihood: Literal["auto", "bernoulli", "gaussian"] = Field(
        "auto", description="auto: bernoulli (dynamically binarised) for greyscale data, gaussian for colour")
    iwae_k: int = Field(5000, ge=1, description="importance samples of the test NLL (the papers: 5,000)")
    iwae_n: int | None = Field(1000, ge=1, description="test images whose NLL is estimated; None: all")
    optim: OptimConfig = OptimConfig(name="adam", lr=1e-3, weight_decay=0.0, schedule="constant")


def manifold_quantiles(side: int = MANIFOLD_SIDE) -> torch.Tensor:
    """The values each latent dimension takes on the manifold's grid: the prior's quantiles z = Phi^-1(p) at ``side``
    levels p evenly spaced over 0.05 .. 0.95 (Kingma & Welling's figure 4), (side,) increasing."""
    from scipy.stats import norm

    return torch.tensor(norm.ppf(torch.linspace(0.05, 0.95, side).numpy()), dtype=torch.float32)


@register
class VAE(ImageRecipe):
    name = "vae"
    family = "autoencoder"
    measures = "test negative log-likelihood in nats (IWAE bound, k samples)"
    encoder = "encoder"
    network = "encoder"
    Config = VAEConfig
    about = ("A variational autoencoder (Kingma & Welling 2014, \"Auto-encoding variational Bayes\") is a generative "
             "model: a decoder p(x|z) turns a code z drawn from the prior N(0, I) into an image, and an encoder "
             "q(z|x) = N(mu(x), diag(sigma^2(x))) guesses which codes explain a given image. Both are trained "
             "together by maximising the evidence lower bound ELBO = E_q[log p(x|z)] - KL(q(z|x) || N(0, I)), with "
             "one sample z = mu + sigma e (the reparameterisation trick) and the KL in closed form; greyscale images "
             "are binarised afresh at every step and modelled by a Bernoulli decoder, colour images by a Gaussian "
             "one. The test negative log-likelihood is estimated in nats per image by the importance-weighted bound "
             "with iwae_k samples (Burda, Grosse & Salakhutdinov 2016, \"Importance weighted autoencoders\"), the "
             "test negative ELBO beside it being the looser one-sample bound. The samples show what the model "
             "makes from pure noise, the reconstructions what the code keeps, the interpolation whether the path "
             "between two codes decodes to plausible images, and with a 2-D code the manifold shows the whole "
             "learned latent space at once.")
    captions = {
        "samples": "64 images decoded from codes drawn from the prior N(0, I), each the decoder's mean image (so "
                   "smoother than a binarised draw): they should look like the data, and vary as much as it does.",
        "reconstructions": "Pairs of a test image (left) and its reconstruction, decoded from the mean mu of its "
                           "code (right): look at what the code keeps; the KL term pulls codes towards the prior, "
                           "so fine detail is often lost.",
        "interpolation": "The decoder's mean images along a straight line between the codes of two test images: "
                         "every step should look like a plausible image, changing gradually from one to the other.",
        "manifold": "The learned 2-D latent space: the decoder's mean image for each code on a 15 x 15 grid of the "
                    "prior's quantiles, as in Kingma & Welling's figure 4; similar images lie side by side and "
                    "change smoothly across the grid.",
    }
    commands = ("sample", "anomaly")

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        if name == "full":  # the IWAE paper's one-stochastic-layer architecture, 784-200-200-50, Bernoulli
            return {"model": {"name": "mlp", "hidden": [200, 200], "activation": "tanh"}, "code": 50,
                    "train": {"epochs": 3280, "batch_size": 20, "eval_every": 0}, "iwae_n": None}
        if dataset in ("mnist", "fashion-mnist"):  # <= 95 nats on 2 cores in minutes: wider ReLU layers, cosine decay
            return {"model": {"hidden": [512, 256], "activation": "relu"}, "code": 32, "optim": {"schedule": "cosine"},
                    "train": {"epochs": 40, "batch_size": 100, "eval_every": 0}}
        return {"train": {"epochs": 50, "batch_size": 64, "eval_every": 0}}

    def __init__(self, cfg: VAEConfig, ctx):
        super().__init__(cfg, ctx)
        x, y, test_x, test_y = self.load_images()
        data = self.data
        lik = cfg.likelihood
        self.likelihood = ("bernoulli" if data.channels == 1 else "gaussian") if lik == "auto" else lik
        self.enc = build_net(cfg.model, self.in_shape, 2 * cfg.code, data.mean, data.std).to(ctx.device)
        self.dec = Decoder(cfg.code, self.in_shape, "mlp", cfg.model.hidden, cfg.model.activation).to(ctx.device)
        self.modules = {"encoder": self.enc, "decoder": self.dec}
        if self.likelihood == "gaussian":  # one learned log-variance per pixel
            self.pixel_logvar = nn.Parameter(torch.zeros(self.in_shape, device=ctx.device))
            self.modules["pixel_logvar"] = nn.ParameterList([self.pixel_logvar])
        self.train_enc, self.train_dec = ctx.distribute(self.enc), ctx.distribute(self.dec)
        params = [p for m in self.modules.values() for p in m.parameters()]
        self.optimizers = {"opt": optim.build_optimizer([{"params": params}], cfg.optim)}
        test_x, test_y = (test_x, test_y) if test_x is not None else (x, y)  # no test split: the training images
        # batches of 500: the IWAE bound decodes k samples of each image at once (chunks of 500)
        self.make_loaders(x, y, test_x, test_y, test_batch_size=500)

    # -- the network paradigms.load gives: the encoder, x -> (mu, logvar) -------------------------------
    def network_card(self) -> dict:
        """An encoder's card (no classes), its output (mu, logvar) being 2 x ``code`` features."""
        stats, k = self.enc.standardize, self.cfg.code
        return {**card(self.cfg.model, self.in_shape, [], stats.mean.flatten().tolist(), stats.std.flatten().tolist()),
                "kind": "encoder", "classes": None, "features": 2 * k, "code": k, "likelihood": self.likelihood}

    @classmethod
    def build_network(cls, card: dict):
        return build_net(NetConfig(**card["net"]), tuple(card["input_shape"]), 2 * card["code"], card["mean"],
                         card["std"])

    # -- the model's pieces -------------------------------------------------------------------------
    def observe(self, x: torch.Tensor) -> torch.Tensor:
        """What the model sees of pixels x in [0, 1]: a fresh binarisation (Bernoulli), or x itself."""
        return torch.bernoulli(x) if self.likelihood == "bernoulli" else x

    def encode(self, x: torch.Tensor, enc=None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = (enc or self.enc)(x).float().chunk(2, dim=1)           # (N, code) each
        return mu, logvar

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor, dec=None) -> torch.Tensor:
        logits = (dec or self.dec)(z).float()                               # (N, C, H, W)
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(logits, x)
        return gaussian_log_prob(torch.sigmoid(logits), self.pixel_logvar.expand_as(logits), x)

    # -- training and evaluation --------------------------------------------------------------------
    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        x = self.observe(batch[0])
        opt = self.optimizers["opt"]
        lr = optim.set_lr(opt, optim.lr_at(step, self.total_steps, self.cfg.optim))
        self.train_enc.train()
        self.train_dec.train()
        with self.ctx.autocast():
            mu, logvar = self.encode(x, self.train_enc)
            z = reparameterise(mu, logvar)                                   # z = mu + sigma e
            bound = elbo(self.log_px_given_z(x, z, self.train_dec), mu, logvar)
        loss = -bound.mean()                                                 # the negative ELBO, nats per image
        optim.step(opt, loss, self.cfg.train.grad_clip)
        return {"loss": loss.detach(), "kl": gaussian_kl(mu, logvar).mean().detach(), "lr": lr}

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image of codes z, pixels in [0, 1]."""
        self.dec.eval()
        return torch.sigmoid(self.dec(z).float())

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's mean image at the code's mean, sigmoid(D(mu(x))), pixels in [0, 1]: x itself is encoded,
        not binarised (as :meth:`anomaly_score` scores it), so the same image gives the same reconstruction."""
        self.enc.eval()
        return self.decode(self.encode(x)[0])

    @torch.no_grad()
    def anomaly_score(self, x: torch.Tensor) -> torch.Tensor:
        """Each image's negative ELBO at z = mu (``paradigms anomaly``): pixels in [0, 1], not binarised."""
        self.enc.eval()
        mu, logvar = self.encode(x)
        return -elbo(self.log_px_given_z(x, mu), mu, logvar)

    def sample(self, n: int) -> torch.Tensor:
        """n images from the prior: z ~ N(0, I), each decoded to its mean image."""
        return self.decode(torch.randn(n, self.cfg.code, device=self.ctx.device))

    def figures(self):
        from ..engine.report import grid_figure

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            yield "samples", grid_figure(self.sample(64), "samples: z ~ N(0, I), the decoder's mean image")
            x = next(iter(self.test_loader.epoch(0)))[0][:16]
            self.enc.eval()
            with torch.no_grad():
                recon = self.decode(self.encode(self.observe(x))[0])
            pairs = torch.stack([x, recon], 1).flatten(0, 1)                  # original, reconstruction, ...
            yield "reconstructions", grid_figure(pairs, "test images (left) and reconstructions from mu (right)", 8)
            with torch.no_grad():
                mu = self.encode(x[:2])[0]
                t = torch.linspace(0, 1, 10, device=mu.device).view(-1, 1)
                line = self.decode((1 - t) * mu[0] + t * mu[1])               # a straight line between two codes
            yield "interpolation", grid_figure(line, "a latent interpolation between two test images", 10)
            if self.cfg.code == 2:
                yield "manifold", grid_figure(self.manifold(), "the 2-D latent manifold (a grid of prior quantiles)",
                                              MANIFOLD_SIDE)
            elif getattr(self.ctx, "run_dir", None) is not None:
                note = Path(self.ctx.run_dir) / "notes" / "manifold.txt"
                note.parent.mkdir(parents=True, exist_ok=True)
                note.write_text(self.no_manifold() + "\n")

    def no_manifold(self) -> str:
        return (f"the 2-D latent manifold is drawn for a 2-D code only; this run's code has {self.cfg.code} dimensions "
                f"(train with --set code=2 to see it)")

    def manifold(self, side: int = MANIFOLD_SIDE) -> torch.Tensor:
        """The learned 2-D manifold: the decoder's mean images of codes on a side x side grid of the prior's
        quantiles 0.05 .. 0.95 (Kingma & Welling's figure 4), (side^2, C, H, W), rows varying z_1."""
        if self.cfg.code != 2:
            raise UserError(self.no_manifold())
        q = manifold_quantiles(side)
        grid = torch.stack(torch.meshgrid(q, q, indexing="ij"), -1).flatten(0, 1).to(self.ctx.device)
        return self.decode(grid)

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.enc.eval()
        self.dec.eval()
        gen = torch.Generator(device="cpu").manual_seed(self.cfg.seed)       # the same binarisation every time
        neg_elbo, nll, n_elbo, n_nll = 0.0, 0.0, 0, 0
        limit = self.cfg.iwae_n
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            for x, _ in self.test_loader.epoch(0):
                if self.likelihood == "bernoulli":
                    x = torch.bernoulli(x.cpu(), generator=gen).to(x.device)
                mu, logvar = self.encode(x)
                neg_elbo -= float(elbo(self.log_px_given_z(x, reparameterise(mu, logvar)), mu, logvar).sum())
                n_elbo += len(x)
                if limit is None or n_nll < limit:
                    part = x if limit is None else x[: limit - n_nll]
                    nll -= float(iwae_bound(part, self.encode, self.log_px_given_z, k=self.cfg.iwae_k).sum())
                    n_nll += len(part)
        return {"test/neg_elbo": neg_elbo / n_elbo, "test/nll": nll / max(n_nll, 1)}

