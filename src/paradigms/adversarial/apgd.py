"""APGD: PGD whose step size tunes itself, with the cross-entropy or the DLR loss (Croce & Hein 2020).

Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free
attacks" (ICML), Algorithm 1. On the feasible set S = B_eps(x) n [0, 1]^d, with P_S its projection, a loss f to
raise, d(g) = sign(g) (L-inf) or g / ||g||_2 (L2), N = ``steps`` and the step eta^(0) = 2 eps:

    z^(k+1) = P_S( x^(k) + eta^(k) d(grad f(x^(k))) )
    x^(k+1) = P_S( x^(k) + alpha (z^(k+1) - x^(k)) + (1 - alpha)(x^(k) - x^(k-1)) ),   alpha = 0.75
                                                                                     (the first step: x^(1) = z^(1))

keeping the point of highest loss, x_max with f_max. The step size changes only at the checkpoints
w_j = ceil(p_j N), with

    p_0 = 0,  p_1 = 0.22,  p_(j+1) = p_j + max(p_j - p_(j-1) - 0.03, 0.06)

(N = 100: 0, 22, 41, 57, 70, 80, 87, 93, 99). At w_j the step halves, and the iterate restarts from x_max, when

    1. sum_{i = w_(j-1)}^{w_j - 1} 1[f(x^(i+1)) > f(x^(i))] < rho (w_j - w_(j-1)),   rho = 0.75
       (the loss rose in fewer than 75% of the steps since the last checkpoint), or
    2. eta^(w_(j-1)) = eta^(w_j) and f_max^(w_(j-1)) = f_max^(w_j)
       (the step was not halved at the last checkpoint and the best loss has not moved since).

The DLR loss (difference of logits ratio; pi sorts the logits z in decreasing order) is invariant to shifting and
scaling the logits, so a network cannot hide behind saturated softmax outputs:

    DLR(z, y)    = -(z_y - max_{i != y} z_i) / (z_pi1 - z_pi3 + 1e-12)
    DLR-T(z, y, t) = -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2 + 1e-12)          (targeted, towards class t)

APGD-T (:func:`apgd_targeted`) runs the targeted DLR loss towards each of the ``n_target_classes`` classes the clean
image gives the highest logits after its own, on the images not yet misclassified. An input counts as broken as soon
as the network misclassifies it (argmax != y), targeted or not, as in the reference; otherwise the point of highest
loss is returned. ``restarts`` random starts run one after the other on the inputs not yet broken.

Every random draw is made for the whole batch given (``active`` chooses which inputs to attack), so an input's result
does not depend on which others are attacked with it: AutoAttack runs this on the images still standing and gets what
running it alone would give them. The network is left in the mode it came in; gradients are taken with respect to the
input alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from .attacks import _per_sample_norm, check, chunk_size, evaluating, project

LOSSES = ("ce", "dlr")
ALPHA = 0.75  # momentum
RHO = 0.75  # share of the steps since the last checkpoint in which the loss must have risen


def generator_for(generator: torch.Generator | None, device: torch.device) -> torch.Generator:
    """``generator``, or a new one seeded from torch's global stream (so ``torch.manual_seed`` fixes the attack)."""
    if generator is not None:
        return generator
    seed = int(torch.randint(0, 2 ** 62, (), dtype=torch.int64))
    return torch.Generator(device=device).manual_seed(seed)


def check_count(name: str, value: int, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < least:
        raise UserError(f"{name}={value} is out of range: a whole number >= {least}")
    return int(value)


def active_mask(active: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    if active is None:
        return torch.ones(len(x), dtype=torch.bool, device=x.device)
    if active.shape != (len(x),):
        raise UserError(f"active has shape {tuple(active.shape)}: one flag per input, ({len(x)},)")
    return active.to(device=x.device, dtype=torch.bool)


def checkpoints(steps: int) -> list[int]:
    """The iterations w_j = ceil(p_j N) at which APGD may halve its step, w_0 = 0 first (distinct, up to N)."""
    p, before, out = 0.22, 0.0, [0]
    while p <= 1 + 1e-9:
        w = math.ceil(round(p * steps, 9))  # w_j = ceil(p_j N); rounding keeps 0.41 * 100 at 41, not 42
        if w > out[-1]:
            out.append(w)
        p, before = p + max(p - before - 0.03, 0.06), p  # p_(j+1) = p_j + max(p_j - p_(j-1) - 0.03, 0.06)
    return out


def halve(rose: torch.Tensor, window: int, halved_before: torch.Tensor, best_before: torch.Tensor,
          best: torch.Tensor, rho: float = RHO) -> torch.Tensor:
    """Which inputs halve their step at a checkpoint (the module's conditions 1 and 2).

    ``rose``: in how many of the ``window`` steps since the last checkpoint the loss rose (B,); ``halved_before``: the
    step was halved at the last checkpoint (B,); ``best_before``, ``best``: f_max then and now (B,)."""
    stalled = rose < rho * window  # 1. sum 1[f(x^(i+1)) > f(x^(i))] < rho (w_j - w_(j-1))
    stuck = ~halved_before & (best <= best_before)  # 2. eta and f_max both unchanged since w_(j-1)
    return stalled | stuck


def dlr_loss(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """The DLR loss per input (B,) of ``logits`` (B, K): untargeted, or towards ``target`` (B,) (module docstring)."""
    k = logits.shape[1]
    if k < (4 if target is not None else 3):
        raise UserError(f"the {'targeted ' if target is not None else ''}DLR loss needs at least "
                        f"{4 if target is not None else 3} classes; this network has {k} (use loss='ce')")
    z = logits.sort(dim=1, descending=True).values  # z_pi1 >= z_pi2 >= ... (B, K)
    z_y = logits.gather(1, y[:, None])[:, 0]  # (B,)
    if target is None:
        top_is_y = logits.argmax(1) == y
        other = torch.where(top_is_y, z[:, 1], z[:, 0])  # max_{i != y} z_i
        return -(z_y - other) / (z[:, 0] - z[:, 2] + 1e-12)  # -(z_y - max_{i!=y} z_i) / (z_pi1 - z_pi3)
    z_t = logits.gather(1, target[:, None])[:, 0]
    return -(z_y - z_t) / (z[:, 0] - (z[:, 2] + z[:, 3]) / 2 + 1e-12)  # -(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4)/2)


def objective(logits: torch.Tensor, y: torch.Tensor, loss: str, target: torch.Tensor | None) -> torch.Tensor:
    """The loss APGD raises, per input (B,): CE(z, y), or -CE(z, t) towards a target; DLR or DLR-T."""
    if loss == "dlr":
        return dlr_loss(logits, y, target)
    if target is None:
        return F.cross_entropy(logits, y, reduction="none")
    return -F.cross_entropy(logits, target, reduction="none")


def ranked_target(logits: torch.Tensor, y: torch.Tensor, k: int) -> torch.Tensor:
    """The class with the k-th highest logit after the label's own (k = 1: the runner-up), per input (B,)."""
    others = logits.scatter(1, y[:, None], float("-inf"))  # the label itself is never a target
    return others.sort(dim=1, descending=True).indices[:, k - 1]


def ball_start(x: torch.Tensor, eps: float, norm: str, generator: torch.Generator) -> torch.Tensor:
    """A random start: uniform in the L-inf box, or on the L2 sphere of radius eps (B, ...)."""
    if norm == "linf":
        return (torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) * 2 - 1) * eps
    d = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return d / _per_sample_norm(d) * eps


def apgd(net: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str, loss: str = "ce",
         steps: int = 100, restarts: int = 1, target: torch.Tensor | None = None, *,
         generator: torch.Generator | None = None, active: torch.Tensor | None = None,
         trace: list | None = None) -> torch.Tensor:
    """APGD on images ``x`` (B, ...) in [0, 1] with labels ``y`` (B,): ``loss`` "ce" or "dlr", towards ``target``
    (B,) when given (DLR: the targeted DLR). Returns the adversarial batch (B, ...): a misclassified point where one
    was found, else the point of highest loss; inputs outside ``active`` (B,) bool come back unchanged.

    ``generator`` draws the random starts (default: one seeded from torch's global stream); ``trace``, a list, gets one
    dict per iterate of each chunk and start, k = 0 .. steps (``step`` k, ``loss`` f(x^(k)), ``best`` f_max, ``eta``
    after the checkpoint's decision, ``halved``), for tests and pictures."""
    check(eps, norm, steps=steps)
    restarts = check_count("restarts", restarts)
    steps = check_count("steps", steps)
    if loss not in LOSSES:
        raise UserError(f"unknown APGD loss {loss!r}; valid: {', '.join(LOSSES)}")
    x, y = x.detach(), y.detach()
    active = active_mask(active, x)
    gen = generator_for(generator, x.device)
    starts = [ball_start(x, eps, norm, gen) for _ in range(restarts)]  # drawn for the whole batch first
    adv = x.clone()
    idx = active.nonzero()[:, 0]
    if len(idx) == 0:
        return adv
    with evaluating(net):
        n = chunk_size(net, x[idx])
        for i in range(0, len(idx), n):
            j = idx[i:i + n]
            adv[j] = _apgd(net, x[j], y[j], None if target is None else target[j], [s[j] for s in starts],
                           float(eps), norm, loss, steps, trace)
    return adv


def apgd_targeted(net: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str, steps: int = 100,
                  restarts: int = 1, *, n_target_classes: int = 9, loss: str = "dlr",
                  generator: torch.Generator | None = None, active: torch.Tensor | None = None) -> torch.Tensor:
    """APGD-T: targeted APGD towards each of the ``n_target_classes`` classes with the highest clean logits after
    the label's own (at most K - 1), each run on the inputs no earlier target broke. Returns the adversarial batch."""
    check(eps, norm, steps=steps)
    n_target_classes = check_count("n_target_classes", n_target_classes)
    x, y = x.detach(), y.detach()
    active = active_mask(active, x)
    gen = generator_for(generator, x.device)
    adv = x.clone()
    with evaluating(net), torch.no_grad():
        logits = torch.cat([net(x[i:i + 512]) for i in range(0, len(x), 512)])  # (B, K) clean logits
    standing = active & (logits.argmax(1) == y)  # already misclassified: nothing to do
    for k in range(1, min(n_target_classes, logits.shape[1] - 1) + 1):
        if not standing.any():
            break
        out = apgd(net, x, y, eps, norm, loss, steps, restarts, ranked_target(logits, y, k), generator=gen,
                   active=standing)
        with evaluating(net), torch.no_grad():
            broke = standing.clone()
            broke[standing] = net(out[standing]).argmax(1) != y[standing]
        adv[broke] = out[broke]
        adv[standing & ~broke] = out[standing & ~broke]  # not broken: the last target's point of highest loss
        standing &= ~broke
    return adv


def _apgd(net: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, starts: list[torch.Tensor],
          eps: float, norm: str, loss: str, steps: int, trace: list | None) -> torch.Tensor:
    """APGD on one chunk, one run per start on the inputs no earlier start broke."""
    adv, fooled = x.clone(), torch.zeros(len(x), dtype=torch.bool, device=x.device)
    best_f = torch.full((len(x),), float("-inf"), device=x.device, dtype=x.dtype)
    for start in starts:
        todo = ~fooled
        if not todo.any():
            break
        run_adv, run_fooled, run_f = _run(net, x[todo], y[todo], None if target is None else target[todo],
                                          start[todo], eps, norm, loss, steps, trace)
        # a broken input keeps its misclassified point; a standing one the point of highest loss over the starts
        keep = run_fooled | (run_f > best_f[todo])
        where = todo.nonzero()[:, 0][keep]
        adv[where], best_f[where] = run_adv[keep], run_f[keep]
        fooled[todo] = run_fooled
    return adv


def _run(net: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None, start: torch.Tensor,
         eps: float, norm: str, loss: str, steps: int, trace: list | None
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One APGD run from ``start`` (Algorithm 1): (adversarial or highest-loss points, broken (B,), f_max (B,))."""
    shape = (-1,) + (1,) * (x.ndim - 1)

    def value_and_grad(point: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            point = point.detach().requires_grad_(True)
            logits = net(point)  # (B, K)
            f = objective(logits, y, loss, target)  # (B,)
            (g,) = torch.autograd.grad(f.sum(), point)  # summed: each input's gradient is its own
        return f.detach(), g, logits.detach().argmax(1) != y

    def feasible(point: torch.Tensor) -> torch.Tensor:  # P_S: into the eps-ball, then into [0, 1]
        return (x + project(point - x, eps, norm)).clamp(0, 1)

    def direction(g: torch.Tensor) -> torch.Tensor:  # d(g): sign(g), or g / ||g||_2
        return g.sign() if norm == "linf" else g / _per_sample_norm(g)

    eta = torch.full((len(x),), 2 * eps, device=x.device, dtype=x.dtype)  # eta^(0) = 2 eps
    x_k = feasible(x + start)  # x^(0)
    f_k, g_k, fooled = value_and_grad(x_k)
    adv = x_k.clone()
    x_max, f_max, g_max = x_k, f_k, g_k
    x_prev = x_k
    marks = set(checkpoints(steps)[1:])
    last, rose = 0, torch.zeros(len(x), device=x.device)
    halved_before = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    best_before = f_max.clone()  # f_max^(w_0)
    if trace is not None:
        trace.append({"step": 0, "loss": f_k, "best": f_max.clone(), "eta": eta.clone(), "halved": halved_before})
    for k in range(steps):
        z = feasible(x_k + eta.view(shape) * direction(g_k))  # z^(k+1) = P_S(x^(k) + eta d(grad f(x^(k))))
        if k == 0:
            x_next = z  # x^(1) = z^(1)
        else:  # x^(k+1) = P_S(x^(k) + alpha (z^(k+1) - x^(k)) + (1 - alpha)(x^(k) - x^(k-1)))
            x_next = feasible(x_k + ALPHA * (z - x_k) + (1 - ALPHA) * (x_k - x_prev))
        f_next, g_next, fooled_next = value_and_grad(x_next)
        adv[fooled_next] = x_next[fooled_next]
        fooled |= fooled_next
        rose += (f_next > f_k).to(rose.dtype)  # 1[f(x^(k+1)) > f(x^(k))]
        better = f_next > f_max
        x_max = torch.where(better.view(shape), x_next, x_max)
        g_max = torch.where(better.view(shape), g_next, g_max)
        f_max = torch.where(better, f_next, f_max)
        x_prev, x_k, f_k, g_k = x_k, x_next, f_next, g_next
        halved = torch.zeros_like(halved_before)
        if k + 1 in marks:  # a checkpoint w_j = k + 1
            halved = halve(rose, k + 1 - last, halved_before, best_before, f_max)
            eta = torch.where(halved, eta / 2, eta)  # eta^(k+1) = eta^(k) / 2
            x_k = torch.where(halved.view(shape), x_max, x_k)  # x^(k+1) = x_max
            g_k = torch.where(halved.view(shape), g_max, g_k)
            f_k = torch.where(halved, f_max, f_k)
            last, rose, halved_before, best_before = k + 1, torch.zeros_like(rose), halved, f_max.clone()
        if trace is not None:
            trace.append({"step": k + 1, "loss": f_next, "best": f_max.clone(), "eta": eta.clone(), "halved": halved})
    out = torch.where(fooled.view(shape), adv, x_max)
    return out, fooled, f_max


__all__ = ["LOSSES", "apgd", "apgd_targeted", "checkpoints", "dlr_loss", "halve", "ranked_target"]
