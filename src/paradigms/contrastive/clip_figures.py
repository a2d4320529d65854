"""CLIP's pictures: the paper's similarity of images and class prompts, and text -> image retrieval."""

from __future__ import annotations

import textwrap

import torch
import torch.nn.functional as F


def report_figures(recipe):
    """A clip run's figures: the similarity of one test image per class and the class prompts, and each prompt's
    nearest test images, among the first ``retrieval_size`` test images."""
    n = recipe.cfg.retrieval_size
    pool, ys = [], []                                                    # the first n test images, on the CPU
    for x, y in recipe.test_loader.epoch(0):
        pool.append(x[: n - sum(len(p) for p in pool)].cpu())
        ys.append(y[: len(pool[-1])].cpu())
        if sum(len(p) for p in pool) >= n:
            break
    pool, ys = torch.cat(pool), torch.cat(ys)
    first = [int((ys == c).nonzero()[0]) for c in range(len(recipe.names)) if (ys == c).any()][:10]
    prompts = [recipe.cfg.templates[0].format(recipe.names[int(ys[i])]) for i in first]   # one per class shown
    with torch.no_grad():
        recipe.model.eval()
        emb = torch.cat([recipe.model.encode_image(b.to(recipe.ctx.device)).float().cpu() for b in pool.split(512)])
        emb = F.normalize(emb, dim=1)                                    # (n, D)
        text = F.normalize(recipe.encode_text(prompts).cpu(), dim=1)     # (K, D)
    held = [int(ys[i]) in recipe.held_out for i in first]
    note = ", * = a class never seen in training" if any(held) else ""
    yield "similarity", similarity_figure(pool[first], prompts, text @ emb[first].T, held, textwrap.fill(
        f"cosine similarity of test images and class prompts ({recipe.cfg.text} text tower{note})", 80))
    top = (text @ emb.T).topk(min(6, len(pool)), dim=1).indices         # (K, 6) each prompt's closest images
    right = ys[top] == ys[first][:, None]
    yield "retrieval", retrieval_figure(pool, top, right, prompts, held, textwrap.fill(
        f"text -> image retrieval among the first {len(pool)} test images: each prompt's six most similar "
        f"(red frame: another class{note})", 80))


def similarity_figure(images: torch.Tensor, prompts: list[str], sim: torch.Tensor, held: list[bool], title: str):
    """The paper's picture of zero-shot classification: prompts (rows) against images (columns), cosine similarity
    in each cell, the images above their columns."""
    import matplotlib.pyplot as plt

    k, m = sim.shape
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * m + 2.2, 1.6 + 0.55 * k))
    ax.imshow(sim.numpy(), cmap="viridis", aspect="auto", extent=(-0.5, m - 0.5, k - 0.5, -0.5))
    for j in range(m):                                                       # the images along the top
        img = images[j].permute(1, 2, 0).numpy()
        ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1,
                  extent=(j - 0.45, j + 0.45, -0.6, -1.5), interpolation="nearest")
    for i in range(k):
        for j in range(m):
            ax.text(j, i, f"{float(sim[i, j]):.2f}", ha="center", va="center", fontsize=7,
                    color="white" if sim[i, j] < sim.max() - 0.5 * (sim.max() - sim.min()) else "black")
    ax.set_yticks(range(k), [p + (" *" if h else "") for p, h in zip(prompts, held)], fontsize=8)
    ax.set_xticks([])
    ax.set_xlim(-0.5, m - 0.5)
    ax.set_ylim(k - 0.5, -1.6)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def retrieval_figure(pool: torch.Tensor, top: torch.Tensor, right: torch.Tensor, prompts: list[str],
                     held: list[bool], title: str):
    """For each prompt (a row), its most similar images, framed green when of the prompt's class, red otherwise."""
    import matplotlib.pyplot as plt

    k, m = top.shape
    fig, axes = plt.subplots(k, m, figsize=(2.6 + 0.9 * m, 0.9 * k + 0.8), squeeze=False)
    for i in range(k):
        for j in range(m):
            ax = axes[i][j]
            img = pool[int(top[i, j])].permute(1, 2, 0).numpy()
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set_color("tab:green" if right[i, j] else "tab:red")
                side.set_linewidth(2.5)
        axes[i][0].set_ylabel(prompts[i] + (" *" if held[i] else ""), rotation=0, ha="right", va="center",
                              fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["report_figures", "retrieval_figure", "similarity_figure"]
