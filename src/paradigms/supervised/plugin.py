"""Supervised learning: the `supervised` recipe (classify.py) and hand-written backprop (backprop_recipe.py)."""

RECIPES = ["paradigms.supervised.classify", "paradigms.supervised.backprop_recipe"]
