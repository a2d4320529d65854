"""The lab's panels: a trained run to poke, one panel per paradigm, each calling the library as the command line does.

    answer = PANELS["classify"].answer(root, run, {"test": "3"}, b"")   # what POST /api/panel/classify returns

A panel names the runs it fits (by the ``kind`` in their model.json), the inputs it reads from the query (kept in the
page's URL, so a link reopens the same view) and, optionally, an image sent as the request's body. Its ``answer`` is
JSON: numbers, class names, images as PNG data URIs. Every panel here is a thin layer: the work is the library's
(``evaluate.classifier.classify_images`` as ``paradigms eval --image``, ``adversarial.runs.attack_picture`` as
``paradigms attack --image``), so the lab and the command line give the same answers on the same input.
"""

from __future__ import annotations

import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..errors import UserError
from .images import check_upload, png_uri
from .queue import FieldError

MAX_TEST_INDEX = 10_000_000


PanelError = FieldError
"""Bad input for a panel, said beside the control it names (its ``field``)."""


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
    stream: Callable[[Path, dict], Iterator[str]] | None = None
    """``stream(run, query)``: pieces of text sent as they come (server-sent events)."""


# -- the networks, loaded once each ----------------------------------------------------------------------------------
class Networks:
    """Trained networks by run folder, loaded as the command line loads them (safetensors, no pickle) and kept while
    their checkpoint is the same; the least used go first."""

    def __init__(self, size: int = 6):
        self.size, self._nets, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, run: Path, what: str = "classifier"):
        """``run``'s classifier (``what="classifier"``), or its whole trained recipe (``"recipe"``: a GPT's
        ``stream``, a BERT's ``fill``, as ``paradigms sample`` and ``paradigms fill`` load them)."""
        from ..engine.trainer import load_trained
        from ..evaluate.classifier import load_classifier

        key = (str(run), _checkpoint_sha(run), what)
        with self._lock:
            if key in self._nets:
                self._nets.move_to_end(key)
                return self._nets[key]
        net = load_classifier(run, "cpu") if what == "classifier" else load_trained(run, "cpu")
        with self._lock:
            self._nets[key] = net
            while len(self._nets) > self.size:
                self._nets.popitem(last=False)
        return net


NETWORKS = Networks()

SEEDED = threading.Lock()
"""Held while a panel seeds torch's global generator and draws from it (an attack's random start, a GAN's codes),
so that two requests at once never draw from each other's seed."""


def _checkpoint_sha(run: Path) -> str:
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
    from .runs import recipe_of

    return card(run).get("kind") in panel.kinds and (panel.recipes is None or recipe_of(run) in panel.recipes)


def check_fits(panel: Panel, root: Path, run: Path) -> None:
    """A :class:`PanelError` on ``run`` unless ``panel`` takes it, saying what the run is and what the panel takes."""
    if fits(panel, run):
        return
    from .runs import recipe_of, run_id

    kind = card(run).get("kind") or "no network the lab can load"
    takes = (f"runs of {' or '.join(panel.recipes)}" if panel.recipes else
             f"runs whose network is a {' or '.join(panel.kinds)}")
    raise PanelError("run", f"{run_id(root, run)} is a {recipe_of(run)} run ({kind!r}): the {panel.name} panel "
                            f"takes {takes}")


def provenance(root: Path, run: Path) -> dict:
    """What a screenshot of a panel must say of its network: the run, its recipe and dataset, its checkpoint."""
    from .runs import checkpoint_info, run_id, summary

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
    """The panel's input image as the network takes it, (1, C, H, W) in [0, 1], and where it came from: the bytes
    sent (a drawing or an upload) or, with ``test=N``, the run's N-th evaluation image."""
    from ..data.images import read_image
    from ..evaluate.classifier import fit_image

    if body:
        try:
            check_upload(body)
        except UserError as e:
            raise PanelError("image", str(e)) from None
        return fit_image(read_image(body), net.input_shape)[None], "the image sent"
    if query.get("test") in (None, ""):
        raise PanelError("image", "no image: draw one, upload one, or pick a test image")
    x, label, i = evaluation_image(run, query)
    return x, f"test image {i} (a {net.classes[label]})"


def evaluation_image(run: Path, query: dict):
    """The run's evaluation image ``test=N`` (as the run selected its evaluation set): (1, C, H, W) in [0, 1], its
    label, N."""
    import torch

    from ..evaluate.classifier import eval_images

    i = integer(query, "test", 0, 0, MAX_TEST_INDEX)
    (x, y), _ = eval_images(run, i + 1, "cpu")
    if i >= len(x):
        raise PanelError("test", f"the run's evaluation set has {len(x)} images: test must be below {len(x)}")
    return x[i:i + 1].to(torch.float32), int(y[i]), i


def png(image) -> str:
    """A (C, H, W) image in [0, 1] as a PNG data URI, enlarged (nearest) to about 160 pixels so that it can be seen."""
    return png_uri((image.detach().clamp(0, 1) * 255).round().byte().cpu().numpy(), 160)


def ranked(probs, classes, top: int = 10) -> list[dict]:
    order = probs.argsort(descending=True)[:top]
    return [{"class": classes[int(i)], "p": float(probs[i])} for i in order]


# -- the panels --------------------------------------------------------------------------------------------------------
def classify(run: Path, query: dict, body: bytes) -> dict:
    """Class probabilities of a drawing, an upload or a test image (``paradigms eval RUN --image F``)."""
    from ..evaluate.classifier import classify_images

    net = NETWORKS.get(run)
    x, source = picture(run, query, body, net)
    answer = classify_images(net, [x[0]])[0]
    return {"source": source, "input": png(x[0]), "prediction": answer["prediction"],
            "probabilities": answer["probabilities"], "classes": net.classes}


def mistakes(run: Path, query: dict, body: bytes) -> dict:
    """The test images the network gets wrong with the most confidence."""
    from ..evaluate.classifier import class_probabilities, eval_images

    net = NETWORKS.get(run)
    n = integer(query, "n", 1000, 1, 10_000)
    (x, y), _ = eval_images(run, n, "cpu")
    probs = class_probabilities(net, x)
    conf, pred = probs.max(1)
    wrong = (pred != y).nonzero().flatten()
    wrong = wrong[conf[wrong].argsort(descending=True)][:12]
    return {"of": len(y), "wrong": int((pred != y).sum()),
            "mistakes": [{"test": int(i), "image": png(x[i]), "said": net.classes[int(pred[i])],
                          "confidence": float(conf[i]), "true": net.classes[int(y[i])]} for i in wrong]}


def attack(run: Path, query: dict, body: bytes) -> dict:
    """FGSM or PGD on one picture (``paradigms attack RUN --image F``): the picture, the perturbation (amplified),
    the adversarial picture, and the prediction before and after."""
    from ..adversarial.runs import attack_picture, class_index, eps_bound

    net = NETWORKS.get(run)
    x, source = picture(run, query, body, net)
    method = choice(query, "method", ("pgd", "fgsm"))
    norm = choice(query, "norm", ("linf", "l2"))
    eps = number(query, "eps", 0.1, 0.0, eps_bound(norm, net.input_shape))
    steps = integer(query, "steps", 10, 1, 200)
    seed = integer(query, "seed", 0, 0, 2 ** 31 - 1)
    tgt = None
    if query.get("target") not in (None, ""):
        try:
            tgt = class_index(query["target"], net.classes)
        except UserError as e:
            raise PanelError("target", str(e).replace("--target", "target")) from None
    with SEEDED:
        adv, p_clean, p_adv = attack_picture(net, x, eps, method, norm, steps, None, 1, tgt, seed)
    delta = adv[0] - x[0]
    amplified = (delta / (2 * delta.abs().max().clamp_min(1e-12)) + 0.5) if eps > 0 else delta + 0.5
    return {"source": source, "eps": eps, "method": method, "norm": norm, "steps": steps, "seed": seed,
            "target": net.classes[tgt] if tgt is not None else None, "classes": net.classes,
            "original": png(x[0]), "perturbation": png(amplified), "adversarial": png(adv[0]),
            "linf": float(delta.abs().max()), "l2": float(delta.norm()),
            "before": ranked(p_clean[0], net.classes, 3), "after": ranked(p_adv[0], net.classes, 3)}


def text(query: dict, field: str, default: str, limit: int = 2000) -> str:
    value = query.get(field)
    value = default if value is None else value
    if len(value) > limit:
        raise PanelError(field, f"{field} is {len(value):,} characters; at most {limit:,}")
    return value


def _gpt_settings(query: dict) -> dict:
    top_k = query.get("top_k")
    return {"prompt": text(query, "prompt", ""), "temperature": number(query, "temperature", 0.8, 0.01, 10.0),
            "top_k": None if top_k in (None, "", "0") else integer(query, "top_k", 200, 1, 1_000_000),
            "tokens": integer(query, "tokens", 200, 0, 2000), "seed": integer(query, "seed", 0, 0, 2 ** 31 - 1)}


def _said(field: str, e: UserError) -> PanelError:
    return PanelError(field, str(e).replace("--temperature", "temperature").replace("--top-k", "top-k"))


def gpt_stream(run: Path, query: dict) -> Iterator[str]:
    """The continuation of the prompt, piece by piece (``paradigms sample RUN --prompt P``)."""
    trained = NETWORKS.get(run, "recipe")
    s = _gpt_settings(query)
    pieces = trained.stream(s["prompt"], max(1, s["tokens"]), s["temperature"], s["top_k"], s["seed"])
    try:
        first = next(pieces, "")          # bad input is said before any text; the settings are checked: the prompt
    except UserError as e:
        raise _said("prompt", e) from None
    yield first
    yield from pieces


def gpt(run: Path, query: dict, body: bytes) -> dict:
    """The next-token probability table after the prompt and, with ``tokens`` > 0, the whole continuation."""
    trained = NETWORKS.get(run, "recipe")
    s = _gpt_settings(query)
    try:
        table = trained.next_tokens(s["prompt"], top=10, temperature=s["temperature"])
    except UserError as e:
        raise _said("prompt", e) from None
    out = {"next": [{"token": t, "p": p} for t, p in table], **s}
    if s["tokens"]:
        out["text"] = "".join(gpt_stream(run, query))
    return out


def clip(run: Path, query: dict, body: bytes) -> dict:
    """Zero-shot: a picture against label names typed here (``paradigms zero-shot RUN IMAGE --labels ...``)."""
    import torch

    from ..contrastive.clip import label_list
    from .images import decode_upload

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


def grid_png(images, nrow: int | None = None) -> str:
    """Images in [0, 1] as one PNG grid, the very picture ``paradigms sample`` writes (engine.report's grid)."""
    import numpy as np

    from ..engine.report import image_grid, upscale

    return png_uri(np.ascontiguousarray(image_grid(upscale(images), nrow).transpose(2, 0, 1)))


def gan(run: Path, query: dict, body: bytes) -> dict:
    """A grid of samples for a seed (``paradigms sample RUN --n N --seed S``) and the walk between two seeds' codes."""
    import torch

    trained = NETWORKS.get(run, "recipe")
    n = integer(query, "n", 16, 1, 256)
    seed = integer(query, "seed", 0, 0, 2 ** 31 - 1)
    other = integer(query, "seed_b", seed + 1, 0, 2 ** 31 - 1)
    steps = integer(query, "steps", 8, 2, 32)
    with SEEDED:
        torch.manual_seed(seed)
        samples = trained.sample(n)
    return {"n": n, "seed": seed, "seed_b": other, "steps": steps, "grid": grid_png(samples),
            "walk": grid_png(trained.interpolate(seed, other, steps), nrow=steps)}


def bert(run: Path, query: dict, body: bytes) -> dict:
    """The most likely fills of each [MASK] (``paradigms fill RUN TEXT``)."""
    trained = NETWORKS.get(run, "recipe")
    sentence = text(query, "text", "The cat [MASK] on the mat.", 1000)
    top = integer(query, "top", 5, 1, 50)
    try:
        fills = trained.fill(sentence, top)
    except UserError as e:
        raise _said("text", e) from None
    return {"text": sentence, "top": top, "fills": [[{"token": t, "p": p} for t, p in guesses] for guesses in fills]}


PANELS = {p.name: p for p in [
    Panel("classify", "Classify a drawing", ("classifier",),
          "Draw a digit (white on black, as the training images) or upload a picture: the network's probability for "
          "each class. Below, the test images it gets wrong with the most confidence.", classify),
    Panel("attack", "Attack one picture", ("classifier",),
          "FGSM (one step) or PGD (many, projected) moves each pixel by at most epsilon to change the network's "
          "answer. Slide epsilon and watch the prediction give way; a second run beside it (say, trained "
          "adversarially) faces the same attack on the same picture.", attack),
    Panel("clip", "CLIP zero-shot", ("encoder",),
          "Type class names, separated by commas: CLIP makes a classifier of them from its text tower alone, and "
          "gives the probability that the picture is each. Names no training caption held mean nothing to a text "
          "tower trained from scratch (one that reads English, --set text=minilm, reads any).", clip,
          recipes=("clip",)),
    Panel("gan", "GAN samples", ("generator",),
          "The generator's pictures for a seed (each seed draws the codes z ~ N(0, I)), and a walk from one seed's "
          "code to another's: if the pictures change smoothly, the generator has learned a space rather than "
          "memorised images.", gan, input="none"),
    Panel("gpt", "GPT writes", ("transformer",),
          "Type the start of a text: the model's probability for each possible next token, then the continuation "
          "it draws token by token (temperature divides the logits; top-k keeps the k likeliest). Top-k 1 is greedy: "
          "the same text every time.", gpt, recipes=("gpt",), input="text", stream=gpt_stream),
    Panel("bert", "BERT fills the blank", ("transformer",),
          "Write a sentence with [MASK] where a word is missing: the tokens the masked language model finds likeliest "
          "there, with their probabilities.", bert, recipes=("bert",), input="text"),
]}
"""Every panel, by name."""

EXTRA = {"mistakes": mistakes}
"""Answers a panel's page asks for beside its main one."""


__all__ = ["EXTRA", "NETWORKS", "PANELS", "Panel", "PanelError", "card", "check_fits", "fits", "png", "provenance"]
