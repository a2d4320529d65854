"""The lab's panels: a trained run to poke, one panel per paradigm, each calling the library as the command line does.

    answer = PANELS["classify"].answer(root, run, {"test": "3"}, b"")   # what POST /api/panel/classify returns

A panel names the runs it fits (by the ``kind`` in their model.json), the inputs it reads from the query (kept in the
page's URL, so a link reopens the same view) and, optionally, an image sent as the request's body. Its ``answer`` is
JSON: numbers, class names, images as PNG data URIs. Every panel here is a thin layer: the work is the library's
(``evaluate.classifier.classify_images`` as ``paradigms eval --image``, ``adversarial.runs.attack_picture`` as
``paradigms attack --image``), so the lab and the command line give the same answers on the same input.
"""

from __future__ import annotations

from . import classifier, contrastive, generative, language, robust
from .base import NETWORKS, Control, Panel, PanelError, card, check_fits, fits, png, provenance

LECTURE = ("classify", "augment", "attack", "patch", "certify", "triplet", "neighbours", "clip", "retrieval",
           "autoencoder", "vae", "gan", "gpt", "bert", "mae")
"""The panels in the lecture's order (the runs page lists them so)."""

_ALL = [p for module in (classifier, robust, contrastive, generative, language) for p in module.PANELS]
PANELS = {p.name: p for p in sorted(_ALL, key=lambda p: LECTURE.index(p.name) if p.name in LECTURE else len(LECTURE))}
"""Every panel, by name, in the lecture's order."""

EXTRA = {**classifier.EXTRA}
"""Answers a panel's page asks for beside its main one."""


__all__ = ["EXTRA", "NETWORKS", "PANELS", "Control", "Panel", "PanelError", "card", "check_fits", "fits", "png",
           "provenance"]
