"""Transfer learning: the `finetune` recipe."""

RECIPES = ["paradigms.transfer.recipe"]
