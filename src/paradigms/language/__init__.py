"""Self-supervised language models on the one transformer (:mod:`paradigms.nets.transformer`).

- :mod:`.gpt`: next-token prediction, ``next_token_loss``; the ``gpt`` recipe (:mod:`.gpt_recipe`);
- :mod:`.bert`: masked language modelling, ``mask_tokens`` and ``masked_lm_loss``; the ``bert`` recipe;
- :mod:`.hf`: Hugging Face BERT checkpoints (MiniLM) into our transformer, ``from_pretrained``, ``sentence_embeddings``;
- :mod:`.classify`: an encoder fine-tuned for a sentence-level task (Tiny Shakespeare's speakers);
- :mod:`.corpus`: what the two recipes share (corpus, tokeniser, windows of token ids).
"""

from .bert import IGNORE, mask_tokens, masked_lm_loss
from .gpt import next_token_loss
from .hf import from_pretrained, sentence_embeddings

__all__ = ["IGNORE", "from_pretrained", "mask_tokens", "masked_lm_loss", "next_token_loss", "sentence_embeddings"]
