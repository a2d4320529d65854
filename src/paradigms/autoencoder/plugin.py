"""Autoencoders: the ``autoencoder`` recipe (the VAE, ``anomaly`` and ``sample`` come with issue 14)."""

RECIPES = ["paradigms.autoencoder.recipe"]
