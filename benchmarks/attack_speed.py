"""Section 4 of `make bench-attacks`: how fast our PGD runs against the ways people run it today.

PGD is the inner loop of adversarial training and robustness evaluation, so its speed decides how
long those take. This measures images/s of L-inf PGD on a small MNIST-sized CNN for our
`paradigms.adversarial.pgd`, the textbook hand-written PyTorch loop (parameters frozen),
torchattacks and IBM ART, in one process on one module object, in interleaved rounds (best round
of each), and the share of the machine's float32 matmul peak each reaches. Every method's output is
checked to lie within eps of the clean images and in [0, 1] before its speed counts.

Usage: python benchmarks/attack_speed.py [--images 256] [--steps 40] [--rounds 3]
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

EPS = 0.3
STEP_SIZE = 0.01
SEED = 0
PLAIN = "plain loop, parameters frozen"
OURS = "paradigms.adversarial.pgd (ours)"
TORCHATTACKS = "torchattacks.PGD"
ART = "ART ProjectedGradientDescent"


def build_model() -> nn.Module:
    """conv(1->32, 3x3) -> ReLU -> conv(32->64, 3x3) -> ReLU -> maxpool 2 -> flatten -> fc(9216->128) -> ReLU
    -> fc(128->10), seeded, in eval mode."""
    torch.manual_seed(SEED)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(),
        nn.Conv2d(32, 64, 3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(9216, 128), nn.ReLU(),
        nn.Linear(128, 10),
    )
    return model.eval()


@contextmanager
def frozen(model: nn.Module):
    """Parameters without gradients for the duration, restored afterwards."""
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)


def plain_pgd(model: nn.Module, x0: torch.Tensor, y: torch.Tensor, eps: float, step_size: float, steps: int) -> torch.Tensor:
    """The textbook loop (the caller freezes the parameters)."""
    x = (x0 + torch.empty_like(x0).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x.requires_grad_(True)
        loss = F.cross_entropy(model(x), y)
        g, = torch.autograd.grad(loss, x)
        x = x.detach() + step_size * g.sign()
        x = torch.min(torch.max(x, x0 - eps), x0 + eps).clamp(0, 1)
    return x


class Method:
    """One way of running PGD: `attack(x, y) -> x_adv` (a tensor), or why it is not available."""

    def __init__(self, name: str, attack=None, error: str | None = None, context=nullcontext):
        self.name, self.attack, self.error, self.context = name, attack, error, context
        self.rates: list[float] = []
        self.adv_loss: float | None = None


def make_methods(model: nn.Module, images: int, steps: int) -> list[Method]:
    methods = [Method(PLAIN, lambda x, y: plain_pgd(model, x, y, EPS, STEP_SIZE, steps), context=lambda: frozen(model))]

    try:
        from paradigms.adversarial import pgd
    except Exception as e:  # noqa: BLE001 - being written; any failure to import means "not available"
        methods.append(Method(OURS, error=f"not available ({type(e).__name__}: {e})"))
    else:
        methods.append(Method(OURS, lambda x, y: pgd(model, x, y, eps=EPS, step_size=STEP_SIZE, steps=steps, norm="linf",
                                                     random_start=True, restarts=1, targeted=False)))

    try:
        import torchattacks
    except Exception as e:  # noqa: BLE001
        methods.append(Method(TORCHATTACKS, error=f"import failed ({type(e).__name__}: {e})"))
    else:
        # Defaults: the model is put in eval mode for the attack (set_model_training_mode(False)) and no
        # normalisation is applied (inputs are [0, 1] pixels), so it runs exactly `steps` steps on our model.
        atk = torchattacks.PGD(model, eps=EPS, alpha=STEP_SIZE, steps=steps, random_start=True)
        methods.append(Method(TORCHATTACKS, lambda x, y: atk(x, y)))

    try:
        from art.attacks.evasion import ProjectedGradientDescent
        from art.estimators.classification import PyTorchClassifier
    except Exception as e:  # noqa: BLE001
        methods.append(Method(ART, error=f"import failed ({type(e).__name__}: {e})"))
    else:
        estimator = PyTorchClassifier(model=model, loss=nn.CrossEntropyLoss(), input_shape=(1, 28, 28), nb_classes=10,
                                      clip_values=(0.0, 1.0))
        # num_random_init=1: one random start, then max_iter steps; targeted=False, random_eps=False
        # (eps fixed at 0.3), decay=None (no momentum). The PyTorch path has no early stopping.
        art_pgd = ProjectedGradientDescent(estimator, norm=np.inf, eps=EPS, eps_step=STEP_SIZE, max_iter=steps,
                                           targeted=False, num_random_init=1, batch_size=images, random_eps=False,
                                           decay=None, verbose=False)

        def run_art(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            # numpy in and out, as an ART user calls it
            return torch.from_numpy(art_pgd.generate(x.numpy(), y.numpy()))

        methods.append(Method(ART, run_art))
    return methods


def check_valid(name: str, x_adv: torch.Tensor, x: torch.Tensor) -> None:
    assert isinstance(x_adv, torch.Tensor), f"{name}: output is a {type(x_adv).__name__}, not a tensor"
    assert x_adv.shape == x.shape, f"{name}: output shape {tuple(x_adv.shape)}, input {tuple(x.shape)}"
    assert torch.isfinite(x_adv).all(), f"{name}: non-finite output"
    dist = (x_adv.detach().float() - x).abs().max().item()
    assert dist <= EPS + 1e-6, f"{name}: L-inf distance {dist} > eps {EPS}"
    assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0, f"{name}: pixels outside [0, 1]"


def run_once(method: Method, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """One timed attack on the batch; checks the output; returns images/s."""
    torch.manual_seed(SEED + 1)
    np.random.seed(SEED + 1)  # ART draws its random start with numpy
    with method.context():
        t = time.perf_counter()
        x_adv = method.attack(x, y)
        seconds = time.perf_counter() - t
    check_valid(method.name, x_adv, x)
    with torch.no_grad():
        method.adv_loss = F.cross_entropy(model(x_adv.detach().float()), y).item()
    model.zero_grad(set_to_none=True)  # ART leaves parameter gradients behind
    return len(x) / seconds


def step_flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """FLOPs of one PGD step on the batch: forward + backward to the input (no parameter gradients)."""
    with frozen(model), FlopCounterMode(display=False) as fc:
        x = x.clone().requires_grad_(True)
        # .backward() rather than autograd.grad (which FlopCounterMode's module hooks reject for a leaf
        # input); with the parameters frozen it computes the same: the gradient to the input only
        F.cross_entropy(model(x), y).backward()
    return float(fc.get_total_flops())


def speed_table(peak_gflops: float, images: int = 256, steps: int = 40, rounds: int = 3) -> tuple[list[str], list[dict]]:
    """Markdown lines of the section and one raw row (a dict) per method."""
    if rounds < 1:
        raise ValueError("rounds must be at least 1")
    model = build_model()
    g = torch.Generator().manual_seed(SEED)
    x = torch.rand(images, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (images,), generator=g)
    flops = step_flops(model, x, y)

    methods = make_methods(model, images, steps)
    ready = [m for m in methods if m.attack is not None]
    for m in ready:  # warm-up
        run_once(m, model, x, y)
    for _ in range(rounds):  # interleaved: each method once per round
        for m in ready:
            m.rates.append(run_once(m, model, x, y))

    best = {m.name: max(m.rates) for m in ready}
    rows = []
    for m in methods:
        rate = best.get(m.name)
        achieved = flops * steps * rate / images / 1e9 if rate else None
        rows.append({
            "method": m.name, "available": rate is not None, "error": m.error,
            "images": images, "steps": steps, "eps": EPS, "step_size": STEP_SIZE, "rounds": rounds,
            "images_per_s": rate, "images_per_s_rounds": m.rates,
            "vs_plain": rate / best[PLAIN] if rate and PLAIN in best else None,
            "vs_torchattacks": rate / best[TORCHATTACKS] if rate and TORCHATTACKS in best else None,
            "gflop_per_step": flops / 1e9, "achieved_gflops": achieved,
            "peak_gflops": peak_gflops, "peak_share": achieved / peak_gflops if achieved else None,
            "adv_loss": m.adv_loss, "torch_threads": torch.get_num_threads(),
        })
    return render(rows, images, steps, rounds, flops, peak_gflops), rows


def ratio(v: float | None) -> str:
    return f"{v:.2f}x" if v is not None else "n/a"


def met(value: float | None, goal: float) -> str:
    if value is None:
        return "n/a"
    return "met" if value >= goal else "NOT met"


def render(rows: list[dict], images: int, steps: int, rounds: int, flops: float, peak: float) -> list[str]:
    lines = [f"### 4. Speed: PGD-{steps} on {images} MNIST-sized images", "",
             f"Command: `make bench-attacks` (this section: `benchmarks/attack_speed.py`, `speed_table(peak, "
             f"images={images}, steps={steps}, rounds={rounds})`).", "",
             "| method | images/s (best of rounds) | vs plain loop (frozen) | vs torchattacks | achieved GFLOP/s | "
             "share of matmul peak |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if not r["available"]:
            lines.append(f"| {r['method']} | {r['error']} | | | | |")
            continue
        lines.append(f"| {r['method']} | {r['images_per_s']:.0f} | {ratio(r['vs_plain'])} | "
                     f"{ratio(r['vs_torchattacks'])} | {r['achieved_gflops']:.1f} | {r['peak_share']:.1%} |")

    ours = next(r for r in rows if r["method"] == OURS)
    if ours["available"]:
        verdict = f"this run: {ratio(ours['vs_plain'])} the frozen loop ({met(ours['vs_plain'], 1.0)}), " \
                  f"{ratio(ours['vs_torchattacks'])} torchattacks ({met(ours['vs_torchattacks'], 1.1)})"
    else:
        verdict = "not measured in this run (our PGD is not available)"
    lines += ["",
              f"Target: ours >= 1.0x the frozen hand-written loop and >= 1.1x torchattacks; {verdict}.", "",
              f"- Setup: L-inf PGD, eps {EPS}, step size {STEP_SIZE}, {steps} steps, one random start, untargeted, on "
              f"{images} random images (1x28x28, pixels in [0, 1]) with random labels, fixed seeds; the network "
              "conv(1->32, 3x3) - ReLU - conv(32->64, 3x3) - ReLU - maxpool 2 - fc(9216->128) - ReLU - fc(128->10), "
              "randomly initialised, eval mode, the same module object for every method.",
              f"- One process, {torch.get_num_threads()} torch threads; each method warmed up once, then {rounds} "
              f"interleaved round{'s' if rounds != 1 else ''} (each method once per round), best round reported. "
              "Every output is checked "
              "(L-inf distance to the clean images <= eps + 1e-6, pixels in [0, 1]) before its time counts.",
              "- The plain loop is the textbook one: parameters frozen (`requires_grad_(False)`, outside the timing), "
              "`torch.autograd.grad` of the cross-entropy to the input, sign step, clip to the eps-ball and [0, 1].",
              "- torchattacks: `torchattacks.PGD(model, eps, alpha, steps, random_start=True)` with its defaults "
              "(it puts the model in eval mode for the call, no normalisation); the same loop as the plain one, "
              "parameters not frozen.",
              f"- ART: `PyTorchClassifier` + `ProjectedGradientDescent(norm=inf, eps={EPS}, eps_step={STEP_SIZE}, "
              f"max_iter={steps}, num_random_init=1, targeted=False, random_eps=False, decay=None, "
              f"batch_size={images})`, which runs exactly max_iter steps (no early stopping). It takes and returns "
              "numpy arrays; that conversion is part of its cost, as its users see it. Per step it calls "
              "`loss.backward()`, so it also computes every parameter's gradient, and after the attack it predicts "
              "the clean and adversarial batches once more for a success-rate log line.",
              f"- FLOPs: one step (forward + backward to the input) on the batch counted by "
              f"`torch.utils.flop_counter.FlopCounterMode`: {flops / 1e9:.2f} GFLOP; achieved GFLOP/s = that x steps / "
              f"time, so work a method does beyond it (ART's parameter gradients) is not counted. Matmul peak: "
              f"{peak:.0f} GFLOP/s (float32)."]
    return lines


def main() -> None:
    from speed import speed_main

    speed_main(__doc__, speed_table, images=256, steps=40, rounds=3)


if __name__ == "__main__":
    main()
