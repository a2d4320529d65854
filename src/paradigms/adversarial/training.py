"""Adversarial training: supervised learning on the attacks' own examples, a hook of the supervised recipe.

    paradigms run supervised --dataset mnist --set adversarial.method=fast-fgsm --set adversarial.eps=0.3

:class:`AdversarialTraining` is a :mod:`paradigms.hooks` hook: it gives ``supervised`` (and ``finetune``, built on it)
the ``adversarial`` config section and, when ``adversarial.method`` is not ``none``, replaces each training step's
loss, adds the robust accuracy to each evaluation, watches fast FGSM for a collapse and draws the attacked examples.

Three methods, each a loss on a batch (x, y) built from :mod:`.attacks` (the same ``fgsm`` and ``pgd``):

- ``fgsm-mix`` (Goodfellow, Shlens & Szegedy 2015): alpha * L(x, y) + (1 - alpha) * L(x_fgsm, y), alpha = 1/2;
- ``pgd`` (Madry et al. 2018): min_theta E max_{||d||_inf <= eps} L(x + d, y), the inner max by PGD with a
  random start;
- ``fast-fgsm`` (Wong, Rice & Kolter 2020, "Fast is better than free"): one FGSM step of size a = 1.25 eps
  from a uniform random start, i.e. PGD with one step. It can collapse ("catastrophic overfitting":
  PGD accuracy falls to ~0 within an epoch while FGSM accuracy soars), so after every epoch the PGD
  accuracy of a held-out batch is measured and training stops at a collapse, keeping the weights
  of the best epoch (:class:`CollapseGuard`).

The attacks see the network in eval mode and differentiate with respect to the input alone; the
training step then runs it in train mode as usual.
"""

from __future__ import annotations

from typing import Literal

import copy

import torch
from pydantic import Field, model_validator
from torch import nn

from .. import hooks
from ..config import Section
from ..data import unit
from ..errors import UserError
from .attacks import default_step_size, evaluating, fgsm, pgd

METHODS = ("none", "fgsm-mix", "pgd", "fast-fgsm")


class AdversarialConfig(Section):
    method: Literal["none", "fgsm-mix", "pgd", "fast-fgsm"] = Field(
        "none", description="none | fgsm-mix (Goodfellow 2015) | pgd (Madry 2018) | fast-fgsm (Wong 2020)")
    eps: float = Field(0.3, ge=0, le=1, description="the L-inf budget in [0, 1] pixels (MNIST 0.3, CIFAR-10 8/255)")
    steps: int = Field(10, ge=1, le=1000, description="pgd: attack steps per training batch (Madry: 40)")
    step_size: float | None = Field(None, gt=0, le=1, description="attack step; default pgd 2.5 eps / steps, "
                                    "fast-fgsm 1.25 eps (Wong et al.)")
    alpha: float = Field(0.5, ge=0, le=1, description="fgsm-mix: the clean loss's weight (Goodfellow: 0.5)")
    eval_n: int = Field(500, ge=0, description="test images attacked (PGD, eval_steps, one random start) at "
                        "each evaluation; 0 = none")
    eval_steps: int = Field(20, ge=1, le=1000, description="PGD steps of the evaluation attack (step 2.5 eps / steps)")
    check_n: int = Field(512, ge=1, description="fast-fgsm: the held-out training batch whose PGD accuracy is "
                         "checked after each epoch")
    stop_drop: float = Field(0.2, gt=0, le=1, description="fast-fgsm: stop when that PGD accuracy falls this "
                             "far below its best (a collapse), keeping the best epoch's weights")

    @model_validator(mode="after")
    def _budget(self):
        if self.method != "none" and self.eps <= 0:
            raise ValueError(f"adversarial.method={self.method} needs adversarial.eps > 0")
        return self

    @property
    def on(self) -> bool:
        return self.method != "none"

    def attack_step(self) -> float:
        if self.step_size is not None:
            return self.step_size
        return 1.25 * self.eps if self.method == "fast-fgsm" else default_step_size(self.eps, self.steps)


def adversarial_examples(net: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: AdversarialConfig) -> torch.Tensor:
    """The training batch's adversarial version for ``cfg.method`` (pixels in [0, 1])."""
    if cfg.method == "fgsm-mix":
        return fgsm(net, x, y, cfg.eps)
    if cfg.method == "pgd":
        return pgd(net, x, y, cfg.eps, cfg.attack_step(), cfg.steps)
    if cfg.method == "fast-fgsm":  # x0 = x + U(-eps, eps); one step of 1.25 eps; projected: PGD with one step
        return pgd(net, x, y, cfg.eps, cfg.attack_step(), 1, random_start=True)
    raise ValueError(f"adversarial.method={cfg.method} makes no examples")


def training_loss(net: nn.Module, train_net: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: AdversarialConfig,
                  loss_fn) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """``(loss, logits, extra metrics)`` of one adversarial training step.

    ``net`` is attacked (eval mode, gradients to the input only); ``train_net`` (``net`` or its DDP wrapper,
    in train mode) computes the loss that is backpropagated. The logits returned are those of the
    adversarial batch, whose accuracy the step reports (fgsm-mix: of the clean one, ``adv_acc`` beside it).
    """
    x_adv = adversarial_examples(net, x, y, cfg)
    if cfg.method == "fgsm-mix":  # alpha L(x) + (1 - alpha) L(x_fgsm): both halves in one forward pass
        logits = train_net(torch.cat([x, x_adv]))
        clean, adv = logits[:len(x)], logits[len(x):]
        loss = cfg.alpha * loss_fn(clean.float(), y) + (1 - cfg.alpha) * loss_fn(adv.float(), y)
        return loss, clean, {"adv_acc": (adv.detach().argmax(1) == y).float().mean()}
    logits = train_net(x_adv)                                   # min_theta L(x_adv, y)
    return loss_fn(logits.float(), y), logits, {}


def robust_accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int,
                    batch_size: int = 500) -> float:
    """Accuracy under L-inf PGD (``steps`` steps of 2.5 eps / steps, one random start)."""
    if len(x) == 0:
        return float("nan")
    right = 0
    with evaluating(net):
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            adv = pgd(net, xb, yb, eps, default_step_size(eps, steps), steps)
            with torch.no_grad():
                right += int((net(adv).argmax(1) == yb).sum())
    return right / len(x)


class CollapseGuard:
    """Catastrophic-overfitting watch for fast FGSM (Wong et al. 2020, early stopping).

    ``update(acc)`` after each epoch with the held-out batch's PGD accuracy: it keeps the best value and
    returns True (a collapse) when ``acc`` has fallen more than ``drop`` below it.
    """

    def __init__(self, drop: float):
        self.drop, self.best, self.history = drop, None, []

    def update(self, acc: float) -> bool:
        self.history.append(acc)
        if self.best is not None and acc < self.best - self.drop:
            return True
        self.best = acc if self.best is None else max(self.best, acc)
        return False

    def improved(self) -> bool:
        """Whether the last value given to ``update`` is the best so far (keep those weights)."""
        return bool(self.history) and self.history[-1] == self.best

    def state(self) -> dict:
        return {"best": self.best, "history": list(self.history)}

    def load(self, state: dict) -> None:
        self.best, self.history = state.get("best"), list(state.get("history", []))


@hooks.register
class AdversarialTraining(hooks.Hook):
    """Adversarial training in a supervised run: the ``adversarial`` section's method, on every training batch."""

    key = "adversarial"
    Config = AdversarialConfig
    extends = "supervised"
    captions = {
        "adversarial_examples": "Six evaluation images attacked by PGD (adversarial.eval_steps steps within the "
                                "L-inf budget adversarial.eps) against the adversarially trained network, one per "
                                "row: the clean image and its prediction, the perturbation (amplified to be "
                                "visible), the attacked image and its prediction; a robust network keeps its "
                                "answer.",
    }

    @classmethod
    def wanted(cls, cfg: AdversarialConfig) -> bool:
        return cfg.on

    def __init__(self, recipe, cfg: AdversarialConfig):
        super().__init__(recipe, cfg)
        self.guard, self.best_weights, self.check_batch = None, None, None

    def setup(self, x, y):
        """Refuse a mixing augmentation; fast-fgsm holds the last ``check_n`` training images out to watch."""
        cfg, recipe = self.cfg, self.recipe
        mixes = getattr(recipe.augment, "mixes", None)
        if mixes:
            raise UserError(f"adversarial.method={cfg.method} attacks each image's own label, but augment mixes "
                            f"labels ({'/'.join(m.name for m in mixes)}): drop the mix from augment")
        if cfg.method == "fast-fgsm":  # a held-out training batch watched for catastrophic overfitting
            if x is None or len(x) <= cfg.check_n:
                raise UserError(f"adversarial.check_n={cfg.check_n} training images are held out to watch fast-fgsm, "
                                f"but {recipe.cfg.dataset} has {0 if x is None else len(x)} in memory (lower check_n)")
            x, y, self.check_batch = x[:-cfg.check_n], y[:-cfg.check_n], (x[-cfg.check_n:], y[-cfg.check_n:])
            self.guard = CollapseGuard(cfg.stop_drop)
        return x, y

    def loss(self, x, y, loss_fn):
        """The loss on the batch's adversarial examples (the attack runs in eval mode, leaving the flags alone)."""
        return training_loss(self.recipe.net, self.recipe.train_net, x, y, self.cfg, loss_fn)

    def robust(self, x, y) -> float:
        """PGD accuracy (``eval_steps``, one random start drawn from the seed) of uint8 images ``x``."""
        recipe, cfg = self.recipe, self.cfg
        dev = recipe.ctx.device
        with torch.random.fork_rng(devices=[]):  # the random starts leave the training stream alone
            torch.manual_seed(recipe.cfg.seed)
            return robust_accuracy(recipe.net, unit(x.to(dev)), y.to(dev), cfg.eps, cfg.eval_steps)

    def evaluate(self, split: str) -> dict[str, float]:
        """Robust accuracy on the first ``eval_n`` evaluation images."""
        recipe, n = self.recipe, self.cfg.eval_n
        if not n or recipe.test_x is None:
            return {}
        return {f"{split}/pgd_acc": self.robust(recipe.test_x[:n], recipe.test_y[:n])}

    def end_epoch(self, epoch: int) -> str | None:
        """fast-fgsm: the held-out batch's PGD accuracy; a collapse stops the run with the best epoch's weights."""
        if self.guard is None:
            return None
        cfg, net, ctx = self.cfg, self.recipe.net, self.recipe.ctx
        acc = self.robust(*self.check_batch)
        acc = float(ctx.all_reduce(torch.tensor(acc)) / ctx.world)  # every rank decides alike
        if self.guard.update(acc):
            net.load_state_dict(self.best_weights)
            best_epoch = self.guard.history.index(self.guard.best) + 1
            return (f"catastrophic overfitting at epoch {epoch}: PGD-{cfg.eval_steps} accuracy of the held-out batch "
                    f"fell from {self.guard.best:.1%} to {acc:.1%} (more than adversarial.stop_drop="
                    f"{cfg.stop_drop:g}); stopped, keeping the weights of epoch {best_epoch}")
        if self.guard.improved():
            self.best_weights = copy.deepcopy({k: v.detach().cpu() for k, v in net.state_dict().items()})
        return None

    def state(self) -> dict:
        if self.guard is None:
            return {}
        return {"guard": self.guard.state(), "best_weights": self.best_weights}

    def load_state(self, state: dict) -> None:
        if self.guard is not None and "guard" in state:
            self.guard.load(state["guard"])
            self.best_weights = state.get("best_weights")

    def figures(self):
        """Test images, the PGD perturbation the trained network resists (or not), its predictions."""
        recipe, cfg = self.recipe, self.cfg
        if recipe.test_x is None:
            return
        from .figures import panel_figure

        x, y = unit(recipe.test_x[:6].to(recipe.ctx.device)), recipe.test_y[:6].to(recipe.ctx.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe.cfg.seed)
            x_adv = pgd(recipe.net, x, y, cfg.eps, default_step_size(cfg.eps, cfg.eval_steps), cfg.eval_steps)
        with evaluating(recipe.net), torch.no_grad():
            p_clean, p_adv = recipe.net(x).float().softmax(1), recipe.net(x_adv).float().softmax(1)
        yield "adversarial_examples", panel_figure(x, x_adv, p_clean, p_adv, recipe.classes,
                                                   f"{cfg.method}-trained network under PGD-{cfg.eval_steps}, "
                                                   f"eps {cfg.eps:g}")
