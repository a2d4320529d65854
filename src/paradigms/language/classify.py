"""A transformer encoder fine-tuned for a sentence-level task: transfer after self-supervision.

    p(y | text) = softmax(W mean_t h_t(text) + b)         h: the encoder's last states, averaged over the real tokens

The encoder comes through the transfer module (:func:`paradigms.transfer.transfer`): from a ``bert`` run
folder, from a Hugging Face BERT (MiniLM), or from nothing (scratch); the head is new. The task built in here is
Tiny Shakespeare's: which of its most frequent speakers says a line (:func:`speaker_lines`), with few labelled
lines per speaker.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.tokenize import text_batch
from ..errors import UserError
from ..nets.transformer import Transformer, mean_pool

_SPEAKER = re.compile(r"[A-Z][A-Za-z' ]*:")


def speaker_lines(text: str, top: int = 5, min_words: int = 4) -> dict[str, list[str]]:
    """The lines of the ``top`` speakers with the most lines (each line of a speech, with at least ``min_words``
    words), in the order of the text: {speaker: [line, ...]}. A speech is a block ``NAME:`` then its lines."""
    lines: dict[str, list[str]] = {}
    for block in text.split("\n\n"):
        rows = block.strip("\n").split("\n")
        if len(rows) >= 2 and _SPEAKER.fullmatch(rows[0]):
            lines.setdefault(rows[0][:-1], []).extend(r.strip() for r in rows[1:] if len(r.split()) >= min_words)
    if len(lines) < top:
        raise UserError(f"the text has {len(lines)} speakers (blocks 'NAME:' then lines); {top} are needed")
    ranked = sorted(lines, key=lambda s: (-len(lines[s]), s))[:top]
    return {s: lines[s] for s in ranked}


@dataclass
class SpeakerTask:
    train_texts: list[str]
    train_labels: list[int]
    test_texts: list[str]
    test_labels: list[int]
    classes: list[str]


def speaker_task(text: str, per_class: int, test_per_class: int = 200, top: int = 5, seed: int = 0) -> SpeakerTask:
    """``per_class`` labelled lines of each of the ``top`` speakers to learn from, ``test_per_class`` others each to
    test on (the same test lines for every ``per_class`` under one seed)."""
    lines = speaker_lines(text, top)
    train, test = [], []
    for label, (speaker, ls) in enumerate(lines.items()):
        order = list(range(len(ls)))
        random.Random(f"{seed}-{speaker}").shuffle(order)
        if len(order) < test_per_class + per_class:
            raise UserError(f"{speaker} has {len(order)} lines; {test_per_class} test + {per_class} labelled needed")
        test += [(ls[i], label) for i in order[:test_per_class]]
        train += [(ls[i], label) for i in order[test_per_class:test_per_class + per_class]]
    return SpeakerTask([t for t, _ in train], [y for _, y in train], [t for t, _ in test], [y for _, y in test],
                       list(lines))


class SentenceClassifier(nn.Module):
    """An encoder (our transformer) and a linear head on its mean-pooled last states."""

    def __init__(self, encoder: Transformer, classes: int):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.cfg.n_embd, classes)

    def forward(self, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return self.head(mean_pool(self.encoder.hidden(ids, keep), keep))   # (B, classes)


def finetune(model: SentenceClassifier, groups: list[dict], tokenizer, task: SpeakerTask, epochs: int = 30,
             batch_size: int = 16, lr: float = 1e-4, seed: int = 0) -> dict[str, float]:
    """Train every parameter group (``lr`` times its ``lr_scale``) with AdamW on the labelled lines, then the test
    accuracy; the same result for the same seed."""
    device = next(model.parameters()).device
    block = model.encoder.cfg.block_size
    opt = torch.optim.AdamW([{"params": g["params"], "lr": lr * g.get("lr_scale", 1.0)} for g in groups],
                            weight_decay=0.01)
    g = torch.Generator().manual_seed(seed)
    n = len(task.train_texts)
    y_all = torch.tensor(task.train_labels)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(n, generator=g).split(batch_size):
            ids, keep = text_batch(tokenizer, [task.train_texts[i] for i in idx], block, device)
            loss = F.cross_entropy(model(ids, keep), y_all[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    right = 0
    with torch.no_grad():
        for s in range(0, len(task.test_texts), 128):
            ids, keep = text_batch(tokenizer, task.test_texts[s:s + 128], block, device)
            right += int((model(ids, keep).argmax(1).cpu() == torch.tensor(task.test_labels[s:s + 128])).sum())
    return {"test/acc": right / len(task.test_texts), "train/loss": float(loss.detach())}
