"""AutoAttack: the robust accuracy the field reports, the worst case per image over four diverse attacks.

Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free
attacks" (ICML). The standard version runs, in this order, each on the images still classified right:

    1. APGD-CE  (:func:`.apgd.apgd`, cross-entropy, 100 iterations, 1 start)
    2. APGD-T   (:func:`.apgd.apgd_targeted`, targeted DLR, 100 iterations, towards 9 target classes)
    3. FAB-T    (:func:`.fab.fab`, 100 iterations, towards 9 target classes)
    4. Square   (:func:`.square.square`, 5,000 queries, p_init = 0.8)

    robust accuracy = (1/n) sum_i 1[ f(x_i) = y_i  and  f(A(x_i)) = y_i for every attack A ]

An image one attack breaks is not attacked again, so the ensemble costs little more than its first attack on an
undefended network, and the figure is a worst case per image: never above any attack's alone (each attack draws its
random numbers for the whole batch, so it treats an image the same whichever others are still standing). With fewer
than 10 classes the targeted attacks take the K - 1 other classes; with fewer than 4 APGD-T uses the targeted
cross-entropy, the targeted DLR loss needing 4 logits.

Only ``version="standard"`` is implemented (not the reference's "plus" or "rand").
"""

from __future__ import annotations

import time

import torch
from torch import nn

from ..errors import UserError
from .apgd import apgd, apgd_targeted, check_count
from .attacks import check, evaluating, predicted_classes
from .fab import fab
from .square import square

VERSIONS = ("standard",)
ATTACKS = ("apgd-ce", "apgd-t", "fab-t", "square")


def autoattack(net: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, norm: str, version: str = "standard", *,
               steps: int = 100, queries: int = 5000, n_target_classes: int = 9, seed: int = 0
               ) -> tuple[torch.Tensor, dict]:
    """AutoAttack on images ``x`` (N, ...) in [0, 1] with labels ``y`` (N,), budget ``eps`` in ``norm``.

    ``steps``: APGD's and FAB's iterations, ``queries``: Square's (the reference's 100 and 5,000 by default);
    ``n_target_classes``: APGD-T's and FAB-T's targets; ``seed``: each attack's random stream (the caller's own is
    left alone). Returns the adversarial images (N, ...) (an image no attack broke comes back unchanged) and a record:

        {"version", "norm", "eps", "n", "clean_acc", "robust_acc", "seconds",
         "rows": [{"attack": "apgd-ce" | "apgd-t" | "fab-t" | "square", "robust_acc": after it,
                   "broken": images it broke, "seconds": its time}, ...]}
    """
    check(eps, norm, steps=steps)
    if version not in VERSIONS:
        raise UserError(f"unknown AutoAttack version {version!r}; valid: {', '.join(VERSIONS)}")
    steps = check_count("steps", steps)
    queries = check_count("queries", queries)
    n_target_classes = check_count("n_target_classes", n_target_classes)
    if len(x) != len(y):
        raise UserError(f"{len(x)} images but {len(y)} labels: one label per image")
    x, y = x.detach(), y.detach()
    start = time.perf_counter()

    def predict(points: torch.Tensor) -> torch.Tensor:
        return predicted_classes(net, points)

    with evaluating(net), torch.no_grad():
        classes = net(x[:1]).shape[1] if len(x) else 10
    targeted_loss = "dlr" if classes >= 4 else "ce"
    runs = {
        "apgd-ce": lambda standing, gen: apgd(net, x, y, eps, norm, "ce", steps, 1, generator=gen, active=standing),
        "apgd-t": lambda standing, gen: apgd_targeted(net, x, y, eps, norm, steps, 1, loss=targeted_loss,
                                                      n_target_classes=n_target_classes, generator=gen,
                                                      active=standing),
        "fab-t": lambda standing, gen: fab(net, x, y, eps, norm, steps, 1, n_target_classes=n_target_classes,
                                           generator=gen, active=standing),
        "square": lambda standing, gen: square(net, x, y, eps, norm, queries, generator=gen, active=standing),
    }
    adv = x.clone()
    standing = predict(x) == y if len(x) else torch.zeros(0, dtype=torch.bool, device=x.device)
    n = max(len(x), 1)
    record = {"version": version, "norm": norm, "eps": float(eps), "n": len(x),
              "clean_acc": float(standing.sum()) / n, "rows": []}
    for name in ATTACKS:
        began, broken = time.perf_counter(), 0
        if standing.any():
            gen = torch.Generator(device=x.device).manual_seed(seed)  # the same stream as the attack run alone
            out = runs[name](standing.clone(), gen)
            idx = standing.nonzero()[:, 0]
            fooled = idx[predict(out[idx]) != y[idx]]
            adv[fooled] = out[fooled]
            standing[fooled] = False
            broken = len(fooled)
        record["rows"].append({"attack": name, "robust_acc": float(standing.sum()) / n, "broken": broken,
                               "seconds": time.perf_counter() - began})
    record["robust_acc"] = float(standing.sum()) / n
    record["seconds"] = time.perf_counter() - start
    return adv, record


__all__ = ["ATTACKS", "VERSIONS", "apgd", "apgd_targeted", "autoattack", "fab", "square"]
