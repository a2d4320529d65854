"""A trained run's classifier under attack: what ``paradigms attack`` and ``paradigms certify`` (and the lab) share.

    net = load_classifier(run_dir, "cpu")                       # evaluate.classifier: paradigms.load, with classes
    (x, y), (train_x, train_y) = eval_images(run_dir, 1000, "cpu")   # the run's own evaluation images, in [0, 1]
    adv = batched(attack_fn(net, "pgd", 8 / 255, "linf", 40, None, 1, None), x, y)

The attacks themselves are :mod:`.attacks` (FGSM, PGD), :mod:`.autoattack` and :mod:`.patch`; the pictures
:mod:`.figures`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import torch
from PIL import Image

from ..errors import UserError, closest
from .attacks import default_step_size, fgsm, pgd
from .figures import curve_figure, panel_figure


def parse_eps(text: str) -> list[float]:
    """``"0.3"``, ``"8/255"`` or a comma-separated list of them."""
    out = []
    for part in text.split(","):
        try:
            value = float(Fraction(part.strip()))
        except (ValueError, ZeroDivisionError):
            raise UserError(f"--eps {text!r}: {part.strip()!r} is not a number (write 0.3, 8/255 or a list "
                            "0,0.1,0.3)") from None
        if value < 0:
            raise UserError(f"--eps {text!r}: eps={value:g} is out of range: the attack's budget must be >= 0")
        out.append(value)
    return out

def eps_bound(norm: str, input_shape) -> float:
    """The largest budget that means anything: L-inf moves each pixel of [0, 1] by at most eps, so 1; an L2 ball
    holds every image once eps reaches the image's largest possible norm, sqrt(C H W)."""
    import math

    return 1.0 if norm == "linf" else math.sqrt(math.prod(input_shape or (1,)))


def check_eps(epsilons: list[float], norm: str, input_shape, given: str = "") -> None:
    """Refuse a budget outside its range, [0, :func:`eps_bound`]."""
    top = eps_bound(norm, input_shape)
    bad = [e for e in epsilons if e > top]
    if bad:
        what = ("an L-inf budget moves each pixel of [0, 1] by at most eps" if norm == "linf" else
                f"an L2 ball of radius sqrt(C H W) = {top:.4g} already holds every image of shape {tuple(input_shape)}")
        raise UserError(f"--eps {given or bad[0]!r}: eps={bad[0]:g} is out of range: {what}; give eps in "
                        f"[0, {top:.4g}]")


def class_index(target: str, classes: list[str]) -> int:
    """A class by name (``dog``) or index (``5``)."""
    if target in classes:
        return classes.index(target)
    if target.isdigit() and int(target) < len(classes):
        return int(target)
    raise UserError(f"--target {target!r}: the model has no such class; {closest(target, classes)} "
                    f"(or an index 0..{len(classes) - 1})")

def save_png(image, path: Path) -> Path:
    """A (C, H, W) image in [0, 1] as an 8-bit PNG (grey or RGB)."""
    pixels = (image.detach().permute(1, 2, 0) * 255).round().byte().cpu().numpy()
    Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(path)
    return path

def patches(run_dir: Path) -> list[dict]:
    """The universal patches ``paradigms attack RUN --method patch --target T`` kept with a run, oldest first: each
    result's number (``index``), name (``003-attack-patch-to-3``), target class, success on held-out images and its
    printable PNG (``path``)."""
    from ..engine.results import FOLDER, read_results

    out = []
    for r in read_results(run_dir):
        png = next((f for f in r.files if f.endswith(".png")), None)
        if r.command == "attack" and r.parameters.get("method") == "patch" and png:
            path = Path(run_dir) / FOLDER / png
            if path.is_file():
                out.append({"index": r.index, "name": r.stem, "target": r.values.get("target"),
                            "success": r.values.get("success"), "path": path})
    return out


def load_patch(path: Path, channels: int) -> torch.Tensor:
    """A patch's printable PNG back as the (C, k, k) tensor in [0, 1] it was (to 8 bits), with ``channels`` channels."""
    from ..data.images import read_image

    patch = read_image(path)
    if patch.shape[0] != channels:
        patch = patch.mean(0, keepdim=True) if channels == 1 else patch.expand(channels, -1, -1)
    return patch


def batched(fn, x, y, batch_size: int = 256):
    """``fn(x, y)`` over batches of ``batch_size``, concatenated."""
    return torch.cat([fn(x[i: i + batch_size], y[i: i + batch_size]) for i in range(0, len(x), batch_size)])

def attack_fn(net, method: str, eps: float, norm: str, steps: int, step_size, restarts: int, tgt):
    """``fn(x, y) -> adversarial x`` for one epsilon (targeted when ``tgt`` is a class): ``method`` fgsm or pgd."""
    def fn(x, y):
        goal = torch.full_like(y, tgt) if tgt is not None else y
        if method == "fgsm":
            return fgsm(net, x, goal, eps, targeted=tgt is not None)
        a = step_size if step_size is not None else (default_step_size(eps, steps) if eps > 0 else 1.0)
        return pgd(net, x, goal, eps, a, steps, norm=norm, restarts=restarts, targeted=tgt is not None)

    return fn

def attack_picture(net, x, eps: float, method: str = "pgd", norm: str = "linf", steps: int = 40, step_size=None,
                   restarts: int = 1, tgt: int | None = None, seed: int = 0):
    """One picture attacked, as ``paradigms attack --image`` and the lab's attack panel make it: ``x`` (1, C, H, W) in
    [0, 1], its label the network's own prediction; the random starts drawn from ``seed``. Returns
    ``(adversarial x, probabilities before, probabilities after)``."""
    from ..evaluate.classifier import class_probabilities

    p_clean = class_probabilities(net, x)
    torch.manual_seed(seed)
    adv = attack_fn(net, method, eps, norm, steps, step_size, restarts, tgt)(x, p_clean.argmax(1))
    return adv, p_clean, class_probabilities(net, adv)


ENSEMBLE_NAMES = {"apgd-ce": "APGD-CE", "apgd-t": "APGD-T", "fab-t": "FAB-T", "square": "Square"}
"""AutoAttack's attacks as the papers write them."""


def autoattack_run(net, x, y, eps: float, norm: str, steps: int = 100, queries: int = 5000, seed: int = 0):
    """AutoAttack (:func:`.autoattack.autoattack`, the standard version) as ``paradigms attack --method autoattack``
    runs it on a run's images: ``(adversarial x, record)``, the record's rows naming their attack as the papers do
    (``APGD-CE``, ``APGD-T``, ``FAB-T``, ``Square``)."""
    from .autoattack import autoattack

    adv, record = autoattack(net, x, y, eps, norm, steps=steps, queries=queries, seed=seed)
    record["rows"] = [{**r, "attack": ENSEMBLE_NAMES.get(r["attack"], r["attack"])} for r in record["rows"]]
    return adv, record


def describe(method: str, norm: str, steps: int, restarts: int, tgt, classes) -> str:
    """The attack in words: "PGD-40 (linf), targeted at 'dog'"."""
    name = "FGSM" if method == "fgsm" else f"PGD-{steps} ({norm}{f', {restarts} restarts' if restarts > 1 else ''})"
    return name + (f", targeted at {classes[tgt]!r}" if tgt is not None else "")

def figures(x, last, p_clean, rows, classes, what):
    """The panel of the last epsilon's examples, and accuracy against epsilon when there are several."""
    e, adv, p_adv = last
    out = {"panel": panel_figure(x, adv, p_clean, p_adv, classes, f"{what}, eps {e:.4g}")}
    if len(rows) > 1:
        out["curve"] = curve_figure(rows, what)
    return out

__all__ = ["ENSEMBLE_NAMES", "attack_fn", "attack_picture", "autoattack_run", "batched", "check_eps", "class_index",
           "describe", "eps_bound", "figures", "load_patch", "parse_eps", "patches", "save_png"]
