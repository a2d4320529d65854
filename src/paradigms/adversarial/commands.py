"""The adversarial commands: ``paradigms attack RUN_DIR`` (and ``--image`` for your own picture), ``paradigms certify``.

    paradigms attack RUN_DIR --method pgd --eps 0,0.05,0.1,0.2,0.3      # accuracy against epsilon
    paradigms attack RUN_DIR --image cat.jpg --target dog --eps 8/255   # the lecture's cat -> dog
    paradigms attack RUN_DIR --method patch --target dog --size 0.1     # a universal printable patch
    paradigms attack RUN_DIR --method autoattack --eps 0.3 --checks     # the field's figure, and its sanity checks

Results are kept with the run (``results/NNN-attack-....json``, never overwritten) and shown in its report. The
work is done by library functions (:mod:`.runs`, :mod:`.certify`, :mod:`.autoattack`, :mod:`.checks`); this module
only parses and prints.
"""

from __future__ import annotations

import os
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
    autoattack = "autoattack"


class Norm(str, Enum):
    linf = "linf"
    l2 = "l2"


def attack(
    run_dir: Annotated[Path, typer.Argument(help="a run folder of a recipe that trains a classifier")],
    method: Annotated[Method, typer.Option(help="fgsm (one step) | pgd (many, projected) | patch (a universal "
                                                "sticker) | autoattack (APGD-CE, APGD-T, FAB-T and Square, the worst "
                                                "case per image: the figure the field reports)")] = Method.pgd,
    eps: Annotated[str, typer.Option(help="the budget in [0, 1] pixels (L-inf; L2: up to the image's norm): 0.3, "
                                          "8/255, or a list 0,0.1,0.3 (draws accuracy against epsilon)")] = "8/255",
    norm: Annotated[Norm, typer.Option(help="the ball the attack stays in")] = Norm.linf,
    steps: Annotated[Optional[int], typer.Option(min=1, help="PGD steps (default 40); autoattack: the iterations of "
                                                            "APGD and FAB (default 100, the reference's)")] = None,
    step_size: Annotated[Optional[float], typer.Option(help="PGD step (default 2.5 eps / steps)")] = None,
    restarts: Annotated[int, typer.Option(min=1, help="PGD random starts; the strongest is kept")] = 1,
    target: Annotated[Optional[str], typer.Option(help="a class name or index: a targeted attack")] = None,
    n: Annotated[int, typer.Option("--n", min=1, help="how many evaluation images")] = 1000,
    image: Annotated[Optional[Path], typer.Option(help="attack this picture instead of the run's images")] = None,
    size: Annotated[float, typer.Option(help="patch: the fraction of the image area it covers")] = 0.1,
    patch_steps: Annotated[int, typer.Option(min=1, help="patch: training steps (64 images each)")] = 500,
    queries: Annotated[int, typer.Option(min=1, help="autoattack and --checks: the Square attack's queries")] = 5000,
    checks: Annotated[bool, typer.Option("--checks", help="then the sanity checks of Carlini et al. 2019 at the "
                                                          "largest eps: a warning for each failed one (the defence may "
                                                          "be masking gradients)")] = False,
    seed: Annotated[int, typer.Option(help="random seed (random starts, patch placements)")] = 0,
    device: Annotated[Device, typer.Option(help="where to run (auto: cuda when there is one)")] = Device.cpu,
) -> None:
    """Attack a trained classifier: clean accuracy, accuracy under attack, targeted success; figures in its report.
    ``--method autoattack``: robust accuracy after each attack of the ensemble; ``--checks``: is it to be trusted?"""
    import torch

    from ..engine.context import pick_device
    from ..engine.results import Result, percent
    from ..evaluate.classifier import class_probabilities as probabilities
    from ..evaluate.classifier import eval_images, load_classifier
    from .runs import attack_fn, batched, check_eps, class_index, describe, parse_eps

    torch.manual_seed(seed)
    dev = pick_device(device.value)
    epsilons = parse_eps(eps)
    if checks and (method == Method.patch or image is not None or target is not None):
        raise UserError("--checks tests an untargeted attack on the run's images: not with --method patch, --image or "
                        "--target")
    if method == Method.autoattack:
        if target is not None:
            raise UserError("--method autoattack is untargeted (its APGD-T and FAB-T pick their own targets): drop "
                            "--target")
        if image is not None:
            raise UserError("--method autoattack evaluates the run's images: drop --image (or attack a picture with "
                            "--method pgd)")
        if len(epsilons) != 1:
            raise UserError(f"--eps {eps!r}: --method autoattack takes one eps, not a list")
    net = load_classifier(run_dir, dev)
    if method != Method.patch:
        check_eps(epsilons, norm.value, net.input_shape, eps)
    classes = net.classes
    tgt = class_index(target, classes) if target is not None else None
    if method == Method.patch:
        if tgt is None:
            raise UserError("--method patch needs --target CLASS: the class the patch turns images into")
        attack_patch(net, run_dir, tgt, size, patch_steps, n, dev)
        return
    if method == Method.autoattack:
        (x, y), _ = eval_images(run_dir, n, dev)
        attack_auto(net, run_dir, x, y, epsilons[0], norm.value, steps or 100, queries, seed)
        if checks:
            run_checks(net, run_dir, x, y, epsilons[0], norm.value, steps or 100, restarts, queries, seed)
        return
    steps = steps or 40
    if image is not None:
        attack_image(net, image, tgt, epsilons[-1], method.value, norm.value, steps, step_size, restarts, dev, seed)
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
    params = {"method": method.value, "eps": eps, "norm": norm.value, **({} if method == Method.fgsm else {
        "steps": steps, "step size": step_size or "2.5 eps / steps", "restarts": restarts}),
        "target": classes[tgt] if tgt is not None else "none", "images": len(y), "seed": seed}
    columns = ["eps", "accuracy under attack"] + (["targeted success"] if tgt is not None else [])
    table = [[f"{r['eps']:.4g}", percent(r["acc"]), *([percent(r["success"])] if tgt is not None else [])]
             for r in rows]
    worst = rows[-1]
    result = Result(command="attack", name=f"attack-{method.value}-{norm.value}" + (f"-to-{classes[tgt]}" if tgt is not
                                                                                    None else ""),
                    title=f"{what} on {len(y):,} test images", parameters=params, columns=columns, rows=table,
                    summary=f"Clean accuracy {percent(clean)}; at eps {worst['eps']:.4g} the attack leaves "
                            f"{percent(worst['acc'])}.",
                    values={"attack": what, "n": len(y), "clean_acc": clean, "rows": rows})
    save(run_dir, result, attack_figures(x, last, p_clean, rows, classes, what))
    if checks:
        run_checks(net, run_dir, x, y, epsilons[-1], norm.value, steps, restarts, queries, seed)


def attack_auto(net, run_dir: Path, x, y, e: float, norm: str, steps: int, queries: int, seed: int) -> None:
    """AutoAttack on the run's images: clean accuracy, robust accuracy after each attack of the ensemble, the images
    each broke, the time; kept with the run (a table, the examples' panel) and shown in its report."""
    import torch

    from ..engine.results import Result, percent
    from ..evaluate.classifier import class_probabilities as probabilities
    from .runs import autoattack_run

    torch.manual_seed(seed)
    adv, record = autoattack_run(net, x, y, e, norm, steps, queries, seed)
    rows, clean, robust, seconds = record["rows"], record["clean_acc"], record["robust_acc"], record["seconds"]
    what = f"AutoAttack ({norm}, eps {e:.4g})"
    typer.echo(f"{what} on {len(y)} images of {run_dir}: clean accuracy {clean:.2%}")
    for r in rows:
        typer.echo(f"  after {r['attack']:<8} robust accuracy {r['robust_acc']:.2%}  (it broke {r['broken']} "
                   f"image{'s' if r['broken'] != 1 else ''}, {r['seconds']:.1f} s)")
    typer.echo(f"robust accuracy {robust:.2%} (clean {clean:.2%}), {seconds:.1f} s in all")
    p_clean, p_adv = probabilities(net, x), probabilities(net, adv)
    names = " -> ".join(r["attack"] for r in rows)
    result = Result(command="attack", name=f"attack-autoattack-{norm}", title=f"{what} on {len(y):,} test images",
                    parameters={"method": "autoattack", "eps": f"{e:.4g}", "norm": norm, "ensemble": names,
                                "steps": steps, "queries": queries, "images": len(y), "seed": seed},
                    columns=["after", "robust accuracy", "images it broke", "time"],
                    rows=[["clean", percent(clean), "", ""]] + [
                        [r["attack"], percent(r["robust_acc"]), str(r["broken"]), f"{r['seconds']:.1f} s"]
                        for r in rows],
                    summary=f"Clean accuracy {percent(clean)}; AutoAttack ({names}, each on the images still "
                            f"classified right, the worst case per image) at eps {e:.4g} leaves "
                            f"{percent(robust)}, in {seconds:.1f} s.",
                    values={"attack": what, "eps": e, "norm": norm, "n": len(y), "clean_acc": clean,
                            "robust_acc": robust, "seconds": seconds, "rows": rows})
    row = {"eps": e, "acc": robust, "success": None}
    save(run_dir, result, attack_figures(x, (e, adv, p_adv), p_clean, [row], net.classes, what))


def run_checks(net, run_dir: Path, x, y, e: float, norm: str, steps: int, restarts: int, queries: int,
               seed: int) -> None:
    """The sanity checks of Carlini et al. 2019 at ``e``: a line for each, a warning for each failed one; kept with
    the run beside the attack."""
    from ..engine.results import Result
    from .checks import WARNING, sanity_checks

    found = sanity_checks(net, x, y, e, norm, steps=steps, restarts=max(restarts, 5), queries=queries, seed=seed)
    for name, passed, detail in found:
        if passed:
            typer.echo(f"check {name}: passed: {detail}")
        else:
            typer.echo(f"warning: check {name} FAILED: {detail}; {WARNING}", err=True)
    failed = [c.name for c in found if not c.passed]
    summary = (f"{len(failed)} of {len(found)} checks failed ({', '.join(failed)}): {WARNING}." if failed else
               f"All {len(found)} checks passed: nothing here suggests masked gradients (no proof of robustness).")
    typer.echo(summary)
    result = Result(command="attack", name=f"checks-{norm}",
                    title=f"Sanity checks at eps {e:.4g} ({norm}) on {len(y):,} test images (Carlini et al. 2019)",
                    parameters={"eps": f"{e:.4g}", "norm": norm, "steps": steps, "restarts": max(restarts, 5),
                                "queries": queries, "images": len(y), "seed": seed},
                    columns=["check", "verdict", "what it read"],
                    rows=[[c.name, "passed" if c.passed else "FAILED", c.detail] for c in found], summary=summary,
                    values={"eps": e, "norm": norm, "n": len(y), "checks": [c._asdict() for c in found]})
    save(run_dir, result, {})


def attack_figures(x, last, p_clean, rows, classes, what) -> dict:
    """The result's figures with their captions: the examples' panel, and the curve when there are several eps."""
    from .runs import figures

    figs = figures(x, last, p_clean, rows, classes, what)
    captions = {"panel": "Test images, the perturbation the attack added (amplified to be seen) and the attacked "
                         "images, with the network's prediction and confidence before and after, at the largest eps.",
                "curve": "Accuracy under the attack against its budget eps: how fast the network's accuracy falls "
                         "as the attacker may change each pixel more."}
    return {k: (fig, captions[k]) for k, fig in figs.items()}


def save(run_dir: Path, result, figs: dict, files: dict | None = None) -> None:
    """Keep a command's result with the run (never overwriting an earlier one), then rewrite its report."""
    from ..engine.report import save_result

    path, report = save_result(run_dir, result, figs, files)
    typer.echo(f"results: {path}  (report: {report})")


def attack_image(net, path: Path, tgt, eps: float, method: str, norm: str, steps, step_size, restarts, dev, seed=0):
    """The lecture's example: one picture, its prediction before and after; the adversarial PNG and a panel."""
    from ..data.images import read_image
    from ..engine.report import save_figure
    from ..evaluate.classifier import fit_image
    from .figures import label, panel_figure
    from .runs import attack_picture, describe, save_png

    x = fit_image(read_image(path), net.input_shape)[None].to(dev)
    adv, p_clean, p_adv = attack_picture(net, x, eps, method, norm, steps, step_size, restarts, tgt, seed)
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
    from ..engine.results import Result, percent
    from .patch import draw, paste, patch_success, train_patch
    from ..evaluate.classifier import class_probabilities as probabilities
    from ..evaluate.classifier import eval_images
    from .runs import save_png

    (x, y), (train_x, train_y) = eval_images(run_dir, n, dev)
    x = x[y != tgt]
    train = unit(train_x[train_y != tgt].to(dev))
    patch = train_patch(net, train, tgt, size=size, steps=patch_steps)
    noise = torch.rand_like(patch)
    success, control = patch_success(net, patch, x, tgt), patch_success(net, noise, x, tgt)
    classes = net.classes
    typer.echo(f"patch ({patch.shape[-1]}x{patch.shape[-2]} px, {size:.0%} of the image) targeted at "
               f"{classes[tgt]!r}: success {success:.2%} on {len(x)} held-out images; a noise patch: {control:.2%}")
    shown = x[:7]
    patched = paste(shown, patch, draw(len(shown), patch.shape[-1], *x.shape[-2:], device=dev))
    fig = patch_figure(patch, patched, probabilities(net, patched), classes,
                       f"universal patch for {classes[tgt]!r}: {success:.0%} of held-out images (noise patch "
                       f"{control:.0%})")
    result = Result(command="attack", name=f"attack-patch-to-{classes[tgt]}",
                    title=f"A universal patch turning images into {classes[tgt]!r}",
                    parameters={"method": "patch", "target": classes[tgt], "size": f"{size:.0%} of the image",
                                "side": f"{patch.shape[-1]} px", "steps": patch_steps, "held-out images": len(x)},
                    columns=["patch", f"images called {classes[tgt]!r}"],
                    rows=[["the trained patch", percent(success)],
                          ["a noise patch of the same size", percent(control)]],
                    summary=f"Pasted at a random place, the patch makes the network say {classes[tgt]!r} for "
                            f"{percent(success)} of held-out images of other classes (noise: {percent(control)}); the "
                            "printable patch is the result's PNG.",
                    values={"target": classes[tgt], "size": size, "side": patch.shape[-1], "success": success,
                            "noise_success": control, "n": len(x)})
    caption = ("The trained patch, and held-out images with it pasted at random places, with the network's "
               "prediction and confidence.")
    save(run_dir, result, {"examples": (fig, caption)}, {".png": lambda path: save_png(patch, path)})


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

    progress = os.environ.get("PARADIGMS_PROGRESS", "1") != "0"      # as a run's progress bar
    summary = certify_run(run_dir, sigma, n0, n, alpha, skip, max_images, batch, seed, pick_device(device.value),
                          progress)
    show_certificates(summary, run_dir)


def show_certificates(summary: dict, run_dir: Path) -> None:
    """Print the certified accuracies; keep them with the run (a table and the curve in its report)."""
    from ..engine.results import Result, percent
    from .certify import curve_figure

    typer.echo(f"{summary['images']} images of {run_dir}, σ={summary['sigma']:g}, n={summary['n']:,}, "
               f"n0={summary['n0']}, α={summary['alpha']:g}: {summary['abstained']} abstained, "
               f"{summary['seconds_per_image']:.3f} s per image")
    for r, a in zip(summary["radii"], summary["certified_acc"]):
        typer.echo(f"  certified accuracy at radius {r:<5g} {a:.1%}")
    note = ""
    if summary["trained_sigma"] is not None and summary["trained_sigma"] != summary["sigma"]:
        note = (f"The network trained with noise σ={summary['trained_sigma']:g} and is certified at "
                f"σ={summary['sigma']:g}.")
        typer.echo(f"note: {note}")
    result = Result(command="certify", name=f"certify-sigma{summary['sigma']:g}-n{summary['n']}",
                    title=f"Randomized smoothing at σ={summary['sigma']:g} on {summary['images']:,} test images",
                    parameters={"sigma": summary["sigma"], "n": f"{summary['n']:,}", "n0": summary["n0"],
                                "alpha": summary["alpha"], "every": f"{summary['skip']}th image"},
                    columns=["L2 radius", "certified accuracy"],
                    rows=[[f"{r:g}", percent(a)] for r, a in zip(summary["radii"], summary["certified_acc"])],
                    summary=f"{summary['abstained']} of {summary['images']} images abstained (no class certain "
                            f"enough); {summary['seconds_per_image']:.2f} s per image. {note}".strip(),
                    values=summary)
    caption = ("Certified accuracy against the L2 radius: the share of test images whose smoothed prediction is right "
               "and provably cannot change under any perturbation of that size (with probability 1 - α).")
    save(Path(run_dir), result, {"curve": (curve_figure(summary), caption)})


def commands(app: typer.Typer) -> None:
    app.command("attack")(attack)
    app.command("certify")(certify)
