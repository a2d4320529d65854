"""Masked autoencoders (He et al. 2021): the objective and the model (:mod:`.mae`, usable on a user's own tensors) on
the ViT of :mod:`paradigms.nets.vit`, and the ``mae`` recipe (:mod:`.recipe`): ``paradigms run mae``, then
``paradigms run finetune --from RUN_DIR`` evaluates its encoder on labels."""

from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same names, for type checkers and editors (importing the package imports none)
    from .mae import MAE, MAEDecoder, masked_image, masked_patch_loss, random_masking

__getattr__, __dir__, __all__ = attach(__name__, {
    "mae": ["MAE", "MAEDecoder", "masked_image", "masked_patch_loss", "random_masking"],
})
