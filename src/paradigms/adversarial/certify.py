"""``paradigms certify RUN_DIR``: certify a trained classifier's test images by randomized smoothing.

    paradigms certify runs/noise-0.5 --sigma 0.5 --n 100000 --skip 20

Every ``skip``-th evaluation image is certified with :meth:`.smoothing.Smooth.certify_many` (the paper's
CERTIFY). One row per image goes to ``certify/SETTINGS.tsv`` as soon as it is done (index, label,
prediction, radius, correct, seconds, like the paper's logs), so an interrupted certification
continues where it stopped and ends with the rows an uninterrupted one writes: the noise of each
image is drawn from a seed of its own (its index), so a later run with another ``skip`` reuses the rows
it shares. Then the certified accuracy at radii 0, 0.25, ...
(an image counts at radius r when it is certified correct with a radius >= r), its curve in the run's
report and ``certify-sigmaS.json``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Generator

import torch

from ..engine.checkpoint import atomic_write_text
from ..errors import UserError
from ..evaluate.classifier import eval_images, load_classifier
from .smoothing import Smooth, check

COLUMNS = ("idx", "label", "predict", "radius", "correct", "time")


def training_sigma(run_dir: Path) -> float | None:
    """The sigma of the run's own Gaussian-noise augmentation, if it trained with one."""
    from ..engine.trainer import load_config

    for item in getattr(load_config(run_dir), "augment", None) or []:
        if isinstance(item, dict) and "gaussian_noise" in item:
            return float((item["gaussian_noise"] or {}).get("sigma", 0.25))
        if item == "gaussian_noise":
            return 0.25
    return None


def settings_name(sigma: float, n0: int, n: int, alpha: float, seed: int) -> str:
    """The table's name: the settings that decide each image's row (any skip shares it)."""
    return f"sigma{sigma:g}_n{n}_n0{n0}_alpha{alpha:g}_seed{seed}"


def read_rows(path: Path) -> list[dict]:
    """The rows a (possibly interrupted) certification wrote; a torn last line is dropped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) != len(COLUMNS):
            continue
        try:
            rows.append({"idx": int(parts[0]), "label": int(parts[1]), "predict": int(parts[2]),
                         "radius": float(parts[3]), "correct": int(parts[4]), "time": float(parts[5])})
        except ValueError:
            continue
    return rows


def format_row(r: dict) -> str:
    return f"{r['idx']}\t{r['label']}\t{r['predict']}\t{r['radius']:.4f}\t{r['correct']}\t{r['time']:.3f}"


def certified_accuracy(rows: list[dict], radii: list[float]) -> list[float]:
    """The share of images certified correct at radius >= r, for each r."""
    if not rows:
        return [float("nan")] * len(radii)
    return [sum(1 for r in rows if r["correct"] and r["radius"] >= t) / len(rows) for t in radii]


def radii_for(rows: list[dict], step: float = 0.25) -> list[float]:
    top = max([r["radius"] for r in rows if r["correct"]], default=0.0)
    return [round(i * step, 4) for i in range(int(math.floor(top / step)) + 2)]


def image_seed(seed: int, index: int) -> int:
    """The seed of the noise of the evaluation image ``index``: its own, so that a resumed certification, another
    ``skip`` or the lab's certify panel draws the same noise for it."""
    return seed * 1_000_003 + index


def certifying_image(smooth: Smooth, x: torch.Tensor, index: int, n0: int, n: int, alpha: float, batch_size: int,
                     seed: int) -> Generator[int, None, tuple[int, float]]:
    """One image ``x`` (1, C, H, W) certified as :func:`certify_images` certifies the evaluation image ``index`` (the
    same noise, from a generator of its own seeded with :func:`image_seed`, so the global one is left alone): yields
    the noisy copies classified so far (of n0 + n), returns ``(class, radius)``, ``(-1, 0.0)`` when it abstains."""
    generator = torch.Generator(device=x.device).manual_seed(image_seed(seed, index))
    (pred, rad), = yield from smooth.certifying(x, n0, n, alpha, batch_size, generator)
    return pred, rad


def certify_images(smooth: Smooth, x: torch.Tensor, y: torch.Tensor, index: list[int], path: Path, n0: int, n: int,
                   alpha: float, batch_size: int, seed: int, progress: bool = True) -> list[dict]:
    """Certify images ``x`` (their dataset indices ``index``), appending rows to ``path``; resumes from it."""
    from tqdm import tqdm

    kept = read_rows(path)
    done = {r["idx"] for r in kept}
    path.parent.mkdir(parents=True, exist_ok=True)
    # the complete rows alone (an interruption may have torn the last line), written whole before appending
    atomic_write_text(path, "".join(line + "\n" for line in ["\t".join(COLUMNS), *(format_row(r) for r in kept)]))
    if done & set(index):
        print(f"continuing {path}: {len(done & set(index))} of {len(index)} images already certified", file=sys.stderr)
    bar = tqdm(total=len(index), initial=len(done & set(index)), unit="img", disable=not progress,
               desc=f"certify σ={smooth.sigma:g}", file=sys.stderr, dynamic_ncols=True)
    with path.open("a") as out:
        for j, i in enumerate(index):
            if i in done:
                continue
            # each image its own noise, seeded by its index: a resumed run, or another skip, draws the same
            torch.manual_seed(image_seed(seed, i))
            t0 = time.perf_counter()
            (pred, rad), = smooth.certify_many(x[j:j + 1], n0, n, alpha, batch_size)
            out.write(format_row({"idx": i, "label": int(y[j]), "predict": pred, "radius": rad,
                                  "correct": int(pred == int(y[j])), "time": time.perf_counter() - t0}) + "\n")
            out.flush()
            bar.update(1)
    bar.close()
    wanted = set(index)
    return [r for r in read_rows(path) if r["idx"] in wanted]


def certify_run(run_dir: Path, sigma: float | None = None, n0: int = 100, n: int = 100_000, alpha: float = 0.001,
                skip: int = 20, max_images: int | None = None, batch_size: int = 1000, seed: int = 0,
                device: str = "cpu", progress: bool = True) -> dict:
    """Certify every ``skip``-th evaluation image of a run; the summary (also written to the run folder)."""
    run_dir = Path(run_dir)
    if sigma is None:
        sigma = training_sigma(run_dir)
        if sigma is None:
            raise UserError(f"{run_dir} did not train with gaussian_noise: give --sigma (the noise the network "
                            "should be certified under; train with augment=[{gaussian_noise: {sigma: S}}] first)")
    check(sigma=sigma, alpha=alpha, n0=n0, n=n, batch_size=batch_size)
    if skip < 1:
        raise UserError(f"skip={skip} is out of range: certify every skip-th image, skip >= 1")
    net = load_classifier(run_dir, device)
    (x, y), _ = eval_images(run_dir, 10 ** 9, device)
    index = list(range(0, len(x), skip))[:max_images]
    x, y = x[index], y[index]
    name = settings_name(sigma, n0, n, alpha, seed)
    smooth = Smooth(net, len(net.classes), sigma)
    rows = certify_images(smooth, x, y, index, run_dir / "certify" / f"{name}.tsv", n0, n, alpha, batch_size, seed,
                          progress)
    radii = radii_for(rows)
    acc = certified_accuracy(rows, radii)
    trained = training_sigma(run_dir)
    return {"sigma": sigma, "n0": n0, "n": n, "alpha": alpha, "skip": skip, "images": len(rows),
            "trained_sigma": trained, "abstained": sum(r["predict"] == -1 for r in rows),
            "seconds_per_image": sum(r["time"] for r in rows) / max(1, len(rows)),
            "radii": radii, "certified_acc": acc, "table": name + ".tsv"}


def curve_figure(summary: dict):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.step(summary["radii"], summary["certified_acc"], where="post", lw=2)
    ax.set_xlabel("L2 radius (pixels in [0, 1])")
    ax.set_ylabel("certified accuracy")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"randomized smoothing, σ={summary['sigma']:g}, n={summary['n']:,}, α={summary['alpha']:g}, "
                 f"{summary['images']} images", fontsize=9)
    fig.tight_layout()
    return fig
