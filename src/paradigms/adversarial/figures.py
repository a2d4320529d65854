"""Pictures of attacks: clean / perturbation / adversarial panels, the accuracy-versus-epsilon curve, a patch."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch

from ..augment.figures import show


def label(probs: torch.Tensor, classes: list[str]) -> str:
    p, k = probs.max(0)
    return f"{classes[int(k)]} ({float(p):.0%})"


def panel_figure(clean: torch.Tensor, adv: torch.Tensor, p_clean: torch.Tensor, p_adv: torch.Tensor,
                 classes: list[str], title: str, n: int = 6):
    """One row per image: clean, the perturbation (amplified to fill [0, 1]), adversarial, with predictions."""
    n = min(n, len(clean))
    fig, axes = plt.subplots(n, 3, figsize=(5.4, 1.9 * n), squeeze=False)
    for i in range(n):
        delta = adv[i] - clean[i]
        scale = float(delta.abs().max())
        show(axes[i, 0], clean[i], "clean: " + label(p_clean[i], classes), fontsize=7)
        show(axes[i, 1], 0.5 + delta / (2 * scale) if scale > 0 else delta + 0.5,
             f"perturbation (x{0.5 / scale:.0f})" if scale > 0 else "no change", fontsize=7)
        show(axes[i, 2], adv[i], "adversarial: " + label(p_adv[i], classes), fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def curve_figure(rows: list[dict], title: str):
    """Accuracy (and targeted success) against epsilon."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    eps = [r["eps"] for r in rows]
    ax.plot(eps, [r["acc"] for r in rows], "o-", label="accuracy under attack")
    if rows and rows[0].get("success") is not None:
        ax.plot(eps, [r["success"] for r in rows], "s--", label="targeted success")
    ax.set_xlabel("epsilon")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def patch_figure(patch: torch.Tensor, patched: torch.Tensor, probs: torch.Tensor, classes: list[str], title: str,
                 n: int = 7):
    """The patch, then test images with it pasted, each with the model's prediction."""
    n = min(n, len(patched))
    fig, axes = plt.subplots(1, n + 1, figsize=(1.7 * (n + 1), 2.1), squeeze=False)
    show(axes[0, 0], patch, "the patch", fontsize=7)
    for i in range(n):
        show(axes[0, i + 1], patched[i], label(probs[i], classes), fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
