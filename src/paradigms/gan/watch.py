"""Watching the game for a discriminator that has won outright: the generator then gets no useful gradient.

D wins outright when its mean output is above 0.99 on real images and below 0.01 on generated ones. After
``diverge_steps`` such steps in a row the run stops (:class:`~paradigms.errors.Diverged`), and the engine keeps the
last checkpoint from before the first of them (``since``, the recipe's ``trouble_since``).
"""

from __future__ import annotations

import torch

from ..errors import Diverged


class WinWatch:
    """``update(step, d_real, d_fake)`` after every discriminator step; ``since``: the step D's win began, or None."""

    def __init__(self, cfg):
        self.cfg, self.since = cfg, None

    def update(self, step: int, d_real: torch.Tensor, d_fake: torch.Tensor) -> None:
        """Raise :class:`Diverged`, with what to try, once D has won outright ``diverge_steps`` steps in a row."""
        cfg = self.cfg
        limit = cfg.diverge_steps
        if not limit:
            return
        won = bool(d_real > 0.99) and bool(d_fake < 0.01)
        self.since = (self.since if self.since is not None else step) if won else None
        if won and step - self.since + 1 >= limit:
            tries = [*(["loss=non-saturating"] if cfg.loss == "minimax" and not cfg.feature_matching else []),
                     *(["label_smoothing=0.1"] if not cfg.label_smoothing else []), f"optim_d.lr below {cfg.optim_d.lr:g}",
                     *(["k=1"] if cfg.k > 1 else [])]
            raise Diverged(f"the discriminator has won outright since step {self.since} (D(x) = {float(d_real):.3f}, "
                           f"D(G(z)) = {float(d_fake):.4f}, {limit} steps in a row: diverge_steps): the generator gets "
                           f"no useful gradient; try {', '.join(tries)}", self.since)


__all__ = ["WinWatch"]
