"""Adversarial examples: FGSM and PGD, on any classifier that takes pixels in [0, 1].

FGSM (Goodfellow, Shlens & Szegedy 2015, "Explaining and harnessing adversarial examples"): one step
along the sign of the loss gradient,

    x' = clip_[0,1]( x + eps * sign(grad_x L(f(x), y)) )          (targeted: x - ..., y the target)

PGD (Madry, Makelov, Schmidt, Tsipras & Vladu 2018, "Towards deep learning models resistant to
adversarial attacks"): many such steps, each projected back into the eps-ball around x,

    x_0 = x + uniform noise in the ball,    x_{t+1} = Proj_{B_eps(x)}( x_t + a * d_t ),
    d_t = sign(g_t) (L-inf)  or  g_t / ||g_t||_2 (L2),   g_t = grad_x L(f(x_t), y)

with ``restarts`` random starts, keeping per input the strongest example (one that fools the model,
then the highest loss). Every attack leaves the model as it found it: it runs in eval mode and puts
each module's train/eval flag back; it takes gradients with respect to the input alone, so the
parameters' ``requires_grad`` and ``.grad`` are never touched. Pixels stay in [0, 1].
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError

NORMS = ("linf", "l2")


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Eval mode inside, every module's own mode restored after.

    The attacks differentiate with respect to the input alone (``torch.autograd.grad``), so no parameter
    gradient is computed or stored and ``requires_grad`` is never touched (freezing the parameters
    first measured no faster here).
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode


def predicted_classes(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The class ``model`` gives each input (N,), the argmax of its logits, in batches, in eval mode, without
    gradients (the model's own mode restored after)."""
    with evaluating(model), torch.no_grad():
        return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def check(eps: float, norm: str = "linf", step_size: float | None = None, steps: int | None = None) -> None:
    if not isinstance(eps, (int, float)) or math.isnan(eps) or eps < 0:
        raise UserError(f"eps={eps} is out of range: the attack's budget must be >= 0 (pixels are in [0, 1], "
                        "e.g. 8/255 or 0.3)")
    if norm not in NORMS:
        raise UserError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
    if step_size is not None and not step_size > 0:
        raise UserError(f"step_size={step_size} is out of range: it must be > 0")
    if steps is not None and (int(steps) != steps or steps < 0):
        raise UserError(f"steps={steps} is out of range: a whole number >= 0")


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor, targeted: bool) -> torch.Tensor:
    """The direction that raises the loss of ``y`` (untargeted) or lowers it (targeted: ``y`` is the target)."""
    with torch.enable_grad():  # also when called inside torch.no_grad(), as evaluation loops are
        x = x.detach().requires_grad_(True)
        loss = F.cross_entropy(model(x), y, reduction="sum")  # summed: each input's gradient is its own
        (g,) = torch.autograd.grad(loss, x)
    return -g if targeted else g


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, targeted: bool = False) -> torch.Tensor:
    """One signed-gradient step of size ``eps`` (L-inf); ``y`` are the labels, or the targets when ``targeted``."""
    check(eps)
    with evaluating(model):
        g = input_gradient(model, x, y, targeted)
        return (x.detach() + eps * g.sign()).clamp(0, 1)  # x' = clip(x + eps sign(grad))


def _per_sample_norm(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (t.ndim - 1))


def project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """The nearest point of the eps-ball: clip each pixel (L-inf), or shrink the whole delta (L2)."""
    if norm == "linf":
        return delta.clamp(-eps, eps)
    return delta * (eps / _per_sample_norm(delta)).clamp(max=1.0)


def random_init(x: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """A uniform draw in the L-inf box, or a random direction at a uniform radius in the L2 ball."""
    if norm == "linf":
        return torch.empty_like(x).uniform_(-eps, eps)
    d = torch.randn_like(x)
    r = torch.rand(x.shape[0], device=x.device, dtype=x.dtype).view(-1, *[1] * (x.ndim - 1))
    return d / _per_sample_norm(d) * r * eps


def cache_bytes() -> int:
    """The CPU's largest cache in bytes, as Linux reports it (16 MiB where the system does not say)."""
    sizes = []
    for f in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        with contextlib.suppress(OSError, ValueError):
            text = f.read_text().strip().upper()  # e.g. "16384K"
            sizes.append(int(text.rstrip("KMG")) << {"K": 10, "M": 20, "G": 30}.get(text[-1:], 0))
    return max(sizes, default=16 << 20)


def chunk_size(model: nn.Module, x: torch.Tensor) -> int:
    """How many inputs to attack at a time: all of them on a GPU; on a CPU, as many (a power of two) as keep
    the network's largest activation within the last-level cache, measured by one forward of one input.

    PGD's inputs are independent (eval mode), so chunking changes no result; it keeps each step's working set
    in cache (on the benchmark's MNIST network, 256 inputs at once ran about 0.8x as fast as 64 at a time).
    """
    if x.device.type != "cpu" or len(x) <= 1:
        return len(x)
    largest = 1

    def measure(_module, _inputs, out):
        nonlocal largest
        if torch.is_tensor(out) and out.ndim > 0:
            largest = max(largest, out[:1].numel() * out.element_size())

    hooks = [m.register_forward_hook(measure) for m in model.modules()]
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        for h in hooks:
            h.remove()
    fits = cache_bytes() // largest
    return max(1, min(len(x), 2 ** int(math.log2(fits)) if fits >= 1 else 1))


def default_step_size(eps: float, steps: int) -> float:
    """PGD's usual step when none is given: 2.5 eps / steps, so the steps can cross the ball and back (Madry et al.)."""
    return 2.5 * eps / steps


def pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, step_size: float, steps: int,
        norm: str = "linf", random_start: bool = True, restarts: int = 1, targeted: bool = False) -> torch.Tensor:
    """Projected gradient descent in the ``norm`` ball of radius ``eps``; ``restarts`` random starts, the
    strongest kept per input. ``y``: the labels, or the targets when ``targeted``."""
    check(eps, norm, step_size, steps)
    if int(restarts) != restarts or restarts < 1:
        raise UserError(f"restarts={restarts} is out of range: a whole number >= 1")
    x = x.detach()
    with evaluating(model):
        # every random start drawn for the whole batch first, so that chunking leaves the random stream alone
        starts = [project(random_init(x, eps, norm), eps, norm) if random_start else torch.zeros_like(x)
                  for _ in range(int(restarts))]
        n = chunk_size(model, x)
        return torch.cat([_pgd(model, x[i:i + n], y[i:i + n], [s[i:i + n] for s in starts], eps, step_size,
                               int(steps), norm, targeted) for i in range(0, len(x), n)])


def _pgd(model: nn.Module, x: torch.Tensor, y: torch.Tensor, starts: list[torch.Tensor], eps: float,
         step_size: float, steps: int, norm: str, targeted: bool) -> torch.Tensor:
    """PGD on one chunk, one run per start; with several starts the strongest example per input."""
    best, best_fooled, best_score = x, None, None
    for start in starts:
        adv = (x + start).clamp(0, 1)
        for _ in range(steps):
            g = input_gradient(model, adv, y, targeted)
            step = g.sign() if norm == "linf" else g / _per_sample_norm(g)
            adv = adv + step_size * step  # x_{t+1} = Proj(x_t + a d_t)
            adv = (x + project(adv - x, eps, norm)).clamp(0, 1)
        if len(starts) == 1:
            return adv
        with torch.no_grad():
            logits = model(adv)
            loss = F.cross_entropy(logits, y, reduction="none")
            score = -loss if targeted else loss
            fooled = logits.argmax(1) == y if targeted else logits.argmax(1) != y
        if best_fooled is None:
            best, best_fooled, best_score = adv, fooled, score
            continue
        better = (fooled & ~best_fooled) | ((fooled == best_fooled) & (score > best_score))
        best = torch.where(better.view(-1, *[1] * (x.ndim - 1)), adv, best)
        best_fooled, best_score = best_fooled | fooled, torch.where(better, score, best_score)
    return best
