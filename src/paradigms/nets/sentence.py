"""A text's vector from a transformer encoder, as sentence-transformers computes it: the mean of the last layer's
states over the text's tokens, L2-normalised. With all-MiniLM-L6-v2 (:func:`paradigms.nets.pretrained.from_pretrained`)
it gives sentence-transformers' embeddings; the ``paradigms embed`` command, the sentence classifier and CLIP's locked
text tower use it.

    model, tokenizer = from_pretrained(resolve_model("minilm"))
    sentence_embeddings(model, tokenizer, ["a cat", "a dog"])       # (2, 384), unit rows
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..data.tokenize import SubwordTokenizer, pad, truncate
from ..errors import UserError
from .transformer import Transformer, mean_pool


@torch.no_grad()
def sentence_embeddings(model: Transformer, tokenizer: SubwordTokenizer, texts: Sequence[str], batch_size: int = 64,
                        normalize: bool = True, max_tokens: int | None = None) -> torch.Tensor:
    """One vector per text (N, C), as sentence-transformers computes it: the mean of the last layer's states over
    the text's tokens ([CLS] and [SEP] included, padding not), then divided by its L2 norm when ``normalize``.

    Each text is tokenised with [CLS] ... [SEP] and cut to ``max_tokens`` tokens (default: ``model.hf.max_tokens``,
    sentence-transformers' max_seq_length, else the block size; never more than the block size) keeping the final
    [SEP]. Texts are batched by length, so a batch carries little padding; the rows come back in the input order,
    on the model's device."""
    texts = list(texts)
    limit = max_tokens or getattr(getattr(model, "hf", None), "max_tokens", None) or model.cfg.block_size
    limit = min(limit, model.cfg.block_size)
    if limit < 2:
        raise UserError(f"max_tokens={max_tokens}: a text needs at least 2 tokens ([CLS] and [SEP])")
    ids = truncate(tokenizer.encode_batch(texts, special_tokens=True), limit)   # keep the final [SEP]
    pad_id = tokenizer.token_id("[PAD]")
    device = next(model.parameters()).device
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))               # longest first: batches of like lengths
    out = torch.empty(len(ids), model.cfg.n_embd, device=device)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch, keep = pad([ids[i] for i in rows], pad_id, device)     # (B, T) ids, (B, T) True = a real token
            h = model.hidden(batch, keep)                                     # (B, T, C)
            out[torch.tensor(rows, device=device)] = mean_pool(h, keep).float()   # (B, C): mean over real tokens
    finally:
        model.train(was_training)
    return F.normalize(out, p=2, dim=1) if normalize else out


__all__ = ["sentence_embeddings"]
