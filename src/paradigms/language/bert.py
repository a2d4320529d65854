"""BERT's masked language model (Devlin et al. 2019, section 3.1): predict the tokens hidden from the input.

Choose 15% of the positions M; of them 80% become [MASK], 10% a random token, 10% stay as they are (so the model
cannot learn that only [MASK] needs predicting); the loss is the cross-entropy on the chosen positions alone:

    L = -(1/|M|) sum_{t in M} log p(x_t | x~)          x~ = the input after the replacements above

``mask_tokens`` and ``masked_lm_loss`` work on any token ids and logits, the recipe's or a user's own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100
"""The target of a position that is not predicted (``F.cross_entropy``'s ignore_index)."""


def mask_tokens(ids: torch.Tensor, mask_id: int, vocab_size: int, p: float = 0.15, keep: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) for masked language modelling of ``ids`` (any shape of token ids).

    Each position is chosen with probability ``p`` (never where ``keep`` is False: padding, [CLS], [SEP]); of the
    chosen, 80% become ``mask_id``, 10% a token drawn uniformly from the vocabulary, 10% are left unchanged.
    ``targets`` holds the original token at the chosen positions and :data:`IGNORE` everywhere else.
    """
    if not 0 < p < 1:
        raise ValueError(f"p={p}: the share of tokens chosen must be in (0, 1) (BERT: 0.15)")
    u = torch.rand(ids.shape, generator=generator, device=ids.device)
    chosen = u < p                                                    # the positions M
    if keep is not None:
        chosen &= keep
    r = torch.rand(ids.shape, generator=generator, device=ids.device)
    to_mask = chosen & (r < 0.8)                                      # 80% of M -> [MASK]
    to_random = chosen & (r >= 0.8) & (r < 0.9)                       # 10% of M -> a random token; 10% stay
    random_ids = torch.randint(vocab_size, ids.shape, generator=generator, device=ids.device)
    inputs = torch.where(to_mask, torch.full_like(ids, mask_id), torch.where(to_random, random_ids, ids))
    targets = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    return inputs, targets


def masked_lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-(1/|M|) sum over the chosen positions of log p(x_t | x~): logits (..., V), targets (...) with IGNORE."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=IGNORE)
