"""Pictures of augmentation: the lecture's "1 => 18" grid, the one-row-per-family sheet, a batch."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch

from .mix import CutMix, Mixup
from .policy import Policy, build
from .transforms import TRANSFORMS

# The grid's policy: each family on about half the images, so the 18 versions differ visibly.
GRID_POLICY = [{"resized_crop": {"p": 0.5, "min_area": 0.5}}, {"rotate": {"p": 0.5, "degrees": 25}},
               {"flip": {"p": 0.5}}, {"brightness": {"p": 0.4}}, {"contrast": {"p": 0.4}},
               {"saturation": {"p": 0.4}}, {"hue": {"p": 0.4}}, {"greyscale": {"p": 0.15}},
               {"blur": {"p": 0.2}}, {"cutout": {"p": 0.2, "size": None}}]
GREY_SKIP = {"saturation", "hue", "greyscale"}


def show(ax, img: torch.Tensor, title: str = "", fontsize: int = 6) -> None:
    """Draw one (C, H, W) image in [0, 1]."""
    img = img.detach().float().clamp(0, 1).cpu()
    if img.shape[0] == 1:
        ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    else:
        ax.imshow(img.permute(1, 2, 0).numpy(), interpolation="nearest")
    ax.set_title(title, fontsize=fontsize)
    ax.axis("off")


def grid_policy(channels: int, mean=None) -> Policy:
    return build([s for s in GRID_POLICY if next(iter(s)) not in GREY_SKIP or channels == 3], channels=channels,
                 mean=mean)


def grid_images(image: torch.Tensor, n: int = 18, policy: Policy | None = None,
                mean=None) -> tuple[torch.Tensor, list[str]]:
    """The lecture's "1 => n": ``n`` augmented versions (n, C, H, W) of one image (C, H, W) in [0, 1] and what was done
    to each, drawn from torch's global generator (``paradigms augment`` seeds it with ``--seed``). ``policy``: the
    transforms (default :func:`grid_policy`, each family on about half the images); ``mean``: the dataset's mean
    colour, which Cutout fills with (else the image's own). The pictures of :func:`grid_figure` and the lab's panel."""
    policy = policy or grid_policy(image.shape[0], mean)
    batch = image.unsqueeze(0).repeat(n, 1, 1, 1)                         # (n, C, H, W): n copies, each drawn anew
    out, _, labels = policy.trace(batch, torch.zeros(n, dtype=torch.long), 1)  # one class: a mix has no other label
    return out, labels


def grid_columns(n: int) -> int:
    """Columns of the grid of an original and ``n`` versions (7 at most)."""
    return min(7, n + 1)


def grid_figure(image: torch.Tensor, n: int = 18, policy: Policy | None = None, title: str = "", mean=None):
    """One image (C, H, W) in [0, 1] and ``n`` augmented versions, each labelled with what was done.
    ``mean``: the dataset's mean colour, which Cutout fills with (else the image's own)."""
    out, labels = grid_images(image, n, policy, mean)
    cols = grid_columns(n)
    rows = math.ceil((n + 1) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.75, rows * 1.95), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    show(axes.flat[0], image, "original", fontsize=8)
    for ax, img, label in zip(list(axes.flat)[1:], out, labels):
        show(ax, img, wrap(label))
    fig.suptitle(title or f"1 image => {n} training images", fontsize=10)
    fig.tight_layout()
    return fig


def wrap(text: str, width: int = 24) -> str:
    words, lines, line = text.split(", "), [], ""
    for w in words:
        if line and len(line) + len(w) + 2 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line}, {w}" if line else w
    return "\n".join([*lines, line])


def sheet_rows(image: torch.Tensor, partners: torch.Tensor, k: int = 6,
               mean=None) -> list[tuple[str, torch.Tensor, list[str]]]:
    """Each family with fixed, increasing strengths: (row title, k images, their labels)."""
    x = image.unsqueeze(0).repeat(k, 1, 1, 1)
    n, _, h, w = x.shape
    lin = torch.linspace
    T = TRANSFORMS
    rows = [("original", x[:1], [""])]
    f = lin(0.8, 0.15, k)
    rows.append(("low contrast", T["contrast"]().apply(x, {"f": f}), [f"x{v:.2f}" for v in f]))
    rows.append(("low brightness", T["brightness"]().apply(x, {"f": f}), [f"x{v:.2f}" for v in f]))
    if image.shape[0] == 3:
        rows.append(("greyscale", T["greyscale"]().apply(x[:1], {}), [""]))
        hue = lin(-0.4, 0.4, k)
        rows.append(("hue changed", T["hue"]().apply(x, {"h": hue}), [f"{v * 360:+.0f}°" for v in hue]))
    s1, s2 = lin(0.5, 1.2, k), lin(1.5, 3.0, k)
    blur1 = T["blur"](low=0.5, high=1.2)
    blur2 = T["blur"](low=1.5, high=3.0)
    rows.append(("blurred", blur1.apply(x, {"sigma": s1}), [f"σ={v:.1f}" for v in s1]))
    rows.append(("more blurred", blur2.apply(x, {"sigma": s2}), [f"σ={v:.1f}" for v in s2]))
    crop = T["resized_crop"](min_area=0.3)
    p = crop.sample(n, h, w, x.device)
    rows.append(("random crops", crop.apply(x, p), [crop.describe(p, i).replace(", resized", "") for i in range(k)]))
    deg = lin(-40, 40, k)
    rows.append(("rotations", T["rotate"]().apply(x, {"angle": deg}), [f"{v:+.0f}°" for v in deg]))
    sc = lin(0.6, 1.4, k)
    rows.append(("scalings", T["scale"]().apply(x, {"s": sc}), [f"x{v:.2f}" for v in sc]))
    cut = T["cutout"](inside=True).use_mean(mean)
    p = cut.sample(n, h, w, x.device)
    rows.append(("cutout", cut.apply(x, p), [f"{cut.size(w)}x{cut.size(w)}"] * k))
    lam = lin(0.9, 0.4, k)
    mixed = torch.stack([Mixup().apply_mix(torch.stack([image, partners[i % len(partners)]]),
                                           {"lam": lam[i], "perm": torch.tensor([1, 0])})[0][0] for i in range(k)])
    rows.append(("mixup", mixed, [f"λ={v:.2f}" for v in lam]))
    cm = CutMix()
    outs, labels = [], []
    for i in range(k):
        pair = torch.stack([image, partners[i % len(partners)]])
        p = cm.sample(2, h, w, x.device)
        p["perm"] = torch.tensor([1, 0])
        out, kept = cm.apply_mix(pair, p)
        outs.append(out[0])
        labels.append(f"kept {float(kept):.0%}")
    rows.append(("cutmix", torch.stack(outs), labels))
    return rows


def sheet_figure(image: torch.Tensor, partners: torch.Tensor, k: int = 6, mean=None):
    rows = sheet_rows(image, partners, k, mean)
    fig, axes = plt.subplots(len(rows), k + 1, figsize=((k + 1) * 1.3, len(rows) * 1.45), squeeze=False)
    for r, (title, imgs, labels) in enumerate(rows):
        axes[r, 0].text(0.95, 0.5, title, ha="right", va="center", fontsize=9, transform=axes[r, 0].transAxes)
        axes[r, 0].axis("off")
        for c in range(k):
            ax = axes[r, c + 1]
            if c < len(imgs):
                show(ax, imgs[c], labels[c])
            else:
                ax.axis("off")
    fig.suptitle("augmentation, one family per row", fontsize=10)
    fig.tight_layout()
    return fig


def batch_figure(images: torch.Tensor, labels: list[str], n: int = 16):
    """A sample of an augmented training batch (images in [0, 1]) with what was done to each."""
    n = min(n, len(images))
    cols = 8
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 1.9), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, label in zip(axes.flat, images[:n], labels[:n]):
        show(ax, img, wrap(label, 22))
    fig.suptitle("a sample of the augmented training batch", fontsize=10)
    fig.tight_layout()
    return fig
