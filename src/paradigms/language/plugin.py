"""Language models: the ``gpt`` and ``bert`` recipes, ``paradigms fill`` and ``paradigms embed`` (:mod:`.commands`)."""

RECIPES = ["paradigms.language.gpt_recipe", "paradigms.language.bert_recipe"]
COMMANDS = "paradigms.language.commands"
