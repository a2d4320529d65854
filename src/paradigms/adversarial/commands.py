"""The adversarial commands: ``paradigms attack RUN_DIR`` (and ``--image`` for your own picture), ``paradigms certify``.

    paradigms attack RUN_DIR --method pgd --eps 0,0.05,0.1,0.2,0.3      # accuracy against epsilon
    paradigms attack RUN_DIR --image cat.jpg --target dog --eps 8/255   # the lecture's cat -> dog
    paradigms attack RUN_DIR --method patch --target dog --size 0.1     # a universal printable patch

Results go to the run folder: ``attack-METHOD.json``, figures and a note in its report. The work is done by
library functions (:mod:`.runs`, :mod:`.certify`); this module only parses and prints.
"""

from __future__ import annotations

from enum import Enum
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
    from .runs import (attack_fn, batched, class_index, describe, eval_images, figures, load_classifier, parse_eps,
                       probabilities)

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
        attack_image(net, image, tgt, epsilons[-1], method.value, norm.value, steps, step_size, restarts, dev)
        return
    (x, y), _ = eval_images(run_dir, n, dev)
    if tgt is not None:
        keep = y != tgt  # a targeted attack on images already of the target would measure nothing
        x, y = x[keep], y[keep]
    rows, last = [], None
    p_clean = probabilities(net, x)
    for e in epsilons:
        fn = attack_fn(net, method.value, e, norm.value, steps, step_size, restarts, tgt)
        adv = batched(fn, x, y)
        p_adv = probabilities(net, adv)
        pred = p_adv.argmax(1)
        rows.append({"eps": e, "acc": float((pred == y).float().mean()),
                     "success": float((pred == tgt).float().mean()) if tgt is not None else None})
        last = (e, adv, p_adv)
        shown = f"  targeted success {rows[-1]['success']:.2%}" if tgt is not None else ""
        typer.echo(f"eps {e:.4g}: accuracy {rows[-1]['acc']:.2%}{shown}")
    clean = float((p_clean.argmax(1) == y).float().mean())
    what = describe(method.value, norm.value, steps, restarts, tgt, classes)
    typer.echo(f"{what} on {len(y)} images of {run_dir}: clean accuracy {clean:.2%}")
    save_results(run_dir, method.value, {"attack": what, "n": len(y), "clean_acc": clean, "rows": rows},
                 figures(x, last, p_clean, rows, classes, what))


def save_results(run_dir: Path, method: str, result: dict, figs: dict) -> None:
    """attack-METHOD.json, figures/attack-METHOD-*.png and a note, then the run's report again."""
    from ..engine.report import save_results as save

    path, report = save(run_dir, f"attack-{method}", result, figs)
    typer.echo(f"results: {path}  (report: {report})")


def attack_image(net, path: Path, tgt, eps: float, method: str, norm: str, steps, step_size, restarts, dev):
    """The lecture's example: one picture, its prediction before and after; the adversarial PNG and a panel."""
    from ..data.images import read_image
    from ..engine.report import save_figure
    from .figures import label, panel_figure
    from .runs import attack_fn, describe, fit_to, probabilities, save_png

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
    from .runs import eval_images, probabilities, save_png

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
    from .certify import certify_run

    summary = certify_run(run_dir, sigma, n0, n, alpha, skip, max_images, batch, seed, pick_device(device.value))
    show_certificates(summary, run_dir)


def show_certificates(summary: dict, run_dir: Path) -> None:
    """Print the certified accuracies; the curve, ``certify-sigmaS.json`` and a note into the run's report."""
    from ..engine.report import save_results
    from .certify import curve_figure

    typer.echo(f"{summary['images']} images of {run_dir}, σ={summary['sigma']:g}, n={summary['n']:,}, "
               f"n0={summary['n0']}, α={summary['alpha']:g}: {summary['abstained']} abstained, "
               f"{summary['seconds_per_image']:.3f} s per image")
    for r, a in zip(summary["radii"], summary["certified_acc"]):
        typer.echo(f"  certified accuracy at radius {r:<5g} {a:.1%}")
    if summary["trained_sigma"] is not None and summary["trained_sigma"] != summary["sigma"]:
        typer.echo(f"note: the network trained with noise σ={summary['trained_sigma']:g}, certified at "
                   f"σ={summary['sigma']:g}")
    path, report = save_results(Path(run_dir), f"certify-sigma{summary['sigma']:g}", summary,
                                {"curve": curve_figure(summary)})
    typer.echo(f"results: {path}  (report: {report})")


def commands(app: typer.Typer) -> None:
    app.command("attack")(attack)
    app.command("certify")(certify)
