"""The triplet recipe's pictures: the lecture's distance table before and after training, and the verification
histograms of unseen people with the chosen threshold."""

from __future__ import annotations

import torch

from .losses import squared_distances
from .verification import pair_distances

def distance_table_figure(recipe, x: torch.Tensor, y: torch.Tensor, people: int = 3, each: int = 2):
    """The lecture's table: squared distances between two faces of each of three unseen people, before and after."""
    import matplotlib.pyplot as plt

    ids = y.unique()[:people]
    idx = torch.cat([torch.nonzero(y == i).flatten()[:each] for i in ids])
    faces = x[idx]
    names = [f"{recipe.classes[int(y[i])]}·{k % each + 1}" for k, i in enumerate(idx.tolist())]
    n = len(idx)
    fig, axes = plt.subplots(1, 2, figsize=(2 * (0.9 * n + 1.6), 0.9 * n + 1.8))
    for ax, (title, net) in zip(axes, (("before training", recipe.untrained), ("after training", recipe.net))):
        d = squared_distances(recipe.embed(net, faces)).numpy()
        ax.imshow(d, cmap="viridis_r", vmin=0, vmax=4, extent=(-0.5, n - 0.5, n - 0.5, -0.5))
        for r in range(n):
            for c in range(n):
                same = r // each == c // each
                ax.text(c, r, f"{d[r, c]:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if d[r, c] < 2.5 else "white", fontweight="bold" if same and r != c else None)
        lo, hi = -1.55, n - 0.5                                    # the axes span in data units, both ways
        ax.set_xlim(lo, hi)
        ax.set_ylim(hi, lo)
        img = faces.float().div(255).permute(0, 2, 3, 1).numpy()
        for r in range(n):                                         # each face above its column, left of its row
            for x0, y0 in ((r - 0.45, -1.45), (-1.45, r - 0.45)):
                inset = ax.inset_axes(((x0 - lo) / (hi - lo), (hi - y0 - 0.9) / (hi - lo), 0.9 / (hi - lo),
                                       0.9 / (hi - lo)))
                inset.imshow(img[r, ..., 0] if img.shape[-1] == 1 else img[r], cmap="gray", vmin=0, vmax=1)
                inset.set_axis_off()
        ax.set_xticks(range(n), names, fontsize=6, rotation=45)
        ax.set_yticks([])
        ax.set_title(title, fontsize=9)
        for s in ax.spines.values():
            s.set_visible(False)
    fig.suptitle("squared distances between embeddings of unseen people (0 same point, 4 opposite; bold: same "
                 f"person); margin {recipe.cfg.margin:g}", fontsize=9)
    fig.tight_layout()
    return fig


def verification_figure(recipe):
    """Histograms of same-person and different-person distances of the unseen people, with the chosen threshold."""
    import matplotlib.pyplot as plt

    tx, ty = recipe.parts["test"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for ax, (title, net) in zip(axes, (("before training", recipe.untrained), ("after training", recipe.net))):
        s = recipe.scores(lambda x: recipe.embed(net, x))
        dist, same = pair_distances(recipe.embed(net, tx), ty)
        bins = torch.linspace(0, float(dist.max()) + 1e-6, 40).numpy()
        ax.hist(dist[same].numpy(), bins=bins, density=True, alpha=0.6, label="same person")
        ax.hist(dist[~same].numpy(), bins=bins, density=True, alpha=0.6, label="different people")
        ax.axvline(s["threshold"], color="k", ls="--", lw=1, label="threshold (validation people)")
        ax.set_title(f"{title}: verification {s['verify_acc']:.1%}, recall@1 {s['recall1']:.1%}", fontsize=9)
        ax.set_xlabel("squared distance of a pair")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


__all__ = ["distance_table_figure", "verification_figure"]
