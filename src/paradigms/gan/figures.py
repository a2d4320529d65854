"""A GAN run's pictures: samples from fixed noise, their progress over the epochs, straight lines in z, and the
game itself (both losses, D's outputs and the generator's gradient norm against the step)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import torch

from ..engine.report import grid_figure
from ..engine.runlog import read_metrics

PROGRESS_SAMPLES = 10  # fixed-noise samples drawn after every epoch (the report's progress grid)


def report_figures(recipe):
    """The recipe's figures: ``samples``, ``progress``, ``interpolation`` and, from its log, ``game``."""
    yield "samples", grid_figure(recipe.sample(64, recipe.fixed_z), "64 samples G(z) (the same z all along)", 8)
    if recipe.progress:
        rows = torch.cat([t for _, t in recipe.progress])
        yield "progress", grid_figure(rows, f"the same {PROGRESS_SAMPLES} z after epochs "
                                      f"{recipe.progress[0][0]}..{recipe.progress[-1][0]} (one row each)",
                                      PROGRESS_SAMPLES)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.cfg.seed)
        ends = recipe.z(8)
    t = torch.linspace(0, 1, 10, device=ends.device).view(1, -1, 1)
    line = ((1 - t) * ends[0::2].unsqueeze(1) + t * ends[1::2].unsqueeze(1)).flatten(0, 1)   # (4*10, latent)
    yield "interpolation", grid_figure(recipe.sample(len(line), line), "straight lines between four pairs of z", 10)
    run_dir = getattr(recipe.ctx, "run_dir", None)
    if run_dir is not None and (Path(run_dir) / "metrics.jsonl").is_file():
        fig = game_figure(Path(run_dir))
        if fig is not None:
            yield "game", fig


def game_figure(run_dir: Path):
    rows = [r for r in read_metrics(run_dir) if r.get("split") == "train"]
    if not rows:
        return None

    def series(key):
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        return list(zip(*pts)) if pts else None

    panels = [("the two losses", [("loss_d", "discriminator"), ("loss", "discriminator (semi-supervised)"),
                                  ("loss_g", "generator")], False),
              ("the discriminator's outputs", [("d_real", "D(x), real"), ("d_fake", "D(G(z)), generated")], False),
              ("the generator's gradient norm", [("g_grad_norm", "||grad_theta_G loss_G||")], True)]
    panels = [p for p in panels if any(series(k) for k, _ in p[1])]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.4 * len(panels), 3.2), squeeze=False)
    for ax, (title, keys, log) in zip(axes[0], panels):
        for key, label in keys:
            s = series(key)
            if s:
                ax.plot(*s, label=label)
        if log:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
