"""Transfer learning: reuse what a trained network knows (Yosinski et al. 2014). See :mod:`.core`.

    from paradigms.transfer import transfer
    groups, report = transfer(my_net, "runs/supervised-mnist", "freeze:2", num_classes=5)
"""

from .core import (ImportReport, apply_strategy, import_weights, layers, parse_strategy, read_weights, rename,
                   transfer)

__all__ = ["ImportReport", "apply_strategy", "import_weights", "layers", "parse_strategy", "read_weights",
           "rename", "transfer"]
