"""Adversarial examples: adversarial training (a hook on the supervised recipe, :mod:`.training`), and the
``paradigms attack`` and ``paradigms certify`` commands (:mod:`.commands`)."""

HOOKS = ["paradigms.adversarial.training"]
COMMANDS = "paradigms.adversarial.commands"
