"""A trained run's classifier under attack: what ``paradigms attack`` and ``paradigms certify`` (and the lab) share.

    net = load_classifier(run_dir, "cpu")                       # paradigms.load, refused unless it has classes
    (x, y), (train_x, train_y) = eval_images(run_dir, 1000, "cpu")   # the run's own evaluation images, in [0, 1]
    adv = batched(attack_fn(net, "pgd", 8 / 255, "linf", 40, None, 1, None), x, y)

The attacks themselves are :mod:`.attacks` (FGSM, PGD) and :mod:`.patch`; the pictures :mod:`.figures`.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import torch
import torch.nn.functional as F
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

def check_eps(epsilons: list[float], norm: str, input_shape, given: str = "") -> None:
    """Refuse a budget outside its range: L-inf moves each pixel of [0, 1] by at most eps, so eps <= 1; an L2 ball
    holds every image once eps reaches the image's largest possible norm, sqrt(C H W)."""
    import math

    top = 1.0 if norm == "linf" else math.sqrt(math.prod(input_shape or (1,)))
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

def load_classifier(run_dir: Path, device: str):
    """The trained classifier of a run folder (``paradigms.load``); a run whose network has no classes is refused."""
    from ..api import load

    net = load(run_dir, device)
    if not net.card.get("classes"):
        raise UserError(f"the network of {run_dir} ({net.card.get('recipe')}) is not a classifier: there are no "
                        "classes to attack")
    return net

def eval_images(run_dir: Path, n: int, device):
    """The first ``n`` images (in [0, 1]) and labels of the run's evaluation set, as the run selected it."""
    from ..data import load_images, unit
    from ..data.subset import ImageRecipeConfig, select
    from ..engine.trainer import load_config

    cfg = load_config(run_dir)
    data = load_images(cfg.dataset, cfg.data_dir)
    if data.test_x is None and data.train_x is None:
        raise UserError(f"dataset {cfg.dataset!r} is streamed from disk; attacks need it in memory")
    if isinstance(cfg, ImageRecipeConfig):  # the run's own selection (classes, val_size...)
        train_x, train_y, x, y, _ = select(data, cfg)
    else:
        x, y, train_x, train_y = data.test_x, data.test_y, data.train_x, data.train_y
    return (unit(x[:n].to(device)), y[:n].to(device)), (train_x, train_y)

def save_png(image, path: Path) -> Path:
    """A (C, H, W) image in [0, 1] as an 8-bit PNG (grey or RGB)."""
    pixels = (image.detach().permute(1, 2, 0) * 255).round().byte().cpu().numpy()
    Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(path)
    return path

def batched(fn, x, y, batch_size: int = 256):
    """``fn(x, y)`` over batches of ``batch_size``, concatenated."""
    return torch.cat([fn(x[i: i + batch_size], y[i: i + batch_size]) for i in range(0, len(x), batch_size)])

def probabilities(net, x, batch_size: int = 512):
    """softmax(net(x)) (N, K), in batches, without gradients."""
    with torch.no_grad():
        return torch.cat([net(x[i: i + batch_size]).float().softmax(1) for i in range(0, len(x), batch_size)])

def attack_fn(net, method: str, eps: float, norm: str, steps: int, step_size, restarts: int, tgt):
    """``fn(x, y) -> adversarial x`` for one epsilon (targeted when ``tgt`` is a class): ``method`` fgsm or pgd."""
    def fn(x, y):
        goal = torch.full_like(y, tgt) if tgt is not None else y
        if method == "fgsm":
            return fgsm(net, x, goal, eps, targeted=tgt is not None)
        a = step_size if step_size is not None else (default_step_size(eps, steps) if eps > 0 else 1.0)
        return pgd(net, x, goal, eps, a, steps, norm=norm, restarts=restarts, targeted=tgt is not None)

    return fn

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

def fit_to(img, shape):
    """A picture (C, H, W) in [0, 1] as the network's input: its channels and size."""
    c, h, w = shape
    if img.shape[0] != c:
        img = img.mean(0, keepdim=True) if c == 1 else img.expand(c, -1, -1)
    return F.interpolate(img[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)


__all__ = ["attack_fn", "batched", "check_eps", "class_index", "describe", "eval_images", "figures", "fit_to",
           "load_classifier", "parse_eps", "probabilities", "save_png"]
