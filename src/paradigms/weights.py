"""Weights between runs, and from outside: read a run's encoder, a .safetensors file or a PyTorch state dict, and
load them into a network, with a report of exactly what was loaded, what is new and what was skipped.

    tensors, source_cfg = read_weights("runs/supervised-mnist")        # a run folder: its recipe's encoder
    report = import_weights(net, tensors, "runs/supervised-mnist", copy=2, head="new")
    print(report.text())

Every paradigm that starts from trained weights comes through here: fine-tuning (:mod:`paradigms.transfer`), a GPT
or BERT run started from another (``init_from``), ``finetune --from`` a SimCLR, MAE or CLIP encoder. A Hugging Face
BERT-family checkpoint goes through :mod:`paradigms.nets.pretrained`.

A *layer* is a block of the backbone that holds parameters or buffers (``model.blocks`` of
:class:`paradigms.nets.Classifier`, else the module's top-level children); the *head* is ``model.head`` (else the
last child).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError, UserError

INPUT_STATS = "standardize."  # the input layer of paradigms.nets: the mean and std the source was trained with
WRAPPERS = ("state_dict", "model_state_dict", "model", "weights", "net")


# -- which parts of a module are layers and which is the head ---------------------------------------
def head_name(model: nn.Module, head: str | None = None) -> str:
    if head is not None:
        if not isinstance(getattr(model, head, None), nn.Module):
            raise UserError(f"the model has no submodule {head!r} to use as its head; "
                            f"its children are {', '.join(n for n, _ in model.named_children())}")
        return head
    if isinstance(getattr(model, "head", None), nn.Module):
        return "head"
    names = [n for n, _ in model.named_children()]
    if len(names) < 2:
        raise UserError("transfer needs a model with a backbone and a head: give it children (or `blocks` "
                        "and `head` like paradigms.nets.Classifier), or name the head with head=...")
    return names[-1]


def layers(model: nn.Module, head: str | None = None) -> list[tuple[str, nn.Module]]:
    """The backbone's layers in order, as (state-dict prefix, module): blocks with parameters or buffers."""
    h = head_name(model, head)
    blocks = getattr(model, "blocks", None)
    if isinstance(blocks, (nn.ModuleList, nn.Sequential)):
        named = [(f"blocks.{i}", b) for i, b in enumerate(blocks)]
    else:
        named = [(n, m) for n, m in model.named_children() if n != h]
    return [(n, m) for n, m in named if any(True for _ in m.parameters()) or any(True for _ in m.buffers())]


# -- reading weights ---------------------------------------------------------------------------------
def read_weights(source: str | Path, key_map: dict[str, str] | None = None) -> tuple[dict[str, torch.Tensor], object | None]:
    """(tensors, source config or None) from a run folder, a .safetensors file or a PyTorch state dict.

    A run folder gives its recipe's encoder (``Recipe.encoder``) from the latest checkpoint. A
    ``.pt``/``.pth``/``.bin`` file is read with ``weights_only=True``; a state dict wrapped under
    ``state_dict``/``model`` is unwrapped and DDP's ``module.`` prefix dropped. ``key_map`` renames key
    prefixes, e.g. ``{"backbone.": "blocks.", "fc.": "head."}``.
    """
    path = Path(source).expanduser()
    if path.is_dir() and path.name == "checkpoints" and (path.parent / "config.yaml").is_file():
        path = path.parent
    if not path.exists():
        raise UserError(f"transfer source {source} does not exist (give a run folder, a .safetensors file "
                        "or a PyTorch state dict)")
    source_cfg = None
    if path.is_dir():
        tensors, source_cfg = _from_run(path)
    elif path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"weights file {path} cannot be read as safetensors: {e}") from None
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad or unsafe file
            raise CheckpointError(f"weights file {path} cannot be read as a PyTorch state dict "
                                  f"(weights_only=True): {str(e).splitlines()[0]}") from None
        tensors = _unwrap(obj, path)
    return rename(tensors, key_map or {}), source_cfg


def source_config(run: Path):
    """The saved config of a source run folder, checked to be of a recipe that trains an encoder."""
    from .engine.trainer import load_config
    from .recipes import all_recipes, get

    run = run.parent if run.name == "checkpoints" else run
    cfg = load_config(run)
    if get(cfg.recipe).encoder is None:
        bearing = [n for n, r in all_recipes().items() if r.encoder]
        raise UserError(f"run folder {run} is a {cfg.recipe!r} run, which trains no encoder to transfer; "
                        f"recipes that do: {', '.join(bearing)}")
    return cfg


def _from_run(run: Path) -> tuple[dict[str, torch.Tensor], object]:
    from .engine import checkpoint as ckpt
    from .recipes import get

    cfg = source_config(run)
    return ckpt.module_weights(run / "checkpoints", get(cfg.recipe).encoder), cfg


def _unwrap(obj, path: Path) -> dict[str, torch.Tensor]:
    for _ in range(3):
        if isinstance(obj, dict) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
            inner = next((obj[k] for k in WRAPPERS if isinstance(obj.get(k), dict)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"weights file {path} holds no state dict (a mapping of names to tensors); "
                              f"save one with torch.save(model.state_dict(), path)")
    return {re.sub(r"^(module\.|_orig_mod\.)+", "", k): v for k, v in obj.items()}


def rename(tensors: dict[str, torch.Tensor], key_map: dict[str, str]) -> dict[str, torch.Tensor]:
    """Apply the longest matching prefix of ``key_map`` to every key."""
    if not key_map:
        return dict(tensors)
    prefixes = sorted(key_map, key=len, reverse=True)
    out = {}
    for k, v in tensors.items():
        old = next((p for p in prefixes if k.startswith(p)), None)
        out[key_map[old] + k[len(old):] if old is not None else k] = v
    return out


# -- importing them ----------------------------------------------------------------------------------
@dataclass
class ImportReport:
    """Exactly what the import did: which tensors were loaded, which are new, which were skipped."""

    source: str
    loaded: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    head: str = "kept"  # kept | new (class count differs, or asked for)
    layers: list[dict] = field(default_factory=list)  # per layer: name, loaded, frozen, lr_scale, params

    def summary(self) -> str:
        frozen = [l["name"] for l in self.layers if l["frozen"]]
        return (f"transfer from {self.source}: loaded {len(self.loaded)} tensors, new {len(self.new)}, "
                f"skipped {len(self.skipped)}; head {self.head}; frozen layers: {', '.join(frozen) or 'none'}")

    def text(self) -> str:
        lines = [self.summary(), ""]
        for title, keys in (("loaded", self.loaded), ("new (initialised here)", self.new),
                            ("skipped (in the source, not used)", self.skipped)):
            lines.append(f"{title}: {len(keys)}")
            lines += [f"  {k}" for k in keys]
        lines += ["", "layer                 copied  frozen  lr scale  parameters"]
        lines += [f"{l['name']:<22}{'yes' if l['loaded'] else 'no':<8}{'yes' if l['frozen'] else 'no':<8}"
                  f"{l['lr_scale']:<10.3g}{l['params']:,}" for l in self.layers]
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def import_weights(model: nn.Module, tensors: dict[str, torch.Tensor], source: str = "weights",
                   copy: int | None = None, head: str = "new", head_module: str | None = None) -> ImportReport:
    """Load ``tensors`` into ``model``'s backbone (its first ``copy`` layers, or all) and maybe its head.

    head: ``new`` (the default) keeps the model's freshly initialised head: a new task's classes are not
    the source's, even when they are as many (a kept head starts confidently wrong); ``auto`` loads the
    source head when its shape matches (same class count); ``keep`` requires it.
    Any backbone tensor that is missing from the source or has another shape is an error listing them all.
    The input standardisation (mean and std) travels with the weights, as a pretrained network's
    normalisation does; a source without one (a plain state dict) leaves the target data's statistics.
    """
    hname = head_name(model, head_module)
    own = model.state_dict()
    named = layers(model, head_module)
    if copy is not None and not 0 <= copy <= len(named):
        raise UserError(f"transfer.copy={copy} is out of range: this model has {len(named)} layers "
                        f"({', '.join(n for n, _ in named)}); use 0..{len(named)}")
    fresh = tuple(n + "." for n, _ in named[copy:]) if copy is not None else ()
    is_head = lambda k: k.startswith(hname + ".")  # noqa: E731
    head_keys = [k for k in own if is_head(k)]
    head_fits = all(k in tensors and tensors[k].shape == own[k].shape for k in head_keys)
    if head == "keep" and not head_fits:
        theirs = {k: tuple(tensors[k].shape) for k in head_keys if k in tensors}
        raise CheckpointError(f"head: keep, but the source head does not fit: source {theirs or 'has none'}, "
                              f"model {({k: tuple(own[k].shape) for k in head_keys})}; use head: auto or new")
    # copying only some layers (Yosinski's protocol) re-initialises everything above them, the head included
    load_head = head == "keep" or (head == "auto" and head_fits and copy is None)
    report = ImportReport(str(source), head="kept" if load_head else "new")
    missing, shapes, update = [], [], {}
    for k, v in own.items():
        if is_head(k) and not load_head or k.startswith(fresh):
            report.new.append(k)
        elif k.startswith(INPUT_STATS) and k not in tensors:  # a plain state dict: the target data's statistics
            report.new.append(k)
        elif k not in tensors:
            missing.append(k)
        elif tensors[k].shape != v.shape:
            shapes.append(f"{k} source {tuple(tensors[k].shape)} vs model {tuple(v.shape)}")
        else:
            update[k] = tensors[k]
            report.loaded.append(k)
    problems = []
    if missing:
        problems.append(f"missing in the source: {', '.join(missing)}")
    if shapes:
        problems.append(f"shape mismatch: {'; '.join(shapes)}")
    if problems:
        raise CheckpointError(f"cannot transfer {source} into this model ({len(missing)} missing, {len(shapes)} "
                              f"of another shape; same architecture and input channels? a key_map?): "
                              + " | ".join(problems))
    report.skipped = sorted(set(tensors) - set(update))
    with torch.no_grad():
        for k, v in update.items():
            own[k].copy_(v.to(own[k].dtype))
    report.layers = layer_table(model, head_module, loaded=set(update))
    return report


def layer_table(model: nn.Module, head: str | None = None, loaded: set[str] = frozenset()) -> list[dict]:
    """One row per layer and one for the head: name, copied from the source, frozen, lr scale, parameters."""
    hname = head_name(model, head)
    named = [*layers(model, head), (hname, getattr(model, hname))]
    return [{"name": n, "loaded": any(k.startswith(n + ".") for k in loaded), "frozen": False, "lr_scale": 1.0,
             "params": sum(p.numel() for p in m.parameters())} for n, m in named]


__all__ = ["ImportReport", "head_name", "import_weights", "layer_table", "layers", "read_weights", "rename",
           "source_config"]
