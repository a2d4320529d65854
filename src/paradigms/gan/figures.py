"""The report's picture of the game: both losses, D's outputs and the generator's gradient norm against the step."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from ..engine.runlog import read_metrics


def game_figure(run_dir: Path):
    rows = [r for r in read_metrics(run_dir) if r.get("split") == "train"]
    if not rows:
        return None

    def series(key):
        pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        return list(zip(*pts)) if pts else None

    panels = [("the two losses", [("loss_d", "discriminator"), ("loss_g", "generator")], False),
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
