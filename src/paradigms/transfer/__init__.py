"""Transfer learning: reuse what a trained network knows (Yosinski et al. 2014). See :mod:`.core`.

    from paradigms.transfer import transfer
    groups, report = transfer(my_net, "runs/supervised-mnist", "freeze:2", num_classes=5)

The strategies (which layers to freeze, at which rates) are here; reading and importing weights is the shared
:mod:`paradigms.weights`.
"""

from .core import apply_strategy, parse_strategy, transfer

__all__ = ["apply_strategy", "parse_strategy", "transfer"]
