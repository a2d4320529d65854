"""What every benchmark's speed section shares: the engine's training rate on a recipe, measured as a run does it;
the command line of the speed scripts."""

from __future__ import annotations

import argparse
import json
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


def speed_main(doc: str, speed_table, **options: int) -> None:
    """The command line of a speed script (attack_speed.py, smoothing_speed.py): ``--NAME N`` for each of its
    ``options`` (N its default); prints this machine's matmul peak, then the rows of ``speed_table(peak, **options)``
    as JSON and its table. ``doc``: the script's docstring, whose first line describes it."""
    from bench_supervised import matmul_peak

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, default in options.items():
        ap.add_argument(f"--{name}", type=int, default=default)
    args = ap.parse_args()
    peak = matmul_peak()
    print(f"matmul peak {peak:.0f} GFLOP/s", flush=True)
    lines, rows = speed_table(peak, **vars(args))
    for r in rows:
        print(json.dumps(r), flush=True)
    print("\n".join(lines))
