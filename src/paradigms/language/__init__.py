"""Self-supervised language models (issue 16, in progress): BERT's masked-token objective (:mod:`.bert`) on the
shared transformer (:mod:`paradigms.nets.transformer`)."""

from .bert import IGNORE, mask_tokens, masked_lm_loss

__all__ = ["IGNORE", "mask_tokens", "masked_lm_loss"]
