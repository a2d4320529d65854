"""Speed of randomized-smoothing certification: ours against a straightforward implementation and IBM ART.

One process, the same base network object (LeNet-5 on 28x28 images, as ``paradigms.load`` gives it on a
CPU: eval mode, channels_last), the same images, sigma, n0, n, alpha and forward batch size for all:

- ours: ``paradigms.adversarial.smoothing.Smooth.certify_many``;
- straightforward: the paper's CERTIFY as one writes it from the paper (Cohen et al.'s own code does so):
  per image, n0 then n noisy copies in batches of ``batch`` (the image repeated, plus noise), inference
  mode, argmax, class counts, the Clopper-Pearson bound;
- ART 1.20.1: ``PyTorchRandomizedSmoothing(sample_size=n0, scale=sigma, alpha=alpha).certify(x, n, batch_size)``
  (numpy in and out, as its users call it).

Each method warmed up on one image, then ``rounds`` interleaved rounds; certified images per second,
best round. The forward passes' FLOPs (counted once by ``torch.utils.flop_counter``) give the share of the
matmul peak. Usage: ``python benchmarks/smoothing_speed.py [--images 8 --n 10000]``.
"""

from __future__ import annotations

import time

import torch
from scipy.stats import beta, norm

from paradigms.adversarial.smoothing import Smooth
from paradigms.nets import LeNet5

OURS, PLAIN, ART = "paradigms Smooth.certify_many (ours)", "straightforward (the paper's CERTIFY)", "ART PyTorchRandomizedSmoothing"
SIGMA, ALPHA, N0, BATCH = 0.5, 0.001, 100, 1000


def base_network() -> torch.nn.Module:
    torch.manual_seed(0)
    net = LeNet5((1, 28, 28), 10, width=1).eval()
    return net.to(memory_format=torch.channels_last)


@torch.inference_mode()
def plain_counts(model, x, num: int, batch: int) -> torch.Tensor:
    counts = torch.zeros(10, dtype=torch.long)
    left = num
    while left > 0:
        b = min(batch, left)
        copies = x.unsqueeze(0).repeat(b, 1, 1, 1)
        pred = model(copies + torch.randn_like(copies) * SIGMA).argmax(1)
        counts += torch.bincount(pred, minlength=10)
        left -= b
    return counts


def plain_certify(model, xs, n: int) -> list[tuple[int, float]]:
    out = []
    for x in xs:
        c_a = int(plain_counts(model, x, N0, BATCH).argmax())
        n_a = int(plain_counts(model, x, n, BATCH)[c_a])
        p_a = beta.ppf(ALPHA, n_a, n - n_a + 1) if n_a > 0 else 0.0
        out.append((c_a, SIGMA * norm.ppf(p_a)) if p_a > 0.5 else (-1, 0.0))
    return out


def methods(model, n: int) -> dict:
    out = {OURS: lambda xs: Smooth(model, 10, SIGMA).certify_many(xs, N0, n, ALPHA, BATCH),
           PLAIN: lambda xs: plain_certify(model, xs, n)}
    try:
        from art.estimators.certification.randomized_smoothing import PyTorchRandomizedSmoothing
    except ImportError as e:
        print(f"ART not installed ({e}); pip install -e '.[bench]'", flush=True)
        return out
    art = PyTorchRandomizedSmoothing(model=model, loss=torch.nn.CrossEntropyLoss(), input_shape=(1, 28, 28),
                                     nb_classes=10, device_type="cpu", sample_size=N0, scale=SIGMA, alpha=ALPHA)

    def run_art(xs):
        pred, radius = art.certify(xs.numpy(), n=n, batch_size=BATCH)
        return list(zip(pred.tolist(), radius.tolist()))

    out[ART] = run_art
    return out


def forward_flops(model) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(torch.rand(1, 1, 28, 28).contiguous(memory_format=torch.channels_last))
    return float(counter.get_total_flops())


def speed_table(peak_gflops: float, images: int = 8, n: int = 10_000, rounds: int = 3) -> tuple[list[str], list[dict]]:
    torch.set_num_threads(torch.get_num_threads())
    model = base_network()
    torch.manual_seed(1)
    xs = torch.rand(images, 1, 28, 28)
    fns = methods(model, n)
    for fn in fns.values():  # warm-up
        fn(xs[:1])
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            torch.manual_seed(2)
            t = time.perf_counter()
            result = fn(xs)
            times[name].append(time.perf_counter() - t)
            assert len(result) == images and all(c == -1 or 0 <= c < 10 for c, _ in result), name
    flops = forward_flops(model) * (N0 + n) * images
    rows = []
    for name, ts in times.items():
        best = min(ts)
        rows.append({"method": name, "images_per_s": images / best, "rounds_s": [round(t, 2) for t in ts],
                     "gflops": flops / best / 1e9, "peak_share": flops / best / 1e9 / peak_gflops})
    plain = next(r["images_per_s"] for r in rows if r["method"] == PLAIN)
    art = next((r["images_per_s"] for r in rows if r["method"] == ART), None)
    ours = next(r["images_per_s"] for r in rows if r["method"] == OURS)
    lines = ["| method | certified images/s (best of rounds) | vs straightforward | vs ART | achieved GFLOP/s | "
             "share of matmul peak |", "|---|---|---|---|---|---|"]
    for r in rows:
        vs_art = f"{r['images_per_s'] / art:.2f}x" if art else "n/a"
        lines.append(f"| {r['method']} | {r['images_per_s']:.3f} | {r['images_per_s'] / plain:.2f}x | {vs_art} | "
                     f"{r['gflops']:.1f} | {r['peak_share']:.1%} |")
    art_goal = "ART not installed" if art is None else f"{ours / art:.2f}x ART ({'met' if ours / art >= 1.2 else 'NOT met'})"
    lines += ["", f"Target: ours >= 1.2x ART and >= 1.0x the straightforward one; this run: {art_goal}, "
              f"{ours / plain:.2f}x the straightforward one ({'met' if ours / plain >= 1.0 else 'NOT met'}).", "",
              f"- Setup: {images} random 1x28x28 images, sigma {SIGMA}, n0 {N0}, n {n:,}, alpha {ALPHA}, forward batch "
              f"{BATCH}; base network LeNet-5 (6-16 channels, 120-84, batch norm), eval mode, channels_last (as "
              f"`paradigms.load` gives a convolutional network on a CPU), the same module object for every method; "
              f"{torch.get_num_threads()} torch threads; warmed up on one image, then {rounds} interleaved rounds, best "
              f"round reported.",
              f"- FLOPs: the base network's forward passes alone, {forward_flops(model) / 1e6:.2f} MFLOP per image x "
              f"(n0 + n) per certified image; matmul peak {peak_gflops:.0f} GFLOP/s (float32). Noise, copies and "
              f"counting are not counted: their cost lowers the share.",
              "- Where ours gains: on a CPU its forward batches are no larger than keep the network's largest "
              "activation in the last-level cache (`attacks.chunk_size`), it runs a copy of the network with each batch norm folded into its convolution (`smoothing.inference_copy`, torch.fx), and the noise is added in place; ART draws "
              "all n noisy copies of an image at once in numpy (n x 784 floats), then predicts them in batches."]
    return lines, rows


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from speed import speed_main

    speed_main(__doc__, speed_table, images=8, n=10_000, rounds=3)


if __name__ == "__main__":
    main()
