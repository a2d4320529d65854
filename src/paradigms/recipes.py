"""The recipe protocol and the registry that ``paradigms list`` shows.

A recipe is one paradigm of learning. It says *what* is learned; the engine
(:mod:`paradigms.engine`) owns *how the run goes*: devices, DDP, the loop, logging,
checkpoints, resumption, reports. A recipe subclass provides:

- ``Config``: its pydantic config (a :class:`~paradigms.config.RecipeConfig` subclass) and
  ``preset(name, dataset)``: the overrides of its ``quick`` (2 CPU cores, minutes) and ``full``
  (paper scale) presets;
- ``__init__(cfg, ctx)``: build data, networks and optimisers; put every network that must be
  checkpointed in ``self.modules`` and every optimiser in ``self.optimizers`` (a GAN has two);
- ``batches(epoch, start)`` and ``steps_per_epoch``: the training batches of an epoch;
- ``train_step(batch, step)``: forward, backward and update, driving one optimiser or several
  (:mod:`paradigms.optim`); returns named scalars, which may differ between steps (each is averaged
  over the steps that reported it); every name starting with ``loss`` is checked for NaN/inf, and
  ``lr`` is the learning rate the step used;
- ``evaluate()``: named metrics; ``figures()``: named matplotlib figures;
- optionally ``sample(n)``: a generative recipe's n samples, images (N, C, H, W) in [0, 1] (``paradigms sample``);
- optionally ``end_epoch(epoch)``: called after each epoch (after its evaluation); a message stops the
  run there, said in the log and the report (fast FGSM stops at catastrophic overfitting);
- optionally ``trouble_since()``: the step since which training looks wrong; the engine keeps the last
  checkpoint from before it, and a :class:`~paradigms.errors.Diverged` raised by ``train_step`` rolls the
  run back to it (a GAN whose discriminator wins outright);
- ``about``, ``captions`` and ``commands``: the report's paragraph on the recipe (what it learns, from which paper,
  what to look for in its figures), one sentence per figure, and the commands that work on its runs;
- optionally ``encoder``: the key in ``modules`` of the network whose knowledge other recipes
  reuse (:mod:`paradigms.transfer` loads it from the run folder); ``network``: the key of the network
  ``paradigms.load(RUN_DIR)`` gives, with ``network_card()`` (written to ``model.json``: what rebuilds
  it without the dataset) and ``build_network(card)``; ``prepare(cfg)``: complete a
  fresh run's config before it is saved; ``start()``: work done once before the first step of a
  fresh run, never on resume (fine-tuning imports its pretrained weights there).

Mixup or a GAN change only their recipe's ``train_step``; a paradigm defined from another recipe (adversarial training
from supervised learning) changes it through that recipe's hooks (:mod:`paradigms.hooks`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import torch
from torch import nn

from .config import RecipeConfig
from .errors import unknown

REGISTRY: dict[str, type[Recipe]] = {}


def register(cls: type[Recipe]) -> type[Recipe]:
    REGISTRY[cls.name] = cls
    return cls


def all_recipes() -> dict[str, type[Recipe]]:
    """Every recipe of every paradigm package (see :mod:`paradigms.plugins`), each with the config sections of the
    hooks that extend it (:mod:`paradigms.hooks`)."""
    from .hooks import extend_configs
    from .plugins import plugins

    for plugin in plugins():
        for mod in (*getattr(plugin, "RECIPES", ()), *getattr(plugin, "HOOKS", ())):
            importlib.import_module(mod)
    extend_configs(REGISTRY)
    return dict(sorted(REGISTRY.items()))


def get(name: str) -> type[Recipe]:
    recipes = all_recipes()
    if name not in recipes:
        raise unknown("recipe", name, recipes)
    return recipes[name]


class Recipe:
    """Base class of every paradigm (see the module docstring for the protocol)."""

    name: ClassVar[str]
    family: ClassVar[str]
    measures: ClassVar[str]
    Config: ClassVar[type[RecipeConfig]]
    encoder: ClassVar[str | None] = None
    network: ClassVar[str | None] = None
    about: ClassVar[str] = ""
    """The report's paragraph: what the recipe learns (with its paper), what its figures show, what to look for."""
    captions: ClassVar[dict[str, str]] = {}
    """One sentence per figure the recipe draws, by the figure's name (``figures()``)."""
    commands: ClassVar[tuple[str, ...]] = ()
    """The sub-commands that work on a run of this recipe (``attack``, ``sample``, ...), said after a run."""

    modules: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def __init__(self, cfg: RecipeConfig, ctx: Any):
        self.cfg, self.ctx = cfg, ctx
        self.modules, self.optimizers = {}, {}

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        """Overrides for the ``quick`` or ``full`` preset on ``dataset`` (a nested dict)."""
        return {}

    @classmethod
    def prepare(cls, cfg: RecipeConfig) -> RecipeConfig:
        """A fresh run's config, completed before it is saved (e.g. the architecture of a source run)."""
        return cfg

    def start(self) -> None:
        """Called once before the first step of a fresh run (not on resume, not for evaluation)."""

    # -- the network paradigms.load(RUN_DIR) gives --------------------------------------------------
    def network_card(self) -> dict:
        """What ``model.json`` keeps of ``modules[network]``: enough for :meth:`build_network`."""
        raise NotImplementedError

    @classmethod
    def build_network(cls, card: dict) -> nn.Module:
        """The untrained network of a card; the weights come from the run's checkpoint."""
        from .nets import from_card

        return from_card(card)

    # -- training -------------------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        raise NotImplementedError

    def batches(self, epoch: int, start: int = 0) -> Iterable[Any]:
        """The batches of ``epoch`` from batch ``start`` on (deterministic given seed and epoch)."""
        raise NotImplementedError

    def train_step(self, batch: Any, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # -- evaluation and pictures ----------------------------------------------------------------
    def evaluate(self) -> dict[str, float]:
        return {}

    def end_epoch(self, epoch: int) -> str | None:
        """After each epoch: a message to stop the run early (why), or None to go on."""
        return None

    def trouble_since(self) -> int | None:
        """The step since which training looks wrong (a GAN's discriminator winning outright), or None: the
        engine keeps the last checkpoint from before it, and rolls back to it if the recipe then raises
        :class:`~paradigms.errors.Diverged`."""
        return None

    def figures(self) -> Iterator[tuple[str, Any]]:
        """Yield ``(name, matplotlib Figure)`` pairs; the engine saves them under figures/."""
        return iter(())

    # -- state beyond modules and optimisers (rarely needed) -------------------------------------
    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass


class ImageRecipe(Recipe):
    """A recipe that learns from an image dataset (its config an ``ImageRecipeConfig``): the dataset is loaded
    and selected once here, and its batches (pixels in [0, 1]) come from ``train_loader``.

    In ``__init__``: ``x, y, test_x, test_y = self.load_images()``, change the training selection if need be
    (fast FGSM holds a batch out), then ``self.make_loaders(x, y, test_x, test_y)``.
    """

    def load_images(self):
        """Load ``cfg.dataset`` and apply the run's selection: sets ``data``, ``classes``, ``in_shape``; returns
        the training and evaluation images and labels (uint8 tensors; None for a dataset streamed from disk)."""
        from .data import load_images
        from .data.subset import select

        cfg = self.cfg
        self.data = data = load_images(cfg.dataset, cfg.data_dir, max_memory_mb=cfg.memory_mb)
        x, y, test_x, test_y, self.classes = select(data, cfg)
        self.in_shape = (data.channels, *data.size)
        return x, y, test_x, test_y

    def make_loaders(self, x, y, test_x, test_y, test_batch_size: int = 1024) -> None:
        """``train_loader`` (shuffled, sharded by rank), ``test_loader`` (in order) and ``total_steps``."""
        from .data import ImageLoader

        cfg, ctx, data = self.cfg, self.ctx, self.data
        self.loader_args = dict(device=ctx.device, seed=cfg.seed, rank=ctx.rank, world=ctx.world,
                                workers=cfg.train.workers)
        self.train_loader = ImageLoader(x, y, batch_size=cfg.train.batch_size, stream=data.train_stream,
                                        **self.loader_args)
        self.test_loader = ImageLoader(test_x, test_y, batch_size=test_batch_size, shuffle=False, drop_last=False,
                                       stream=data.test_stream, **self.loader_args)
        self.train_x, self.train_y, self.test_x, self.test_y = x, y, test_x, test_y
        self.total_steps = cfg.train.epochs * self.steps_per_epoch

    def whole_loader(self, x, y, stream=None):
        """Every image of ``x`` in order, in batches of 1,024, on every rank alike: what an evaluation or a figure
        reads whole (each rank its own copy). Call after :meth:`make_loaders`."""
        from .data import ImageLoader

        return ImageLoader(x, y, batch_size=1024, shuffle=False, drop_last=False, stream=stream,
                           **{**self.loader_args, "world": 1, "rank": 0})

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_loader)

    def batches(self, epoch: int, start: int = 0):
        return self.train_loader.epoch(epoch, start)


class EncoderRecipe(ImageRecipe):
    """An image recipe whose network (``modules[network]``) is an encoder that :func:`paradigms.nets.build_encoder`
    built from ``cfg.model``: ``model.json`` keeps its card (no classes; its feature width), ``paradigms.load``
    rebuilds it (SimCLR, MoCo, the MAE, CLIP's image tower)."""

    def network_card(self) -> dict:
        from .nets import encoder_card

        return encoder_card(self.cfg.model, self.modules[self.network], self.in_shape)

    @classmethod
    def build_network(cls, card: dict) -> nn.Module:
        from .nets import encoder_from_card

        return encoder_from_card(card)
