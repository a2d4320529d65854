"""Contrastive learning: the ``triplet``, ``simclr`` and ``moco`` recipes."""

RECIPES = ["paradigms.contrastive.triplet", "paradigms.contrastive.simclr", "paradigms.contrastive.moco"]
