"""The generative panels: a GAN's samples for a seed (``paradigms sample RUN --seed S``) and the walk between two
seeds' codes."""

from __future__ import annotations

from pathlib import Path

from .base import NETWORKS, SEEDED, Control, Panel, figures, grid_png, integer, meta


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
    Panel("gan", "GAN samples", ("generator",),
          "The generator's pictures for a seed (each seed draws the codes z ~ N(0, I)), and a walk from one seed's "
          "code to another's: if the pictures change smoothly, the generator has learned a space rather than "
          "memorised images.", gan, input="none",
          controls=(Control("n", "samples", default="16", lo=1, hi=256), Control("seed", "seed", default="0", lo=0),
                    Control("seed_b", "walk to seed", default="1", lo=0),
                    Control("steps", "walk steps", default="8", lo=2, hi=32))),
]
