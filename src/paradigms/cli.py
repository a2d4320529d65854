"""The ``paradigms`` command: list, run, eval, report, config, and the commands each paradigm brings.

A paradigm package adds its own sub-commands (``augment``, ``attack``, ...) through its plugin
(:mod:`paradigms.plugins`). Bad input never shows a traceback: a wrong option, value, name, file or
checkpoint prints one line ``error: ...`` naming the thing and the fix, and exits with status 2.
"""

from __future__ import annotations

import importlib
import json
import os
import shlex
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from . import __version__
from .errors import UserError, closest


class Preset(str, Enum):
    quick = "quick"
    full = "full"
    none = "none"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


DataDir = Annotated[Optional[str], typer.Option(help="data root (else $PARADIGMS_DATA, else the user cache)")]
Sets = Annotated[Optional[list[str]], typer.Option("--set", help="key.sub=value (repeatable; `paradigms config "
                                                   "RECIPE` lists the keys)")]
PresetOpt = Annotated[Preset, typer.Option(help="quick: 2 CPU cores, minutes; full: paper scale; none: defaults")]
DeviceOpt = Annotated[Optional[Device], typer.Option(help="where to run (auto: cuda when there is one)")]


def resolved(recipe: str, dataset, data_dir, preset: Preset, config, set_, flags: dict):
    from . import config as configlib
    from . import recipes

    flags = {"dataset": dataset, "data_dir": data_dir, **flags}
    return configlib.resolve(recipes.get(recipe), preset.value, config, set_ or [], flags)


def list_recipes() -> None:
    """The recipes: family, default dataset, what each measures."""
    from .recipes import all_recipes

    rows = [(name, r.family, r.Config.model_fields["dataset"].default, r.measures) for name, r in all_recipes().items()]
    head = ("recipe", "family", "default dataset", "measures")
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    for row in (head, *rows):
        typer.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def run(
    ctx: typer.Context,
    recipe: Annotated[Optional[str], typer.Argument(help="recipe name (see `paradigms list`)")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="the dataset (`paradigms datasets` lists them)")] = None,
    data_dir: DataDir = None,
    preset: PresetOpt = Preset.quick,
    config: Annotated[Optional[Path], typer.Option(help="YAML file of config values")] = None,
    set_: Sets = None,
    seed: Annotated[Optional[int], typer.Option(help="random seed")] = None,
    device: DeviceOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="run folder (default runs/RECIPE-DATASET-TIME)")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="continue the interrupted run in this folder")] = None,
    source: Annotated[Optional[str], typer.Option("--from", help="transfer from this run folder or weights "
                                                  "file (recipe finetune)")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
) -> None:
    """Train a recipe; prints the final metrics and the run folder."""
    from . import recipes
    from .engine.trainer import Trainer, load_config

    dev = device.value if device else None
    if resume is not None:
        if recipe or dataset or config or set_ or seed is not None or out or source:
            raise UserError("--resume RUN_DIR continues a run with its saved config; give no recipe, "
                            "--dataset, --config, --set, --seed, --from or --out with it")
        cfg = load_config(resume)
        if dev:
            cfg = cfg.model_copy(update={"device": dev})
        run_dir = resume
    else:
        if recipe is None:
            raise UserError("name a recipe (`paradigms list` shows them) or give --resume RUN_DIR")
        if source is not None and "source" not in recipes.get(recipe).Config.model_fields:
            raise UserError(f"--from is for recipes that start from trained weights (finetune); "
                            f"{recipe!r} trains from scratch")
        cfg = resolved(recipe, dataset, data_dir, preset, config, set_, {"seed": seed, "device": dev, "source": source})
        run_dir = out
    t0 = time.monotonic()
    trainer = Trainer(cfg, run_dir, resume=resume is not None, progress=False if quiet else None)
    final = trainer.fit()
    if trainer.ctx.is_main:
        summary = "  ".join(f"{k} {v:.4f}" for k, v in final.items())
        typer.echo(f"{cfg.recipe} on {cfg.dataset}: {summary}  ({time.monotonic() - t0:.1f} s)")
        typer.echo(f"run folder: {trainer.run_dir}  (report: {trainer.run_dir / 'report.html'})")
        typer.echo(next_steps(ctx, recipes.get(cfg.recipe).commands, trainer.run_dir))
    trainer.ctx.close()


def next_steps(ctx: typer.Context, commands, run_dir) -> str:
    """The line said after a run: the recipe's ``commands`` that this ``paradigms`` has, then ``eval`` and ``report``,
    each on ``run_dir``, what else it requires as placeholders (``paradigms fill RUN_DIR TEXT``)."""
    top = ctx.find_root()
    have = set(top.command.list_commands(top))
    names = list(dict.fromkeys([c for c in commands if c in have and c not in ("eval", "report")] + ["eval", "report"]))
    where = shlex.quote(str(run_dir))

    def usage(name: str) -> str:
        more = []
        for p in top.command.get_command(top, name).params[1:]:
            if p.required:
                value = (p.metavar or p.name).upper() + ("..." if p.nargs == -1 else "")
                more.append(value if p.param_type_name == "argument" else f"{p.opts[0]} {value}")
        return " ".join(["paradigms", name, where, *more])

    return "next: " + ", ".join(usage(n) for n in names)


def eval_(
    run_dir: Annotated[Path, typer.Argument(help="a run folder")],
    image: Annotated[Optional[list[Path]], typer.Option(help="classify this picture instead (any size; repeat the "
                                                             "option for more): its class probabilities")] = None,
    device: DeviceOpt = None,
) -> None:
    """Evaluate a run's latest checkpoint; prints the metrics as JSON (with --image: each picture's prediction)."""
    if image:
        from .data.images import read_image
        from .evaluate.classifier import classify_images, load_classifier

        net = load_classifier(run_dir, device.value if device else "cpu")
        answers = classify_images(net, [read_image(p) for p in image])
        typer.echo(json.dumps([{"image": str(p), **a} for p, a in zip(image, answers)], indent=1))
        return
    from .engine.trainer import evaluate_run

    typer.echo(json.dumps(evaluate_run(run_dir, device.value if device else None), indent=1))


def report(run_dir: Annotated[Path, typer.Argument(help="a run folder")]) -> None:
    """Redraw a run's figures and rewrite its report.html."""
    from .engine.trainer import report_run

    typer.echo(f"report: {report_run(run_dir)}")


def sample(
    run_dir: Annotated[Path, typer.Argument(help="a run folder of a generative recipe (gpt, vae, gan, ...)")],
    n: Annotated[int, typer.Option("--n", min=1, max=4096, help="how many samples (images)")] = 64,
    seed: Annotated[int, typer.Option(help="random seed of the samples")] = 0,
    out: Annotated[Optional[Path], typer.Option(help="the PNG to write (default RUN_DIR/samples-seedS.png, "
                                                    "RUN_DIR/manifold.png)")] = None,
    manifold: Annotated[bool, typer.Option("--manifold", help="draw the learned 2-D latent manifold instead (a VAE "
                                                              "with a 2-D code: decoded codes on a grid)")] = False,
    prompt: Annotated[Optional[str], typer.Option(help="text: the start of the text to continue (gpt)")] = None,
    tokens: Annotated[int, typer.Option(min=1, max=1_000_000, help="text: how many tokens to generate")] = 500,
    temperature: Annotated[float, typer.Option(help="text: divides the logits (< 1 more conservative); > 0")] = 0.8,
    top_k: Annotated[Optional[int], typer.Option(help="text: draw from the k most likely tokens only")] = 200,
    device: DeviceOpt = None,
) -> None:
    """Draw samples from a generative run: text streamed to the terminal (gpt), or images as a PNG grid."""
    import torch

    from .engine.report import save_grid
    from .engine.trainer import load_trained

    trained = load_trained(run_dir, device.value if device else None)
    if callable(getattr(trained, "stream", None)):
        if manifold:
            raise UserError(f"--manifold is for a VAE with a 2-D code; {run_dir} is a {trained.name} run of text")
        pieces = trained.stream(prompt or "", tokens, temperature, top_k, seed)
        first = next(pieces, "")                                   # bad input (prompt, top-k) is said before any text
        sys.stdout.write((prompt or "") + first)
        for piece in pieces:
            sys.stdout.write(piece)
            sys.stdout.flush()
        sys.stdout.write("\n")
        return
    if prompt is not None:
        raise UserError(f"--prompt is for text generators (gpt); {run_dir} is a run of {trained.name}, which draws images")
    what = "manifold" if manifold else "sample"
    if not callable(getattr(trained, what, None)):
        raise UserError(f"{run_dir} is a run of {trained.name}, which cannot "
                        + ("draw a latent manifold: a vae can" if manifold else
                           "sample: only generative recipes can (gpt, vae, gan, ...)"))
    if manifold:
        images = trained.manifold()
        path = save_grid(images, out or Path(run_dir) / "manifold.png", nrow=round(len(images) ** 0.5))
        typer.echo(f"wrote the {round(len(images) ** 0.5)}x{round(len(images) ** 0.5)} latent manifold to {path}")
        return
    torch.manual_seed(seed)
    path = save_grid(trained.sample(n), out or Path(run_dir) / f"samples-seed{seed}.png")
    typer.echo(f"wrote {n} samples to {path}")


def config(
    recipe: Annotated[str, typer.Argument(help="recipe name (see `paradigms list`)")],
    dataset: Annotated[Optional[str], typer.Option(help="the dataset (`paradigms datasets` lists them)")] = None,
    data_dir: DataDir = None,
    preset: PresetOpt = Preset.quick,
    config_file: Annotated[Optional[Path], typer.Option("--config", help="YAML file of config values")] = None,
    set_: Sets = None,
) -> None:
    """Print a recipe's resolved config as YAML, each setting explained: the keys `--set` takes."""
    from .config import to_commented_yaml

    cfg = resolved(recipe, dataset, data_dir, preset, config_file, set_, {})
    typer.echo(to_commented_yaml(cfg), nl=False)


def lab(
    runs_dir: Annotated[Path, typer.Argument(help="the folder of runs to show (and to start new ones in)")] = Path("runs"),
    host: Annotated[str, typer.Option(help="the address to listen on; any but loopback needs a token")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="the port")] = 7860,
    token: Annotated[Optional[str], typer.Option(help="required on every request (default: none on loopback, a "
                                                      "new one printed otherwise)")] = None,
) -> None:
    """The lab: your runs in the browser, their curves live, runs started, stopped and compared there."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UserError("the lab needs its extra: pip install -e '.[lab]' (Starlette and uvicorn), then "
                        "paradigms lab again") from None
    from .lab import serve

    serve(runs_dir, host, port, token, echo=typer.echo)


def lecture(
    fast: Annotated[bool, typer.Option("--fast", help="the embedded and small datasets: minutes on 2 cores")] = False,
    out: Annotated[Path, typer.Option(help="where index.html, notebooks/ and claims.json go")] = Path("lecture"),
    runs: Annotated[Path, typer.Option(help="where the runs go (kept: a second build reuses them)")] = Path(
        "runs/lecture"),
    only: Annotated[Optional[str], typer.Option(help="these sections only: numbers or names, e.g. 1,3 or backprop")] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="also print the document to lecture.pdf (headless Chromium)")] = False,
    data_dir: DataDir = None,
    jobs: Annotated[Optional[int], typer.Option(min=1, help="sections built at once (default: 2 with --fast, else 1)")
                    ] = None,
) -> None:
    """The whole lecture from real runs: a document, one executed notebook per section, every number traced."""
    try:
        import jupytext  # noqa: F401
        import nbclient  # noqa: F401
    except ImportError:
        raise UserError("the lecture needs its extra: pip install -e '.[lecture]' (nbclient, ipykernel, jupytext), "
                        "then paradigms lecture again") from None
    from .lecture.build import build

    result = build(out, runs, fast, only, pdf, data_dir, echo=typer.echo, jobs=jobs)
    if result["failed"]:
        typer.echo(f"not built: {', '.join(result['failed'])} (the document says why)", err=True)
        raise typer.Exit(1)


def datasets(data_dir: DataDir = None) -> None:
    """The datasets: what each is, where it comes from, its licence, and where its files go (or are)."""
    from .data import registry
    from .data.root import data_root, where

    typer.echo(f"data root: {data_root(data_dir)}  (--data-dir, else $PARADIGMS_DATA, else the user cache)\n")
    for d in registry.DATASETS:
        typer.echo(f"{d.display}  ({d.kind})  {d.description}")
        if d.origin:
            typer.echo(f"    from: {d.origin}" + (f" ({d.source.homepage})" if d.source else ""))
        if d.licence:
            typer.echo(f"    licence: {d.licence}")
        if d.source is not None:
            w = where(d.name, data_dir)
            state = ("all there" if not w["missing"] else
                     f"{w['missing']} of {w['files']} missing: run a recipe with --dataset {d.name} to download them "
                     f"from {w['fetch']} (when that can be reached), or put them there yourself")
            typer.echo(f"    files: {w['folder']}/  ({state})")


def root(ctx: typer.Context,
         version: Annotated[bool, typer.Option("--version", help="print the version and exit")] = False) -> None:
    """Every way a deep network learns, as recipes on one engine."""
    if version:
        typer.echo(f"paradigms {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())
        raise typer.Exit()


class Commands(TyperGroup):
    """The ``paradigms`` group: an unknown sub-command is one line naming the closest ones (``paradigms trian``:
    did you mean 'run'?), a :class:`UserError` as every bad name is."""

    def resolve_command(self, ctx, args):
        name = args[0] if args else ""
        if name and not name.startswith("-") and not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            raise UserError(f"No such command {name!r}; {closest(name, self.list_commands(ctx))}")
        return super().resolve_command(ctx, args)


def build_app() -> typer.Typer:
    """The command: the core commands, then each paradigm package's own (the module its plugin names in ``COMMANDS``)."""
    from .plugins import plugins

    app = typer.Typer(cls=Commands, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
                      suggest_commands=False)
    app.callback(invoke_without_command=True)(root)
    app.command("list")(list_recipes)
    app.command("run")(run)
    app.command("eval")(eval_)
    app.command("report")(report)
    app.command("sample")(sample)
    app.command("config")(config)
    app.command("datasets")(datasets)
    app.command("lab")(lab)
    app.command("lecture")(lecture)
    for plugin in plugins():
        if getattr(plugin, "COMMANDS", None):
            importlib.import_module(plugin.COMMANDS).commands(app)
    return app


def usage_line(e: typer.TyperException) -> str:
    """A usage error (typer's parser: unknown option, bad value, missing argument) on one line."""
    msg = " ".join(e.format_message().split())
    command = getattr(getattr(e, "ctx", None), "command_path", None)
    return f"{msg} (see `{command} --help`)" if command else msg


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")  # figures are files here; a notebook keeps its own backend
    if (sys.argv[1:] if argv is None else list(argv)) == ["--version"]:
        typer.echo(f"paradigms {__version__}")  # as root() says it, without typer's parsing (it imports pydantic)
        return
    if os.environ.get("PARADIGMS_STOPPABLE") == "1":
        # started by the lab, which stops a run with Ctrl-C's signal: listen for it even when this process was born
        # with SIGINT ignored (a background job of a non-interactive shell, nohup ... &)
        import signal

        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = build_app()(args=argv, standalone_mode=False)
    except UserError as e:
        typer.echo(f"error: {' '.join(str(e).split())}", err=True)
        sys.exit(e.exit_code)
    except typer.TyperException as e:
        typer.echo(f"error: {usage_line(e)}", err=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("interrupted; continue a run with `paradigms run --resume RUN_DIR`", err=True)
        sys.exit(130)
    if isinstance(code, int) and code:
        sys.exit(code)
