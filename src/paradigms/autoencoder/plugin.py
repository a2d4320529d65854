"""Autoencoders: the ``autoencoder`` and ``vae`` recipes and the ``paradigms anomaly`` command (:mod:`.commands`)."""

RECIPES = ["paradigms.autoencoder.recipe", "paradigms.autoencoder.vae_recipe"]
COMMANDS = "paradigms.autoencoder.commands"
