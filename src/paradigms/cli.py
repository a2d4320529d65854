"""The ``paradigms`` command: list, run, eval, report.

Bad input (an unknown recipe, dataset or key, a value out of range, a missing or corrupt file or
checkpoint, a diverging loss) prints one line ``error: ...`` and exits with status 2.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Every way a deep network learns, as recipes on one engine.")


@app.command("list")
def list_recipes() -> None:
    """The recipes: family, default dataset, what each measures."""
    from .recipes import all_recipes

    rows = [(name, r.family, r.Config.model_fields["dataset"].default, r.measures) for name, r in all_recipes().items()]
    head = ("recipe", "family", "default dataset", "measures")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in (head, *rows):
        typer.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


@app.command()
def run(
    recipe: Annotated[Optional[str], typer.Argument(help="recipe name (see `paradigms list`)")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="dataset: digits, mnist, fashion-mnist, cifar10, "
                                                  "olivetti-faces, imagefolder:PATH")] = None,
    data_dir: Annotated[Optional[str], typer.Option(help="data root (else $PARADIGMS_DATA, else the user cache)")] = None,
    preset: Annotated[str, typer.Option(help="quick (2 CPU cores, minutes) | full (paper scale) | none")] = "quick",
    config: Annotated[Optional[Path], typer.Option(help="YAML file of config values")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="key.sub=value (repeatable)")] = None,
    seed: Annotated[Optional[int], typer.Option(help="random seed")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu | cuda | auto")] = None,
    out: Annotated[Optional[Path], typer.Option(help="run folder (default runs/RECIPE-DATASET-TIME)")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="continue the interrupted run in this folder")] = None,
    source: Annotated[Optional[str], typer.Option("--from", help="transfer from this run folder or weights "
                                                  "file (recipe finetune)")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Train a recipe; prints the final metrics and the run folder."""
    from . import config as configlib
    from . import recipes
    from .engine.trainer import Trainer, load_config

    if resume is not None:
        if recipe or dataset or config or set_ or seed is not None or out or source:
            raise UserError("--resume RUN_DIR continues a run with its saved config; give no recipe, "
                            "--dataset, --config, --set, --seed, --from or --out with it")
        cfg = load_config(resume)
        if device:
            cfg = cfg.model_copy(update={"device": device})
        run_dir = resume
    else:
        if recipe is None:
            raise UserError("name a recipe (`paradigms list` shows them) or give --resume RUN_DIR")
        flags = {"dataset": dataset, "seed": seed, "device": device, "data_dir": data_dir, "source": source}
        if source is not None and "source" not in recipes.get(recipe).Config.model_fields:
            raise UserError(f"--from is for recipes that start from trained weights (finetune); "
                            f"{recipe!r} trains from scratch")
        cfg = configlib.resolve(recipes.get(recipe), preset, config, set_ or [], flags)
        run_dir = out
    t0 = time.monotonic()
    trainer = Trainer(cfg, run_dir, resume=resume is not None, progress=False if quiet else None)
    final = trainer.fit()
    if trainer.ctx.is_main:
        summary = "  ".join(f"{k} {v:.4f}" for k, v in final.items())
        typer.echo(f"{cfg.recipe} on {cfg.dataset}: {summary}  ({time.monotonic() - t0:.1f} s)")
        typer.echo(f"run folder: {trainer.run_dir}  (report: {trainer.run_dir / 'report.html'})")
    trainer.ctx.close()


@app.command("eval")
def eval_(
    run_dir: Annotated[Path, typer.Argument(help="a run folder")],
    device: Annotated[Optional[str], typer.Option(help="cpu | cuda | auto")] = None,
) -> None:
    """Evaluate a run's latest checkpoint; prints the metrics as JSON."""
    from .engine.trainer import evaluate_run

    typer.echo(json.dumps(evaluate_run(run_dir, device), indent=1))


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="a run folder")]) -> None:
    """Redraw a run's figures and rewrite its report.html."""
    from .engine.trainer import report_run

    typer.echo(f"report: {report_run(run_dir)}")


@app.command("augment")
def augment_cmd(
    image: Annotated[Optional[Path], typer.Argument(help="an image file (or use --dataset and --index)")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="take the image from this dataset instead of a file")] = None,
    index: Annotated[int, typer.Option(help="which training image of --dataset")] = 0,
    data_dir: Annotated[Optional[str], typer.Option(help="data root (else $PARADIGMS_DATA, else the user cache)")] = None,
    n: Annotated[int, typer.Option("--n", min=1, max=100, help="how many augmented versions")] = 18,
    sheet: Annotated[bool, typer.Option(help="one labelled row per transform family instead of the grid")] = False,
    policy: Annotated[Optional[str], typer.Option(help="a policy as YAML, e.g. '[rotate, {cutout: {size: 8}}]'")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    out: Annotated[Path, typer.Option(help="the PNG to write")] = Path("augment.png"),
) -> None:
    """Draw one image and N augmented versions, each labelled with what was done (or --sheet)."""
    import torch
    import yaml

    from .augment import build
    from .augment import figures as F
    from .data.images import read_image

    torch.manual_seed(seed)
    if (image is None) == (dataset is None):
        raise UserError("give an image file or --dataset D [--index I], not both")
    partners, mean = None, None
    if dataset is not None:
        from .data import load_images

        data = load_images(dataset, data_dir)
        x = data.train_x if data.train_x is not None else None
        if x is None:
            raise UserError(f"dataset {dataset!r} is streamed from disk; give one of its image files instead")
        if not 0 <= index < len(x):
            raise UserError(f"--index {index} is out of range: {dataset} has {len(x)} training images (0..{len(x) - 1})")
        img = x[index].float() / 255
        partners = x[torch.randperm(len(x))[:8]].float() / 255
        title = f"{dataset} #{index} ({data.classes[int(data.train_y[index])]})"
        mean = data.mean
    else:
        img = read_image(image)
        title = image.name
    if partners is None:  # a lone file mixes with mirrored and rotated copies of itself
        partners = torch.stack([img.flip(2), img.flip(1), img.flip(1).flip(2)])
    if sheet:
        fig = F.sheet_figure(img, partners, mean=mean)
    else:
        spec = None
        if policy is not None:
            try:
                spec = yaml.safe_load(policy)
            except yaml.YAMLError:
                raise UserError(f"--policy {policy!r} is not valid YAML; e.g. '[rotate, {{cutout: {{size: 8}}}}]'") from None
            if not isinstance(spec, list):
                spec = [spec]
        pol = build(spec, dataset or "", img.shape[0], mean=mean) if spec else None
        fig = F.grid_figure(img, n, pol, title=f"{title}: 1 image => {n} training images", mean=mean)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130, bbox_inches="tight")
    typer.echo(f"wrote {out}")


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv, standalone_mode=False)
    except UserError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted; continue with `paradigms run --resume RUN_DIR`", err=True)
        sys.exit(130)
    except Exception as e:  # click's own usage errors carry an exit code and a message
        import click

        if isinstance(e, click.exceptions.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Exit):
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(1)
        raise
