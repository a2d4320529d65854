"""The engine: devices, DDP, the training loop, checkpoints, logging and reports, shared by all recipes."""

from .context import Context, seed_everything
from .loader import ImageLoader, Normalize, index_batches
from .trainer import Trainer, evaluate_run, load_trained, report_run

__all__ = ["Context", "ImageLoader", "Normalize", "Trainer", "evaluate_run", "index_batches", "load_trained",
           "report_run", "seed_everything"]
