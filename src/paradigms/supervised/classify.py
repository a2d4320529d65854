"""Supervised classification by backpropagation: the recipe every other paradigm is compared with.

Learn f_theta: x -> p(y | x) from labelled pairs by minimising the empirical cross-entropy

    L(theta) = - 1/N sum_n log softmax(f_theta(x_n))_{y_n}

with minibatch SGD (Robbins & Monro 1951; gradients by backpropagation, Rumelhart et al. 1986).
Targets may be class indices or probability vectors (soft targets, as mixup/CutMix produce).
Networks: MLP, LeNet-5, a small ResNet, ResNet-18, a ViT (:mod:`paradigms.nets`), all on pixels in [0, 1]; any
labelled image dataset of :mod:`paradigms.data`.

Paradigms defined from this one change it through its hooks (:mod:`paradigms.hooks`), which it calls at these
points: ``setup`` once the network and the augmentation exist (before the loaders), ``loss`` for each training
step's forward pass and loss, ``evaluate``, ``end_epoch``, ``state``/``load_state`` with the checkpoint, and
``figures`` (between the confusion matrix and the mistakes). Adversarial training is such a hook
(``--set adversarial.method=pgd``: :mod:`paradigms.adversarial.training`); fine-tuning is a recipe built on this one
(:mod:`paradigms.transfer.recipe`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from .. import augment, optim
from ..augment import figures as augment_figures
from ..data.subset import ImageRecipeConfig
from ..errors import UserError
from ..evaluate import confusion_figure, evaluate_classifier, mistakes_figure, predict
from ..hooks import hooks_for
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
    about = ("Supervised learning: a classifier learns p(y | x) from labelled images by minimising the cross-entropy "
             "L = -(1/N) sum_n log p(y_n | x_n) with minibatch stochastic gradient descent, its gradients computed by "
             "backpropagation (Rumelhart, Hinton & Williams 1986, \"Learning representations by back-propagating "
             "errors\"). The network reads pixels in [0, 1] and is an MLP, LeNet-5 (LeCun, Bottou, Bengio & Haffner "
             "1998, \"Gradient-based learning applied to document recognition\"), a ResNet or a ViT; on the embedded "
             "digits it is a small LeNet-5. It is the baseline every other way of learning in the lecture is compared "
             "with, and the one the others change: augmentation and label smoothing are its settings, adversarial "
             "training is its adversarial settings, fine-tuning is this recipe started from another run's weights. "
             "The confusion matrix shows which classes the network mixes up (everything off the diagonal), and the "
             "most confident mistakes show what those errors look like: ambiguous images, or plain failures. In the "
             "learning curves, a training loss that keeps falling while the evaluation loss rises is overfitting.")
    captions = {
        "augmented_batch": "A sample of the first training batch after the augmentation policy, each image titled "
                           "with what was done to it (a mix: its weight and the image blended in): the variations the "
                           "network is taught to ignore.",
        "confusion": "Confusion matrix of the evaluation images (the test set, or the held-out validation images "
                     "with val_size): rows are the true classes, columns the predicted ones; the diagonal is what the "
                     "network gets right, and a large cell off it is a pair of classes it confuses.",
        "mistakes": "The evaluation images the network got wrong with the most confidence, each titled with its "
                    "prediction, the probability it gave it and the true class: look for ambiguous images, and for "
                    "confident errors that a person would never make.",
    }
    commands = ("attack", "certify")

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
        if not self.data.labelled:
            raise UserError(f"dataset {cfg.dataset!r} has no labels (images with no class sub-folders): a classifier "
                            "learns from one sub-folder of images per class (PATH/cat/1.png, PATH/dog/1.jpg, ...); "
                            "on unlabelled images use simclr or moco")
        if len(self.classes) < 2:
            raise UserError(f"classes={cfg.classes}: a classifier needs at least two classes")
        self.hooks = hooks_for(self)   # paradigms defined from this one (adversarial training)
        self.num_classes = len(self.classes)
        self.net = to_device(self.make_net(self.in_shape, self.num_classes), ctx.device)  # pixels in [0, 1] in
        self.modules = {"model": self.net}
        self.train_net = ctx.distribute(self.net)
        self.optimizers = {"opt": optim.build_optimizer(self.param_groups(), cfg.optim)}
        self.augment = augment.build(cfg.augment, cfg.dataset, data.channels, mean=data.mean)
        for hook in self.hooks:
            x, y = hook.setup(x, y)
        self.make_loaders(x, y, test_x, test_y)
        # figures are drawn by rank 0 alone, over the whole test set
        self.figure_loader = self.whole_loader(test_x, test_y, data.test_stream)

    # what recipes built on this one override (fine-tuning builds its net from the source and freezes part of it)
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

        def loss_fn(logits, target):
            return cross_entropy(logits, target, self.cfg.label_smoothing)

        self.train_net.train()
        with self.ctx.autocast():
            out = next((o for hook in self.hooks if (o := hook.loss(x, y, loss_fn)) is not None), None)
            if out is None:                                  # no hook replaces the step: the plain loss
                logits = self.train_net(x)
                out = loss_fn(logits.float(), y), logits, {}
        loss, logits, extra = out
        optim.step(opt, loss, self.cfg.train.grad_clip)
        hard = y if y.ndim == 1 else y.argmax(1)
        return {"loss": loss.detach(), "acc": (logits.detach().argmax(1) == hard).float().mean(), "lr": lr, **extra}

    def evaluate(self) -> dict[str, float]:
        m = evaluate_classifier(self.net, self.test_loader.epoch(0), self.ctx)
        split = "val" if self.cfg.val_size else "test"
        out = {f"{split}/acc": m["acc"], f"{split}/loss": m["loss"]}
        for hook in self.hooks:
            out.update(hook.evaluate(split))
        return out

    def end_epoch(self, epoch: int) -> str | None:
        return next((m for hook in self.hooks if (m := hook.end_epoch(epoch)) is not None), None)

    def extra_state(self) -> dict:
        return {k: v for hook in self.hooks for k, v in hook.state().items()}

    def load_extra_state(self, state: dict) -> None:
        for hook in self.hooks:
            hook.load_state(state)

    def figures(self):
        logits, labels = predict(self.net, self.figure_loader.epoch(0), self.ctx)
        pred = logits.argmax(1).cpu().numpy()
        labels = labels.cpu().numpy()
        if self.augment:
            yield "augmented_batch", self.augmented_batch_figure()
        yield "confusion", confusion_figure(labels, pred, self.classes)
        for hook in self.hooks:
            yield from hook.figures()
        if self.test_x is not None:
            yield "mistakes", mistakes_figure(self.test_x, labels, pred, logits.softmax(1).cpu(), self.classes)

    def augmented_batch_figure(self):
        """The first training batch through the policy, each image labelled with what was done."""
        with torch.random.fork_rng(devices=[]):  # drawing the figure leaves the training stream alone
            torch.manual_seed(self.cfg.seed)
            x, y = next(iter(self.train_loader.epoch(0)))
            x, _, labels = self.augment.trace(x[:16], y[:16], self.num_classes)
        return augment_figures.batch_figure(x, labels)
