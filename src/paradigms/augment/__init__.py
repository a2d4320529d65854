"""Data augmentation: the one place it lives. Batched transforms of image tensors (N, C, H, W) with
values in [0, 1], on CPU or GPU, random per sample and reproducible under a seed, built on kornia.

    x' = t_k( ... t_1(x) )        t_i drawn per sample: geometry (rotate, scale, resized_crop,
                                  crop, flip), colour (brightness, contrast, saturation, hue,
                                  greyscale, blur), erasing (cutout)
    (x', y') = mix(x', y)         mixup or CutMix: the targets become probability vectors

A policy is written in a recipe's config (``augment: [standard, cutout, mixup]``, see
:mod:`.policy`); the training loop applies it before normalisation. ``paradigms augment IMAGE``
draws the lecture's pictures (:mod:`.figures`).
"""

from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same names, for type checkers and editors (importing the package imports none)
    from .mix import MIXES, CutMix, Mix, Mixup, soft
    from .policy import NAMES, STANDARD, STRENGTH, Policy, at_strength, build, read_policy, standard
    from .transforms import TRANSFORMS, Transform

__getattr__, __dir__, __all__ = attach(__name__, {
    "mix": ["MIXES", "CutMix", "Mix", "Mixup", "soft"],
    "policy": ["NAMES", "STANDARD", "STRENGTH", "Policy", "at_strength", "build", "read_policy", "standard"],
    "transforms": ["TRANSFORMS", "Transform"],
})
