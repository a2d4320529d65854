"""The engine: devices, DDP, the training loop, checkpoints, logging and reports, shared by all recipes."""

from .context import Context, seed_everything
from .trainer import Trainer, evaluate_run, load_trained, report_run

__all__ = ["Context", "Trainer", "evaluate_run", "load_trained", "report_run", "seed_everything"]
