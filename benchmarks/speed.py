"""What every benchmark's speed section shares: the engine's training rate on a recipe, measured as a run does it."""

from __future__ import annotations

import shutil
from pathlib import Path

from paradigms.engine import Trainer


def engine_rate(cfg, epochs: int, work: Path, tag: str) -> tuple[int, float]:
    """Train ``cfg``'s recipe for ``epochs`` epochs of its training set with no evaluation until the end (not timed)
    and no figures: (steps, steps per second of the training loop, its logging, checks and checkpoints included)."""
    run_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": epochs, "eval_every": 0,
                                                                           "figures": False})})
    run_dir = Path(work) / f"speed-{tag}"
    shutil.rmtree(run_dir, ignore_errors=True)
    trainer = Trainer(run_cfg, run_dir, progress=False)
    trainer.fit()
    shutil.rmtree(run_dir, ignore_errors=True)
    return trainer.stats["steps"], trainer.stats["steps"] / trainer.stats["train_s"]


def require_data(data_dir) -> None:
    """Stop with one line unless ``data_dir`` holds the shared datasets (MNIST at least)."""
    if not (data_dir and Path(data_dir, "mnist").is_dir()):
        raise SystemExit(f"--data-dir {data_dir!r} has no mnist/: give the shared datasets folder (../shared/datasets)")
