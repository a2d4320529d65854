"""Sanity checks of a robustness evaluation, after Carlini, Athalye, Papernot, Brendel, Rauber, Tsipras, Goodfellow,
Madry & Kurakin 2019, "On evaluating adversarial robustness" (arXiv:1902.06705).

A defence can look robust because its gradient is useless to the attacker -- zero, or noise (a step function or a
rounding inside the network, randomness, saturated or exploding values) -- rather than because adversarial examples
are absent: gradient masking (Papernot et al. 2017; Athalye, Carlini & Wagner 2018). The paper's checklist tells the
two apart from outside the network. Three of its checks, each run on the images evaluated:

1. ``large eps``: accuracy falls to ~0 as eps grows large. PGD at eps, 2 eps, 4 eps and the budget that holds every
   image (L-inf: 1; L2: sqrt(C H W)). An attacker with that budget may draw any image at all, so accuracy left there
   (the images no attack of the sweep broke: an example of a smaller ball lies in the larger one) means the attack
   fails, not that the network resists; nor may the accuracy of one budget's attack rise with eps beyond noise.
2. ``more effort``: more PGD steps (4x as many) or random restarts never raise accuracy beyond noise. An attack made
   stronger that does worse has not converged: its step size or its gradient misleads it.
3. ``black box``: the Square attack (Andriushchenko et al. 2020), which reads only the network's scores, never leaves
   a lower accuracy than the white-box attacks (every PGD above and APGD-CE, worst case per image) by more than
   noise. When a gradient-free attack wins, the gradient is what failed.

Noise, between two attacks on the same ``n`` images: two standard errors of their paired difference (McNemar's) and
one image, ``(2 sqrt(d) + 1) / n``, ``d`` the images on which one attack breaks and the other does not: their accuracies
differ by at most that by chance. Accuracy ~0 is at most ``max(1%, 1 / n)``. A failed check is a warning that the
defence may be masking gradients, not a proof; passed checks prove no robustness either (the paper's other checks,
adaptive attacks above all, still apply).

    from paradigms.adversarial.checks import sanity_checks
    for name, passed, detail in sanity_checks(net, x, y, 0.3, "linf", steps=40):
        print(name, "passed" if passed else "FAILED", detail)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..errors import UserError
from .apgd import apgd, check_count
from .attacks import check, default_step_size, evaluating, pgd, predicted_classes
from .square import square

WARNING = "the defence may be masking gradients (Carlini et al. 2019): its robust accuracy is not to be trusted"


class Check(NamedTuple):
    """One check's verdict: its name, whether it passed, and the numbers it read, in words."""

    name: str
    passed: bool
    detail: str


def noise(a: torch.Tensor, b: torch.Tensor) -> float:
    """How far the accuracies of two attacks on the same images differ by chance, from which images each leaves right
    (``a``, ``b``: (N,) bool): two standard errors of the paired difference and one image, (2 sqrt(d) + 1) / N, ``d``
    the images on which they disagree (McNemar)."""
    n = max(len(a), 1)
    return (2 * math.sqrt(int((a != b).sum())) + 1) / n


def near_zero(n: int) -> float:
    """The largest accuracy that counts as ~0 on ``n`` images: 1%, or one image when there are fewer than 100."""
    return max(0.01, 1 / max(n, 1))


def budgets(eps: float, bound: float) -> list[float]:
    """eps, 2 eps, 4 eps (those below ``bound``) and ``bound``, the budget that holds every image."""
    return sorted({e for e in (eps, 2 * eps, 4 * eps) if e < bound} | {bound})


def whole_space(norm: str, x: torch.Tensor) -> float:
    """The budget that reaches every image of [0, 1]^(C H W) from any other: L-inf 1, L2 sqrt(C H W)."""
    return 1.0 if norm == "linf" else math.sqrt(x[0].numel())


def sanity_checks(net, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str = "linf", steps: int = 40,
                  restarts: int = 5, queries: int = 5000, seed: int = 0) -> list[Check]:
    """The three checks of the module's docstring on images ``x`` (N, C, H, W) in [0, 1] with labels ``y``, at budget
    ``eps`` in ``norm``: PGD of ``steps`` steps (step 2.5 eps / steps, one random start), of 4x the steps and with
    ``restarts`` starts; APGD-CE of ``steps`` iterations; Square with ``queries`` queries. The attacks draw from
    their own random stream seeded with ``seed`` (the caller's is left alone); the network is left in its mode.
    Returns ``[Check(name, passed, detail), ...]`` for ``large eps``, ``more effort`` and ``black box``."""
    check(eps, norm)
    steps, queries = check_count("steps", steps), check_count("queries", queries)
    if int(restarts) != restarts or restarts < 2:
        raise UserError(f"restarts={restarts} is out of range: the check compares one start with several, >= 2")
    if len(x) == 0:
        raise UserError("no images to check: the evaluation set is empty")
    n, x, y = len(x), x.detach(), y.detach()

    def correct(adv: torch.Tensor) -> torch.Tensor:
        return predicted_classes(net, adv) == y

    def pgd_at(e: float, k: int, starts: int = 1) -> torch.Tensor:
        return correct(pgd(net, x, y, e, default_step_size(e, k) if e > 0 else 1.0, k, norm=norm, restarts=starts))

    def acc(right: torch.Tensor) -> float:
        return int(right.sum()) / n

    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []), evaluating(net):
        torch.manual_seed(seed)
        # 1. large eps: accuracy against the budget, up to the whole space
        sweep = budgets(eps, whole_space(norm, x))
        right = {e: pgd_at(e, steps) for e in sweep}
        accs = [acc(right[e]) for e in sweep]
        rises = [(acc(right[s]), acc(right[e]), e) for s, e in zip(sweep, sweep[1:])
                 if acc(right[e]) > acc(right[s]) + noise(right[s], right[e])]
        # what is left in the whole space: an example found in a smaller ball lies in the larger one too
        last = acc(torch.stack([right[e] for e in sweep]).all(0))
        shown = ", ".join(f"{a:.1%} at {e:.4g}" for a, e in zip(accs, sweep))
        if last > near_zero(n):
            why = (f"at eps {sweep[-1]:.4g}, where any image may be drawn, {last:.1%} are still classified right "
                   f"by every one of these attacks (~0 is at most {near_zero(n):.1%})")
        elif rises:
            a, b, e = rises[0]
            why = f"accuracy rises from {a:.1%} to {b:.1%} at eps {e:.4g}, beyond noise"
        else:
            why = "falls to ~0 and never rises"
        checks = [Check("large eps", last <= near_zero(n) and not rises, f"PGD-{steps} accuracy {shown}: {why}")]

        # 2. more effort: 4x the steps, or several random starts, never raise accuracy beyond noise
        base = right[eps] if eps in right else pgd_at(eps, steps)
        longer, restarted = pgd_at(eps, 4 * steps), pgd_at(eps, steps, restarts)
        a0 = acc(base)
        worse = [f"{name} leaves {acc(r):.1%} (noise {noise(base, r):.1%})"
                 for name, r in ((f"PGD-{4 * steps}", longer), (f"PGD-{steps} x {restarts} restarts", restarted))
                 if acc(r) > a0 + noise(base, r)]
        checks.append(Check("more effort", not worse,
                            f"at eps {eps:.4g} PGD-{steps} leaves {a0:.1%}, PGD-{4 * steps} {acc(longer):.1%}, "
                            f"PGD-{steps} x {restarts} restarts {acc(restarted):.1%}"
                            + (f": {'; '.join(worse)}, more than PGD-{steps}" if worse else
                               ": none more, beyond noise")))

        # 3. black box: Square never beats the white-box attacks (worst case per image) by more than noise
        ce = correct(apgd(net, x, y, eps, norm, loss="ce", steps=steps))
        white = base & longer & restarted & ce
        blind = correct(square(net, x, y, eps, norm, queries=queries))
        w, b, tol = acc(white), acc(blind), noise(white, blind)
        only = int((~blind & white).sum())
        checks.append(Check("black box", b >= w - tol,
                            f"at eps {eps:.4g} Square ({queries:,} queries) leaves {b:.1%}, the white-box attacks "
                            f"(PGD-{steps}, PGD-{4 * steps}, PGD-{steps} x {restarts}, APGD-CE, worst case per image) "
                            f"{w:.1%} (noise {tol:.1%}); Square alone broke {only} of {n} images"))
    return checks


__all__ = ["Check", "WARNING", "budgets", "near_zero", "noise", "sanity_checks", "whole_space"]
