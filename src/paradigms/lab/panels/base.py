"""What every panel shares: the :class:`Panel` record and its controls, the trained networks loaded once each, the
inputs read from the query (each bad one said beside its control) and the pictures sent back."""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ...errors import UserError
from ..images import check_upload, png_uri
from ..queue import FieldError

MAX_TEST_INDEX = 10_000_000


PanelError = FieldError
"""Bad input for a panel, said beside the control it names (its ``field``)."""


@dataclass(frozen=True)
class Control:
    """One setting of a panel, as the page shows it: ``kind`` is "number", "range", "select", "text" or
    "checkbox"; ``lo``, ``hi``, ``step`` bound a number; ``options`` a select's choices."""
    name: str
    label: str
    kind: str = "number"
    default: str = ""
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    options: tuple[str, ...] = ()
    size: int = 8


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    kinds: tuple[str, ...]
    """The ``kind`` of model.json a run must have for this panel (its network's job)."""
    about: str
    answer: Callable[[Path, dict, bytes], dict]
    """``answer(run, query, body)``: the panel's JSON for one run."""
    recipes: tuple[str, ...] | None = None
    """The recipes whose runs it takes (None: any of those kinds)."""
    input: str = "image"
    """What the user gives it: "image" (drawn, uploaded or a test image), "text", or "none" (settings alone)."""
    stream: Callable[[Path, dict, bytes], Iterator] | None = None
    """``stream(run, query, body)``: pieces sent as they come (server-sent events): text that the page appends (GPT's
    continuation), or with ``streams="progress"`` dicts, ``{"done": k, "of": n}`` while it works and then its answer."""
    streams: str = "text"
    controls: tuple["Control", ...] = ()
    """The settings the page shows for it, kept in the URL (panels written before controls have their own markup)."""
    button: str | None = None
    """A button that asks (for work too slow to redo at each change of a setting), else every change asks."""


# -- the networks, loaded once each ----------------------------------------------------------------------------------
class PerCheckpoint:
    """What a panel computes once per trained network (the network itself, an evaluation set's features), kept by
    (run, checkpoint, what): a new checkpoint computes it again; the least used go first."""

    def __init__(self, size: int = 6):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, run: Path, what: str, compute: Callable[[], object]):
        key = (str(run), checkpoint_sha(run), what)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


class Networks(PerCheckpoint):
    """Trained networks by run folder, loaded as the command line loads them (safetensors, no pickle)."""

    def get(self, run: Path, what: str = "classifier"):
        """``run``'s classifier (``what="classifier"``), or its whole trained recipe (``"recipe"``: a GPT's
        ``stream``, a BERT's ``fill``, as ``paradigms sample`` and ``paradigms fill`` load them)."""
        from ...engine.trainer import load_trained
        from ...evaluate.classifier import load_classifier

        load = load_classifier if what == "classifier" else load_trained
        return super().get(run, what, lambda: load(run, "cpu"))


NETWORKS = Networks()

SEEDED = threading.Lock()
"""Held while a panel seeds torch's global generator and draws from it (an attack's random start, a GAN's codes),
so that two requests at once never draw from each other's seed."""


def checkpoint_sha(run: Path) -> str:
    try:
        pointer = json.loads((run / "checkpoints" / "latest.json").read_text())
        return pointer["sha256"][pointer["weights"]]
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def card(run: Path) -> dict:
    """The run's model.json ({} when it has none)."""
    try:
        data = json.loads((run / "model.json").read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def fits(panel: Panel, run: Path) -> bool:
    from ..runs import recipe_of

    return card(run).get("kind") in panel.kinds and (panel.recipes is None or recipe_of(run) in panel.recipes)


def check_fits(panel: Panel, root: Path, run: Path) -> None:
    """A :class:`PanelError` on ``run`` unless ``panel`` takes it, saying what the run is and what the panel takes."""
    if fits(panel, run):
        return
    from ..runs import recipe_of, run_id

    kind = card(run).get("kind") or "no network the lab can load"
    takes = (f"runs of {' or '.join(panel.recipes)}" if panel.recipes else
             f"runs whose network is a {' or '.join(panel.kinds)}")
    raise PanelError("run", f"{run_id(root, run)} is a {recipe_of(run)} run ({kind!r}): the {panel.name} panel "
                            f"takes {takes}")


def provenance(root: Path, run: Path) -> dict:
    """What a screenshot of a panel must say of its network: the run, its recipe and dataset, its checkpoint."""
    from ..runs import checkpoint_info, run_id, summary

    s, ckpt = summary(root, run), checkpoint_info(run)
    weights = next((v for k, v in (ckpt or {}).get("sha256", {}).items() if k.endswith(".safetensors")), None)
    return {"id": s["id"], "recipe": s["recipe"], "dataset": s["dataset"], "state": s["state"],
            "step": (ckpt or {}).get("step"), "sha256": weights, "page": f"/run?run={run_id(root, run)}"}


# -- inputs ----------------------------------------------------------------------------------------------------------
def number(query: dict, field: str, default: float, lo: float, hi: float) -> float:
    text = query.get(field)
    if text in (None, ""):
        return default
    try:
        value = float(text)
    except ValueError:
        raise PanelError(field, f"{field} must be a number, not {text[:40]!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise PanelError(field, f"{field} must be between {lo:g} and {hi:g}, not {value:g}")
    return value


def integer(query: dict, field: str, default: int, lo: int, hi: int) -> int:
    value = number(query, field, default, lo, hi)
    if value != int(value):
        raise PanelError(field, f"{field} must be a whole number, not {value:g}")
    return int(value)


def choice(query: dict, field: str, options: tuple[str, ...]) -> str:
    value = query.get(field) or options[0]
    if value not in options:
        raise PanelError(field, f"{field} must be one of {', '.join(options)}, not {value[:40]!r}")
    return value


def picture(run: Path, query: dict, body: bytes, net):
    """The panel's input image as the classifier ``net`` takes it, (1, C, H, W) in [0, 1], and where it came from: the
    bytes sent (a drawing or an upload) or, with ``test=N``, the run's N-th evaluation image."""
    x, label, source = image_input(run, query, body, net.input_shape)
    return x, source if label is None else f"{source} (a {net.classes[label]})"


def image_input(run: Path, query: dict, body: bytes, shape, field: str = "test"):
    """Any panel's input image at ``shape`` (C, H, W): (1, C, H, W) in [0, 1], its label (None for an image sent) and
    where it came from: the bytes sent (a drawing or an upload, fitted as ``paradigms eval --image`` fits a file) or,
    with ``test=N`` (or the query's ``field``), the run's N-th evaluation image."""
    from ...data.images import read_image
    from ...evaluate.classifier import fit_image

    if body:
        try:
            check_upload(body)
        except UserError as e:
            raise PanelError("image", str(e)) from None
        return fit_image(read_image(body), tuple(shape))[None], None, "the image sent"
    if query.get(field) in (None, ""):
        raise PanelError("image", "no image: draw one, upload one, or pick a test image")
    x, label, i = evaluation_image(run, query, field)
    return x, label, f"test image {i}"


def evaluation_image(run: Path, query: dict, field: str = "test"):
    """The run's evaluation image ``test=N`` (``field=N``; as the run selected its evaluation set): (1, C, H, W) in
    [0, 1], its label, N."""
    import torch

    from ...evaluate.classifier import eval_images

    i = integer(query, field, 0, 0, MAX_TEST_INDEX)
    (x, y), _ = eval_images(run, i + 1, "cpu")
    if i >= len(x):
        raise PanelError(field, f"the run's evaluation set has {len(x)} images: {field} must be below {len(x)}")
    return x[i:i + 1].to(torch.float32), int(y[i]), i


def png(image) -> str:
    """A (C, H, W) image in [0, 1] as a PNG data URI, enlarged (nearest) to about 160 pixels so that it can be seen."""
    return png_uri((image.detach().clamp(0, 1) * 255).round().byte().cpu().numpy(), 160)


def ranked(probs, classes, top: int = 10) -> list[dict]:
    order = probs.argsort(descending=True)[:top]
    return [{"class": classes[int(i)], "p": float(probs[i])} for i in order]


def text(query: dict, field: str, default: str, limit: int = 2000) -> str:
    value = query.get(field)
    value = default if value is None else value
    if len(value) > limit:
        raise PanelError(field, f"{field} is {len(value):,} characters; at most {limit:,}")
    return value


def said(field: str, e: UserError) -> PanelError:
    return PanelError(field, str(e).replace("--temperature", "temperature").replace("--top-k", "top-k"))


def grid_png(images, nrow: int | None = None) -> str:
    """Images in [0, 1] as one PNG grid, the very picture ``paradigms sample`` writes (engine.report's grid)."""
    import numpy as np

    from ...engine.report import image_grid, upscale

    return png_uri(np.ascontiguousarray(image_grid(upscale(images), nrow).transpose(2, 0, 1)))




# -- what a panel shows: a list of blocks the page draws in order (panels.js's view) --------------------------------
def figures(*items: tuple, cls: str = "") -> dict:
    """Pictures side by side: each item ``(data_uri, caption)`` or ``(data_uri, caption, extra)`` where ``extra`` is a
    dict (``{"pick": ["px", "py"]}``: pointing at the picture sets those two settings to where, in fractions of its
    width and height)."""
    out = []
    for item in items:
        src, caption, *extra = item
        out.append({"src": src, "caption": caption, **(extra[0] if extra else {})})
    return {"kind": "figures", "items": out, "class": cls}


def bars(values: dict[str, float], top: str | None = None) -> dict:
    """Probabilities (or any numbers in [0, 1]) as labelled bars, ``top`` highlighted."""
    return {"kind": "bars", "values": {str(k): float(v) for k, v in values.items()}, "top": top}


def table(columns: list[str], rows: list[list], caption: str = "") -> dict:
    """A table of numbers or words (numbers are shown with 3 significant digits)."""
    return {"kind": "table", "columns": columns, "rows": rows, "caption": caption}


def line(text: str, strong: str = "", bad: bool = False, cls: str = "") -> dict:
    """A sentence, with an optional verdict in bold (red when ``bad``)."""
    return {"kind": "line", "text": text, "strong": strong, "bad": bad, "class": cls}


def meta(text: str) -> dict:
    """A small grey note: what was computed, on what, with which settings."""
    return {"kind": "meta", "text": text}
