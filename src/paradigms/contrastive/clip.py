"""CLIP's objective and its zero-shot classifier (Radford et al. 2021, "Learning transferable visual models from
natural language supervision"), usable on a user's own embeddings.

A batch of N (image, text) pairs gives an N x N matrix of cosine similarities scaled by a learned temperature; the
i-th image must pick the i-th text among the batch's texts, and the i-th text the i-th image (the paper's figure 3):

    logits = s * norm(I) norm(T)^T,   L = ( CE(logits, [0..N-1]) + CE(logits^T, [0..N-1]) ) / 2,    s = exp(t)

with t learned from log(1 / 0.07) and s clipped at 100 ("to prevent scaling the logits by more than 100").

"Create a dataset classifier from label text": each class's embedding is its name in a prompt ("a photo of a {}."),
or, as a prompt ensemble, the mean of the normalised embeddings of several prompts, normalised again (open_clip's
``build_zero_shot_classifier``); an image's class is the one whose embedding is most similar to its own.
Retrieval is measured by recall@K (:func:`retrieval_recall`). The recipe: :mod:`.clip_recipe`.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

TEMPLATES = ("a photo of a {}.", "a blurry photo of a {}.", "a photo of the {}.", "a drawing of a {}.",
             "a low resolution photo of the {}.", "a close-up photo of a {}.", "a bright photo of a {}.",
             "a cropped photo of the {}.", "a black and white photo of a {}.", "a photo of a small {}.")
"""Caption templates for training captions built from class names (some of the paper's ImageNet prompts)."""
HELD_OUT_TEMPLATES = ("a pixelated photo of the {}.", "a sketch of a {}.", "a photo of one {}.", "art of the {}.")
"""Templates never used in training captions: zero-shot with these measures generalisation beyond the wording."""


def check_template(template: str) -> str:
    """``template`` when it holds exactly one ``{}``, where a class name goes; else a ValueError saying so."""
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    if fields != [""]:
        raise ValueError(f"template {template!r} must hold exactly one {{}} where the class name goes, "
                         "e.g. 'a photo of a {}.'")
    return template


def label_list(text: str) -> list[str]:
    """The class names of a comma-separated list, for zero-shot: two or more, each once; else a ValueError saying
    what is wrong (the list is empty, has one name, or names one twice)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if len(names) < 2:
        got = "is empty" if not names else f"gives one label ({names[0]!r})"
        raise ValueError(f"{got}: zero-shot chooses among two or more class names, separated by commas, "
                         "e.g. \"t-shirt,trouser,bag\"")
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"names {', '.join(map(repr, twice))} twice; give each class once")
    return names


class LogitScale(nn.Module):
    """s = exp(t), t learned from log(1 / ``init_temperature``); s clipped at ``max_scale`` (the paper: 100)."""

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0):
        super().__init__()
        if not (init_temperature > 0 and max_scale > 0):
            raise ValueError(f"the temperature must be > 0 (got {init_temperature}) and max_scale > 0")
        self.t = nn.Parameter(torch.tensor(math.log(1 / init_temperature)))
        self.max_scale = max_scale

    def forward(self) -> torch.Tensor:
        return self.t.exp().clamp(max=self.max_scale)


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """The symmetric cross-entropy of CLIP over a batch of N pairs: image_emb, text_emb (N, D), unnormalised."""
    if image_emb.shape != text_emb.shape:
        raise ValueError(f"CLIP pairs image i with text i: shapes {tuple(image_emb.shape)} and "
                         f"{tuple(text_emb.shape)} differ")
    i, t = F.normalize(image_emb.float(), dim=-1), F.normalize(text_emb.float(), dim=-1)
    logits = logit_scale * i @ t.T                                          # (N, N), image i against text j
    target = torch.arange(len(i), device=i.device)                         # the diagonal: the true pairs
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def class_embeddings(encode_text: Callable[[list[str]], torch.Tensor], classnames: Sequence[str],
                     templates: Sequence[str] = TEMPLATES[:1]) -> torch.Tensor:
    """(K, D) unit vectors, one per class: the mean over ``templates`` of the normalised embeddings of
    ``template.format(name)``, normalised again (one template: that prompt's embedding)."""
    if not classnames:
        raise ValueError("zero-shot classification needs class names")
    if not templates:
        raise ValueError("zero-shot classification needs at least one prompt template, e.g. 'a photo of a {}.'")
    out = []
    for name in classnames:
        emb = F.normalize(encode_text([t.format(name) for t in templates]).float(), dim=-1)   # (P, D)
        out.append(F.normalize(emb.mean(0), dim=-1))
    return torch.stack(out)


def zero_shot_probs(image_emb: torch.Tensor, class_emb: torch.Tensor, logit_scale: float = 100.0) -> torch.Tensor:
    """(N, K) class probabilities of images against class embeddings: softmax(s cos(image, class))."""
    return (logit_scale * F.normalize(image_emb.float(), dim=-1) @ class_emb.float().T).softmax(-1)


def retrieval_recall(sim: torch.Tensor, relevant: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[int, float]:
    """Recall@K of retrieval: the share of the Q queries with a relevant item among their K most similar.

    sim (Q, N): each query's similarity to the N candidates; relevant (Q, N) bool: which candidates answer it (the
    identity for paired data, where each image's answer is its own caption)."""
    if sim.shape != relevant.shape:
        raise ValueError(f"sim {tuple(sim.shape)} and relevant {tuple(relevant.shape)} must have one shape")
    if max(ks) > sim.shape[1]:
        raise ValueError(f"recall@{max(ks)} needs at least {max(ks)} candidates; there are {sim.shape[1]}")
    top = sim.topk(max(ks), dim=1).indices                                  # (Q, K) the K most similar
    hit = relevant.gather(1, top)                                           # (Q, K) which of them answer
    return {k: float(hit[:, :k].any(1).float().mean()) for k in ks}


__all__ = ["HELD_OUT_TEMPLATES", "LogitScale", "TEMPLATES", "check_template", "class_embeddings", "clip_loss",
           "label_list", "retrieval_recall", "zero_shot_probs"]
