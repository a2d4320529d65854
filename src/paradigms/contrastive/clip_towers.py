"""CLIP's two towers (Radford et al. 2021): images and texts into one space of width D, and the words captions use.

    image tower   x -> f(x) -> W_i f(x)                     f: a paradigms.nets network without its head   (N, D)
    text tower    caption -> [CLS] caption [SEP] -> transformer -> mean over the tokens -> W_t            (N, D)

The text transformer is trained from scratch (:class:`TextConfig`) or a pretrained BERT-family encoder held
*locked* (LiT, Zhai et al. 2022): no gradient, out of the checkpoint, its features of a text computed once. The
recipe that trains them: :mod:`.clip_recipe`.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from ..config import Section
from ..data.tokenize import text_batch
from ..errors import UserError
from ..nets.transformer import Transformer, TransformerConfig, mean_pool
from .clip import LogitScale

WORDS = {**{str(i): w for i, w in enumerate("zero one two three four five six seven eight nine".split())},
         "T-shirt/top": "t-shirt", "Ankle boot": "ankle boot"}
"""The word a caption uses for a dataset's class name, where the name itself is not a word (otherwise: the name in
lower case, underscores as spaces)."""


class TextConfig(Section):
    """The text tower trained from scratch: a bidirectional pre-norm transformer."""

    n_layer: int = Field(2, ge=1, le=48)
    n_head: int = Field(4, ge=1)
    n_embd: int = Field(128, ge=8)
    max_tokens: int = Field(32, ge=4, le=512, description="a text is cut to this many tokens ([CLS] and [SEP] "
                            "included)")

    def transformer(self, vocab_size: int) -> Transformer:
        """The tower's untrained transformer over a vocabulary of ``vocab_size`` tokens."""
        try:
            return Transformer(TransformerConfig(vocab_size=vocab_size, block_size=self.max_tokens,
                                                 n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd,
                                                 causal=False, norm_first=True))
        except ValueError as e:   # n_embd not divisible by n_head
            raise UserError(f"text_model: {e}") from None


class TextTower(nn.Module):
    """Texts -> (N, D): [CLS] text [SEP] through a transformer, the mean of its last states over the text's tokens
    (sentence-transformers' pooling), a linear map W_t. ``locked``: the transformer gets no gradient, is kept out of
    this module's parameters and state (its weights come from its pretrained folder, never from a checkpoint), and its
    features of a text are computed once."""

    def __init__(self, net: Transformer, tokenizer, dim: int, max_tokens: int, locked: bool):
        super().__init__()
        self.tokenizer, self.locked = tokenizer, locked
        self.max_tokens = min(max_tokens, net.cfg.block_size)
        if locked:
            self._frozen = [net.requires_grad_(False).eval()]     # a list: not a sub-module (no state, no .to())
            self._cache: dict[str, torch.Tensor] = {}
        else:
            self.net = net
        self.proj = nn.Linear(net.cfg.n_embd, dim, bias=False)    # W_t

    @property
    def transformer(self) -> Transformer:
        return self._frozen[0] if self.locked else self.net

    def _apply(self, fn, *args, **kwargs):   # .to(device) moves the locked transformer and its cache too
        super()._apply(fn, *args, **kwargs)
        if self.locked:
            self._frozen[0]._apply(fn, *args, **kwargs)
            self._cache = {k: fn(v) for k, v in self._cache.items()}
        return self

    def pooled(self, texts: list[str]) -> torch.Tensor:
        """The transformer's mean-pooled states of ``texts`` (N, C)."""
        net = self.transformer
        ids, keep = text_batch(self.tokenizer, texts, self.max_tokens, self.proj.weight.device)   # (N, T) each
        return mean_pool(net.hidden(ids, keep), keep).float()                                     # (N, C)

    def features(self, texts: list[str]) -> torch.Tensor:
        """(N, C) for ``texts``, each distinct text through the transformer once."""
        unique = list(dict.fromkeys(texts))
        if self.locked:
            new = [t for t in unique if t not in self._cache]
            if new:
                with torch.no_grad():
                    self._cache.update(zip(new, self.pooled(new)))
            f = torch.stack([self._cache[t] for t in unique])
        else:
            f = self.pooled(unique)
        where = {t: i for i, t in enumerate(unique)}
        return f[torch.tensor([where[t] for t in texts], device=f.device)]

    def forward(self, texts: list[str]) -> torch.Tensor:
        return self.proj(self.features(list(texts)))             # (N, D)

    def words(self, text: str) -> list[str]:
        """The words of ``text`` as the tokeniser splits it before its vocabulary (normalised: a BERT tokeniser's
        lower case; punctuation apart)."""
        tok = self.tokenizer.tok
        normal = tok.normalizer.normalize_str(text) if tok.normalizer is not None else text
        return [w for w, _ in tok.pre_tokenizer.pre_tokenize_str(normal)] if tok.pre_tokenizer else normal.split()

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` this tower cannot read: a tower trained from scratch knows only the words of its
        training captions (any other is spelled out in characters it never learnt meanings for); a pretrained one
        knows every word its vocabulary can spell without [UNK]."""
        tok, words = self.tokenizer.tok, self.words(text)
        if self.locked:
            unk = tok.token_to_id("[UNK]")
            return [w for w in words if unk in tok.encode(w, add_special_tokens=False).ids]
        vocab = tok.get_vocab()
        return [w for w in words if w not in vocab]


class CLIPModel(nn.Module):
    """The two towers and the temperature: ``(images (N, C, H, W) in [0, 1], N texts) -> (I (N, D), T (N, D), s)``."""

    def __init__(self, image: nn.Module, image_proj: nn.Linear, text: TextTower, logit_scale: LogitScale):
        super().__init__()
        self.image, self.image_proj, self.text, self.logit_scale = image, image_proj, text, logit_scale

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.image_proj(self.image(x))                      # W_i f(x): (N, D)

    def forward(self, x: torch.Tensor, texts: list[str]):
        return self.encode_image(x), self.text(texts), self.logit_scale()


def caption_names(classes: list[str], given: list[str] | None) -> list[str]:
    """The word for each class in captions: ``given``, else :data:`WORDS` or the class name in lower case."""
    if given is not None:
        if len(given) != len(classes) or not all(n.strip() for n in given):
            raise UserError(f"class_names: give {len(classes)} non-empty names, one per class in order "
                            f"({', '.join(classes)}); got {len(given)}")
        return [n.strip() for n in given]
    return [WORDS.get(c, c.replace("_", " ").lower()) for c in classes]


__all__ = ["CLIPModel", "TextConfig", "TextTower", "WORDS", "caption_names"]
