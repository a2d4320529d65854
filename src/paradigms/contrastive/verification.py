"""Face verification and retrieval measures, usable on any embeddings (FaceNet's evaluation, Schroff et al. 2015).

    dist, same = pair_distances(emb, labels)          # every unordered pair: squared distance, same identity?
    t = best_threshold(*pair_distances(val_emb, val_labels))   # chosen on people kept for it
    balanced_accuracy(dist, same, t)                  # mean of the same-pair and different-pair accuracies
    recall_at_1(emb, labels)                          # is a face's nearest other face the same person's?
    verify(emb[0], emb[1], t)                         # (squared distance, the same person?) of one pair
    identity_distances(emb, labels, [3, 7, 9])        # the lecture's table: mean distance between people's faces
"""

from __future__ import annotations

import torch

from .losses import squared_distances

def pair_distances(emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The squared distance and same-identity flag of every unordered pair (i < j)."""
    i, j = torch.triu_indices(len(emb), len(emb), offset=1)
    d = squared_distances(emb)
    return d[i, j], labels[i] == labels[j]


def balanced_accuracy(dist: torch.Tensor, same: torch.Tensor, threshold: float) -> float:
    """Mean of the accuracy on same-identity pairs (dist <= threshold) and on different ones (dist > threshold)."""
    yes = dist <= threshold
    return float(((yes[same].float().mean() if same.any() else 1.0) +
                  ((~yes[~same]).float().mean() if (~same).any() else 1.0)) / 2)


def best_threshold(dist: torch.Tensor, same: torch.Tensor) -> float:
    """The threshold with the best balanced accuracy: over every cut between consecutive sorted distances, the
    same-person pairs accepted below it and the different ones rejected above it (the cut's midpoint returned)."""
    d, order = dist.sort()
    s = same[order].double()
    n_same, n_diff = s.sum().clamp_min(1), (1 - s).sum().clamp_min(1)
    below_same = torch.cat([torch.zeros(1, dtype=torch.float64), s.cumsum(0)])        # accepted if cut after k
    below_diff = torch.cat([torch.zeros(1, dtype=torch.float64), (1 - s).cumsum(0)])
    acc = (below_same / n_same + (n_diff - below_diff) / n_diff) / 2                   # (P + 1,) cuts
    k = int(acc.argmax())
    cuts = torch.cat([d[:1] - 1e-6, (d[1:] + d[:-1]) / 2, d[-1:] + 1e-6])
    return float(cuts[k])


def verify(a: torch.Tensor, b: torch.Tensor, threshold: float) -> tuple[float, bool]:
    """FaceNet's verification of one pair of embeddings (D,): their squared distance ||f(x1) - f(x2)||^2 and whether
    it is at most ``threshold`` (the same identity) or above it (different ones)."""
    d = float((a.float() - b.float()).pow(2).sum())
    return d, d <= threshold


def identity_distances(emb: torch.Tensor, labels: torch.Tensor, ids: list[int]) -> torch.Tensor:
    """(P, P): the mean squared distance between the images of identity ``ids[i]`` and those of ``ids[j]`` (on the
    diagonal, between two different images of one identity; NaN where there is no such pair)."""
    d = squared_distances(emb)                                                 # (N, N)
    out = torch.full((len(ids), len(ids)), float("nan"))
    for i, p in enumerate(ids):
        for j, q in enumerate(ids):
            block = d[labels == p][:, labels == q]                             # (n_p, n_q)
            if i == j:                                                         # leave out each image with itself
                block = block[~torch.eye(len(block), dtype=torch.bool)]
            if block.numel():
                out[i, j] = block.mean()
    return out


def recall_at_1(emb: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of images whose nearest other image has the same identity."""
    d = squared_distances(emb)
    d.fill_diagonal_(float("inf"))
    return float((labels[d.argmin(1)] == labels).float().mean())


__all__ = ["balanced_accuracy", "best_threshold", "identity_distances", "pair_distances", "recall_at_1", "verify"]
