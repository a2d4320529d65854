"""Adversarial attacks bring one command: ``paradigms attack RUN_DIR`` (and ``--image`` for your own picture).

    paradigms attack RUN_DIR --method pgd --eps 0,0.05,0.1,0.2,0.3      # accuracy against epsilon
    paradigms attack RUN_DIR --image cat.jpg --target dog --eps 8/255   # the lecture's cat -> dog
    paradigms attack RUN_DIR --method patch --target dog --size 0.1     # a universal printable patch

Results go to the run folder: ``attack-METHOD.json``, figures and a note in its report.
"""

from __future__ import annotations

import json
from enum import Enum
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..cli import Device
from ..errors import UserError

class Method(str, Enum):
    fgsm = "fgsm"
    pgd = "pgd"
    patch = "patch"


class Norm(str, Enum):
    linf = "linf"
    l2 = "l2"


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


def class_index(target: str, classes: list[str]) -> int:
    """A class by name (``dog``) or index (``5``)."""
    if target in classes:
        return classes.index(target)
    if target.isdigit() and int(target) < len(classes):
        return int(target)
    from ..errors import closest

    raise UserError(f"--target {target!r}: the model has no such class; {closest(target, classes)} "
                    f"(or an index 0..{len(classes) - 1})")


def load_classifier(run_dir: Path, device: str):
    import paradigms

    net = paradigms.load(run_dir, device)
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
    from PIL import Image

    pixels = (image.detach().permute(1, 2, 0) * 255).round().byte().cpu().numpy()
    Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(path)
    return path


def batched(fn, x, y, batch_size: int = 256):
    import torch

    return torch.cat([fn(x[i: i + batch_size], y[i: i + batch_size]) for i in range(0, len(x), batch_size)])


def probabilities(net, x, batch_size: int = 512):
    import torch

    with torch.no_grad():
        return torch.cat([net(x[i: i + batch_size]).float().softmax(1) for i in range(0, len(x), batch_size)])


def attack(
    run_dir: Annotated[Path, typer.Argument(help="a run folder of a recipe that trains a classifier")],
    method: Annotated[Method, typer.Option(help="fgsm (one step) | pgd (many, projected) | patch (a universal "
                                                "sticker)")] = Method.pgd,
    eps: Annotated[str, typer.Option(help="the budget in [0, 1] pixels: 0.3, 8/255, or a list 0,0.1,0.3 "
                                          "(draws accuracy against epsilon)")] = "8/255",
    norm: Annotated[Norm, typer.Option(help="the ball PGD stays in")] = Norm.linf,
    steps: Annotated[int, typer.Option(min=1, help="PGD steps")] = 40,
    step_size: Annotated[Optional[float], typer.Option(help="PGD step (default 2.5 eps / steps)")] = None,
    restarts: Annotated[int, typer.Option(min=1, help="PGD random starts; the strongest is kept")] = 1,
    target: Annotated[Optional[str], typer.Option(help="a class name or index: a targeted attack")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="how many evaluation images")] = 1000,
    image: Annotated[Optional[Path], typer.Option(help="attack this picture instead of the run's images")] = None,
    size: Annotated[float, typer.Option(help="patch: the fraction of the image area it covers")] = 0.1,
    patch_steps: Annotated[int, typer.Option(min=1, help="patch: training steps (64 images each)")] = 500,
    seed: Annotated[int, typer.Option(help="random seed (random starts, patch placements)")] = 0,
    device: Annotated[Device, typer.Option(help="where to run (auto: cuda when there is one)")] = Device.cpu,
) -> None:
    """Attack a trained classifier: clean accuracy, accuracy under attack, targeted success; figures in its report."""
    import torch

    from ..engine.context import pick_device

    torch.manual_seed(seed)
    dev = pick_device(device.value)
    epsilons = parse_eps(eps)
    net = load_classifier(run_dir, dev)
    classes = net.classes
    tgt = class_index(target, classes) if target is not None else None
    if method == Method.patch:
        if tgt is None:
            raise UserError("--method patch needs --target CLASS: the class the patch turns images into")
        attack_patch(net, run_dir, tgt, size, patch_steps, n, dev)
        return
    if image is not None:
        attack_image(net, image, tgt, epsilons[-1], method, norm.value, steps, step_size, restarts, dev)
        return
    (x, y), _ = eval_images(run_dir, n, dev)
    if tgt is not None:
        keep = y != tgt  # a targeted attack on images already of the target would measure nothing
        x, y = x[keep], y[keep]
    rows, last = [], None
    p_clean = probabilities(net, x)
    for e in epsilons:
        fn = attack_fn(net, method, e, norm.value, steps, step_size, restarts, tgt)
        adv = batched(fn, x, y)
        p_adv = probabilities(net, adv)
        pred = p_adv.argmax(1)
        rows.append({"eps": e, "acc": float((pred == y).float().mean()),
                     "success": float((pred == tgt).float().mean()) if tgt is not None else None})
        last = (e, adv, p_adv)
        shown = f"  targeted success {rows[-1]['success']:.2%}" if tgt is not None else ""
        typer.echo(f"eps {e:.4g}: accuracy {rows[-1]['acc']:.2%}{shown}")
    clean = float((p_clean.argmax(1) == y).float().mean())
    what = describe(method, norm.value, steps, restarts, tgt, classes)
    typer.echo(f"{what} on {len(y)} images of {run_dir}: clean accuracy {clean:.2%}")
    save_results(run_dir, method.value, {"attack": what, "n": len(y), "clean_acc": clean, "rows": rows},
                 figures(x, last, p_clean, rows, classes, what))


def attack_fn(net, method: Method, eps: float, norm: str, steps: int, step_size, restarts: int, tgt):
    """``fn(x, y) -> adversarial x`` for one epsilon (targeted when ``tgt`` is a class)."""
    import torch

    from .attacks import default_step_size, fgsm, pgd

    def fn(x, y):
        goal = torch.full_like(y, tgt) if tgt is not None else y
        if method == Method.fgsm:
            return fgsm(net, x, goal, eps, targeted=tgt is not None)
        a = step_size if step_size is not None else (default_step_size(eps, steps) if eps > 0 else 1.0)
        return pgd(net, x, goal, eps, a, steps, norm=norm, restarts=restarts, targeted=tgt is not None)

    return fn


def describe(method: Method, norm: str, steps: int, restarts: int, tgt, classes) -> str:
    name = "FGSM" if method == Method.fgsm else f"PGD-{steps} ({norm}{f', {restarts} restarts' if restarts > 1 else ''})"
    return name + (f", targeted at {classes[tgt]!r}" if tgt is not None else "")


def figures(x, last, p_clean, rows, classes, what):
    from .figures import curve_figure, panel_figure

    e, adv, p_adv = last
    out = {"panel": panel_figure(x, adv, p_clean, p_adv, classes, f"{what}, eps {e:.4g}")}
    if len(rows) > 1:
        out["curve"] = curve_figure(rows, what)
    return out


def save_results(run_dir: Path, method: str, result: dict, figs: dict) -> None:
    """attack-METHOD.json, figures/attack-METHOD-*.png and a note, then the run's report again."""
    from ..engine.report import save_results as save

    path, report = save(run_dir, f"attack-{method}", result, figs)
    typer.echo(f"results: {path}  (report: {report})")


def fit_to(img, shape):
    """A picture (C, H, W) in [0, 1] as the network's input: its channels and size."""
    import torch.nn.functional as F

    c, h, w = shape
    if img.shape[0] != c:
        img = img.mean(0, keepdim=True) if c == 1 else img.expand(c, -1, -1)
    return F.interpolate(img[None], size=(h, w), mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1)


def attack_image(net, path: Path, tgt, eps: float, method: Method, norm: str, steps, step_size, restarts, dev):
    """The lecture's example: one picture, its prediction before and after; the adversarial PNG and a panel."""
    from ..data.images import read_image
    from ..engine.report import save_figure
    from .figures import label, panel_figure

    x = fit_to(read_image(path), net.input_shape)[None].to(dev)
    p_clean = probabilities(net, x)
    y = p_clean.argmax(1)
    adv = attack_fn(net, method, eps, norm, steps, step_size, restarts, tgt)(x, y)
    p_adv = probabilities(net, adv)
    classes = net.classes
    typer.echo(f"before: {label(p_clean[0], classes)}   after (eps {eps:.4g}): {label(p_adv[0], classes)}")
    out = save_png(adv[0], path.with_name(f"{path.stem}-adversarial.png"))
    what = describe(method, norm, steps, restarts, tgt, classes)
    save_figure(panel_figure(x, adv, p_clean, p_adv, classes, f"{what}, eps {eps:.4g}"),
                path.with_name(f"{path.stem}-adversarial-panel.png"))
    typer.echo(f"wrote {out} and {path.with_name(f'{path.stem}-adversarial-panel.png')}")


def attack_patch(net, run_dir: Path, tgt: int, size: float, patch_steps: int, n: int, dev) -> None:
    """Train a universal patch on training images; its targeted success on held-out images vs a noise patch."""
    import torch

    from ..data import unit
    from .figures import patch_figure
    from .patch import draw, paste, patch_success, train_patch

    (x, y), (train_x, train_y) = eval_images(run_dir, n, dev)
    x = x[y != tgt]
    train = unit(train_x[train_y != tgt].to(dev))
    patch = train_patch(net, train, tgt, size=size, steps=patch_steps)
    noise = torch.rand_like(patch)
    success, control = patch_success(net, patch, x, tgt), patch_success(net, noise, x, tgt)
    classes = net.classes
    typer.echo(f"patch ({patch.shape[-1]}x{patch.shape[-2]} px, {size:.0%} of the image) targeted at "
               f"{classes[tgt]!r}: success {success:.2%} on {len(x)} held-out images; a noise patch: {control:.2%}")
    png = save_png(patch, run_dir / f"attack-patch-{classes[tgt]}.png")
    shown = x[:7]
    patched = paste(shown, patch, draw(len(shown), patch.shape[-1], *x.shape[-2:], device=dev))
    fig = patch_figure(patch, patched, probabilities(net, patched), classes,
                       f"universal patch for {classes[tgt]!r}: {success:.0%} of held-out images (noise patch "
                       f"{control:.0%})")
    save_results(run_dir, "patch", {"target": classes[tgt], "size": size, "side": patch.shape[-1],
                                    "success": success, "noise_success": control, "n": len(x), "png": png.name},
                 {"examples": fig})


def certify(
    run_dir: Annotated[Path, typer.Argument(help="a run folder of a recipe that trains a classifier")],
    sigma: Annotated[Optional[float], typer.Option(help="the Gaussian noise's standard deviation in [0, 1] pixels "
                                                       "(default: the sigma of the run's gaussian_noise training)")] = None,
    n: Annotated[int, typer.Option("--n", help="noisy samples that estimate the top class's probability")] = 100_000,
    n0: Annotated[int, typer.Option("--n0", help="noisy samples that pick the top class")] = 100,
    alpha: Annotated[float, typer.Option(help="failure probability of each certificate")] = 0.001,
    skip: Annotated[int, typer.Option(help="certify every skip-th evaluation image")] = 20,
    max_images: Annotated[Optional[int], typer.Option("--max", min=1, help="at most this many images")] = None,
    batch: Annotated[int, typer.Option(min=1, help="noisy images per forward pass")] = 1000,
    seed: Annotated[int, typer.Option(help="random seed of the noise")] = 0,
    device: Annotated[Device, typer.Option(help="where to run (auto: cuda when there is one)")] = Device.cpu,
) -> None:
    """Certify a classifier by randomized smoothing (Cohen et al. 2019): a per-image table, certified accuracy
    against the L2 radius; resumes an interrupted certification."""
    from ..engine.context import pick_device
    from .certify import certify_run, show

    summary = certify_run(run_dir, sigma, n0, n, alpha, skip, max_images, batch, seed, pick_device(device.value))
    show(summary, run_dir)


def commands(app: typer.Typer) -> None:
    app.command("attack")(attack)
    app.command("certify")(certify)
