"""A run's record: ``metrics.jsonl`` (one JSON object a line) and a TensorBoard log (``tb/``).

Only rank 0 writes. On resume the lines past the checkpoint's step are dropped, so the record
reads as if the run had never stopped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .checkpoint import atomic_write_text


def is_rate(key: str) -> bool:
    """``lr`` and ``lr_*`` are learning rates a recipe reports: logged as they are, not averaged or plotted
    with the metrics."""
    return key == "lr" or key.startswith("lr_")


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # a line cut by a kill mid-write
            continue
    return rows


class RunLog:
    def __init__(self, run_dir: Path, enabled: bool = True, resume_step: int | None = None):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self.tb = None
        if not enabled:
            return
        if resume_step is not None:
            kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= resume_step and r.get("split") != "final"]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=resume_step)
        except ImportError:  # tensorboard is a dependency; stay usable without it all the same
            self.tb = None
        self.file = open(self.path, "a")

    def write(self, step: int, split: str, metrics: dict, **extra) -> None:
        if not self.enabled:
            return
        clean = {k: (float(v) if isinstance(v, (int, float)) and math.isfinite(v) else str(v)) for k, v in metrics.items()}
        self.file.write(json.dumps({"step": step, "split": split, **extra, **clean}) + "\n")
        self.file.flush()
        if self.tb is not None:
            for k, v in clean.items():
                if isinstance(v, float):
                    self.tb.add_scalar(f"{split}/{k}", v, step)

    def close(self) -> None:
        if self.enabled:
            self.file.close()
            if self.tb is not None:
                self.tb.close()
