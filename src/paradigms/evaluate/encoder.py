"""One evaluation protocol for every encoder: how well do its frozen features separate classes it was never told?

The same function measures a SimCLR, MoCo, MAE, autoencoder or supervised encoder, so they sit in one table:

- **kNN** (Wu et al. 2018; the protocol of lightly's and solo-learn's benchmarks): the k = 200 training features most
  cosine-similar to a test feature vote for their classes with weight exp(cos / 0.1)
  (:func:`knn_predict`);
- **linear probe**, offline: every training image's feature computed once by the frozen encoder (eval mode, so
  batch-norm statistics are not touched), standardised, then multinomial logistic regression fitted to them,

      min_{W, b}  1/N sum_n CE(W f(x_n) + b, y_n) + lambda ||W||^2          (full-batch L-BFGS, deterministic);

- a **2-D picture** of the test features (t-SNE), coloured by class;
- an image's **nearest** images by the same cosine similarity (:func:`nearest`), to look at what kNN counts.

The feature of a network is ``net.features(x)``: everything but its head (a classifier's penultimate layer, the
pooled output of a self-supervised encoder, before any projection head).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def encode(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The feature of images ``x`` (pixels in [0, 1]): ``net.features`` where the network has it, else its output."""
    out = net.features(x) if hasattr(net, "features") else net(x)
    return out.flatten(1)


@torch.no_grad()
def extract(net: nn.Module, batches: Batches, ctx=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, C) float32 on the CPU, labels (N,)) of every batch, in order, with the network in eval mode (and
    left in the mode it was in)."""
    was = net.training
    net.eval()
    feats, labels = [], []
    for x, y in batches:
        if len(y) == 0:
            continue
        with ctx.autocast() if ctx is not None else contextlib.nullcontext():
            feats.append(encode(net, x).float().cpu())
        labels.append(y.cpu())
    net.train(was)
    if not feats:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(feats), torch.cat(labels)


def knn_predict(train_features: torch.Tensor, train_labels: torch.Tensor, features: torch.Tensor, num_classes: int,
                k: int = 200, temperature: float = 0.1, chunk: int = 1024) -> torch.Tensor:
    """Weighted k-nearest-neighbour classification of frozen features (Wu et al. 2018; lightly's and solo-learn's
    benchmark protocol): cosine similarity, and each of the k most similar training features votes for its class
    with weight exp(sim / temperature),

        score_c(x) = sum_{i in top-k(x)} exp(cos(x, x_i) / t) [y_i = c],       prediction = argmax_c score_c

    ``features`` (N, C) -> predicted classes (N,); computed in chunks of ``chunk`` rows."""
    train = F.normalize(train_features.float(), dim=1)
    one_hot = F.one_hot(train_labels.long(), num_classes).float()           # (M, K)
    k = min(k, len(train))
    out = []
    for i in range(0, len(features), chunk):
        sim = F.normalize(features[i:i + chunk].float(), dim=1) @ train.T   # (n, M) cosine similarities
        top, idx = sim.topk(k, dim=1)                                       # (n, k)
        weights = (top / temperature).exp()
        scores = torch.einsum("nk,nkc->nc", weights, one_hot[idx])          # (n, K) weighted votes
        out.append(scores.argmax(1))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def nearest(features: torch.Tensor, query: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` features most cosine-similar to each query, most similar first: the neighbours that vote in
    :func:`knn_predict`, here to be looked at (an image's nearest images, a text's nearest images in CLIP's space),

        cos(q, f_i) = q . f_i / (||q|| ||f_i||),      top-k over i

    ``features`` (N, C), ``query`` (C,) or (Q, C) -> (similarities, indices), each (k,) or (Q, k); k is cut to N."""
    one = query.dim() == 1
    q = F.normalize(query.float().reshape(-1, query.shape[-1]), dim=1)       # (Q, C)
    sim = q @ F.normalize(features.float(), dim=1).T                         # (Q, N) cosine similarities
    top, idx = sim.topk(min(k, len(features)), dim=1)                        # (Q, k), most similar first
    return (top[0], idx[0]) if one else (top, idx)


def linear_probe(train_f: torch.Tensor, train_y: torch.Tensor, test_f: torch.Tensor, test_y: torch.Tensor,
                 num_classes: int | None = None, weight_decay: float = 1e-4, max_iter: int = 200) -> float:
    """Test accuracy of logistic regression fitted to frozen features (standardised by the training features'
    mean and std), by full-batch L-BFGS from zero weights: the same features give the same accuracy. The one linear
    probe of the project: every paradigm and benchmark that probes features calls this. Features (N, C) and labels
    (N,) may be tensors or arrays; ``num_classes`` defaults to the largest label + 1."""
    train_f, test_f = torch.as_tensor(train_f, dtype=torch.float32), torch.as_tensor(test_f, dtype=torch.float32)
    train_y, test_y = torch.as_tensor(train_y).long(), torch.as_tensor(test_y).long()
    if num_classes is None:
        num_classes = int(max(train_y.max(), test_y.max())) + 1
    mean, std = train_f.mean(0), train_f.std(0).clamp_min(1e-6)
    a, b = (train_f - mean) / std, (test_f - mean) / std
    w = torch.zeros(a.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, bias], lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe")
    y = train_y.long()

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(a @ w + bias, y) + weight_decay * w.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((b @ w + bias).argmax(1) == test_y).float().mean())


def evaluate_encoder(net: nn.Module, train: Batches, test: Batches, num_classes: int, ctx=None, k: int = 200,
                     temperature: float = 0.1, probe: bool = True
                     ) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """The protocol on one encoder: ``({"knn_acc", "probe_acc"}, test features, test labels)``; the probe is
    fitted only when ``probe`` (it reads every training feature once more; kNN is cheap)."""
    train_f, train_y = extract(net, train, ctx)
    test_f, test_y = extract(net, test, ctx)
    pred = knn_predict(train_f, train_y, test_f, num_classes, k=k, temperature=temperature)
    out = {"knn_acc": float((pred == test_y).float().mean())}
    if probe:
        out["probe_acc"] = linear_probe(train_f, train_y, test_f, test_y, num_classes)
    return out, test_f, test_y


def embedding_figure(features: torch.Tensor, labels: torch.Tensor, classes: list[str], title: str, n: int = 1000,
                     seed: int = 0):
    """t-SNE of the first ``n`` test features (cosine distances), one colour per class."""
    import matplotlib.pyplot as plt
    from sklearn.manifold import TSNE

    f, y = F.normalize(features[:n].float(), dim=1).numpy(), labels[:n].numpy()
    xy = TSNE(2, init="pca", random_state=seed, perplexity=min(30.0, max(2.0, (len(f) - 1) / 3))).fit_transform(f)
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for c, name in enumerate(classes):
        sel = y == c
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=cmap(c % cmap.N), label=name)
    ax.set_xticks([])
    ax.set_yticks([])
    if len(classes) <= 20:
        ax.legend(fontsize=7, markerscale=2.5, loc="center left", bbox_to_anchor=(1, 0.5), frameon=False)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def probe_run(run_dir, device: str = "cpu", data_dir=None, dataset: str | None = None,
              train_size: int | None = None, probe: bool = True, untrained: bool = False) -> dict[str, float]:
    """The protocol on the network of any run folder (``paradigms.load``), on its own dataset (or ``dataset``):
    ``{"knn_acc", "probe_acc"}`` on the test set. ``untrained``: on the same network freshly initialised (seeded by
    the run's seed), the baseline that shows what the training taught it."""
    from ..api import load
    from ..data import ImageLoader, load_images
    from ..engine.trainer import load_config

    cfg = load_config(run_dir)
    data = load_images(dataset or cfg.dataset, data_dir or cfg.data_dir)
    net = load(run_dir, device, untrained=untrained, seed=cfg.seed)
    x, y = data.train_x[:train_size], data.train_y[:train_size]
    args = dict(batch_size=1024, shuffle=False, drop_last=False, device=torch.device(device))
    train, test = ImageLoader(x, y, **args), ImageLoader(data.test_x, data.test_y, **args)
    return evaluate_encoder(net, train.epoch(0), test.epoch(0), data.num_classes, probe=probe)[0]


__all__ = ["embedding_figure", "encode", "evaluate_encoder", "extract", "knn_predict", "linear_probe", "nearest",
           "probe_run"]
