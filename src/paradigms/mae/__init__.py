"""Masked autoencoders (He et al. 2021): the objective and the model (:mod:`.mae`, usable on a user's own tensors) on
the ViT of :mod:`paradigms.nets.vit`, and the ``mae`` recipe (:mod:`.recipe`): ``paradigms run mae``, then
``paradigms run finetune --from RUN_DIR`` evaluates its encoder on labels."""

from .mae import MAE, MAEDecoder, masked_image, masked_patch_loss, random_masking

__all__ = ["MAE", "MAEDecoder", "masked_image", "masked_patch_loss", "random_masking"]
