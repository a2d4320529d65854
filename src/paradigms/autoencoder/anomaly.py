"""Anomaly detection with a model of the normal data: what it reconstructs badly is anomalous.

    paradigms run autoencoder --dataset mnist --set 'classes=[0]'     # learn one class: the normal one
    paradigms anomaly RUN_DIR                                        # score every test image, AUROC

Each test image gets the run's ``anomaly_score`` (an autoencoder: its reconstruction error; a VAE: its
negative ELBO); images of classes outside the normal ones are the anomalies. AUROC, the probability that
a random anomaly scores above a random normal image, is the Mann-Whitney statistic

    AUROC = ( sum of the anomalies' ranks - m (m + 1) / 2 ) / (m n)     (m anomalies, n normal; ties: mean rank)

AUROC needs no threshold; saying of one image "normal" or "anomalous" does. The usual rule when no anomalies are at
hand to tune on fixes the false-alarm rate on the normal data: the threshold is the quantile q (0.95) of the scores
of the normal images the run learnt from (``anomaly_threshold``), so that about 1 - q of normal images score above it

    t_q = quantile_q { score(x_i) : x_i a normal training image },     x anomalous  <=>  score(x) > t_q
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from scipy.stats import rankdata

from ..errors import UserError


def auroc(scores, is_anomaly) -> float:
    """The area under the ROC curve of ``scores`` (higher: more anomalous) for the 0/1 labels ``is_anomaly``."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(is_anomaly, dtype=bool)
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        raise ValueError("AUROC needs both anomalies and normal images")
    ranks = rankdata(scores)  # ties get their mean rank
    return float((ranks[positive].sum() - m * (m + 1) / 2) / (m * n))


@torch.no_grad()
def normal_scores(trained, limit: int = 10_000) -> torch.Tensor:
    """The anomaly scores of the first ``limit`` training images the run ``trained`` learnt from (its normal data:
    the classes it trained on), sorted increasing, (n,) on the CPU. ``trained``: a loaded recipe with an
    ``anomaly_score`` (``engine.trainer.load_trained``)."""
    from ..data import unit

    x = getattr(trained, "train_x", None)
    if x is None or not len(x):
        raise UserError(f"the {trained.name} run's training images are not in memory: no normal scores to compare with")
    x = x[:limit]
    device = trained.ctx.device
    scores = torch.cat([trained.anomaly_score(unit(x[i:i + 1000].to(device))).float().cpu()
                        for i in range(0, len(x), 1000)])
    return scores.sort().values


def score_quantile(scores, quantile: float = 0.95) -> float:
    """The ``quantile`` of ``scores`` (linear interpolation between order statistics, as numpy's default)."""
    if not 0 < quantile < 1:
        raise ValueError(f"quantile={quantile}: it must be in (0, 1)")
    return float(np.quantile(np.asarray(scores, dtype=np.float64), quantile))


def anomaly_threshold(trained, quantile: float = 0.95, scores=None) -> float:
    """The score above which an image is called anomalous: the ``quantile`` of the anomaly scores of the run's normal
    training images, t_q = quantile_q {score(x_i)} (the usual rule: about 1 - q of normal images are false alarms).
    ``scores``: those images' scores when already computed (:func:`normal_scores`), else they are."""
    return score_quantile(normal_scores(trained) if scores is None else scores, quantile)


def share_below(score: float, scores) -> float:
    """The share of the normal images' ``scores`` below ``score`` (its percentile among them, as a fraction)."""
    scores = np.asarray(scores, dtype=np.float64)
    return float((scores < score).mean()) if len(scores) else float("nan")


def normal_classes(text: str | None, trained: list[int] | None, names: list[str], dataset: str) -> list[int]:
    """The normal classes: ``--normal`` (names or indices), else the classes the run trained on."""
    if text is None:
        if not trained:
            raise UserError(f"the run trained on every class of {dataset}, so none is anomalous: train on the normal "
                            f"ones (--set 'classes=[0]') or say which are normal with --normal 0,1")
        return list(trained)
    out = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        if part in names:
            out.append(names.index(part))
        elif part.isdigit() and int(part) < len(names):
            out.append(int(part))
        else:
            raise UserError(f"--normal {text!r}: {dataset} has no class {part!r} (classes 0..{len(names) - 1}: "
                            f"{', '.join(names)})")
    if len(set(out)) == len(names):
        raise UserError(f"--normal {text!r} names every class of {dataset}: nothing would be anomalous")
    return out


def anomaly_run(run_dir: Path, normal: str | None = None, device: str | None = None) -> dict:
    """Score the run's dataset's whole test set; the AUROC and the figures' data."""
    from ..data import load_images, unit
    from ..engine.trainer import load_trained

    recipe = load_trained(run_dir, device)
    if not callable(getattr(recipe, "anomaly_score", None)):
        raise UserError(f"{run_dir} is a run of {recipe.name}, which gives no anomaly score (autoencoder, vae do)")
    cfg = recipe.cfg
    data = load_images(cfg.dataset, cfg.data_dir)
    if data.test_x is None:
        raise UserError(f"dataset {cfg.dataset!r} has no test set in memory to score")
    names = list(data.classes)
    ok = normal_classes(normal, getattr(cfg, "classes", None), names, cfg.dataset)
    x, y = data.test_x, data.test_y
    scores = torch.cat([recipe.anomaly_score(unit(x[i:i + 1000].to(recipe.ctx.device))).float().cpu()
                        for i in range(0, len(x), 1000)])
    is_anomaly = ~torch.isin(y, torch.tensor(ok))
    trained = getattr(cfg, "classes", None)
    return {"auroc": auroc(scores.numpy(), is_anomaly.numpy()), "normal": [names[c] for c in ok],
            "n": len(y), "anomalies": int(is_anomaly.sum()), "scores": scores, "is_anomaly": is_anomaly, "x": x,
            "y": y, "names": names, "trained_on": ", ".join(names[c] for c in trained) if trained else "every class",
            "caveat": caveat(trained, ok, names)}


def caveat(trained: list[int] | None, normal: list[int], names: list[str]) -> str:
    """What the AUROC does not mean when the run did not learn the normal classes alone ("" when it did)."""
    if not trained:
        return ("The run trained on every class, the anomalies included: this AUROC says how its score separates "
                "the classes, not how it detects what it never saw; train on the normal classes alone for that "
                "(--set 'classes=[...]').")
    if sorted(trained) != sorted(normal):
        shown = ", ".join(names[c] for c in trained)
        return (f"The run trained on {shown}, not exactly on the normal classes named here: images it learnt may "
                "count as anomalies, or normal ones it never saw.")
    return ""


def figures(r: dict) -> dict:
    import matplotlib.pyplot as plt

    from ..data import unit
    from ..engine.report import grid_figure

    s, a = r["scores"].numpy(), r["is_anomaly"].numpy()
    fig, ax = plt.subplots(figsize=(5.4, 3.2))
    bins = np.linspace(s.min(), np.quantile(s, 0.995), 60)
    ax.hist(s[~a], bins=bins, alpha=0.6, density=True, label=f"normal ({', '.join(r['normal'])})")
    ax.hist(s[a], bins=bins, alpha=0.6, density=True, label="anomalies (other classes)")
    ax.set_xlabel("anomaly score")
    ax.set_ylabel("density")
    ax.set_title(f"AUROC {r['auroc']:.3f} on {r['n']:,} test images", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    order = np.argsort(s)
    most = unit(r["x"][torch.as_tensor(order[::-1][:16].copy())])
    least = unit(r["x"][torch.as_tensor(order[:16].copy())])
    return {"scores": fig, "most": grid_figure(most, "the 16 most anomalous test images", 8),
            "least": grid_figure(least, "the 16 least anomalous test images", 8)}
