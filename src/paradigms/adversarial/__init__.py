"""Adversarial attacks on any classifier of pixels in [0, 1]: FGSM, PGD (:mod:`.attacks`) and a universal
printable patch (:mod:`.patch`); ``paradigms attack RUN_DIR`` runs them on a trained run (:mod:`.plugin`).
Defences: adversarial training, an option of every classifier recipe (:mod:`.training`), and certified
robustness by randomized smoothing (:mod:`.smoothing`; ``paradigms certify RUN_DIR``, :mod:`.certify`)."""

from .attacks import NORMS, evaluating, fgsm, pgd
from .patch import draw, paste, patch_success, side, train_patch

__all__ = ["NORMS", "draw", "evaluating", "fgsm", "paste", "patch_success", "pgd", "side", "train_patch"]
