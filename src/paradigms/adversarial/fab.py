"""FAB-T: the fast adaptive boundary attack, targeted: the smallest perturbation that crosses into another class.

Croce & Hein 2020, "Minimally distorted adversarial examples with a fast adaptive boundary attack" (ICML), in its
targeted form FAB-T as AutoAttack runs it. Around the current point x^(i) the boundary between the label y and the
target t is linearised: with f = z_t - z_y and w = grad_x f(x^(i)), the hyperplane

    pi = { z : f(x^(i)) + <w, z - x^(i)> = 0 }.

proj_p(u) is the point of pi n [0, 1]^d nearest to u in the p-norm (p = inf or 2; when pi misses the box, the
box's corner furthest towards pi). One step moves x^(i) towards pi, pulled back towards the original x_orig:

    delta       = proj_p(x^(i)) - x^(i),         delta_orig = proj_p(x_orig) - x_orig
    alpha       = min( ||delta||_p / (||delta||_p + ||delta_orig||_p), alpha_max ),   alpha_max = 0.1
    x^(i+1)     = clip_[0,1]( (1 - alpha)(x^(i) + eta delta) + alpha (x_orig + eta delta_orig) ),   eta = 1.05

and once x^(i+1) is misclassified it is kept if it is the nearest found so far and then pulled back towards the
original, x^(i+1) <- (1 - beta) x_orig + beta x^(i+1), beta = 0.9, to look for a nearer one.

The projection with the box (the paper's Algorithm 2, solved here by sorting): the least ||delta||_p with
<w, delta> = r and u + delta in [0, 1]^d moves every coordinate towards the plane, delta_i = s_i min(tau v_i, c_i),
s_i = sign(w_i r), c_i its room to the box's wall, v_i = 1 (L-inf) or |w_i| (L2), and tau the least value with
sum_i |w_i| min(tau v_i, c_i) = |r|: a piecewise linear function of tau whose breakpoints tau_i = c_i / v_i are
sorted once.

Minimal norm with the eps bound: an input counts as broken only by a misclassified point within eps of it; the
others come back unchanged. ``target=None`` runs FAB-T towards each of the ``n_target_classes`` classes of highest
clean logit after the label's own, each on the inputs no earlier target broke (AutoAttack's way); restart r > 0
starts at a random point at distance min(eps, best distance) / 2. The network is left in its mode; gradients are
taken with respect to the input alone. Simplified from the reference: no untargeted FAB; an input broken within
eps by one target is not attacked towards the next, so across targets the point is the first found within eps, not
the nearest of all targets (within one target it is the nearest found).
"""

from __future__ import annotations

import torch
from torch import nn

from .apgd import active_mask, check_count, generator_for, ranked_target
from .attacks import check, chunk_size, evaluating

ALPHA_MAX = 0.1
ETA = 1.05  # overshoot past the linearised boundary
BETA = 0.9  # backward step towards the original once misclassified


def size(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """||delta||_p per input (B,)."""
    flat = delta.flatten(1)
    return flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)


def plane_step(u: torch.Tensor, w: torch.Tensor, r: torch.Tensor, norm: str) -> torch.Tensor:
    """delta (B, ...) of least ||delta||_p (p: ``norm``) with <w, delta> = r (B,) and u + delta in [0, 1]; where the
    plane misses the box, every coordinate moved as far as it can towards it."""
    shape = u.shape
    u, w = u.flatten(1), w.flatten(1)  # (B, d)
    s = torch.sign(w) * torch.sign(r)[:, None]  # which way coordinate i moves: s_i = sign(w_i r)
    room = torch.where(s > 0, 1 - u, u) * (s != 0)  # c_i: how far it can go inside [0, 1]
    a = w.abs()
    speed = torch.ones_like(a) if norm == "linf" else a  # v_i: delta_i = s_i min(tau v_i, c_i)
    tau_i = torch.where(a > 0, room / speed.clamp_min(1e-30), torch.zeros_like(a))  # where i reaches its wall
    tau_s, order = tau_i.sort(1)
    gain = (a * room).gather(1, order)  # |w_i| c_i of the coordinates in the order they stop
    rate = (a * speed).gather(1, order)  # |w_i| v_i
    stopped = gain.cumsum(1)  # sum_{j <= k} |w_j| c_j
    moving = rate.flip(1).cumsum(1).flip(1)  # sum_{j >= k} |w_j| v_j
    g = stopped + tau_s * (moving - rate)  # |<w, delta(tau_(k))>| at each breakpoint, non-decreasing
    need = r.abs()[:, None]
    k = (g < need).sum(1, keepdim=True)  # the first breakpoint at which the plane is reached
    meets = k < g.shape[1]
    k = k.clamp(max=g.shape[1] - 1)
    tau = (need - (stopped - gain).gather(1, k)) / moving.gather(1, k).clamp_min(1e-30)  # on the linear piece
    tau = torch.where(meets, tau, tau_s[:, -1:])  # the plane out of reach: all the way
    return (s * torch.minimum(tau * speed, room)).view(shape)


def fab(net: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str, steps: int = 100,
        restarts: int = 1, target: torch.Tensor | None = None, *, n_target_classes: int = 9,
        generator: torch.Generator | None = None, active: torch.Tensor | None = None) -> torch.Tensor:
    """FAB-T on ``x`` (B, ...) in [0, 1] with labels ``y`` (B,), towards ``target`` (B,) or, when None, towards the
    ``n_target_classes`` most likely other classes in turn. Returns the batch with each input broken within eps
    replaced by its nearest misclassified point found; the rest (and inputs outside ``active``) unchanged."""
    check(eps, norm, steps=steps)
    steps = check_count("steps", steps)
    restarts = check_count("restarts", restarts)
    n_target_classes = check_count("n_target_classes", n_target_classes)
    x, y = x.detach(), y.detach()
    active = active_mask(active, x)
    gen = generator_for(generator, x.device)
    adv = x.clone()
    with evaluating(net):
        with torch.no_grad():
            logits = torch.cat([net(x[i:i + 512]) for i in range(0, len(x), 512)])  # (B, K) clean logits
        standing = active & (logits.argmax(1) == y)  # misclassified already: nothing to find
        targets = [target] if target is not None else [
            ranked_target(logits, y, k) for k in range(1, min(n_target_classes, logits.shape[1] - 1) + 1)]
        for t in targets:
            if not standing.any():
                break
            # the restarts' directions, drawn for the whole batch: unit L-inf or L2 norm
            noise = [_unit(x, norm, gen) for _ in range(restarts - 1)]
            idx = standing.nonzero()[:, 0]
            n = chunk_size(net, x[idx])
            for i in range(0, len(idx), n):
                j = idx[i:i + n]
                found, dist = _fab(net, x[j], y[j], t[j], [d[j] for d in noise], float(eps), norm, steps)
                ok = dist <= eps  # the eps bound
                adv[j[ok]] = found[ok]
                standing[j[ok]] = False
    return adv


def _unit(x: torch.Tensor, norm: str, gen: torch.Generator) -> torch.Tensor:
    if norm == "linf":
        d = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype) * 2 - 1
    else:
        d = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return d / size(d, norm).clamp_min(1e-12).view(-1, *[1] * (x.ndim - 1))


def _fab(net: nn.Module, x0: torch.Tensor, y: torch.Tensor, t: torch.Tensor, noise: list[torch.Tensor], eps: float,
         norm: str, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """FAB-T on one chunk: (the nearest misclassified point found, its distance, inf where none) per input."""
    shape = (-1,) + (1,) * (x0.ndim - 1)
    best = x0.clone()
    best_d = torch.full((len(x0),), float("inf"), device=x0.device, dtype=x0.dtype)
    for r in range(1 + len(noise)):
        if r == 0:
            xc = x0
        else:  # a random start at distance min(eps, best distance) / 2
            radius = torch.minimum(best_d, torch.full_like(best_d, eps)) / 2
            xc = (x0 + noise[r - 1] * radius.view(shape)).clamp(0, 1)
        for _ in range(steps):
            with torch.enable_grad():
                point = xc.detach().requires_grad_(True)
                logits = net(point)  # (B, K)
                f = logits.gather(1, t[:, None])[:, 0] - logits.gather(1, y[:, None])[:, 0]  # f = z_t - z_y (B,)
                (w,) = torch.autograd.grad(f.sum(), point)  # w = grad_x f (B, ...)
            f = f.detach()
            d1 = plane_step(xc, w, -f, norm)  # delta = proj(x^(i)) - x^(i)
            offset = (w * (x0 - xc)).flatten(1).sum(1)  # <w, x_orig - x^(i)>
            d2 = plane_step(x0, w, -(f + offset), norm)  # delta_orig = proj(x_orig) - x_orig
            n1, n2 = size(d1, norm), size(d2, norm)
            alpha = (n1 / (n1 + n2).clamp_min(1e-30)).clamp(max=ALPHA_MAX)  # min(|d|/(|d|+|d_orig|), alpha_max)
            a = alpha.view(shape)
            xn = ((1 - a) * (xc + ETA * d1) + a * (x0 + ETA * d2)).clamp(0, 1)  # x^(i+1)
            with torch.no_grad():
                fooled = net(xn).argmax(1) != y
            dist = size(xn - x0, norm)
            nearer = fooled & (dist < best_d)
            best = torch.where(nearer.view(shape), xn, best)
            best_d = torch.where(nearer, dist, best_d)
            xc = torch.where(fooled.view(shape), (1 - BETA) * x0 + BETA * xn, xn)  # the backward step
    return best, best_d


__all__ = ["fab", "plane_step", "size"]
