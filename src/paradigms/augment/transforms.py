"""The transforms: batched, random per sample, on images (N, C, H, W) with values in [0, 1].

Each transform draws its parameters for the whole batch at once from torch's global generator (which
the engine seeds and checkpoints), then applies them in one batched call, mostly kornia's
differentiable functional ops. ``sample`` and ``apply`` are separate so a figure can say exactly
what was done to each image (``describe``). Every transform has a probability ``p`` of touching an
image.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import kornia
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator

Params = dict[str, torch.Tensor]


def uniform(n: int, lo: float, hi: float, device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, device=device)


class Transform:
    """Base class: ``Config`` (the validated parameters), ``draw`` (random values), ``apply``."""

    name: ClassVar[str]
    family: ClassVar[str]  # geometry | colour | erase | noise
    colour_only: ClassVar[bool] = False

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        p: float = Field(1.0, ge=0, le=1, description="probability of transforming an image")

    def __init__(self, **params):
        self.cfg = self.Config(**params)

    def sample(self, n: int, h: int, w: int, device) -> Params:
        params = self.draw(n, h, w, device)
        params["on"] = torch.rand(n, device=device) < self.cfg.p
        return params

    def draw(self, n: int, h: int, w: int, device) -> Params:
        return {}

    def apply(self, x: torch.Tensor, params: Params) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, params: Params | None = None) -> torch.Tensor:
        if params is None:
            params = self.sample(x.shape[0], x.shape[-2], x.shape[-1], x.device)
        on = params["on"].view(-1, 1, 1, 1)
        return torch.where(on, self.apply(x, params), x)

    def describe(self, params: Params, i: int) -> str:
        return self.name if bool(params["on"][i]) else ""

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.cfg.model_dump().items())})"


# -- geometry ---------------------------------------------------------------------------------------
class Rotate(Transform):
    name, family = "rotate", "geometry"

    class Config(Transform.Config):
        degrees: float = Field(15.0, ge=0, le=180)

    def draw(self, n, h, w, device):
        return {"angle": uniform(n, -self.cfg.degrees, self.cfg.degrees, device)}

    def apply(self, x, p):
        return kornia.geometry.transform.rotate(x, p["angle"].to(x.dtype))

    def describe(self, p, i):
        return f"rotate {p['angle'][i]:+.0f}°" if p["on"][i] else ""


class Scale(Transform):
    name, family = "scale", "geometry"

    class Config(Transform.Config):
        low: float = Field(0.8, gt=0, le=4)
        high: float = Field(1.2, gt=0, le=4)

    def draw(self, n, h, w, device):
        return {"s": uniform(n, self.cfg.low, self.cfg.high, device)}

    def apply(self, x, p):
        s = p["s"].to(x.dtype)
        return kornia.geometry.transform.scale(x, torch.stack([s, s], 1))

    def describe(self, p, i):
        return f"scale x{p['s'][i]:.2f}" if p["on"][i] else ""


class ResizedCrop(Transform):
    """A random box of ``scale`` of the area and aspect ratio in ``ratio``, resized to the image size
    (Szegedy et al. 2015, the Inception crop)."""

    name, family = "resized_crop", "geometry"

    class Config(Transform.Config):
        min_area: float = Field(0.35, gt=0, le=1)
        max_area: float = Field(1.0, gt=0, le=1)
        max_ratio: float = Field(4 / 3, ge=1, le=4, description="aspect ratios in [1/max_ratio, max_ratio]")

    def draw(self, n, h, w, device):
        area = uniform(n, self.cfg.min_area, self.cfg.max_area, device)
        logr = uniform(n, -math.log(self.cfg.max_ratio), math.log(self.cfg.max_ratio), device)
        bw = (area * logr.exp()).sqrt().clamp(max=1.0) * w
        bh = (area / logr.exp()).sqrt().clamp(max=1.0) * h
        x0 = torch.rand(n, device=device) * (w - bw)
        y0 = torch.rand(n, device=device) * (h - bh)
        return {"box": torch.stack([x0, y0, bw, bh], 1)}

    def apply(self, x, p):
        x0, y0, bw, bh = p["box"].to(x.dtype).unbind(1)
        x1, y1 = x0 + bw - 1, y0 + bh - 1
        corners = torch.stack([torch.stack([x0, y0], 1), torch.stack([x1, y0], 1),
                               torch.stack([x1, y1], 1), torch.stack([x0, y1], 1)], 1)
        return kornia.geometry.transform.crop_and_resize(x, corners, tuple(x.shape[-2:]))

    def describe(self, p, i):
        _, _, bw, bh = p["box"][i].tolist()
        return f"crop {bw:.0f}x{bh:.0f}, resized" if p["on"][i] else ""


class PadCrop(Transform):
    """Zero-pad by ``pad`` pixels, cut an HxW window at a random offset (the CIFAR standard, He et al. 2016)."""

    name, family = "crop", "geometry"

    class Config(Transform.Config):
        pad: int | None = Field(None, ge=1, le=64, description="default: an eighth of the width (4 on 32x32)")

    def draw(self, n, h, w, device):
        pad = self.cfg.pad or max(1, w // 8)
        return {"dy": torch.randint(-pad, pad + 1, (n,), device=device),
                "dx": torch.randint(-pad, pad + 1, (n,), device=device)}

    def apply(self, x, p):
        n, c, h, w = x.shape
        pad = self.cfg.pad or max(1, w // 8)
        xp = F.pad(x, (pad, pad, pad, pad))
        rows = (p["dy"].view(n, 1) + pad + torch.arange(h, device=x.device)).view(n, 1, h, 1)
        cols = (p["dx"].view(n, 1) + pad + torch.arange(w, device=x.device)).view(n, 1, 1, w)
        out = xp.gather(2, rows.expand(n, c, h, xp.shape[3]))
        return out.gather(3, cols.expand(n, c, h, w))

    def describe(self, p, i):
        return f"shift {int(p['dx'][i]):+d},{int(p['dy'][i]):+d}" if p["on"][i] else ""


class Flip(Transform):
    name, family = "flip", "geometry"

    class Config(Transform.Config):
        p: float = Field(0.5, ge=0, le=1)

    def apply(self, x, p):
        return x.flip(3)

    def describe(self, p, i):
        return "flip" if p["on"][i] else ""


# -- colour -----------------------------------------------------------------------------------------
class Factor(Transform):
    """A colour change by a random factor in [1 - strength, 1 + strength] (or a fixed ``low``..``high``)."""

    family = "colour"
    word: ClassVar[str]

    class Config(Transform.Config):
        strength: float = Field(0.4, ge=0, le=1)

    def draw(self, n, h, w, device):
        return {"f": uniform(n, 1 - self.cfg.strength, 1 + self.cfg.strength, device)}

    def describe(self, p, i):
        return f"{self.word} x{p['f'][i]:.2f}" if p["on"][i] else ""


class Brightness(Factor):
    name, word = "brightness", "brightness"

    def apply(self, x, p):
        return (x * p["f"].view(-1, 1, 1, 1)).clamp(0, 1)


class Contrast(Factor):
    name, word = "contrast", "contrast"

    def apply(self, x, p):  # blend with the image's mean grey
        return kornia.enhance.adjust_contrast_with_mean_subtraction(x, p["f"])


class Saturation(Factor):
    name, word, colour_only = "saturation", "saturation", True

    def apply(self, x, p):
        return kornia.enhance.adjust_saturation(x, p["f"])


class Hue(Transform):
    """Rotate the hue by up to ``strength`` of a full turn (the HSV value, max(R, G, B), is kept)."""

    name, family, colour_only = "hue", "colour", True

    class Config(Transform.Config):
        strength: float = Field(0.1, ge=0, le=0.5)

    def draw(self, n, h, w, device):
        return {"h": uniform(n, -self.cfg.strength, self.cfg.strength, device)}

    def apply(self, x, p):
        return kornia.enhance.adjust_hue(x, p["h"] * 2 * math.pi).clamp(0, 1)

    def describe(self, p, i):
        return f"hue {p['h'][i] * 360:+.0f}°" if p["on"][i] else ""


class Jitter(Transform):
    """SimCLR's colour distortion (Chen et al. 2020, appendix A): brightness, contrast, saturation and hue each changed
    by a random amount, in a random order (one order per batch), together with probability ``p`` (SimCLR: 0.8).
    ``strength`` s scales them: brightness, contrast and saturation factors in [1 - 0.8 s, 1 + 0.8 s], hue by up to
    0.2 s of a turn (SimCLR's s = 0.5 on CIFAR-10, lightly's benchmark). On grey images only brightness and contrast."""

    name, family = "jitter", "colour"

    class Config(Transform.Config):
        p: float = Field(0.8, ge=0, le=1, description="probability of distorting an image's colours")
        strength: float = Field(0.5, ge=0, le=1.25, description="s: 0.5 on CIFAR-10, 1 on ImageNet (SimCLR)")

    def draw(self, n, h, w, device):
        s = self.cfg.strength
        f = [uniform(n, max(0.0, 1 - 0.8 * s), 1 + 0.8 * s, device) for _ in range(3)]
        return {"brightness": f[0], "contrast": f[1], "saturation": f[2], "hue": uniform(n, -0.2 * s, 0.2 * s, device),
                "order": torch.randperm(4, device=device)}

    def apply(self, x, p):
        for i in p["order"].tolist():
            if i == 0:
                x = (x * p["brightness"].view(-1, 1, 1, 1)).clamp(0, 1)
            elif i == 1:
                x = kornia.enhance.adjust_contrast_with_mean_subtraction(x, p["contrast"])
            elif x.shape[1] == 3 and i == 2:
                x = kornia.enhance.adjust_saturation(x, p["saturation"])
            elif x.shape[1] == 3:
                x = kornia.enhance.adjust_hue(x, p["hue"] * 2 * math.pi).clamp(0, 1)
        return x

    def describe(self, p, i):
        if not p["on"][i]:
            return ""
        return f"colour jitter (b x{p['brightness'][i]:.2f}, c x{p['contrast'][i]:.2f})"


class Greyscale(Transform):
    name, family, colour_only = "greyscale", "colour", True

    class Config(Transform.Config):
        p: float = Field(0.2, ge=0, le=1)

    def apply(self, x, p):
        return kornia.color.rgb_to_grayscale(x).expand_as(x)


class Blur(Transform):
    """Gaussian blur with sigma drawn in [low, high] pixels (kernel 2*ceil(3*high)+1)."""

    name, family = "blur", "colour"

    class Config(Transform.Config):
        low: float = Field(0.5, gt=0, le=10)
        high: float = Field(1.5, gt=0, le=10)

    def draw(self, n, h, w, device):
        return {"sigma": uniform(n, self.cfg.low, self.cfg.high, device)}

    def apply(self, x, p):
        k = 2 * math.ceil(3 * self.cfg.high) + 1
        k = min(k, 2 * (min(x.shape[-2:]) // 2) - 1)
        s = p["sigma"].to(x.dtype)
        return kornia.filters.gaussian_blur2d(x, (k, k), torch.stack([s, s], 1))

    def describe(self, p, i):
        return f"blur σ={p['sigma'][i]:.1f}" if p["on"][i] else ""


# -- erasing ----------------------------------------------------------------------------------------
class Cutout(Transform):
    """Cutout (DeVries & Taylor 2017): blank one ``size`` x ``size`` square per image. As in the paper
    its centre is uniform over the image, so it may be clipped at the border (``inside: true`` keeps
    the whole square in the image), and the square is zero in the *standardised* image, i.e. filled
    with the dataset's mean colour (the authors cut after normalising). ``fill`` sets another value
    in [0, 1]; a policy built without the dataset's mean (one image file) uses each image's own."""

    name, family = "cutout", "erase"
    dataset_mean: torch.Tensor | None = None  # (C,) in [0, 1]; see ``use_mean``

    class Config(Transform.Config):
        size: int | None = Field(None, ge=1, le=1024, description="default: half the width (16 on 32x32)")
        inside: bool = False
        fill: Literal["mean"] | float = Field("mean", description="the dataset's mean colour, or a value in [0, 1]")

        @field_validator("fill", mode="before")
        @classmethod
        def _mean_or_unit_number(cls, v):
            if v != "mean" and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1):
                raise ValueError("fill is 'mean' (the dataset's mean colour) or a number in [0, 1]")
            return v

    def draw(self, n, h, w, device):
        s = self.size(w)
        if self.cfg.inside:
            cy = torch.randint(s // 2, h - (s - s // 2) + 1, (n,), device=device)
            cx = torch.randint(s // 2, w - (s - s // 2) + 1, (n,), device=device)
        else:
            cy, cx = torch.randint(0, h, (n,), device=device), torch.randint(0, w, (n,), device=device)
        return {"cy": cy, "cx": cx}

    def size(self, w: int) -> int:
        return min(self.cfg.size or max(1, w // 2), w)

    def apply(self, x, p):
        n, _, h, w = x.shape
        s = self.size(w)
        y0, x0 = (p["cy"] - s // 2).view(n, 1, 1), (p["cx"] - s // 2).view(n, 1, 1)
        ys = torch.arange(h, device=x.device).view(1, h, 1)
        xs = torch.arange(w, device=x.device).view(1, 1, w)
        hole = (ys >= y0) & (ys < y0 + s) & (xs >= x0) & (xs < x0 + s)
        return torch.where(hole.unsqueeze(1), self.fill_value(x), x)

    def use_mean(self, mean) -> Cutout:
        """Fill with ``mean``, the dataset's per-channel mean in [0, 1] (None: each image's own)."""
        self.dataset_mean = None if mean is None else torch.as_tensor(mean, dtype=torch.float32)
        return self

    def fill_value(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.fill != "mean":
            return torch.tensor(float(self.cfg.fill), dtype=x.dtype, device=x.device)
        if self.dataset_mean is not None:
            return self.dataset_mean.to(x.device, x.dtype).view(1, -1, 1, 1)
        return x.mean(dim=(2, 3), keepdim=True)

    def describe(self, p, i):
        return "cutout" if p["on"][i] else ""


# -- noise ------------------------------------------------------------------------------------------
class GaussianNoise(Transform):
    """x + e, e ~ N(0, sigma^2 I) per pixel, drawn afresh for every batch; not clipped to [0, 1], as the base
    classifier of randomized smoothing sees it (Cohen et al. 2019 train and certify at the same sigma)."""

    name, family = "gaussian_noise", "noise"

    class Config(Transform.Config):
        sigma: float = Field(0.25, gt=0, le=10, description="the noise's standard deviation in [0, 1] pixels")

    def draw(self, n, h, w, device):
        return {}  # the noise itself is drawn in apply, in the images' shape and dtype

    def apply(self, x, p):
        return x + self.cfg.sigma * torch.randn_like(x)

    def describe(self, p, i):
        return f"noise σ={self.cfg.sigma:g}" if p["on"][i] else ""


TRANSFORMS: dict[str, type[Transform]] = {
    t.name: t for t in (Rotate, Scale, ResizedCrop, PadCrop, Flip, Brightness, Contrast, Saturation, Hue,
                        Jitter, Greyscale, Blur, Cutout, GaussianNoise)
}
