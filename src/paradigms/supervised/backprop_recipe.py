"""``paradigms run backprop``: the numpy backpropagation of :mod:`.backprop` as a recipe.

Trains the hand-written MLP on an image dataset (digits by default) with LeCun et al.'s "Efficient
BackProp" options as configured, and, side by side on the same batches budget, the same network
with every option off (``compare: true``), so the run's figure compares their learning curves.
The numpy arrays are shared with torch buffers, so the engine checkpoints and resumes them like
any network.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from pydantic import Field
from torch import nn

from ..config import RecipeConfig, Section
from ..data import load_images
from ..errors import UserError
from ..data.loader import index_batches
from ..engine.runlog import read_metrics
from ..recipes import Recipe, register
from . import backprop as bp


class BackpropConfig(Section):
    hidden: list[int] = Field([64], description="hidden layer sizes")
    lr: float = Field(0.01, gt=0, le=10)
    momentum: float = Field(0.9, ge=0, lt=1)
    standardize: bool = Field(True, description="LeCun: zero-mean unit-variance inputs (else divide by max)")
    scaled_tanh: bool = Field(True, description="LeCun: 1.7159 tanh(2x/3) (else tanh)")
    fanin_init: bool = Field(True, description="LeCun: W ~ N(0, 1/fan_in) (else U(-0.5, 0.5))")
    shuffle: bool = Field(True, description="LeCun: new order every epoch (else the fixed order)")
    compare: bool = Field(True, description="also train the plain network (every option off) for the figure")


class BackpropRecipeConfig(RecipeConfig):
    recipe: str = "backprop"
    dataset: str = "digits"
    backprop: BackpropConfig = BackpropConfig()


class BackpropNet(nn.Module):
    """One numpy MLP as a torch module: its arrays are buffers sharing memory with numpy (so checkpoints
    see them), and ``forward`` computes what the numpy MLP does, on pixels in [0, 1] (``paradigms.load``):
    the inputs are scaled as the learner scaled its training data, ``(255 x - shift) / div`` per feature.
    """

    def __init__(self, arrays: list[np.ndarray], shift: np.ndarray, div: np.ndarray, activation: str):
        super().__init__()
        self.activation = activation
        self.n_layers = len(arrays) // 2
        for i, a in enumerate(arrays):
            self.register_buffer(f"p{i}", torch.from_numpy(a))
        self.register_buffer("shift", torch.from_numpy(np.asarray(shift, dtype=np.float64).copy()))
        self.register_buffer("div", torch.from_numpy(np.asarray(div, dtype=np.float64).copy()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = (x.flatten(1).double() * 255 - self.shift) / self.div
        for i in range(self.n_layers):
            h = h @ getattr(self, f"p{2 * i}") + getattr(self, f"p{2 * i + 1}")
            if i < self.n_layers - 1:
                h = 1.7159 * torch.tanh(2 * h / 3) if self.activation == "scaled_tanh" else torch.tanh(h)
        return h.float()


class Learner:
    """One numpy MLP, its optimiser and its input scaling."""

    def __init__(self, sizes, tricks: dict, lr, momentum, seed, xtr, xte):
        self.shift, self.div = bp.input_scaling(xtr, tricks["standardize"])
        self.xtr, self.xte = (xtr - self.shift) / self.div, (xte - self.shift) / self.div
        self.activation = "scaled_tanh" if tricks["scaled_tanh"] else "tanh"
        self.mlp = bp.MLP(sizes, self.activation, "fanin" if tricks["fanin_init"] else "plain", seed=seed)
        self.opt = bp.SGD(self.mlp.params, lr, momentum)
        self.shuffle = tricks["shuffle"]

    def module(self) -> BackpropNet:
        return BackpropNet(self.mlp.params, self.shift, self.div, self.activation)


@register
class Backprop(Recipe):
    name = "backprop"
    family = "supervised"
    measures = "test accuracy of a numpy MLP trained by hand-written backprop, with/without LeCun's tricks"
    Config = BackpropRecipeConfig
    network = "model"
    about = ("Backpropagation written out by hand (Rumelhart, Hinton & Williams 1986, \"Learning representations by "
             "back-propagating errors\"): a multilayer perceptron in numpy whose forward pass, chain-rule gradients "
             "of the softmax cross-entropy and SGD with momentum are plain array code, trained on labelled images. "
             "It follows the advice of LeCun, Bottou, Orr & Müller 1998, \"Efficient BackProp\": inputs "
             "standardised to zero mean and unit variance, the scaled tanh 1.7159 tanh(2x/3), weights drawn with "
             "variance 1/fan-in, and a new order of the examples every epoch. Beside it, on the same number of "
             "batches, the same network trains with every one of those options off (inputs divided by their "
             "largest value, plain tanh, weights uniform in (-0.5, 0.5), one fixed order), so the effect of the "
             "advice is measured rather than asserted. The figure compares the two networks' test loss and "
             "accuracy epoch by epoch: look at how fast each falls in the first epochs, and at how far apart they "
             "end (on the embedded digits the final accuracies are close).")
    captions = {
        "efficient_backprop": "Test cross-entropy (left, log scale) and test accuracy (right) after each epoch, "
                              "for the network with Efficient BackProp's options and for the plain one trained on "
                              "as many batches: the gap between the curves is what the options are worth.",
    }
    commands = ("attack", "certify")

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        return {"train": {"epochs": 20 if name == "quick" else 60, "batch_size": 32, "log_every": 10}}

    def __init__(self, cfg: BackpropRecipeConfig, ctx):
        super().__init__(cfg, ctx)
        c = cfg.backprop
        if cfg.train.grad_clip is not None:
            raise UserError("train.grad_clip is for torch optimisers; the hand-written numpy SGD of the backprop "
                            "recipe does not clip (remove train.grad_clip)")
        data = load_images(cfg.dataset, cfg.data_dir)
        if data.train_x is None:
            raise UserError(f"dataset {cfg.dataset!r} is streamed from disk; the numpy backprop recipe needs one that fits in memory")
        xtr = data.train_x.flatten(1).double().numpy()
        xte = data.test_x.flatten(1).double().numpy()
        self.ytr, self.yte = data.train_y.numpy(), data.test_y.numpy()
        sizes = [xtr.shape[1], *c.hidden, data.num_classes]
        tricks = {k: getattr(c, k) for k in ("standardize", "scaled_tanh", "fanin_init", "shuffle")}
        self.learners = {"model": Learner(sizes, tricks, c.lr, c.momentum, cfg.seed, xtr, xte)}
        if c.compare:
            plain = dict.fromkeys(tricks, False)
            self.learners["plain"] = Learner(sizes, plain, c.lr, c.momentum, cfg.seed, xtr, xte)
        self.modules = {k: lr.module() for k, lr in self.learners.items()}
        self.sizes, self.in_shape, self.classes = sizes, (data.channels, *data.size), list(data.classes)

    def network_card(self) -> dict:
        return {"kind": "numpy-mlp", "sizes": self.sizes, "activation": self.learners["model"].activation,
                "input_shape": list(self.in_shape), "classes": self.classes}

    @classmethod
    def build_network(cls, card: dict) -> nn.Module:
        sizes = card["sizes"]
        arrays = [a for m, n in zip(sizes[:-1], sizes[1:]) for a in (np.zeros((m, n)), np.zeros(n))]
        return BackpropNet(arrays, np.zeros(sizes[0]), np.ones(sizes[0]), card["activation"])

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.ytr) / self.cfg.train.batch_size)

    def batches(self, epoch: int, start: int = 0):
        n, b, seed = len(self.ytr), self.cfg.train.batch_size, self.cfg.seed
        orders = {k: index_batches(n, b, seed, epoch, shuffle=lr.shuffle, drop_last=False)
                  for k, lr in self.learners.items()}
        for i in range(start, self.steps_per_epoch):
            yield {k: o[i].numpy() for k, o in orders.items()}

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        out = {}
        for k, lr in self.learners.items():
            idx = batch[k]
            loss, grads = lr.mlp.loss_and_grads(lr.xtr[idx], self.ytr[idx])
            lr.opt.step(grads)
            out["loss" if k == "model" else f"loss_{k}"] = torch.tensor(loss)  # loss*: checked for NaN
        return out

    def evaluate(self) -> dict[str, float]:
        out = {}
        for k, lr in self.learners.items():
            prefix = "test" if k == "model" else f"{k}/test"
            out[f"{prefix}/acc"] = bp.accuracy(lr.mlp, lr.xte, self.yte)
            logp = bp.log_softmax(lr.mlp.forward(lr.xte))
            out[f"{prefix}/loss"] = float(-logp[np.arange(len(self.yte)), self.yte].mean())
        return out

    def extra_state(self) -> dict:
        return {k: [torch.from_numpy(v.copy()) for v in lr.opt.velocity] for k, lr in self.learners.items()}

    def load_extra_state(self, state: dict) -> None:
        for k, lr in self.learners.items():
            for v, saved in zip(lr.opt.velocity, state[k]):
                v[...] = saved.numpy()

    def figures(self):
        rows = [r for r in read_metrics(self.ctx.run_dir) if r.get("split") == "eval"]
        if not rows or "plain/test/acc" not in rows[0]:
            return
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
        ep = [r["epoch"] for r in rows]
        a1.plot(ep, [r["test/loss"] for r in rows], "o-", ms=3, label="Efficient BackProp options")
        a1.plot(ep, [r["plain/test/loss"] for r in rows], "s--", ms=3, label="plain")
        a2.plot(ep, [r["test/acc"] for r in rows], "o-", ms=3, label="Efficient BackProp options")
        a2.plot(ep, [r["plain/test/acc"] for r in rows], "s--", ms=3, label="plain")
        a1.set_ylabel("test cross-entropy")
        a1.set_yscale("log")
        a2.set_ylabel("test accuracy")
        for a in (a1, a2):
            a.set_xlabel("epoch")
            a.grid(alpha=0.3)
            a.legend(fontsize=8)
        fig.suptitle("LeCun et al. 1998: standardised inputs, scaled tanh, fan-in init, shuffling vs none",
                     fontsize=9)
        fig.tight_layout()
        yield "efficient_backprop", fig
