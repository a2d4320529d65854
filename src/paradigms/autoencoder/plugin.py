"""Autoencoders: the ``autoencoder`` and ``vae`` recipes (``anomaly`` and ``sample`` come with issue 14)."""

RECIPES = ["paradigms.autoencoder.recipe", "paradigms.autoencoder.vae_recipe"]
