"""Hooks: how a paradigm changes a recipe it is defined from, without that recipe knowing it.

Adversarial training is supervised learning on attacked inputs. So the supervised recipe does not import the
adversarial package; it calls its *hooks* at fixed points of a run, and the adversarial package registers one. A hook
brings a config section of its own, which every recipe it extends gains (``--set adversarial.method=pgd`` on
``supervised`` and on ``finetune``, which is built on it), and is built for a run only when that section asks for it.

    # paradigms/adversarial/training.py (listed under HOOKS in paradigms/adversarial/plugin.py)
    @hooks.register
    class AdversarialTraining(hooks.Hook):
        key = "adversarial"              # the config section
        Config = AdversarialConfig       # its settings (a paradigms.config.Section)
        extends = "supervised"           # the recipe, and every recipe built on it, that gains the section

        def loss(self, x, y, loss_fn): ...   # the step's loss on attacked images

The points a recipe calls (each a no-op by default; a recipe's docstring says which it calls, and where):

- ``setup(x, y) -> (x, y)``: once, with the training images and labels in memory, after the networks and the
  augmentation are built and before the loaders: hold images out, or refuse a setting that cannot work;
- ``loss(x, y, loss_fn) -> (loss, logits, extra) | None``: the training step's forward pass and loss, in train
  mode under the run's autocast, instead of the recipe's own (``extra``: more named scalars for the log);
- ``evaluate(split) -> dict``: more metrics at each evaluation, named ``f"{split}/..."``;
- ``end_epoch(epoch) -> str | None``: after each epoch's evaluation; a message stops the run there;
- ``state() -> dict`` / ``load_state(state)``: what a checkpoint keeps of the hook (merged into the recipe's own);
- ``figures()``: more ``(name, figure)`` pairs for the report, each captioned in ``captions``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from .config import Section

HOOKS: dict[str, type[Hook]] = {}


def register(cls: type[Hook]) -> type[Hook]:
    """Make ``cls`` a hook of the recipe it ``extends`` (and of every recipe built on that one)."""
    HOOKS[cls.key] = cls
    return cls


class Hook:
    """A paradigm's change to the runs of another recipe (see the module docstring)."""

    key: ClassVar[str]
    Config: ClassVar[type[Section]]
    extends: ClassVar[str]
    captions: ClassVar[dict[str, str]] = {}     # one sentence per figure the hook draws, by name

    def __init__(self, recipe: Any, cfg: Section):
        self.recipe, self.cfg = recipe, cfg

    @classmethod
    def wanted(cls, cfg: Section) -> bool:
        """Whether a run with this section needs the hook at all (a switched-off hook is never built)."""
        return True

    def setup(self, x, y):
        return x, y

    def loss(self, x, y, loss_fn):
        return None

    def evaluate(self, split: str) -> dict[str, float]:
        return {}

    def end_epoch(self, epoch: int) -> str | None:
        return None

    def state(self) -> dict:
        return {}

    def load_state(self, state: dict) -> None:
        pass

    def figures(self) -> Iterator[tuple[str, Any]]:
        return iter(())


def extend_configs(recipes: dict[str, type]) -> None:
    """Give every recipe that a registered hook extends (or that is built on it) the hook's config section."""
    from pydantic import create_model

    for hook in HOOKS.values():
        base = recipes.get(hook.extends)
        if base is None:
            continue
        for recipe in recipes.values():
            if issubclass(recipe, base) and hook.key not in recipe.Config.model_fields:
                config = recipe.Config
                recipe.Config = create_model(config.__name__, __base__=config, __module__=config.__module__,
                                             **{hook.key: (hook.Config, hook.Config())})


def hooks_for(recipe: Any) -> list[Hook]:
    """The hooks a run of ``recipe`` needs: those whose config section it has and wants them."""
    out = []
    for key, hook in HOOKS.items():
        section = getattr(recipe.cfg, key, None)
        if isinstance(section, hook.Config) and hook.wanted(section):
            out.append(hook(recipe, section))
    return out


__all__ = ["HOOKS", "Hook", "extend_configs", "hooks_for", "register"]
