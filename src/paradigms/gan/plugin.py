"""GANs: the ``gan`` and ``semi-gan`` recipes (``paradigms sample`` draws from a gan run)."""

RECIPES = ["paradigms.gan.recipe", "paradigms.gan.semi"]
