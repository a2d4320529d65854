"""The contrastive panels: CLIP's zero-shot answer for label names typed in the page (``paradigms zero-shot RUN
IMAGE --labels ...``)."""

from __future__ import annotations

from pathlib import Path

from ...errors import UserError
from .base import NETWORKS, Panel, PanelError, evaluation_image, png, text


def clip(run: Path, query: dict, body: bytes) -> dict:
    """Zero-shot: a picture against label names typed here (``paradigms zero-shot RUN IMAGE --labels ...``)."""
    import torch

    from ...contrastive.clip import label_list
    from ..images import decode_upload

    trained = NETWORKS.get(run, "recipe")
    try:
        names = label_list(text(query, "labels", "", 2000))
    except ValueError as e:
        raise PanelError("labels", f"labels {e}") from None
    unreadable = trained.unreadable(names)
    if len(unreadable) == len(names):
        raise PanelError("labels", f"the run's text tower cannot read any of them: words no training caption held; its "
                                   f"captions named the classes {', '.join(trained.names)}")
    c, h, w = trained.in_shape
    if body:                                   # as the command line reads a file: Pillow, converted, resized
        try:
            pixels = decode_upload(body, "L" if c == 1 else "RGB", (h, w))
        except UserError as e:
            raise PanelError("image", str(e)) from None
        x, source = torch.from_numpy(pixels)[None].float() / 255, "the image sent"
    elif query.get("test") not in (None, ""):
        x, _, i = evaluation_image(run, query)
        source = f"test image {i}"
    else:
        raise PanelError("image", "no image: draw one, upload one, or pick a test image")
    probs = trained.zero_shot(x, names)[0]
    return {"source": source, "input": png(x[0]), "labels": names,
            "probabilities": dict(zip(names, probs.tolist())), "prediction": names[int(probs.argmax())],
            "unreadable": {k: list(v) for k, v in unreadable.items()}}


PANELS = [
    Panel("clip", "CLIP zero-shot", ("encoder",),
          "Type class names, separated by commas: CLIP makes a classifier of them from its text tower alone, and "
          "gives the probability that the picture is each. Names no training caption held mean nothing to a text "
          "tower trained from scratch (one that reads English, --set text=minilm, reads any).", clip,
          recipes=("clip",)),
]
