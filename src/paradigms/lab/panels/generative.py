"""The generative panels: an autoencoder's or a VAE's reconstruction of one picture and its anomaly score against the
run's threshold (``paradigms anomaly``'s score), a VAE's decoder driven by sliders and its samples for a seed
(``paradigms sample RUN --seed S``), a masked autoencoder's reconstruction of one picture at a mask ratio, a GAN's
samples for a seed and the walk between two seeds' codes."""

from __future__ import annotations

from pathlib import Path

from .base import (NETWORKS, SEEDED, Control, Panel, PerCheckpoint, figures, grid_png, image_input, integer, line, meta,
                   number, png, table)

SLIDERS = 4
"""The VAE panel's sliders: the first latent dimensions, z1..z4 (the rest of the code stays 0, the prior's mean)."""
Z_RANGE = 3.0
"""Each slider's range, -3..3: the prior N(0, 1)'s values but for 0.3% of them."""

SCORES = PerCheckpoint()
"""Each autoencoder run's normal training images' anomaly scores (:func:`autoencoder.anomaly.normal_scores`), sorted,
computed once per checkpoint."""


def autoencoder(run: Path, query: dict, body: bytes) -> dict:
    """One picture, its reconstruction, and its anomaly score (the score ``paradigms anomaly`` ranks by: an
    autoencoder's reconstruction error, a VAE's negative ELBO) against the run's threshold, the ``quantile`` of its
    normal training images' scores."""
    import torch

    from ...autoencoder.anomaly import anomaly_threshold, share_below

    trained = NETWORKS.get(run, "recipe")
    q = number(query, "quantile", 0.95, 0.5, 0.999)
    x, label, source = image_input(run, query, body, trained.in_shape)          # (1, C, H, W) in [0, 1]
    if label is not None:
        source = f"{source} (a {trained.classes[label]})"
    score = float(trained.anomaly_score(x)[0])
    with torch.no_grad():
        recon = trained.reconstruct(x).float()                                   # (1, C, H, W) in [0, 1]
    from ...autoencoder.anomaly import normal_scores

    scores = SCORES.get(run, "normal scores", lambda: normal_scores(trained))
    threshold = anomaly_threshold(trained, q, scores)                           # t_q = quantile_q of normal scores
    below = share_below(score, scores)
    anomalous = score > threshold
    what = ("its reconstruction error ||x - x^||^2" if trained.name == "autoencoder" else
            "its negative ELBO at z = mu, -log p(x|z) + KL(q(z|x) || N(0, I)), in nats")
    error = (x[0] - recon[0]).abs()
    picture, reconstruction, hist = png(x[0]), png(recon[0]), score_histogram(scores, score, threshold)
    quantiles = [0.5, 0.9, q, 0.99]
    return {"source": source, "input": picture, "reconstruction": reconstruction, "error": png(error),
            "score": score, "threshold": threshold, "quantile": q, "share_below": below, "normal_n": len(scores),
            "verdict": "anomalous" if anomalous else "normal", "histogram": hist,
            "view": [meta(f"{source}; the anomaly score is {what}."),
                     figures((picture, "the image"), (reconstruction, "its reconstruction"),
                             (png(error), "|image - reconstruction|: where it fails")),
                     line(f"score {score:.4g}, threshold {threshold:.4g} (the {q:.1%} quantile of the scores of "
                          f"{len(scores):,} normal training images); above {below:.1%} of them: ",
                          strong="anomalous" if anomalous else "normal", bad=anomalous),
                     figures((hist, "the normal training images' scores (grey), the threshold (red) and this "
                                    "image's score (blue)")),
                     table(["normal scores' quantile", "score"],
                           [[f"{p:.1%}", float(torch.quantile(scores.double(), p))] for p in quantiles]
                           + [["this image", score]],
                           "the threshold calls about 1 - q of normal images anomalous (false alarms)")]}


def score_histogram(scores, score: float, threshold: float, bins: int = 80, height: int = 40) -> str:
    """A small picture of where ``score`` falls: the histogram of the normal ``scores`` in grey, a red column at the
    ``threshold``, a blue one at ``score`` (clipped to the drawn range), as a PNG data URI."""
    import numpy as np

    from ..images import png_uri

    s = scores.double().numpy()
    lo = min(float(s[0]), score)
    hi = max(float(np.quantile(s, 0.995)), threshold, score) * (1 + 1e-9) + 1e-12
    counts, _ = np.histogram(np.clip(s, lo, hi), bins=bins, range=(lo, hi))
    tall = np.ceil(counts / max(counts.max(), 1) * (height - 2)).astype(int)    # bar heights in pixels
    img = np.full((3, height, bins), 255, dtype=np.uint8)                         # (C, H, W) white
    for j, t in enumerate(tall):
        img[:, height - t:, j] = 150
    col = lambda v: min(bins - 1, int((v - lo) / (hi - lo) * bins))             # noqa: E731 - a value's column
    img[:, :, col(threshold)] = np.array([220, 30, 30], dtype=np.uint8)[:, None]
    img[:, :, col(score)] = np.array([30, 90, 230], dtype=np.uint8)[:, None]
    return png_uri(img, 320)


def vae(run: Path, query: dict, body: bytes) -> dict:
    """The decoder's mean image for the code the sliders set (z1..z4, the rest 0; :meth:`VAE.decode`), a grid of
    samples for a seed (``paradigms sample RUN --n N --seed S``) and, for a 2-D code, the whole learned manifold."""
    import torch

    trained = NETWORKS.get(run, "recipe")
    k, shown = trained.cfg.code, min(SLIDERS, trained.cfg.code)
    values = [number(query, f"z{i + 1}", 0.0, -Z_RANGE, Z_RANGE) for i in range(SLIDERS)]
    n = integer(query, "n", 16, 1, 256)
    seed = integer(query, "seed", 0, 0, 2 ** 31 - 1)
    z = torch.zeros(1, k, device=trained.ctx.device)                             # (1, code): the prior's mean ...
    z[0, :shown] = torch.tensor(values[:shown])                                   # ... but the sliders' dimensions
    image = trained.decode(z)[0]                                                   # (C, H, W), sigmoid(D(z))
    with SEEDED:
        torch.manual_seed(seed)
        samples = trained.sample(n)                                               # z ~ N(0, I), decoded
    decoded, grid = png(image), grid_png(samples)
    code = ", ".join(f"z{i + 1} = {v:g}" for i, v in enumerate(values[:shown]))
    unused = [f"z{i + 1}" for i in range(shown, SLIDERS)]
    view = [meta(f"the code: {code}" + (f", the other {k - shown} dimensions 0" if k > shown else "")
                 + (f" ({', '.join(unused)} unused: the code has {k} dimensions)" if unused else "")),
            figures((decoded, "the decoder's mean image for this code"))]
    answer = {"code": values[:shown], "latent": k, "n": n, "seed": seed, "decoded": decoded, "grid": grid}
    if k == 2:
        answer["manifold"], answer["cell"] = manifold_png(trained, values[0], values[1])
        view += [meta("the whole 2-D latent space: codes on a 15 x 15 grid of the prior's quantiles 0.05..0.95 "
                      "(z1 = -1.64..1.64 down the rows, z2 across); move the sliders to walk through it"),
                 figures((answer["manifold"], f"the learned 2-D manifold (paradigms sample --manifold); in red the "
                                              f"grid's code nearest to ({values[0]:g}, {values[1]:g})"), cls="grid")]
    view += [meta(f"{n} samples, seed {seed} (z ~ N(0, I), each the decoder's mean image):"),
             figures((grid, f"samples for seed {seed}"), cls="grid")]
    return {**answer, "view": view}


def manifold_png(trained, z1: float, z2: float) -> tuple[str, list[int]]:
    """A 2-D VAE's manifold (:meth:`VAE.manifold`, the picture ``paradigms sample --manifold`` draws, at the images'
    own size, enlarged to about 400 pixels) with the grid cell nearest to the code (z1, z2) framed in red, and that
    cell, [row, column]."""
    import numpy as np

    from ...autoencoder.vae_recipe import MANIFOLD_SIDE, manifold_quantiles
    from ...engine.report import image_grid
    from ..images import png_uri

    images = trained.manifold()                                                  # (15 * 15, C, H, W), rows: z1
    grid = image_grid(images, MANIFOLD_SIDE)                                     # (rows, cols, C) uint8, 1-px lines
    grid = np.repeat(grid, 3, axis=2) if grid.shape[2] == 1 else grid.copy()
    q = manifold_quantiles(MANIFOLD_SIDE)
    i, j = int((q - z1).abs().argmin()), int((q - z2).abs().argmin())          # the nearest grid code
    h, w = images.shape[-2:]
    top, left = i * (h + 1), j * (w + 1)                                          # the lines framing the cell
    red = np.array([220, 30, 30], dtype=np.uint8)
    grid[top, left:left + w + 2] = grid[top + h + 1, left:left + w + 2] = red
    grid[top:top + h + 2, left] = grid[top:top + h + 2, left + w + 1] = red
    return png_uri(np.ascontiguousarray(grid.transpose(2, 0, 1)), 400), [i, j]


def mae(run: Path, query: dict, body: bytes) -> dict:
    """One picture with a random ``ratio`` of its patches hidden (drawn from ``seed``), the masked autoencoder's
    reconstruction and the original side by side (as the report's mask-ratio figure), and the masked-patch loss."""
    import torch

    trained = NETWORKS.get(run, "recipe")
    ratio = number(query, "ratio", 0.8, 0.05, 0.95)
    seed = integer(query, "seed", 0, 0, 2 ** 31 - 1)
    x, label, source = image_input(run, query, body, trained.in_shape)           # (1, C, H, W) in [0, 1]
    if label is not None:
        source = f"{source} (a {trained.classes[label]})"
    masked, pasted, mask, loss = trained.reconstruction(x, ratio, torch.Generator().manual_seed(seed))
    hidden, patches = int(mask.sum()), mask.shape[1]
    pictures = [png(masked[0]), png(pasted[0]), png(x[0])]
    return {"source": source, "ratio": ratio, "seed": seed, "hidden": hidden, "patches": patches, "loss": loss,
            "masked": pictures[0], "reconstruction": pictures[1], "original": pictures[2],
            "view": [meta(f"{source}; {hidden} of its {patches} patches hidden (seed {seed}); the run trained "
                          f"hiding {trained.cfg.mask_ratio:.0%}"),
                     figures((pictures[0], f"{hidden}/{patches} patches hidden (grey): what the encoder sees"),
                             (pictures[1], "the reconstruction, the visible patches pasted back"),
                             (pictures[2], "the original")),
                     line("the loss on the hidden patches, per pixel in the encoder's standardised units "
                          f"(as test/masked_loss{', per-patch normalised' if trained.cfg.norm_pix_loss else ''}): ",
                          strong=f"{loss:.4f}")]}


def gan(run: Path, query: dict, body: bytes) -> dict:
    """A grid of samples for a seed (``paradigms sample RUN --n N --seed S``) and the walk between two seeds' codes."""
    import torch

    trained = NETWORKS.get(run, "recipe")
    n = integer(query, "n", 16, 1, 256)
    seed = integer(query, "seed", 0, 0, 2 ** 31 - 1)
    other = integer(query, "seed_b", seed + 1, 0, 2 ** 31 - 1)
    steps = integer(query, "steps", 8, 2, 32)
    with SEEDED:
        torch.manual_seed(seed)
        samples = trained.sample(n)
    grid, walk = grid_png(samples), grid_png(trained.interpolate(seed, other, steps), nrow=steps)
    return {"n": n, "seed": seed, "seed_b": other, "steps": steps, "grid": grid, "walk": walk,
            "view": [meta(f"{n} samples, seed {seed}:"), figures((grid, f"samples for seed {seed}"), cls="grid"),
                     meta(f"from seed {seed}'s code to seed {other}'s, {steps} steps:"),
                     figures((walk, "the walk between two codes"), cls="grid walk")]}


PANELS = [
    Panel("autoencoder", "Reconstruct and score a picture", ("encoder",),
          "The autoencoder squeezes the picture through its small code and back: what the reconstruction keeps is "
          "what the code learnt. A picture unlike the training images comes back worse, so its anomaly score (an "
          "autoencoder's reconstruction error, a VAE's negative ELBO: the score paradigms anomaly ranks by) is "
          "high; above the threshold, the given quantile of the normal training images' scores, it is called "
          "anomalous. Draw something the run never saw.", autoencoder, recipes=("autoencoder", "vae"),
          controls=(Control("quantile", "threshold quantile", default="0.95", lo=0.5, hi=0.999, step=0.005),)),
    Panel("vae", "Walk a VAE's latent space", ("encoder",),
          "Move the sliders to set the first numbers of the code z (the rest stay 0, the prior's mean) and see the "
          "decoder's image for it: nearby codes decode to similar pictures if the VAE has learnt a smooth space. "
          "Below, samples: codes drawn from the prior N(0, I) for a seed, decoded.", vae, recipes=("vae",),
          input="none",
          controls=(*(Control(f"z{i}", f"z{i}", kind="range", default="0", lo=-Z_RANGE, hi=Z_RANGE, step=0.1)
                      for i in range(1, SLIDERS + 1)),
                    Control("n", "samples", default="16", lo=1, hi=256), Control("seed", "seed", default="0", lo=0))),
    Panel("mae", "Masked autoencoder: fill in the hidden patches", ("encoder",),
          "Hide a random share of the picture's patches: the encoder sees only the rest, the decoder guesses every "
          "hidden patch. Raise the ratio to see how much of a picture it infers from a few patches, and where the "
          "guess turns into a blur (the squared error rewards the average of the plausible patches).", mae,
          recipes=("mae",),
          controls=(Control("ratio", "mask ratio", kind="range", default="0.8", lo=0.05, hi=0.95, step=0.05),
                    Control("seed", "mask seed", default="0", lo=0))),
    Panel("gan", "GAN samples", ("generator",),
          "The generator's pictures for a seed (each seed draws the codes z ~ N(0, I)), and a walk from one seed's "
          "code to another's: if the pictures change smoothly, the generator has learned a space rather than "
          "memorised images.", gan, input="none",
          controls=(Control("n", "samples", default="16", lo=1, hi=256), Control("seed", "seed", default="0", lo=0),
                    Control("seed_b", "walk to seed", default="1", lo=0),
                    Control("steps", "walk steps", default="8", lo=2, hi=32))),
]
