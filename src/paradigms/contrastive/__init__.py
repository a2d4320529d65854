"""Contrastive learning: the objectives (:mod:`.losses`: FaceNet's triplet loss with online mining, SimCLR's NT-Xent,
MoCo's InfoNCE) and MoCo's queue of negatives (:mod:`.queue`), usable alone on a user's own tensors; the recipes
``triplet`` (:mod:`.triplet`), ``simclr`` (:mod:`.simclr`) and ``moco`` (:mod:`.moco`), the last two on the two views
of :mod:`.views`. Every encoder is measured by :mod:`paradigms.transfer.probe`."""

from .losses import MINING, info_nce, mine_triplets, nt_xent, squared_distances, triplet_loss
from .queue import KeyQueue

__all__ = ["MINING", "KeyQueue", "info_nce", "mine_triplets", "nt_xent", "squared_distances", "triplet_loss"]
