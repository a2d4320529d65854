"""The robustness panels: augmentation's "1 => 18" grid of one picture (``paradigms augment``), a universal patch
pasted where the user points (``paradigms attack --method patch``), and a certificate by randomized smoothing
(``paradigms certify``)."""

from __future__ import annotations

PANELS = []
