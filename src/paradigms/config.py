"""Validated configuration: every recipe's config is a pydantic model built from layers.

A run's config is resolved in this order, each layer overriding the one before:

    the recipe's defaults  <  its preset (quick | full, per dataset)  <  --config file.yaml
    <  --set key.sub=value ...  <  explicit flags (--dataset, --seed, --device, --data-dir)

Unknown keys and out-of-range values fail with one line naming the key, the closest valid keys
or the valid range. The resolved config is written to the run folder as ``config.yaml``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UserError, closest


class Section(BaseModel):
    """A block of settings: unknown keys are errors, assignments are validated too, and a number given for a float
    setting must be finite (nan, inf and -inf are refused: none is a meaningful setting)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=(), allow_inf_nan=False)


class TrainConfig(Section):
    """The engine's loop: how long, how big a batch, how often to log, evaluate and checkpoint."""

    epochs: int = Field(10, ge=0, le=100_000, description="passes over the training set")
    batch_size: int = Field(128, ge=1, le=1_000_000, description="global batch (split across DDP ranks)")
    eval_every: int = Field(1, ge=0, description="evaluate every N epochs (0: only at the end)")
    log_every: int = Field(25, ge=1, description="steps between logged (averaged) training metrics")
    checkpoint_every_s: float = Field(30.0, gt=0, description="seconds between mid-epoch checkpoints")
    keep_checkpoints: int = Field(2, ge=1, description="how many recent checkpoints to keep")
    figures: bool = Field(True, description="draw the figures at the end (benchmarks that train hundreds of runs skip them)")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 autocast on GPU, fp32 on CPU")
    workers: int = Field(2, ge=0, le=64, description="DataLoader workers for streamed datasets")
    grad_clip: float | None = Field(None, gt=0, description="clip the gradients' global L2 norm to this "
                                    "(None: no clipping)")


class RecipeConfig(Section):
    """What every recipe's config has. A recipe subclasses it and adds its own sections."""

    recipe: str = Field(description="the recipe (`paradigms list`)")
    preset: Literal["quick", "full", "none"] = Field("quick", description="quick (2 CPU cores, minutes) | full "
                                                     "(paper scale, a GPU) | none (the defaults alone)")
    dataset: str = Field("digits", description="the dataset (`paradigms run --help` lists them)")
    seed: int = Field(0, ge=0, lt=2**63, description="one seed for data order, initialisation and augmentation")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: cuda when there is one")
    data_dir: str | None = Field(None, description="data root (else $PARADIGMS_DATA, else the user cache)")
    train: TrainConfig = TrainConfig()


# ----------------------------------------------------------------------------------------------
# building a config from layers


def merge(base: dict, over: dict) -> dict:
    """Deep-merge ``over`` into a copy of ``base`` (dicts merge, anything else replaces)."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_sets(items: list[str]) -> dict:
    """``["optim.lr=0.05", "augment=[flip, crop]"]`` -> nested dict; values are read as YAML scalars."""
    out: dict = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected key=value, e.g. --set optim.lr=0.05")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise UserError(f"--set {item!r}: the key before '=' is empty")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UserError(f"--set {item!r}: {p!r} is set twice, once as a value")
        node[parts[-1]] = value
    return out


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file {str(path)!r} not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise UserError(f"config file {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise UserError(f"config file {str(path)!r} must hold a mapping of keys to values")
    return data


def check_keys(model: type[BaseModel], data: dict, prefix: str = "") -> None:
    """Fail on the first unknown key, with the closest valid ones (pydantic's message lacks hints)."""
    fields = model.model_fields
    for key, value in data.items():
        if key not in fields:
            names = [prefix + f for f in fields]
            raise UserError(f"unknown config key {prefix + key!r}; {closest(prefix + key, names)}")
        sub = fields[key].annotation
        if isinstance(value, dict) and isinstance(sub, type) and issubclass(sub, BaseModel):
            check_keys(sub, value, prefix + key + ".")


BOUNDS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def field_bounds(model: type[BaseModel] | None, loc: tuple) -> list[str]:
    """The bounds (``> 0``, ``<= 100``) of the field at ``loc`` (a pydantic error's location) in ``model``, if any."""
    field = None
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            break
        field = model.model_fields[part]
        model = field.annotation
    else:
        return [f"{sym} {getattr(m, k)}" for m in (field.metadata if field else []) for k, sym in BOUNDS.items()
                if getattr(m, k, None) is not None]
    return []


def describe_error(err: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line for pydantic's first error: the dotted key, the value given, and what is allowed (``model``, the
    config class validated, lets a non-finite number's message give the field's range)."""
    e = err.errors()[0]
    key = ".".join(str(p) for p in e["loc"])
    msg = e["msg"]
    ctx = e.get("ctx") or {}
    allowed = [f"{sym} {ctx[k]}" for k, sym in BOUNDS.items() if k in ctx]
    if e["type"] == "finite_number":
        allowed = field_bounds(model, e["loc"])
        hint = f" (valid: {' and '.join(allowed)})" if allowed else ""
        return f"config {key} = {e['input']}: the value must be a finite number, not nan or inf{hint}"
    hint = f" (valid: {' and '.join(allowed)})" if allowed else ""
    given = f" = {e['input']!r}" if "input" in e and not isinstance(e["input"], dict) else ""
    return f"config {key}{given}: {msg}{hint}"


def validate(model: type[RecipeConfig], data: dict) -> RecipeConfig:
    check_keys(model, data)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise UserError(describe_error(err, model)) from None


def to_yaml(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)


def _flow(value) -> str:
    """One YAML value on one line (``[crop, flip]``, ``0.1``, ``null``)."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9, sort_keys=False).strip()
    return text.removesuffix("...").strip()


def to_commented_yaml(cfg: BaseModel, indent: str = "") -> str:
    """``cfg`` as YAML with each field's description as a comment above it: the ``--set`` keys, explained.

    The text loads back (``--config``) to the same config.
    """
    lines, dumped = [], cfg.model_dump(mode="json")
    for name in type(cfg).model_fields:
        value = getattr(cfg, name)
        # a field a subclass re-declares (recipe: str = "supervised") keeps its base class's description
        description = next((k.model_fields[name].description for k in type(cfg).__mro__
                            if name in getattr(k, "model_fields", {}) and k.model_fields[name].description), None)
        for line in textwrap.wrap(description or "", 100 - len(indent)):
            lines.append(f"{indent}# {line}")
        if isinstance(value, BaseModel):
            if value.__doc__ and not description:
                lines.append(f"{indent}# {value.__doc__.strip().splitlines()[0]}")
            lines.append(f"{indent}{name}:")
            lines.append(to_commented_yaml(value, indent + "  ").rstrip("\n"))
        else:
            lines.append(f"{indent}{name}: {_flow(dumped[name])}")
    return "\n".join(lines) + "\n"


def resolve(
    recipe: Any,
    preset: str = "quick",
    config_file: str | Path | None = None,
    sets: list[str] | None = None,
    flags: dict | None = None,
) -> RecipeConfig:
    """Build a recipe's config from its layers (see the module docstring)."""
    from_file = load_yaml(config_file) if config_file else {}
    from_sets = parse_sets(sets or [])
    from_flags = {k: v for k, v in (flags or {}).items() if v is not None}
    top = merge(merge(from_file, from_sets), from_flags)
    preset = top.get("preset", preset)
    dataset = top.get("dataset", recipe.Config.model_fields["dataset"].default)
    if preset not in ("quick", "full", "none"):
        raise UserError(f"unknown preset {preset!r}; valid: quick, full, none")
    # a recipe's own defaults for its sections (the VAE's Adam, a GAN's two optimisers): a --set of one key in
    # such a section keeps its other keys, rather than the section class's defaults
    sections = {name: f.default.model_dump(mode="json") for name, f in recipe.Config.model_fields.items()
                if isinstance(f.default, BaseModel)}
    layers = merge(sections, {"recipe": recipe.name, "preset": preset, "dataset": dataset})
    if preset != "none":
        layers = merge(layers, recipe.preset(preset, dataset))
    return validate(recipe.Config, merge(layers, top))
