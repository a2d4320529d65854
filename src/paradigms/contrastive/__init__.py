"""Contrastive learning: the objectives (:mod:`.losses`: FaceNet's triplet loss with online mining, SimCLR's NT-Xent,
MoCo's InfoNCE; :mod:`.clip`: CLIP's symmetric loss, zero-shot classifier and retrieval recall) and MoCo's queue of
negatives (:mod:`.queue`), usable alone on a user's own tensors; the recipes ``triplet`` (:mod:`.triplet`),
``simclr`` (:mod:`.simclr`) and ``moco`` (:mod:`.moco`), the last two on the two views of :mod:`.views`, and ``clip``
(:mod:`.clip_recipe`). Every image encoder is measured by :mod:`paradigms.evaluate`."""

from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same names, for type checkers and editors (importing the package imports none)
    from .clip import LogitScale, class_embeddings, clip_loss, retrieval_recall, zero_shot_probs
    from .losses import MINING, info_nce, mine_triplets, nt_xent, squared_distances, triplet_loss
    from .queue import KeyQueue

__getattr__, __dir__, __all__ = attach(__name__, {
    "clip": ["LogitScale", "class_embeddings", "clip_loss", "retrieval_recall", "zero_shot_probs"],
    "losses": ["MINING", "info_nce", "mine_triplets", "nt_xent", "squared_distances", "triplet_loss"],
    "queue": ["KeyQueue"],
})
