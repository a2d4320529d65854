"""Transfer learning: reuse what a trained network knows (Yosinski et al. 2014). See :mod:`.core`.

    from paradigms.transfer import transfer
    groups, report = transfer(my_net, "runs/supervised-mnist", "freeze:2", num_classes=5)

The strategies (which layers to freeze, at which rates) are here; reading and importing weights is the shared
:mod:`paradigms.weights`.
"""

from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same names, for type checkers and editors (importing the package imports none)
    from .core import apply_strategy, parse_strategy, transfer

__getattr__, __dir__, __all__ = attach(__name__, {
    "core": ["apply_strategy", "parse_strategy", "transfer"],
})
