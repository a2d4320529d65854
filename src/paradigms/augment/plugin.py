"""Data augmentation: batched transforms, mixes and policies any image recipe trains with, and the ``paradigms augment``
command (:mod:`.commands`)."""

COMMANDS = "paradigms.augment.commands"
