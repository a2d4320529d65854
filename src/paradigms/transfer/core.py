"""Transfer learning: start a network on the target task from what a network learned on a source task.

Yosinski, Clune, Bengio & Lipson 2014, "How transferable are features in deep neural networks?":
copy the first n layers of a trained network, then train on the target

    theta_{1..n} <- theta^source_{1..n},   min over the trainable theta of  L_target(head(f_theta(x)), y)

with theta_{1..k} held fixed (``freeze:k``; ``linear-probe`` freezes every layer, ``finetune`` none).
A copied layer l of L trains at eta * beta * gamma^(L - l): beta = ``backbone_lr`` (the Caffe
convention: copied layers 10x slower than new ones), gamma = ``lr_decay`` (discriminative
fine-tuning, Howard & Ruder 2018); the head and layers not copied train at eta.

The layers and the head, and reading and importing the weights, are :mod:`paradigms.weights`'. A frozen layer is
really frozen: its parameters get no gradient and it stays in eval mode during training, so its batch-norm
statistics do not move.
"""

from __future__ import annotations

import re
from pathlib import Path

from torch import nn

from ..errors import UserError
from ..weights import ImportReport, head_name, import_weights, layers, read_weights, rename

STRATEGIES = ("linear-probe", "finetune", "freeze:K")


# -- strategies ---------------------------------------------------------------------------------------
def parse_strategy(strategy: str | dict, n_layers: int | None = None) -> int | None:
    """How many leading layers to freeze: ``linear-probe`` -> all (None), ``finetune`` -> 0, ``freeze:k`` -> k."""
    if isinstance(strategy, dict) and list(strategy) == ["freeze"]:
        strategy = f"freeze:{strategy['freeze']}"
    text = str(strategy).strip().replace(" ", "")
    if text == "linear-probe":
        return n_layers
    if text == "finetune":
        return 0
    m = re.fullmatch(r"freeze:(\d+)", text)
    if not m:
        raise UserError(f"unknown transfer strategy {strategy!r}; valid: linear-probe, finetune, freeze:K "
                        f"(the first K layers frozen)")
    k = int(m.group(1))
    if n_layers is not None and k > n_layers:
        raise UserError(f"strategy freeze:{k} is out of range: the model has {n_layers} layers; use freeze:0..{n_layers}")
    return k


def head_for(strategy: str | dict, head: str) -> str:
    """The head policy a strategy allows: a linear probe always trains a new linear head."""
    return "new" if parse_strategy(strategy) is None else head


def _hold_eval(module: nn.Module, _args) -> None:
    if module.training:  # a frozen layer's batch norm must not update its running statistics
        module.eval()


def apply_strategy(model: nn.Module, strategy: str | dict = "finetune", lr_decay: float = 1.0,
                   backbone_lr: float = 1.0, copied: int | None = None, head: str | None = None,
                   report: ImportReport | None = None) -> list[dict]:
    """Freeze the leading layers that ``strategy`` names; return the optimiser's parameter groups.

    Frozen layers: ``requires_grad = False`` and eval mode on every forward (a hook), so neither the
    weights nor the batch-norm statistics move. A trainable copied layer l of L (the first ``copied``,
    default all) gets ``lr_scale = backbone_lr * lr_decay^(L-l)``; the others and the head get 1.
    """
    for name, v in (("lr_decay", lr_decay), ("backbone_lr", backbone_lr)):
        if not 0 < v <= 1:
            raise UserError(f"{name}={v} is out of range: (0, 1], 1 = the head's rate")
    named = layers(model, head)
    k = parse_strategy(strategy, len(named))
    k = len(named) if k is None else k
    copied = len(named) if copied is None else copied
    groups = []
    for i, (name, m) in enumerate(named):
        frozen = i < k
        scale = backbone_lr * lr_decay ** (len(named) - 1 - i) if i < copied else 1.0
        if frozen:
            m.requires_grad_(False)
            m.register_forward_pre_hook(_hold_eval)
        else:
            groups.append({"params": list(m.parameters()), "lr_scale": scale, "name": name})
        if report is not None:
            report.layers[i].update(frozen=frozen, lr_scale=0.0 if frozen else scale)
    listed = {id(p) for g in groups for p in g["params"]} | {id(p) for _, m in named[:k] for p in m.parameters()}
    rest = [p for p in model.parameters() if id(p) not in listed]  # the head (and anything outside the layers)
    groups.append({"params": rest, "lr_scale": 1.0, "name": head_name(model, head)})
    return groups


def transfer(model: nn.Module, source: str | Path | dict, strategy: str | dict = "finetune", *,
             num_classes: int | None = None, lr_decay: float = 1.0, backbone_lr: float = 1.0, copy: int | None = None,
             head: str = "new", head_module: str | None = None,
             key_map: dict[str, str] | None = None) -> tuple[list[dict], ImportReport]:
    """Load ``source`` into ``model`` and apply ``strategy``; works on any module with a head.

    ``source``: a run folder, a weights file, or a dict of tensors. ``num_classes``: re-create the
    head (a new ``nn.Linear``) when it differs from the head's output size. Returns the parameter
    groups for an optimiser (each with an ``lr_scale``) and the :class:`ImportReport`.

        groups, report = transfer(net, "runs/supervised-mnist", "linear-probe", num_classes=5)
        opt = torch.optim.SGD([{"params": g["params"], "lr": 0.1 * g["lr_scale"]} for g in groups])
    """
    hname = head_name(model, head_module)
    if num_classes is not None:
        old = getattr(model, hname)
        if not isinstance(old, nn.Linear):
            raise UserError(f"num_classes needs a linear head; model.{hname} is a {type(old).__name__}")
        if old.out_features != num_classes:
            setattr(model, hname, nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
                    .to(old.weight.device, old.weight.dtype))
    if isinstance(source, dict):
        tensors, name = rename(source, key_map or {}), "a state dict"
    else:
        tensors, _ = read_weights(source, key_map)
        name = str(source)
    report = import_weights(model, tensors, name, copy=copy, head=head_for(strategy, head), head_module=head_module)
    groups = apply_strategy(model, strategy, lr_decay, backbone_lr, copy, head_module, report)
    return groups, report
