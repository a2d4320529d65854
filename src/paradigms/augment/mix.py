"""Transforms that mix two images and so their labels: the targets become probability vectors.

Mixup (Zhang et al. 2018):   x = lam x_i + (1 - lam) x_j,   y = lam y_i + (1 - lam) y_j,   lam ~ Beta(a, a)
CutMix (Yun et al. 2019):    x = M * x_i + (1 - M) * x_j  for a box M of area (1 - lam) H W,
                             y = lam' y_i + (1 - lam') y_j with lam' the exact kept area.

One lam per batch, partner j = a random permutation of the batch, as in both papers. Every
classification loss in the package takes the soft targets (``F.cross_entropy`` accepts them).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from pydantic import Field

from .transforms import Transform


def soft(y: torch.Tensor, k: int) -> torch.Tensor:
    """Class indices (N,) -> one-hot probabilities (N, k); soft targets pass through."""
    return F.one_hot(y, k).float() if y.ndim == 1 else y


def beta(alpha: float, device) -> torch.Tensor:
    """lam ~ Beta(alpha, alpha), drawn from torch's global generator (Gamma ratio)."""
    a = torch.full((2,), float(alpha), device=device)
    g = torch._standard_gamma(a)
    return g[0] / g.sum()


class Mix(Transform):
    family = "mix"
    label_mixing: ClassVar[bool] = True

    class Config(Transform.Config):
        alpha: float = Field(1.0, gt=0, le=100, description="lam ~ Beta(alpha, alpha)")

    def draw(self, n, h, w, device):
        return {"lam": beta(self.cfg.alpha, device), "perm": torch.randperm(n, device=device)}

    def mix(self, x, y, k: int, params=None):
        """(x, y) -> (mixed x, soft targets) for a batch with ``k`` classes."""
        if params is None:
            params = self.sample(x.shape[0], x.shape[-2], x.shape[-1], x.device)
        if not bool(params["on"].any()) or x.shape[0] < 2:
            return x, soft(y, k)
        x, lam = self.apply_mix(x, params)
        y = soft(y, k)
        return x, lam * y + (1 - lam) * y[params["perm"]]

    def sample(self, n, h, w, device):
        params = self.draw(n, h, w, device)
        params["on"] = (torch.rand(1, device=device) < self.cfg.p).expand(n)  # the whole batch or none
        return params

    def __call__(self, x, params=None):
        return self.apply_mix(x, params or self.sample(x.shape[0], x.shape[-2], x.shape[-1], x.device))[0]

    def describe(self, p, i):
        return f"{self.name} λ={float(p['lam']):.2f} with #{int(p['perm'][i])}" if p["on"][i] else ""


class Mixup(Mix):
    name = "mixup"

    def apply_mix(self, x, p):
        lam = p["lam"]
        return lam * x + (1 - lam) * x[p["perm"]], lam


class CutMix(Mix):
    name = "cutmix"

    def draw(self, n, h, w, device):
        params = super().draw(n, h, w, device)
        r = math.sqrt(1 - float(params["lam"]))
        bh, bw = int(h * r), int(w * r)
        cy, cx = int(torch.randint(0, h, ())), int(torch.randint(0, w, ()))
        y0, y1 = max(cy - bh // 2, 0), min(cy + bh - bh // 2, h)
        x0, x1 = max(cx - bw // 2, 0), min(cx + bw - bw // 2, w)
        params["box"] = torch.tensor([y0, y1, x0, x1])
        return params

    def apply_mix(self, x, p):
        y0, y1, x0, x1 = p["box"].tolist()
        out = x.clone()
        out[..., y0:y1, x0:x1] = x[p["perm"]][..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (x.shape[-2] * x.shape[-1])  # the exact area kept
        return out, torch.tensor(lam, device=x.device, dtype=x.dtype)


MIXES = {"mixup": Mixup, "cutmix": CutMix}
