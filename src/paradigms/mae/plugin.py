"""Masked autoencoders: the ``mae`` recipe."""

RECIPES = ["paradigms.mae.recipe"]
