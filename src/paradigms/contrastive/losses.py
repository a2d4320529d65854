"""Contrastive objectives: tell apart what is alike and what is not. Each works on a user's own tensors.

FaceNet (Schroff, Kalenichenko & Philbin 2015): embeddings f(x) on the unit sphere, a triplet (anchor a, positive p of
the same identity, negative n of another) is pulled into order by a margin alpha,

    L_triplet = [ ||f(a) - f(p)||^2 - ||f(a) - f(n)||^2 + alpha ]_+                              (FaceNet eq. 1)

SimCLR (Chen et al. 2020): two augmented views of each of N images, z_i and z_j, every other view in the batch a
negative (NT-Xent, normalised temperature-scaled cross-entropy), averaged over all 2N anchors,

    l(i, j) = -log  exp(sim(z_i, z_j) / tau) / sum_{k != i} exp(sim(z_i, z_k) / tau),    sim = cosine

MoCo (He et al. 2020): a query q against its key k+ (the other view through the momentum encoder) and a queue of K
keys of earlier batches as negatives (InfoNCE),

    L_q = -log  exp(q . k+ / tau) / ( exp(q . k+ / tau) + sum_{k- in queue} exp(q . k- / tau) )

``mine_triplets`` picks a batch's triplets online from its labels: ``batch-all`` every valid triplet (Hermans et al.
2017 average the ones still active), ``batch-hard`` each anchor's farthest positive and closest negative (Hermans et
al.), ``semi-hard`` for each anchor-positive pair the closest negative still farther than the positive (FaceNet 3.2;
the one inside the margin when there is one).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MINING = ("batch-all", "batch-hard", "semi-hard")


def squared_distances(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """||x_i - y_j||^2 for every pair, (N, C) x (M, C) -> (N, M), clamped at 0 (rounding)."""
    y = x if y is None else y
    d = x.pow(2).sum(1, keepdim=True) - 2 * x @ y.T + y.pow(2).sum(1)[None, :]
    return d.clamp_min(0)


def triplet_loss(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 0.2,
                 normalize: bool = True, active_only: bool = False) -> torch.Tensor:
    """FaceNet's loss, the mean over triplets of [d(a, p) - d(a, n) + margin]_+ with d the squared L2 distance between
    L2-normalised embeddings (``normalize=False``: the embeddings as given). ``active_only``: the mean over the
    triplets whose loss is positive (batch-all's average), 0 when none is."""
    if normalize:
        anchor, positive, negative = (F.normalize(t, dim=-1) for t in (anchor, positive, negative))
    d_ap = (anchor - positive).pow(2).sum(-1)
    d_an = (anchor - negative).pow(2).sum(-1)
    losses = F.relu(d_ap - d_an + margin)                                   # (T,)
    if active_only:
        active = losses > 1e-12
        return losses.sum() / active.sum().clamp_min(1)
    return losses.mean()


def mine_triplets(embeddings: torch.Tensor, labels: torch.Tensor, strategy: str = "semi-hard",
                  margin: float = 0.2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Online mining within a batch: index tensors (anchor, positive, negative) of the triplets ``strategy`` picks,
    on the squared distances of the (L2-normalised) ``embeddings`` (N, C) with identities ``labels`` (N,).

    Raises ValueError when no anchor has a positive (fewer than two images of every identity) or a negative."""
    if strategy not in MINING:
        raise ValueError(f"mining {strategy!r}: choose one of {', '.join(MINING)}")
    with torch.no_grad():
        e = F.normalize(embeddings.detach().float(), dim=-1)
        d = squared_distances(e)                                            # (N, N)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        pos, neg = same & ~eye, ~same                                       # (N, N) valid positives, negatives
        if not pos.any():
            raise ValueError("no identity has two images in the batch: triplet mining needs at least two images of "
                             "a person (raise the images per person)")
        if not neg.any():
            raise ValueError("every image in the batch has the same identity: triplet mining needs another person")
        if strategy == "batch-hard":                                        # per anchor: farthest p, closest n
            a = torch.nonzero(pos.any(1) & neg.any(1)).flatten()
            p = d.masked_fill(~pos, -1.0)[a].argmax(1)
            n = d.masked_fill(~neg, float("inf"))[a].argmin(1)
            return a, p, n
        a, p = torch.nonzero(pos, as_tuple=True)                            # every anchor-positive pair
        if strategy == "batch-all":                                         # with every negative of the anchor
            valid = neg[a]                                                  # (P, N)
            pair, n = torch.nonzero(valid, as_tuple=True)
            return a[pair], p[pair], n
        # semi-hard: the closest negative farther than the positive: inside the margin when one is (FaceNet);
        # when no negative is farther, the farthest negative (the least hard of the hard ones)
        d_ap = d[a, p][:, None]                                             # (P, 1)
        d_an = d[a]                                                         # (P, N)
        farther = neg[a] & (d_an > d_ap)
        has = farther.any(1)
        closest_farther = d_an.masked_fill(~farther, float("inf")).argmin(1)
        farthest = d_an.masked_fill(~neg[a], -1.0).argmax(1)
        keep = neg[a].any(1)
        n = torch.where(has, closest_farther, farthest)
        return a[keep], p[keep], n[keep]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's NT-Xent: z1[i] and z2[i] (N, C) are two views of image i; the mean of l(i, j) over all 2N anchors."""
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]).float(), dim=-1)                   # (2N, C) on the unit sphere
    sim = z @ z.T / temperature                                             # (2N, 2N) cosine / tau
    sim.fill_diagonal_(float("-inf"))                                       # k != i
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)   # i's other view
    return F.cross_entropy(sim, target)


def info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """MoCo's InfoNCE: queries q (N, C), their keys k (N, C) and the queue (K, C) of negatives, all L2-normalised
    here; the keys and the queue get no gradient (they come from the momentum encoder)."""
    q = F.normalize(q.float(), dim=-1)
    k = F.normalize(k.detach().float(), dim=-1)
    queue = F.normalize(queue.detach().float(), dim=-1)
    l_pos = (q * k).sum(1, keepdim=True)                                    # (N, 1)   q . k+
    l_neg = q @ queue.T                                                     # (N, K)   q . k-
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))   # the positive: column 0


__all__ = ["MINING", "info_nce", "mine_triplets", "nt_xent", "squared_distances", "triplet_loss"]
