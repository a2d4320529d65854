"""Figures and the self-contained ``report.html`` of a run folder."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib.pyplot as plt

from .runlog import is_rate, read_metrics


def curves_figure(rows: list[dict]):
    """Every logged scalar against the step, train and evaluation splits overlaid."""
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
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.2), squeeze=False)
    for ax, name in zip(axes[0], names):
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


def save_grid(images, path: Path, nrow: int | None = None) -> Path:
    """A PNG grid of images in [0, 1] (grey or RGB)."""
    from PIL import Image

    grid = image_grid(images, nrow)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return path


def grid_figure(images, title: str, nrow: int | None = None):
    """A matplotlib figure of an image grid, for a run's report."""
    grid = image_grid(images, nrow)
    fig, ax = plt.subplots(figsize=(min(10, 0.4 * grid.shape[1] / 10 + 2), min(10, 0.4 * grid.shape[0] / 10 + 2)))
    ax.imshow(grid[..., 0] if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def save_results(run_dir: Path, name: str, result: dict, figs: dict) -> tuple[Path, Path]:
    """What a command found about a run: NAME.json, figures/NAME-*.png and notes/NAME.txt in the run folder,
    then its report.html again. Returns (the JSON's path, the report's)."""
    run_dir = Path(run_dir)
    path = run_dir / f"{name}.json"
    path.write_text(json.dumps(result, indent=1))
    for key, fig in figs.items():
        save_figure(fig, run_dir / "figures" / f"{name}-{key}.png")
    (run_dir / "notes").mkdir(exist_ok=True)
    (run_dir / "notes" / f"{name}.txt").write_text(json.dumps(result, indent=1))
    return path, write_report(run_dir)


def write_report(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    final = {}
    if (run_dir / "final.json").is_file():
        final = json.loads((run_dir / "final.json").read_text())
    config = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else ""
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td></tr>" if isinstance(v, float)
                   else f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in final.items())
    figs = []
    for png in sorted((run_dir / "figures").glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode()
        figs.append(f"<figure><img src='data:image/png;base64,{data}' alt='{png.stem}'>"
                    f"<figcaption>{html.escape(png.stem)}</figcaption></figure>")
    notes = "".join(f"<h2>{html.escape(p.stem)}</h2><pre>{html.escape(p.read_text())}</pre>"
                    for p in sorted((run_dir / "notes").glob("*.txt")))
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(run_dir.name)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse}}td{{border:1px solid #ccc;padding:3px 10px}}img{{max-width:100%}}
figure{{margin:1em 0}}pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head><body>
<h1>{html.escape(run_dir.name)}</h1>
<h2>Final metrics</h2><table>{rows}</table>
{notes}<h2>Figures</h2>{''.join(figs) or '<p>none</p>'}
<h2>Config</h2><pre>{html.escape(config)}</pre>
</body></html>"""
    out = run_dir / "report.html"
    out.write_text(page)
    return out


def draw_figures(recipe, run_dir: Path) -> list[Path]:
    """The engine's learning curves plus every figure the recipe draws."""
    out = []
    fig = curves_figure(read_metrics(run_dir))
    if fig is not None:
        out.append(save_figure(fig, run_dir / "figures" / "curves.png"))
    for name, fig in recipe.figures():
        out.append(save_figure(fig, run_dir / "figures" / f"{name}.png"))
    return out
