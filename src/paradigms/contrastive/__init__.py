"""Contrastive learning: the objectives (:mod:`.losses`: FaceNet's triplet loss with online mining, SimCLR's NT-Xent,
MoCo's InfoNCE; :mod:`.clip`: CLIP's symmetric loss, zero-shot classifier and retrieval recall) and MoCo's queue of
negatives (:mod:`.queue`), usable alone on a user's own tensors; the recipes ``triplet`` (:mod:`.triplet`),
``simclr`` (:mod:`.simclr`) and ``moco`` (:mod:`.moco`), the last two on the two views of :mod:`.views`, and ``clip``
(:mod:`.clip_recipe`). Every image encoder is measured by :mod:`paradigms.evaluate`."""

from .clip import LogitScale, class_embeddings, clip_loss, retrieval_recall, zero_shot_probs
from .losses import MINING, info_nce, mine_triplets, nt_xent, squared_distances, triplet_loss
from .queue import KeyQueue

__all__ = ["MINING", "KeyQueue", "LogitScale", "class_embeddings", "clip_loss", "info_nce", "mine_triplets",
           "nt_xent", "retrieval_recall", "squared_distances", "triplet_loss", "zero_shot_probs"]
