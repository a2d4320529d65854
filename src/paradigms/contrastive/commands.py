"""Contrastive learning's command: ``paradigms zero-shot`` (a clip run's classifier made from typed labels)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..cli import DeviceOpt
from ..errors import DataError, UserError


def zero_shot(
    run_dir: Annotated[Path, typer.Argument(help="a clip run folder")],
    images: Annotated[list[Path], typer.Argument(help="image files (any size: resized to the run's images)")],
    labels: Annotated[str, typer.Option(help="the classes to choose among, by name, separated by commas, e.g. "
                                             "\"t-shirt,trouser,bag\"")],
    template: Annotated[Optional[list[str]], typer.Option(help="a prompt template with {} for the label "
                                                                "(repeatable: a prompt ensemble; default: the run's "
                                                                "training templates)")] = None,
    top: Annotated[int, typer.Option(min=1, help="how many labels to print per image")] = 5,
    device: DeviceOpt = None,
) -> None:
    """Classify images against labels typed here: CLIP's classifier made from label text, with probabilities."""
    import torch

    from ..data.images import decode_image
    from ..engine.trainer import load_config, load_trained
    from .clip import check_template, label_list

    try:
        names = label_list(labels)
    except ValueError as e:
        raise UserError(f"--labels {e}") from None
    try:
        for t in template or []:
            check_template(t)
    except ValueError as e:
        raise UserError(f"--template: {e}") from None
    cfg = load_config(run_dir)
    if cfg.recipe != "clip":
        raise UserError(f"{run_dir} is a {cfg.recipe} run; zero-shot needs a clip run (paradigms run clip), whose "
                        "text tower turns labels into classifiers")
    for path in images:
        if not path.is_file():
            raise UserError(f"cannot read image {path}: no such file")
    trained = load_trained(run_dir, device.value if device else None)
    unreadable = trained.unreadable(names)
    if unreadable:
        listed = ", ".join(f"{label!r} ({', '.join(words)})" for label, words in unreadable.items())
        known = f"its captions named the classes {', '.join(trained.names)}"
        if len(unreadable) == len(names):
            raise UserError(f"--labels: the run's text tower cannot read any of them: {listed} are words no training "
                            f"caption held; {known} (or train with --set text=minilm to read any English word)")
        typer.echo(f"warning: the text tower cannot read {listed}: words no training caption held, so those labels' "
                   f"probabilities mean nothing; {known}", err=True)
    c, h, w = trained.in_shape
    pixels = []
    for path in images:
        try:
            pixels.append(torch.from_numpy(decode_image(str(path), "L" if c == 1 else "RGB", (h, w))))
        except DataError:
            raise UserError(f"cannot read image {path}: not an image file Pillow can open (PNG, JPEG, ...)") from None
    x = torch.stack(pixels)                                                          # (N, C, H, W) uint8
    probs = trained.zero_shot(x.float() / 255, names, template)                      # (N, K)
    k = min(top, len(names))
    rows = []
    for path, p in zip(images, probs):
        best = p.topk(k)
        shown = [f"{names[i]} {float(q):.3f}" for q, i in zip(best.values, best.indices)]
        typer.echo(f"{path}: " + "  ".join(shown))
        rows.append([path.name, *shown, *[""] * (k - len(shown))])
    keep_result(run_dir, names, template, unreadable, rows, probs)


def keep_result(run_dir: Path, names, template, unreadable, rows, probs) -> None:
    """The answers kept with the run, a table in its report (a later zero-shot never replaces them)."""
    from ..engine.report import save_result
    from ..engine.results import Result

    k = len(rows[0]) - 1
    note = (f" The text tower cannot read {', '.join(map(repr, unreadable))}: those labels mean nothing."
            if unreadable else "")
    result = Result(command="zero-shot", name="zero-shot", title=f"Zero-shot: {len(rows)} image(s) among "
                    f"{len(names)} typed labels",
                    parameters={"labels": ", ".join(names), "templates": "; ".join(template) if template else
                                "the run's training templates"},
                    columns=["image", *[f"{'best' if i == 0 else f'#{i + 1}'} (probability)" for i in range(k)]],
                    rows=rows, summary="Each label's classifier is its prompts' text embedding; an image goes to the "
                    "most similar label, at the run's learned temperature." + note,
                    values={"labels": names, "probabilities": [[round(float(q), 6) for q in p] for p in probs]})
    path, _ = save_result(run_dir, result)
    typer.echo(f"results: {path}", err=True)      # stdout holds the answers alone


def commands(app) -> None:
    app.command("zero-shot")(zero_shot)
