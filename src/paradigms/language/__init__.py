"""Self-supervised language models on the one transformer (:mod:`paradigms.nets.transformer`).

- :mod:`.gpt`: next-token prediction, ``next_token_loss``; the ``gpt`` recipe (:mod:`.gpt_recipe`);
- :mod:`.bert`: masked language modelling, ``mask_tokens`` and ``masked_lm_loss``; the ``bert`` recipe;
- :mod:`.classify`: an encoder fine-tuned for a sentence-level task (Tiny Shakespeare's speakers);
- :mod:`.corpus`: what the two recipes share (corpus, tokeniser, windows of token ids).

A Hugging Face BERT checkpoint (MiniLM) in our transformer, and its sentence embeddings, are shared machinery:
:mod:`paradigms.nets.pretrained`, :mod:`paradigms.nets.sentence`.
"""

from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same names, for type checkers and editors (importing the package imports none)
    from .bert import IGNORE, mask_tokens, masked_lm_loss
    from .gpt import next_token_loss

__getattr__, __dir__, __all__ = attach(__name__, {
    "bert": ["IGNORE", "mask_tokens", "masked_lm_loss"],
    "gpt": ["next_token_loss"],
})
