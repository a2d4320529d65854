"""The Python front door: train a recipe with :func:`run`, get any run's trained network with :func:`load`.

    import paradigms
    result = paradigms.run("supervised", dataset="digits", sets=["train.epochs=5"])
    net = paradigms.load(result.run_dir)          # eval mode, pixels in [0, 1] in, logits out
    net.classes, net.input_shape                  # ['0', ..., '9'], (1, 8, 8)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from .errors import CheckpointError, UserError


@dataclass
class RunResult:
    """A finished run: its folder and its final metrics."""

    run_dir: Path
    metrics: dict

    def load(self, device: str = "cpu") -> nn.Module:
        return load(self.run_dir, device)


def run(recipe: str, dataset: str | None = None, preset: str = "quick", sets: list[str] | None = None,
        config: str | Path | None = None, out: str | Path | None = None, progress: bool = False, **flags) -> RunResult:
    """Train ``recipe`` as ``paradigms run`` does (the same config layers; ``flags``: seed, device,
    data_dir, source) and return its folder and final metrics."""
    from . import config as configlib
    from . import recipes
    from .engine import Trainer

    cfg = configlib.resolve(recipes.get(recipe), preset, config, sets or [], {"dataset": dataset, **flags})
    trainer = Trainer(cfg, out, progress=progress)
    metrics = trainer.fit()
    trainer.ctx.close()
    return RunResult(trainer.run_dir, metrics)


def load(run_dir: str | Path, device: str = "cpu", *, untrained: bool = False, seed: int = 0) -> nn.Module:
    """The trained network of the run in ``run_dir``, in eval mode, on ``device``, ready to call on pixels
    in [0, 1]; ``net.classes`` (class names), ``net.input_shape`` (C, H, W) and ``net.card`` (model.json)
    say what it is. Built from ``model.json`` and the latest checkpoint: the dataset is not read. On a CPU a
    convolutional network comes in the channels_last memory format, as training runs it (faster there).
    ``untrained=True``: the same network freshly initialised (``torch.manual_seed(seed)``), no checkpoint read: the
    baseline that shows what training added.
    """
    import torch

    from . import recipes
    from .engine import checkpoint as ckpt
    from .nets import to_device

    run_dir = Path(run_dir)
    path = run_dir / "model.json"
    if not path.is_file():
        if not (run_dir / "config.yaml").is_file():
            raise UserError(f"{run_dir} is not a run folder: {run_dir / 'config.yaml'} is missing")
        raise UserError(f"{run_dir} has no model.json: its recipe saves no network to load "
                        "(or the run was made before model.json existed; train it again)")
    try:
        card = json.loads(path.read_text())
        recipe, module = card["recipe"], card["module"]
    except (ValueError, KeyError, TypeError):
        raise UserError(f"{path} is corrupt (not the JSON a run writes); train the run again") from None
    if untrained:
        torch.manual_seed(seed)
    net = recipes.get(recipe).build_network(card)
    try:
        if not untrained:
            net.load_state_dict(ckpt.module_weights(run_dir / "checkpoints", module))
    except RuntimeError as e:
        raise CheckpointError(f"the checkpoint in {run_dir / 'checkpoints'} does not match {path}: "
                              f"{str(e).splitlines()[0]}") from None
    net.classes = card.get("classes")
    net.input_shape = tuple(card["input_shape"]) if "input_shape" in card else None
    net.card = card
    return to_device(net, device).eval()       # on a CPU, a convolutional network as training runs it: channels_last
