"""Adversarial attacks on any classifier of pixels in [0, 1]: FGSM, PGD (:mod:`.attacks`), a universal printable
patch (:mod:`.patch`), and AutoAttack (``from paradigms.adversarial.autoattack import autoattack, apgd, fab, square``;
the sanity checks of an evaluation in :mod:`.checks`); ``paradigms attack RUN_DIR`` runs them on a trained run (:mod:`.runs`,
:mod:`.commands`). Defences: adversarial training, a hook of the supervised recipe (:mod:`.training`), and certified
robustness by randomized smoothing (:mod:`.smoothing`; ``paradigms certify RUN_DIR``, :mod:`.certify`)."""

from typing import TYPE_CHECKING

from ..lazy import attach

if TYPE_CHECKING:  # the same names, for type checkers and editors (importing the package imports none)
    from .apgd import apgd_targeted, dlr_loss
    from .attacks import NORMS, evaluating, fgsm, pgd
    from .checks import sanity_checks
    from .patch import draw, paste, patch_success, place, side, train_patch

__getattr__, __dir__, __all__ = attach(__name__, {
    "apgd": ["apgd_targeted", "dlr_loss"],
    "attacks": ["NORMS", "evaluating", "fgsm", "pgd"],
    "checks": ["sanity_checks"],
    "patch": ["draw", "paste", "patch_success", "place", "side", "train_patch"],
})
