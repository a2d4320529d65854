"""Figures and the self-contained ``report.html`` of a run folder.

The report (one file, figures embedded) is rendered from the package's Jinja2 template ``templates/report.html``:
its title says recipe, dataset, preset and date; the recipe's paragraph (``Recipe.about``) says what it learns and
what to look for; the final metrics; the figures in the order a reader needs them (the learning curves, then the
recipe's own, each with its caption); then what the commands found (``save_result``: attack, certify, anomaly...),
each a table with its parameters, in the order they were made.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import matplotlib.pyplot as plt

from .runlog import is_rate, read_metrics


CURVES_CAPTION = ("Learning curves: every metric the run logged against the training step, training (averaged "
                  "between logs) and evaluation (dots) overlaid; a gap that opens between them is overfitting.")


def curves_figure(rows: list[dict], per_row: int = 4):
    """Every logged scalar against the step, train and evaluation splits overlaid, at most ``per_row`` panels a row."""
    import math

    series: dict[str, dict[str, list]] = {}
    for r in rows:
        split = r.get("split")
        if split not in ("train", "eval"):
            continue
        for k, v in r.items():
            if k in ("step", "split", "epoch", "time_s") or is_rate(k) or not isinstance(v, (int, float)):
                continue
            name = k.split("/")[-1]
            series.setdefault(name, {}).setdefault(f"{split}: {k}", []).append((r["step"], v))
    if not series:
        return None
    names = sorted(series)
    cols = min(per_row, len(names))
    rows_n = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4.2 * cols, 3.2 * rows_n), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        for label, pts in series[name].items():
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o" if label.startswith("eval") else None, ms=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_figure(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def image_grid(images, nrow: int | None = None, pad: int = 1):
    """(N, C, H, W) pixels in [0, 1] -> one (rows*H, cols*W, C) uint8 array, a white line between images."""
    import math

    import numpy as np

    x = images.detach().float().clamp(0, 1).cpu()
    n, c, h, w = x.shape
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        y0, x0 = pad + r * (h + pad), pad + q * (w + pad)
        grid[y0:y0 + h, x0:x0 + w] = (x[i].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return grid


MIN_SIDE = 64
"""Pixels a small image is scaled up to (nearest neighbour, whole factors) in a saved grid, so a digit is visible."""


def upscale(images, min_side: int = MIN_SIDE):
    """(N, C, H, W) images scaled up by the whole factor that brings their longer side to ``min_side`` or more, each
    pixel a block (nearest neighbour: nothing invented); images already that large are left alone."""
    import math

    factor = max(1, math.ceil(min_side / max(images.shape[-2:])))
    return images.repeat_interleave(factor, -2).repeat_interleave(factor, -1) if factor > 1 else images


def save_grid(images, path: Path, nrow: int | None = None) -> Path:
    """A PNG grid of images in [0, 1] (grey or RGB), small images scaled up (:func:`upscale`)."""
    from PIL import Image

    from ..errors import UserError, output_file

    grid = image_grid(upscale(images), nrow)
    path = output_file(path, "the image file")
    try:
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    except (OSError, ValueError) as e:
        raise UserError(f"cannot write {path}: {getattr(e, 'strerror', None) or e}; give a writable .png path") from None
    return path


def grid_figure(images, title: str, nrow: int | None = None):
    """A matplotlib figure of an image grid, for a run's report: each image at least about half an inch wide, drawn
    pixel for pixel (nearest neighbour)."""
    import math

    n = len(images)
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = image_grid(images, nrow)
    tile = min(1.0, max(0.5, 10 / cols))                            # inches per image
    fig, ax = plt.subplots(figsize=(min(12, cols * tile + 0.4), min(12, rows * tile + 0.6)))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_result(run_dir: Path, result, figures: dict | None = None, files: dict | None = None) -> tuple[Path, Path]:
    """Keep what a command found (a :class:`~paradigms.engine.results.Result`) in the run folder under the next free
    number, with its figures ``{key: (matplotlib figure, caption)}`` and other files ``{suffix: write(path)}`` (a
    patch's PNG), then rewrite the report. Nothing earlier is overwritten. Returns (the result's JSON, the report)."""
    import time
    from dataclasses import asdict

    from ..errors import make_folder
    from .checkpoint import atomic_write_text
    from .results import FOLDER, next_index, result_path, slug

    run_dir = Path(run_dir)
    make_folder(run_dir / FOLDER, "the results folder")
    result.name = slug(result.name)
    result.index = next_index(run_dir)
    result.created = time.strftime("%Y-%m-%d %H:%M")
    for key, (fig, caption) in (figures or {}).items():
        path = save_figure(fig, result_path(run_dir, result, f"-{slug(key)}.png"))
        result.figures.append({"file": path.name, "caption": caption})
    for suffix, write in (files or {}).items():
        result.files.append(write(result_path(run_dir, result, suffix)).name)
    path = result_path(run_dir, result, ".json")
    atomic_write_text(path, json.dumps(asdict(result), indent=1))
    return path, write_report(run_dir)


# -- report.html ----------------------------------------------------------------------------------------------------
PERCENT = ("acc", "accuracy", "recall1", "verify_acc", "success", "r1", "r5")
"""Metric names (their last part after "/", or its ending) shown as percentages."""


def format_metric(key: str, value) -> str:
    """A metric as a person reads it: accuracies as percentages, other numbers to 4 significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    last = key.split("/")[-1]
    if any(last == p or last.endswith("_" + p) for p in PERCENT) and 0 <= value <= 1:
        return f"{100 * value:.2f}%"
    if isinstance(value, int) or float(value).is_integer() and abs(value) < 1e9:
        return f"{int(value):,}"
    return f"{value:.4g}"


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def _label(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").capitalize()


def report_context(run_dir: Path) -> dict:
    """Everything report.html shows, as data (the lab renders the same): title, meta line, the recipe's paragraph,
    metrics, notes, figures in order with captions, the commands' results, the config."""
    import datetime
    import time

    import yaml

    from .results import read_results

    run_dir = Path(run_dir)
    config_text = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
    cfg = (yaml.safe_load(config_text) or {}) if config_text else {}
    recipe_name, dataset, preset = cfg.get("recipe", "?"), cfg.get("dataset", "?"), cfg.get("preset", "?")
    recipe = None
    try:
        from ..recipes import get

        recipe = get(recipe_name)
    except Exception:  # noqa: BLE001 - a run of a recipe that is not installed still gets its report
        recipe = None
    final = json.loads((run_dir / "final.json").read_text()) if (run_dir / "final.json").is_file() else {}
    step = final.pop("step", None)
    made = (run_dir / "config.yaml").stat().st_mtime if config_text else time.time()
    date = datetime.datetime.fromtimestamp(made).strftime("%Y-%m-%d %H:%M")
    rows = read_metrics(run_dir)
    seconds = next((r.get("time_s") for r in reversed(rows) if r.get("split") == "final"), None)
    meta = [f"run folder {run_dir.name}", f"seed {cfg.get('seed', '?')}"]
    if step is not None:
        meta.append(f"{step:,} steps")
    if isinstance(seconds, (int, float)):
        meta.append(f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min")
    notes = []
    for path in sorted((run_dir / "notes").glob("*.txt")):
        text = path.read_text()
        if not text.lstrip().startswith("{"):          # an earlier version kept command results here as JSON
            notes.append({"title": "Stopped early" if path.stem == "stopped" else _label(path.stem), "text": text})
    lab = f"paradigms lab {run_dir.parent}, then open the run {run_dir.name}"
    return {"title": f"{recipe_name} on {dataset} · {preset} preset · {date}", "meta": " · ".join(meta), "lab": lab,
            "about": getattr(recipe, "about", ""),
            "metrics": [(k, format_metric(k, v)) for k, v in final.items()],
            "notes": notes, "figures": figure_list(run_dir),
            "results": [_with_images(run_dir, r) for r in read_results(run_dir)], "config": config_text}


def figure_list(run_dir: Path) -> list[dict]:
    """The run's figures in the order they were drawn (``figures/figures.json``): name, label, caption, image."""
    folder = Path(run_dir) / "figures"
    index = folder / FIGURE_INDEX
    if index.is_file():
        entries = json.loads(index.read_text())
    else:  # a run folder drawn before the index existed: the curves first, then by name
        names = sorted(p.stem for p in folder.glob("*.png"))
        entries = [{"name": n, "caption": CURVES_CAPTION if n == "curves" else ""}
                   for n in sorted(names, key=lambda n: n != "curves")]
    out = []
    for n, e in enumerate(entries, 1):
        png = folder / f"{e['name']}.png"
        if png.is_file():
            out.append({"name": e["name"], "label": f"Figure {n}: {_label(e['name'])}", "caption": e["caption"],
                        "src": _data_uri(png)})
    return out


def _with_images(run_dir: Path, result) -> dict:
    from dataclasses import asdict

    from .results import FOLDER

    data = asdict(result)
    data["stem"] = result.stem
    data["figures"] = [{**f, "src": _data_uri(Path(run_dir) / FOLDER / f["file"])} for f in result.figures
                       if (Path(run_dir) / FOLDER / f["file"]).is_file()]
    return data


def templates():
    """The package's Jinja2 templates (report.html; the lab's pages use the same ones)."""
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("paradigms", "templates"),
                              autoescape=jinja2.select_autoescape(["html"]))


def write_report(run_dir: Path) -> Path:
    """Write the run's self-contained ``report.html`` (figures embedded) from what its folder holds."""
    run_dir = Path(run_dir)
    from .checkpoint import atomic_write_text

    page = templates().get_template("report.html").render(**report_context(run_dir))
    out = run_dir / "report.html"
    atomic_write_text(out, page)
    return out


FIGURE_INDEX = "figures.json"


def draw_figures(recipe, run_dir: Path) -> list[Path]:
    """The engine's learning curves plus every figure the recipe (and its hooks) draw, in that order, each with its
    caption in ``figures/figures.json``."""
    from .checkpoint import atomic_write_text

    run_dir = Path(run_dir)
    captions = {**getattr(recipe, "captions", {})}
    for hook in getattr(recipe, "hooks", ()):
        captions.update(getattr(hook, "captions", {}))
    out, index = [], []
    fig = curves_figure(read_metrics(run_dir))
    if fig is not None:
        out.append(save_figure(fig, run_dir / "figures" / "curves.png"))
        index.append({"name": "curves", "caption": CURVES_CAPTION})
    for name, fig in recipe.figures():
        out.append(save_figure(fig, run_dir / "figures" / f"{name}.png"))
        index.append({"name": name, "caption": captions.get(name, "")})
    atomic_write_text(run_dir / "figures" / FIGURE_INDEX, json.dumps(index, indent=1))
    return out
