"""A policy: the transforms named in a config, in order, then at most one label-mixing transform.

Written in any recipe's config as a list of names or ``{name: {parameters}}``::

    augment: [standard, {cutout: {size: 16}}, mixup]     # or on the command line:
    --set 'augment=[crop, flip, {cutout: {size: 8}}]'

``standard`` expands to the dataset's usual policy, kept in :mod:`paradigms.data.registry`
(pad-crop + flip for CIFAR-10; no flips for digits, where a mirrored 2 is no 2). Unknown names,
out-of-range parameters and colour transforms on greyscale data fail with one line saying which
and why. A policy also runs on images without labels (self-supervised views) unless it mixes.
"""

from __future__ import annotations

import torch
from pydantic import ValidationError

from ..data import registry
from ..errors import UserError, unknown
from .mix import MIXES, Mix
from .transforms import TRANSFORMS, Cutout, Transform

STANDARD = {name: registry.standard_augment(name) for name in registry.IMAGE_DATASETS}
"""Each named image dataset's usual policy, derived from the dataset registry (edit it there)."""
DEFAULT_STANDARD = list(registry.DEFAULT_AUGMENT)
NAMES = sorted([*TRANSFORMS, *MIXES, "standard"])

Spec = str | dict


def standard(dataset: str) -> list[str]:
    """What ``standard`` expands to for ``dataset`` (see :func:`paradigms.data.registry.standard_augment`)."""
    return registry.standard_augment(dataset)


def parse(item: Spec) -> tuple[str, dict]:
    if isinstance(item, str):
        return item.strip(), {}
    if isinstance(item, dict) and len(item) == 1:
        (name, params), = item.items()
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise UserError(f"augment {name}: parameters must be a mapping, e.g. {{{name}: {{p: 0.5}}}}")
        return str(name), params
    raise UserError(f"augment entry {item!r}: write a name (flip) or one name with parameters ({{cutout: {{size: 8}}}})")


def make(name: str, params: dict) -> Transform:
    cls = TRANSFORMS.get(name) or MIXES.get(name)
    if cls is None:
        raise unknown("augmentation", name, NAMES)
    try:
        return cls(**params)
    except ValidationError as err:
        e = err.errors()[0]
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            valid = ", ".join(cls.Config.model_fields)
            raise UserError(f"augment {name}: unknown parameter {key!r}; valid: {valid}") from None
        field = cls.Config.model_fields.get(key)
        bounds = []
        for m in getattr(field, "metadata", []) or []:
            for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
                if getattr(m, attr, None) is not None:
                    bounds.append(f"{sym} {getattr(m, attr)}")
        rng = f" (valid: {' and '.join(bounds)})" if bounds else ""
        msg = e["msg"].removeprefix("Value error, ")
        raise UserError(f"augment {name}.{key} = {e.get('input')!r}: {msg}{rng}") from None


class Policy:
    """Apply ``transforms`` in order, then one of ``mixes`` (chosen at random per batch)."""

    def __init__(self, transforms: list[Transform], mixes: list[Mix]):
        self.transforms, self.mixes = transforms, mixes

    def __bool__(self) -> bool:
        return bool(self.transforms or self.mixes)

    def __repr__(self) -> str:
        return " -> ".join(repr(t) for t in [*self.transforms, *self.mixes]) or "none"

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None, num_classes: int | None = None):
        """Images in [0, 1] -> augmented images; with labels ``y``, ``(images, labels)`` (soft when a
        mix ran). Without labels (self-supervised views) a policy with mixup or cutmix fails."""
        x, y, _ = self.trace(x, y, num_classes, describe=False)
        return x if y is None else (x, y)

    def trace(self, x, y=None, num_classes: int | None = None, describe: bool = True):
        """Like calling the policy, and also say what was done to each image: ``(x, y, notes)``,
        ``y`` None when no labels were given, ``notes`` None unless ``describe``."""
        if y is None and self.mixes:
            mixes = "/".join(m.name for m in self.mixes)
            raise UserError(f"augment {mixes} needs labels (it mixes the targets as well as the images), "
                            f"but these images have none: drop {mixes} from augment")
        n, _, h, w = x.shape
        notes = [[] for _ in range(n)] if describe else None
        for t in self.transforms:
            p = t.sample(n, h, w, x.device)
            x = t(x, p)
            if describe:
                for i in range(n):
                    notes[i].append(t.describe(p, i))
        if self.mixes:
            if num_classes is None and y.ndim == 1:
                raise ValueError("mixing class indices needs num_classes")
            m = self.mixes[int(torch.randint(len(self.mixes), ()))] if len(self.mixes) > 1 else self.mixes[0]
            p = m.sample(n, h, w, x.device)
            x, y = m.mix(x, y, num_classes, p)
            if describe:
                for i in range(n):
                    notes[i].append(m.describe(p, i))
        labels = [", ".join(s for s in note if s) or "unchanged" for note in notes] if describe else None
        return x, y, labels


def read_policy(text: str) -> list[Spec]:
    """A policy as a person types it: a YAML list, as in a config (``[rotate, {cutout: {size: 8}}]``), or its entries
    without the brackets (``rotate, blur``, ``rotate, cutout: {size: 8}``). Unknown names are found later, by
    :func:`build`."""
    import yaml

    text = text.strip()
    if not text:
        return []
    try:
        spec = yaml.safe_load(text if text.startswith("[") else f"[{text}]")
    except yaml.YAMLError:
        raise UserError(f"policy {text[:80]!r} is not valid YAML; e.g. '[rotate, {{cutout: {{size: 8}}}}]' or "
                        "'rotate, blur'") from None
    return spec if isinstance(spec, list) else [spec]


STRENGTH = {
    "rotate": lambda s: {"degrees": 90 * s},                  # up to a quarter turn either way
    "scale": lambda s: {"low": 1 - 0.5 * s, "high": 1 + 0.5 * s},
    "resized_crop": lambda s: {"min_area": 1 - 0.9 * s},      # a box of at least 10% of the area at s = 1
    "brightness": lambda s: {"strength": s},                  # factors in [1 - s, 1 + s]
    "contrast": lambda s: {"strength": s},
    "saturation": lambda s: {"strength": s},
    "hue": lambda s: {"strength": 0.5 * s},                   # up to half a turn of the colour wheel
    "jitter": lambda s: {"strength": 1.25 * s},               # SimCLR's s = 0.5 at 0.4
    "blur": lambda s: {"low": max(0.1, s), "high": max(0.1, 3 * s)},    # sigma in [0.5, 1.5] pixels at 0.5
    "gaussian_noise": lambda s: {"sigma": max(0.01, s)},      # noise of standard deviation s
}
"""How one number ``strength`` in [0, 1] sets each transform's size (a transform not here, flip, greyscale, crop,
cutout or a mix, keeps its own settings): 0 barely changes an image, 1 as far as a transform sensibly goes."""


def at_strength(spec: list[Spec], strength: float) -> list[Spec]:
    """``spec`` with every transform named bare (``rotate``) set to ``strength`` in [0, 1] by :data:`STRENGTH`;
    entries with parameters of their own (``{rotate: {degrees: 5}}``) are kept as written."""
    if not 0 <= strength <= 1:
        raise UserError(f"strength={strength:g} is out of range: 0 (barely) to 1 (as far as each transform goes)")
    def sized(name: str) -> dict:
        return {name: {k: round(v, 4) for k, v in STRENGTH[name](strength).items()}}    # 1.8, not 1.7999999999999998

    return [sized(item.strip()) if isinstance(item, str) and item.strip() in STRENGTH else item for item in spec]


def build(spec: list[Spec] | None, dataset: str = "", channels: int = 3, mean=None) -> Policy:
    """A :class:`Policy` from a config list (see the module docstring). ``mean``: the dataset's
    per-channel mean in [0, 1], the colour Cutout fills with (zero once standardised)."""
    transforms, mixes = [], []
    for item in spec or []:
        name, params = parse(item)
        if name == "standard":
            if params:
                raise UserError("augment standard takes no parameters; list its transforms to tune them")
            for n in standard(dataset):
                transforms.append(make(n, {}))
            continue
        t = make(name, params)
        if t.colour_only and channels != 3:
            raise UserError(f"augment {name} needs colour (3-channel) images; dataset {dataset!r} has "
                            f"{channels} channel(s): drop {name} from augment")
        if isinstance(t, Cutout):
            t.use_mean(mean)
        (mixes if isinstance(t, Mix) else transforms).append(t)
    return Policy(transforms, mixes)
