"""The engine: devices, DDP, the training loop, checkpoints, logging and reports, shared by all recipes."""

from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same names, for type checkers and editors (importing the package imports none)
    from .context import Context, seed_everything
    from .trainer import Trainer, evaluate_run, load_trained, report_run

__getattr__, __dir__, __all__ = attach(__name__, {
    "context": ["Context", "seed_everything"],
    "trainer": ["Trainer", "evaluate_run", "load_trained", "report_run"],
})
