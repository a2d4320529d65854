"""The Square attack: a random search that needs only the network's scores (Andriushchenko et al. 2020).

Andriushchenko, Croce, Flammarion & Hein 2020, "Square attack: a query-efficient black-box adversarial attack via
random search" (ECCV). No gradient: each query changes the perturbation in one random square window of side s and
keeps the change when it lowers the margin loss

    L(x') = z_y(x') - max_{i != y} z_i(x')                    (the image is broken once L < 0)

The window covers a share p of the image's pixels, s = round(sqrt(p H W)) (at least 1, L2: 3; below the image's
side), and p shrinks with the queries spent: p_init (0.8, AutoAttack's) is halved at the queries 10, 50, 200, 500,
1000, 2000, 4000, 6000 and 8000 of a budget of 10,000, scaled to the ``queries`` given.

L-inf (Algorithm 2): start from vertical stripes, delta_(c, :, w) = +-eps for each channel c and column w; each query
sets the window of each channel c to x + rho_c eps, rho_c uniform in {-1, +1} (clipped to [0, 1]).

L2 (Algorithm 3): start from a grid of tiles, each the pattern eta below with a random sign per channel, scaled to
||delta||_2 = eps. Each query moves the mass of a second window W2 into a first W1, channel by channel:

    eta^(r, c) = sum_{k=0}^{M(r, c)} 1 / (n + 1 - k)^2,   M(r, c) = n - max(|r - r_0|, |c - c_0|)   (one rectangle)
    eta*      = [eta; -eta] / ||.||_2   (two rectangles of opposite signs, randomly transposed)
    nu_W1,i  <- (rho_i eta* + nu_W1,i / ||nu_W1,i||_2) / ||.||_2 * sqrt(||nu_(W1 u W2),i||_2^2 + eps_unused^2 / C),
    nu_W2,i  <- 0,      eps_unused^2 = eps^2 - ||nu||_2^2

so that ||nu||_2 = eps after every step (before the clip to [0, 1]).

Inputs of any shape are read as images (B, C, H, W): (B, D) as (B, 1, 1, D), (B, H, W) as (B, 1, H, W). The init
counts as the first query; an image stops being queried once broken. Every random draw is made for the whole batch
(``active`` chooses which inputs to attack), so an input's search does not depend on which others are attacked with
it. Simplified from the reference: a window whose draw would change nothing takes the opposite signs instead of a new
draw; the L2 init's tiles are not transposed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import UserError
from .apgd import active_mask, check_count, generator_for
from .attacks import _per_sample_norm, check, evaluating, project

HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)  # of 10,000 queries: where p halves


def share(p_init: float, i: int, queries: int) -> float:
    """p at query i of ``queries``: p_init halved at each of HALVINGS (counted on 10,000 queries) passed."""
    at = int(i / queries * 10000)  # the query rescaled to a budget of 10,000
    return p_init / 2 ** sum(at > h for h in HALVINGS)


def side(p: float, h: int, w: int, least: int = 1) -> int:
    """The window's side s = round(sqrt(p H W)), at least ``least`` (L2: 3, room for eta*'s two halves) and below the
    image's shorter side (when it can be)."""
    return min(max(round(math.sqrt(p * h * w)), least), max(min(h, w) - 1, 1))


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L = z_y - max_{i != y} z_i per input (B,): below 0 exactly when another class wins."""
    z_y = logits.gather(1, y[:, None])[:, 0]
    others = logits.scatter(1, y[:, None], float("-inf"))
    return z_y - others.max(1).values


def rectangle(a: int, b: int) -> torch.Tensor:
    """eta on an a x b rectangle: sum_{k=0}^{M} 1 / (n + 1 - k)^2 = sum_{j=d+1}^{n+1} 1 / j^2, d the Chebyshev
    distance from the centre, n the largest d; unit L2 norm (a, b)."""
    if a == 0:
        return torch.zeros(0, b)
    r = (torch.arange(a) - a // 2).abs()
    c = (torch.arange(b) - b // 2).abs()
    d = torch.maximum(r[:, None], c[None, :])  # (a, b)
    n = int(d.max())
    tail = (1.0 / torch.arange(1, n + 2, dtype=torch.float64) ** 2).flip(0).cumsum(0).flip(0)  # tail[d] = sum_{j>d}
    eta = tail[d]
    return (eta / eta.norm()).float()


def pattern(s: int) -> torch.Tensor:
    """eta* on an s x s window: the upper half rows +eta, the lower -eta, unit norm (s, s)."""
    top = s // 2
    eta = torch.cat([rectangle(top, s), -rectangle(s - top, s)])
    return eta / eta.norm()


def windows(top: torch.Tensor, left: torch.Tensor, s: int, h: int, w: int) -> torch.Tensor:
    """Masks of the s x s windows at (top, left) (B,), as (B, 1, H, W) bool."""
    rows = torch.arange(h, device=top.device)
    cols = torch.arange(w, device=top.device)
    in_r = (rows[None] >= top[:, None]) & (rows[None] < top[:, None] + s)  # (B, H)
    in_c = (cols[None] >= left[:, None]) & (cols[None] < left[:, None] + s)  # (B, W)
    return (in_r[:, :, None] & in_c[:, None, :])[:, None]


def square(net: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str, queries: int = 5000, *,
           p_init: float = 0.8, generator: torch.Generator | None = None,
           active: torch.Tensor | None = None) -> torch.Tensor:
    """The Square attack on ``x`` (B, ...) in [0, 1] with labels ``y`` (B,), at most ``queries`` forward passes per
    input. Returns the adversarial batch: a misclassified point where one was found, else the lowest margin found;
    inputs outside ``active`` (B,) bool come back unchanged."""
    check(eps, norm)
    queries = check_count("queries", queries)
    if not 0 < p_init <= 1:
        raise UserError(f"p_init={p_init} is out of range: a share of the pixels in (0, 1]")
    x, y = x.detach(), y.detach()
    active = active_mask(active, x)
    if x.ndim not in (2, 3, 4):
        raise UserError(f"Square attacks images (B, C, H, W), (B, H, W) or vectors (B, D); got {tuple(x.shape)}")
    img = x.reshape(len(x), 1, 1, -1) if x.ndim == 2 else x.reshape(len(x), 1, *x.shape[1:]) if x.ndim == 3 else x
    b, c, h, w = img.shape
    gen = generator_for(generator, x.device)
    eps = float(eps)

    def draw(*shape: int) -> torch.Tensor:  # uniform [0, 1) for the whole batch
        return torch.rand(shape, generator=gen, device=x.device, dtype=x.dtype)

    def place(n: int, s: int) -> torch.Tensor:  # a window's corner, for the whole batch
        return torch.randint(0, n - s + 1, (b,), generator=gen, device=x.device)

    def loss(points: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        return margin(net(points.reshape(-1, *x.shape[1:])), y[which])

    with evaluating(net), torch.no_grad():
        if norm == "linf":
            stripes = torch.where(draw(b, c, 1, w) < 0.5, -eps, eps)  # delta_(c, :, w) = +-eps
            cur = (img + stripes).clamp(0, 1)
        else:
            cur = (img + _l2_start(img, eps, draw)).clamp(0, 1)
        cur = torch.where(active.view(-1, 1, 1, 1), cur, img)
        best = torch.full((b,), float("inf"), device=x.device, dtype=x.dtype)
        idx = active.nonzero()[:, 0]
        if len(idx):
            best[idx] = loss(cur[idx], idx)
        for i in range(1, queries):
            s = side(share(p_init, i, queries), h, w, 1 if norm == "linf" else 3)
            if norm == "linf":
                top, left, signs = place(h, s), place(w, s), torch.where(draw(b, c) < 0.5, -1.0, 1.0)
            else:
                top, left, top2, left2 = place(h, s), place(w, s), place(h, s), place(w, s)
                signs, flip = torch.where(draw(b, c) < 0.5, -1.0, 1.0), draw(b) < 0.5
            idx = (active & (best > 0)).nonzero()[:, 0]  # the inputs still standing
            if len(idx) == 0:
                break
            if norm == "linf":
                cand = _linf_step(img[idx], cur[idx], eps, windows(top[idx], left[idx], s, h, w), signs[idx])
            else:
                cand = _l2_step(img[idx], cur[idx], eps, windows(top[idx], left[idx], s, h, w),
                                windows(top2[idx], left2[idx], s, h, w), top[idx], left[idx], s, signs[idx],
                                flip[idx])
            new = loss(cand, idx)
            better = new < best[idx]  # keep the change when it lowers the margin
            cur[idx[better]], best[idx[better]] = cand[better], new[better]
    return cur.reshape(x.shape)


def _linf_step(x: torch.Tensor, cur: torch.Tensor, eps: float, win: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """The window of each channel set to x + rho_c eps (clipped); opposite signs where that changes nothing."""
    shape = signs.shape + (1, 1)

    def put(rho: torch.Tensor) -> torch.Tensor:
        return torch.where(win, (x + eps * rho.view(shape)).clamp(0, 1), cur)

    cand = put(signs)
    same = (cand - cur).abs().flatten(1).amax(1) < 1e-7  # the draw would cost a query and change nothing
    if same.any():
        cand[same] = put(-signs)[same]
    return cand


def _l2_start(img: torch.Tensor, eps: float, draw) -> torch.Tensor:
    """Tiles of side max(H // 5, 1), each eta* with a random sign per channel, scaled to ||delta||_2 = eps."""
    b, c, h, w = img.shape
    t = max(h // 5, 1) if h > 1 else max(w // 5, 1)
    t = min(t, h, w)
    nh, nw = h // t, w // t
    signs = torch.where(draw(b, c, nh, nw) < 0.5, -1.0, 1.0)
    tile = pattern(t).to(img)  # (t, t)
    delta = torch.zeros_like(img)
    delta[:, :, :nh * t, :nw * t] = (signs.repeat_interleave(t, 2).repeat_interleave(t, 3)
                                     * tile.repeat(nh, nw))  # (B, C, nh t, nw t)
    return delta / _per_sample_norm(delta) * eps


def _l2_step(x: torch.Tensor, cur: torch.Tensor, eps: float, w1: torch.Tensor, w2: torch.Tensor, top: torch.Tensor,
             left: torch.Tensor, s: int, signs: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Algorithm 3: the mass of W1 and W2 moved into W1, shaped by rho eta*, channel by channel (B, C, H, W)."""
    n, c, h, w = x.shape
    eta = pattern(s).to(x)
    table = torch.stack([eta, eta.t()])  # (2, s, s): eta* or its transpose
    r = (torch.arange(h, device=x.device)[None] - top[:, None]).clamp(0, s - 1)  # (n, H) row within W1
    q = (torch.arange(w, device=x.device)[None] - left[:, None]).clamp(0, s - 1)  # (n, W)
    placed = table[flip.long()[:, None, None], r[:, :, None], q[:, None, :]][:, None] * w1  # (n, 1, H, W)
    nu = cur - x  # (n, C, H, W)
    sq = (nu ** 2).flatten(1).sum(1)
    unused = (eps ** 2 - sq).clamp_min(0)  # eps_unused^2 = eps^2 - ||nu||^2   (n,)

    def channel_norm(t: torch.Tensor) -> torch.Tensor:  # ||t_i||_2 per channel (n, C, 1, 1)
        return t.pow(2).sum((2, 3), keepdim=True).sqrt()

    nu_w1 = nu * w1
    temp = signs[:, :, None, None] * placed + nu_w1 / channel_norm(nu_w1).clamp_min(1e-12)  # rho eta* + nu_W1/||.||
    both = w1 | w2
    avail = (channel_norm(nu * both) ** 2 + unused.view(-1, 1, 1, 1) / c).sqrt()  # sqrt(||nu_(W1uW2)||^2 + unused/C)
    new = nu * ~both + temp / channel_norm(temp).clamp_min(1e-12) * avail  # nu_W2 <- 0, nu_W1 <- temp/||temp|| avail
    return (x + project(new, eps, "l2")).clamp(0, 1)


__all__ = ["margin", "pattern", "share", "side", "square"]
