"""Supervised classification by backpropagation: the recipe every other paradigm is compared with.

Learn f_theta: x -> p(y | x) from labelled pairs by minimising the empirical cross-entropy

    L(theta) = - 1/N sum_n log softmax(f_theta(x_n))_{y_n}

with minibatch SGD (Robbins & Monro 1951; gradients by backpropagation, Rumelhart et al. 1986).
Targets may be class indices or probability vectors (soft targets, as mixup/CutMix produce).
Networks: MLP, LeNet-5, a small ResNet (:mod:`paradigms.nets`), all on pixels in [0, 1]; any image
dataset of :mod:`paradigms.data`. ``adversarial.method`` trains on adversarial examples instead
(:mod:`paradigms.adversarial.training`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

import copy

from .. import augment
from .. import optim
from ..adversarial import evaluating, pgd
from ..adversarial.attacks import default_step_size
from ..adversarial import training as adversarial_training
from ..errors import UserError
from ..augment import figures as augment_figures
from ..data import unit
from ..data.subset import ImageRecipeConfig
from ..evaluate import confusion_figure, evaluate_classifier, mistakes_figure, predict
from ..nets import NetConfig, build_net, card, to_device
from ..optim import OptimConfig
from ..recipes import ImageRecipe, register


class SupervisedConfig(ImageRecipeConfig):
    recipe: str = "supervised"
    dataset: str = "digits"
    model: NetConfig = NetConfig()
    optim: OptimConfig = OptimConfig()
    augment: list[str | dict[str, dict | None]] = Field(
        [], description="train-time augmentation policy, e.g. [standard, cutout, mixup] (see paradigms.augment)")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="cross-entropy against (1 - e) y + e / K")
    adversarial: adversarial_training.AdversarialConfig = adversarial_training.AdversarialConfig()


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy for class indices (N,) or soft targets (N, K) that sum to 1."""
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


@register
class Supervised(ImageRecipe):
    name = "supervised"
    family = "supervised"
    measures = "test accuracy of a classifier (MLP, LeNet-5, ResNet)"
    encoder = "model"
    network = "model"
    Config = SupervisedConfig

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        if name == "full":  # paper-scale: a full-width ResNet-9, as in the DAWNBench CIFAR-10 entries
            return {"model": {"name": "resnet", "width": 64}, "augment": ["crop", "flip"],
                    "optim": {"lr": 0.4, "weight_decay": 5e-4}, "label_smoothing": 0.2,
                    "train": {"epochs": 24, "batch_size": 512}}
        if dataset in ("digits",):
            return {"model": {"name": "lenet5", "width": 2}, "optim": {"lr": 0.1, "weight_decay": 5e-4},
                    "train": {"epochs": 20, "batch_size": 64}}
        if dataset in ("mnist", "fashion-mnist"):
            return {"model": {"name": "lenet5", "width": 4}, "optim": {"lr": 0.1},
                    "train": {"epochs": 4, "batch_size": 128}}
        if dataset == "cifar10":
            return {"model": {"name": "resnet", "width": 16}, "augment": ["crop", "flip"], "label_smoothing": 0.2,
                    "optim": {"lr": 0.2, "weight_decay": 5e-4}, "train": {"epochs": 8, "batch_size": 256}}
        return {"model": {"name": "resnet", "width": 16}, "augment": ["crop", "flip"],
                "train": {"epochs": 10, "batch_size": 128}}

    def __init__(self, cfg: SupervisedConfig, ctx):
        super().__init__(cfg, ctx)
        x, y, test_x, test_y = self.load_images()
        data = self.data
        if len(self.classes) < 2:
            raise UserError(f"classes={cfg.classes}: a classifier needs at least two classes")
        adv = cfg.adversarial
        self.guard, self.best_weights, self.check_batch = None, None, None
        if adv.method == "fast-fgsm":  # a held-out training batch watched for catastrophic overfitting
            if x is None or len(x) <= adv.check_n:
                raise UserError(f"adversarial.check_n={adv.check_n} training images are held out to watch fast-fgsm, "
                                f"but {cfg.dataset} has {0 if x is None else len(x)} in memory (lower check_n)")
            x, y, self.check_batch = x[:-adv.check_n], y[:-adv.check_n], (x[-adv.check_n:], y[-adv.check_n:])
            self.guard = adversarial_training.CollapseGuard(adv.stop_drop)
        self.num_classes = len(self.classes)
        self.net = to_device(self.make_net(self.in_shape, self.num_classes), ctx.device)  # pixels in [0, 1] in
        self.modules = {"model": self.net}
        self.train_net = ctx.distribute(self.net)
        self.optimizers = {"opt": optim.build_optimizer(self.param_groups(), cfg.optim)}
        self.augment = augment.build(cfg.augment, cfg.dataset, data.channels, mean=data.mean)
        if adv.on and self.augment.mixes:
            raise UserError(f"adversarial.method={adv.method} attacks each image's own label, but augment mixes "
                            f"labels ({'/'.join(m.name for m in self.augment.mixes)}): drop the mix from augment")
        self.make_loaders(x, y, test_x, test_y)
        # figures are drawn by rank 0 alone, over the whole test set
        self.figure_loader = self.whole_loader(test_x, test_y, data.test_stream)

    # hooks for recipes built on this one (fine-tuning builds its net from the source and freezes part of it)
    def make_net(self, in_shape: tuple[int, int, int], num_classes: int) -> torch.nn.Module:
        return build_net(self.cfg.model, in_shape, num_classes, self.data.mean, self.data.std)

    def network_card(self) -> dict:
        stats = self.net.standardize  # the network's own (a fine-tuned one keeps its source's)
        return card(self.cfg.model, self.in_shape, self.classes, stats.mean.flatten().tolist(),
                    stats.std.flatten().tolist())

    def param_groups(self) -> list[dict]:
        return [{"params": list(self.net.parameters())}]

    def train_step(self, batch, step: int) -> dict[str, torch.Tensor]:
        x, y = batch  # pixels in [0, 1]
        if self.augment:
            x, y = self.augment(x, y, self.num_classes)
        opt = self.optimizers["opt"]
        lr = optim.set_lr(opt, optim.lr_at(step, self.total_steps, self.cfg.optim))
        extra = {}
        if self.cfg.adversarial.on:  # the attack runs in eval mode and leaves the flags as it found them
            def loss_fn(logits, target):
                return cross_entropy(logits, target, self.cfg.label_smoothing)

            self.train_net.train()
            with self.ctx.autocast():
                loss, logits, extra = adversarial_training.training_loss(self.net, self.train_net, x, y, self.cfg.adversarial,
                                                                loss_fn)
        else:
            self.train_net.train()
            with self.ctx.autocast():
                logits = self.train_net(x)
                loss = cross_entropy(logits.float(), y, self.cfg.label_smoothing)
        optim.step(opt, loss, self.cfg.train.grad_clip)
        hard = y if y.ndim == 1 else y.argmax(1)
        return {"loss": loss.detach(), "acc": (logits.detach().argmax(1) == hard).float().mean(), "lr": lr, **extra}

    def evaluate(self) -> dict[str, float]:
        m = evaluate_classifier(self.net, self.test_loader.epoch(0), self.ctx)
        split = "val" if self.cfg.val_size else "test"
        out = {f"{split}/acc": m["acc"], f"{split}/loss": m["loss"]}
        adv = self.cfg.adversarial
        if adv.on and adv.eval_n and self.test_x is not None:  # robust accuracy on the first eval_n images
            x, y = unit(self.test_x[:adv.eval_n].to(self.ctx.device)), self.test_y[:adv.eval_n].to(self.ctx.device)
            with torch.random.fork_rng(devices=[]):  # the random starts leave the training stream alone
                torch.manual_seed(self.cfg.seed)
                out[f"{split}/pgd_acc"] = adversarial_training.robust_accuracy(self.net, x, y, adv.eps, adv.eval_steps)
        return out

    def end_epoch(self, epoch: int) -> str | None:
        """fast-fgsm: the held-out batch's PGD accuracy; a collapse stops the run with the best epoch's weights."""
        if self.guard is None:
            return None
        adv = self.cfg.adversarial
        x, y = self.check_batch
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            acc = adversarial_training.robust_accuracy(self.net, unit(x.to(self.ctx.device)), y.to(self.ctx.device),
                                              adv.eps, adv.eval_steps)
        acc = float(self.ctx.all_reduce(torch.tensor(acc)) / self.ctx.world)  # every rank decides alike
        if self.guard.update(acc):
            self.net.load_state_dict(self.best_weights)
            best_epoch = self.guard.history.index(self.guard.best) + 1
            return (f"catastrophic overfitting at epoch {epoch}: PGD-{adv.eval_steps} accuracy of the held-out batch "
                    f"fell from {self.guard.best:.1%} to {acc:.1%} (more than adversarial.stop_drop="
                    f"{adv.stop_drop:g}); stopped, keeping the weights of epoch {best_epoch}")
        if self.guard.improved():
            self.best_weights = copy.deepcopy({k: v.detach().cpu() for k, v in self.net.state_dict().items()})
        return None

    def extra_state(self) -> dict:
        if self.guard is None:
            return {}
        return {"guard": self.guard.state(), "best_weights": self.best_weights}

    def load_extra_state(self, state: dict) -> None:
        if self.guard is not None and "guard" in state:
            self.guard.load(state["guard"])
            self.best_weights = state.get("best_weights")

    def figures(self):
        logits, labels = predict(self.net, self.figure_loader.epoch(0), self.ctx)
        pred = logits.argmax(1).cpu().numpy()
        labels = labels.cpu().numpy()
        if self.augment:
            yield "augmented_batch", self.augmented_batch_figure()
        yield "confusion", confusion_figure(labels, pred, self.classes)
        if self.cfg.adversarial.on and self.test_x is not None:
            yield "adversarial_examples", self.adversarial_figure()
        if self.test_x is not None:
            yield "mistakes", mistakes_figure(self.test_x, labels, pred, logits.softmax(1).cpu(), self.classes)

    def adversarial_figure(self):
        """Test images, the PGD perturbation the trained network resists (or not), its predictions."""
        from ..adversarial.figures import panel_figure

        adv = self.cfg.adversarial
        x, y = unit(self.test_x[:6].to(self.ctx.device)), self.test_y[:6].to(self.ctx.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            x_adv = pgd(self.net, x, y, adv.eps, default_step_size(adv.eps, adv.eval_steps), adv.eval_steps)
        with evaluating(self.net), torch.no_grad():
            p_clean, p_adv = self.net(x).float().softmax(1), self.net(x_adv).float().softmax(1)
        return panel_figure(x, x_adv, p_clean, p_adv, self.classes,
                            f"{adv.method}-trained network under PGD-{adv.eval_steps}, eps {adv.eps:g}")

    def augmented_batch_figure(self):
        """The first training batch through the policy, each image labelled with what was done."""
        with torch.random.fork_rng(devices=[]):  # drawing the figure leaves the training stream alone
            torch.manual_seed(self.cfg.seed)
            x, y = next(iter(self.train_loader.epoch(0)))
            x, _, labels = self.augment.trace(x[:16], y[:16], self.num_classes)
        return augment_figures.batch_figure(x, labels)
