"""Contrastive learning: the ``triplet``, ``simclr``, ``moco`` and ``clip`` recipes, and ``paradigms zero-shot``
(:mod:`.commands`)."""

RECIPES = ["paradigms.contrastive.triplet", "paradigms.contrastive.simclr", "paradigms.contrastive.moco",
           "paradigms.contrastive.clip_recipe"]
COMMANDS = "paradigms.contrastive.commands"
