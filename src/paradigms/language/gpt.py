"""GPT's objective (Radford et al. 2018): predict every next token from the ones before it.

A causal transformer reads x_1..x_T and, at each position t, gives p(x_{t+1} | x_1..x_t); training minimises the
average negative log-likelihood of the text, the cross-entropy of each next token:

    L = -(1/T) sum_{t=1..T} log p(x_{t+1} | x_{<=t})

Causal attention makes all T predictions of a window one forward pass. ``next_token_loss`` works on any
logits and ids, the recipe's or a user's own; generation is :meth:`paradigms.nets.transformer.Transformer.generate`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-(1/N) sum log p(target): logits (B, T, V) at positions 1..T, targets (B, T) the ids at 2..T+1."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))
