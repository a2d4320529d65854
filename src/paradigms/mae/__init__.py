"""Masked autoencoders (issue 17, in progress): the objective and the model (:mod:`.mae`) on the ViT of
:mod:`paradigms.nets.vit`. The ``mae`` recipe comes next."""

from .mae import MAE, masked_patch_loss, random_masking

__all__ = ["MAE", "masked_patch_loss", "random_masking"]
