"""Tokenisers: text <-> token ids, for every recipe that reads text (GPT, BERT, later CLIP's text tower).

    CharTokenizer        one token per character of the corpus (nanoGPT's shakespeare_char), plus special tokens
    SubwordTokenizer     a ``tokenizers`` (Hugging Face) tokeniser: a byte-level BPE (GPT-2) or a WordPiece (BERT)
                         trained on the corpus by :func:`train_tokenizer`, or a pretrained model's tokenizer.json

Both have ``vocab_size``, ``encode(text) -> LongTensor``, ``decode(ids) -> str``, ``token_id(special)``,
``specials`` and ``save(path)``; :func:`load_tokenizer` reads back what ``save`` wrote (ours or a Hugging Face
tokenizer.json). Special tokens written in the text (``[MASK]``) become their own ids in both kinds.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..errors import DataError, UserError
from .wordpiece import learn_wordpieces, lines, word_counts

Kind = Literal["char", "bpe", "wordpiece"]
KINDS = ("char", "bpe", "wordpiece")
BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
"""The special tokens a BERT vocabulary holds (a GPT's holds none)."""

_CHAR_FORMAT = "paradigms-char-tokenizer"


def _ids_array(ids) -> np.ndarray:
    if isinstance(ids, torch.Tensor):
        ids = ids.detach().cpu().numpy()
    return np.asarray(ids, dtype=np.int64).reshape(-1)


class CharTokenizer:
    """One id per distinct character of a corpus (sorted by code point), then one per special token."""

    kind = "char"

    def __init__(self, chars: list[str] | str, specials: tuple[str, ...] | list[str] = (), name: str = "the corpus"):
        self.chars = sorted(set(chars))
        self.specials = tuple(specials)
        self.name = name
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)
        self._split = re.compile("(" + "|".join(re.escape(s) for s in self.specials) + ")") if self.specials else None

    @classmethod
    def train(cls, text: str, specials=(), name: str = "the corpus") -> CharTokenizer:
        return cls(sorted(set(text)), specials, name)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + len(self.specials)

    def token_id(self, special: str) -> int:
        if special not in self.specials:
            raise UserError(f"the tokeniser has no special token {special!r} (it has: {', '.join(self.specials) or 'none'})")
        return len(self.chars) + self.specials.index(special)

    def _encode_chars(self, s: str) -> np.ndarray:
        cps = np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        if not len(self._codes):
            raise UserError("the character vocabulary is empty")
        idx = np.minimum(np.searchsorted(self._codes, cps), len(self._codes) - 1)
        bad = self._codes[idx] != cps
        if bad.any():
            ch = s[int(np.argmax(bad))]
            raise UserError(f"character {ch!r} is not in the vocabulary of {self.name} "
                            f"({len(self.chars)} characters); use only characters that occur in its text")
        return idx.astype(np.int64)

    def encode(self, s: str) -> torch.Tensor:
        """The ids of ``s`` (int64, one per character; a special token written in ``s`` is one id)."""
        parts = self._split.split(s) if self._split else [s]
        out = [np.array([self.token_id(p)]) if p in self.specials else self._encode_chars(p) for p in parts if p]
        return torch.from_numpy(np.concatenate(out) if out else np.zeros(0, dtype=np.int64))

    def encode_batch(self, texts: list[str], special_tokens: bool = True) -> list[list[int]]:
        return [self.encode(t).tolist() for t in texts]

    def token(self, i: int) -> str:
        """The vocabulary entry of id ``i``: a character or a special token."""
        return self.decode([i])

    def decode(self, ids) -> str:
        ids = _ids_array(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise UserError(f"token id out of range for the vocabulary of {self.name}: ids must be in "
                            f"0..{self.vocab_size - 1}")
        n = len(self.chars)
        if not self.specials or not (ids >= n).any():
            return self._codes[ids].astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")
        return "".join(self.specials[i - n] if i >= n else self.chars[i] for i in ids.tolist())

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps({"format": _CHAR_FORMAT, "chars": "".join(self.chars),
                                    "specials": list(self.specials)}, ensure_ascii=False))
        return path


class SubwordTokenizer:
    """A Hugging Face ``tokenizers.Tokenizer``: trained here (bpe, wordpiece) or read from a tokenizer.json."""

    def __init__(self, tok, kind: str, specials: tuple[str, ...] | None = None, name: str = "the corpus"):
        self.tok, self.kind, self.name = tok, kind, name
        vocab = tok.get_vocab(with_added_tokens=True)
        known = specials if specials is not None else tuple(t for t in BERT_SPECIALS + ("<|endoftext|>",) if t in vocab)
        self.specials = tuple(s for s in known if s in vocab)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size(with_added_tokens=True)

    def token_id(self, special: str) -> int:
        i = self.tok.token_to_id(special)
        if i is None:
            raise UserError(f"the tokeniser has no special token {special!r} (it has: {', '.join(self.specials) or 'none'})")
        return i

    def encode(self, s: str, special_tokens: bool = False) -> torch.Tensor:
        """The ids of ``s``; ``special_tokens``: add the tokeniser's own template ([CLS] ... [SEP] for BERT)."""
        return torch.tensor(self.tok.encode(s, add_special_tokens=special_tokens).ids, dtype=torch.int64)

    def encode_batch(self, texts: list[str], special_tokens: bool = True) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(texts, add_special_tokens=special_tokens)]

    def decode(self, ids) -> str:
        ids = _ids_array(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise UserError(f"token id out of range for the vocabulary of {self.name}: ids must be in "
                            f"0..{self.vocab_size - 1}")
        return self.tok.decode(ids.tolist(), skip_special_tokens=False)

    def token(self, i: int) -> str:
        """The vocabulary entry of id ``i`` as written in the vocabulary ('##ing' for a WordPiece continuation)."""
        return self.tok.id_to_token(int(i))

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        self.tok.save(str(path))
        return path


def train_tokenizer(kind: str, text: str, vocab_size: int = 2000, specials=(), name: str = "the corpus"):
    """A tokeniser of ``kind`` trained on ``text``: ``char`` (the text's characters), ``bpe`` (byte-level BPE, as
    GPT-2: no text is ever out of its vocabulary) or ``wordpiece`` (lower-cased WordPiece, as BERT uncased);
    ``vocab_size`` is the subword kinds' target size, special tokens included.

    The same text and arguments give the same tokeniser, byte for byte, in every process. ``bpe`` is the
    ``tokenizers`` BPE trainer, whose ids are all fixed (the 256 byte characters in order, then its merges; equal
    counts go to the pair of lower ids). ``wordpiece`` is :func:`paradigms.data.wordpiece.learn_wordpieces`, the same merges as the
    ``tokenizers`` WordPiece trainer but with fixed ids: that trainer numbers the ``##`` characters in a hash map's
    order, and its equal counts go to the pair of lower ids; here the ``##`` characters come in code-point order,
    so equal counts go to the same pair in every process."""
    specials = tuple(specials)
    if kind == "char":
        return CharTokenizer.train(text, specials, name)
    if kind not in KINDS:
        raise UserError(f"unknown tokeniser {kind!r}; valid: {', '.join(KINDS)}")
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials), show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(lines(text), trainer=trainer)
        return SubwordTokenizer(tok, kind, specials, name)
    if "[UNK]" not in specials:
        specials = specials + ("[UNK]",)
    vocab = learn_wordpieces(word_counts(text), vocab_size, specials)
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens(list(specials))   # a special token written in the text is one id
    return SubwordTokenizer(tok, kind, specials, name)


def word_tokenizer(text: str, specials=BERT_SPECIALS, name: str = "the corpus") -> SubwordTokenizer:
    """A lower-cased WordPiece whose vocabulary is every word of ``text`` whole, and every character of it alone and
    as a ``##`` continuation, in sorted order: the same ids for the same text, and a word outside the text is spelled
    out in the characters it knows."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers

    normalizer, pre = normalizers.BertNormalizer(lowercase=True), pre_tokenizers.BertPreTokenizer()
    words = {w for w, _ in pre.pre_tokenize_str(normalizer.normalize_str(text))}
    chars = sorted({c for w in words for c in w})
    specials = tuple(specials) + (() if "[UNK]" in specials else ("[UNK]",))
    entries = list(specials) + chars + ["##" + c for c in chars] + sorted(words - set(chars))
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(entries)}, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer, tok.decoder = normalizer, pre, decoders.WordPiece()
    if "[CLS]" in specials and "[SEP]" in specials:
        from tokenizers import processors

        tok.post_processor = processors.BertProcessing(("[SEP]", entries.index("[SEP]")),
                                                       ("[CLS]", entries.index("[CLS]")))
    return SubwordTokenizer(tok, "wordpiece", specials, name)


def load_tokenizer(path: str | Path):
    """The tokeniser saved at ``path`` by ``save`` (ours), or a Hugging Face tokenizer.json."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"tokeniser file {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"tokeniser file {path} is not JSON ({e}); it should be a tokenizer.json") from None
    if isinstance(data, dict) and data.get("format") == _CHAR_FORMAT:
        return CharTokenizer(data["chars"], tuple(data.get("specials", ())), name=str(path))
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # the library's own parse error: say which file
        raise DataError(f"tokeniser file {path} is not a Hugging Face tokenizer.json: {str(e).splitlines()[0]}") from None
    tok.no_truncation()  # a file may fix a length (MiniLM's: truncate and pad to 128); callers choose their own
    tok.no_padding()
    model = (data.get("model") or {}).get("type", "").lower()
    return SubwordTokenizer(tok, "wordpiece" if model == "wordpiece" else "bpe" if model == "bpe" else model,
                            name=str(path))


TOKENIZER_FILE = "tokenizer.json"
"""Where a run folder keeps its tokeniser."""


def kept_tokenizer(run_dir, make, is_main: bool = True, wait_s: float = 600.0):
    """The tokeniser a run keeps in ``run_dir/tokenizer.json``: read back when it is there (a resumed or reloaded run
    reads the one it trained with), else ``make()``'s, saved there by the main process alone (written to a temporary
    file in the folder, then renamed into place, so that no one reads half a file). Under DDP the other ranks wait
    up to ``wait_s`` seconds for that file and read it, so that every rank has the main process's ids; a
    ``DataError`` names the file when it does not come. ``run_dir`` None: not kept, every process makes its own."""
    if run_dir is None:
        return make()
    saved = Path(run_dir) / TOKENIZER_FILE
    if saved.is_file():
        return load_tokenizer(saved)
    if not is_main:
        deadline = time.monotonic() + wait_s
        while not saved.is_file():
            if time.monotonic() > deadline:
                raise DataError(f"waited {wait_s:g} s for the main process to write the tokeniser {saved}, and it "
                                f"is not there; see the main process's error")
            time.sleep(0.05)
        return load_tokenizer(saved)
    tok = make()
    saved.parent.mkdir(parents=True, exist_ok=True)
    tmp = saved.with_name(f".{saved.name}.{os.getpid()}.tmp")   # beside it: the rename stays on one file system
    try:
        tok.save(tmp)
        os.replace(tmp, saved)
    finally:
        tmp.unlink(missing_ok=True)
    return tok


def pad(rows: list[list[int]], pad_id: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences of ids of different lengths as one batch: ids padded with ``pad_id`` (B, T) and the mask of real
    tokens ``keep`` (B, T), T the longest."""
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.int64)
    keep = torch.zeros(len(rows), T, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.as_tensor(r, dtype=torch.int64)
        keep[i, :len(r)] = True
    return ids.to(device), keep.to(device)


def truncate(rows: list[list[int]], limit: int) -> list[list[int]]:
    """Each row of ids cut to ``limit`` tokens keeping its last one (an encoder's [SEP])."""
    if limit < 2:
        raise UserError(f"a limit of {limit} tokens: a text needs at least 2 ([CLS] and [SEP])")
    return [r if len(r) <= limit else r[:limit - 1] + r[-1:] for r in rows]


def text_batch(tokenizer, texts: list[str], limit: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Texts as one padded batch for an encoder: each tokenised with its special tokens ([CLS] ... [SEP]), cut to
    ``limit`` tokens keeping the last, padded with [PAD]: ids (B, T) and the mask of real tokens (B, T)."""
    rows = truncate(tokenizer.encode_batch(list(texts), special_tokens=True), limit)
    return pad(rows, tokenizer.token_id("[PAD]"), device)


__all__ = ["BERT_SPECIALS", "KINDS", "TOKENIZER_FILE", "CharTokenizer", "SubwordTokenizer", "kept_tokenizer",
           "load_tokenizer", "pad", "text_batch", "train_tokenizer", "truncate", "word_tokenizer"]
