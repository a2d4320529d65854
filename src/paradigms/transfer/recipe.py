"""The ``finetune`` recipe: supervised training on a target dataset, starting from a source's weights.

    paradigms run finetune --from runs/supervised-mnist --dataset fashion-mnist --set transfer.strategy=linear-probe

Everything but the start is the supervised recipe (same loss, loaders, augmentation, figures); the
network is the source's architecture, its layers are copied (:func:`paradigms.weights.import_weights`)
and frozen by the strategy (:func:`paradigms.transfer.core.apply_strategy`). The import report goes
to ``transfer.json``, to ``notes/transfer.txt`` (shown in report.html) and to the ``transfer`` figure.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Literal

import matplotlib.pyplot as plt
from pydantic import Field, field_validator

from .. import weights
from ..config import Section
from ..errors import UserError
from ..recipes import register
from ..supervised.classify import Supervised, SupervisedConfig
from . import core


class TransferConfig(Section):
    strategy: str = Field("finetune", description="linear-probe | finetune | freeze:K (the first K layers frozen)")
    backbone_lr: float = Field(0.1, gt=0, le=1, description="copied layers train at lr * backbone_lr, the head and "
                               "new layers at lr (Caffe's fine-tuning convention); 1 = one rate")
    lr_decay: float = Field(1.0, gt=0, le=1, description="discriminative learning rates: copied layer l of L trains "
                            "at lr * backbone_lr * lr_decay^(L-l) (Howard & Ruder 2018); 1 = off")
    copy_layers: int | None = Field(None, ge=0, description="copy only the first N layers; those above start "
                                    "from random initialisation (Yosinski et al. 2014); default: all")
    head: Literal["new", "auto", "keep"] = Field("new", description="new: a freshly initialised head (a new task); "
                                                 "auto: keep the source head when the class count matches; keep: "
                                                 "require it")
    key_map: dict[str, str] = Field({}, description="rename key prefixes of a weights file, e.g. {'fc.': 'head.'}")

    @field_validator("strategy", mode="before")
    @classmethod
    def _strategy(cls, v):
        if isinstance(v, dict) and list(v) == ["freeze"]:
            v = f"freeze:{v['freeze']}"
        core.parse_strategy(str(v))  # the layer count is checked once the network exists
        return str(v).replace(" ", "")


class FinetuneConfig(SupervisedConfig):
    recipe: str = "finetune"
    source: str | None = Field(None, description="the run folder of a recipe that trains an encoder, or a weights "
                               "file (.safetensors, or a PyTorch state dict); None trains from scratch")
    transfer: TransferConfig = TransferConfig()


@register
class Finetune(Supervised):
    name = "finetune"
    family = "transfer"
    measures = "target test accuracy after transfer (linear probe, fine-tune, freeze-k, discriminative rates)"
    Config = FinetuneConfig
    about = ("Transfer learning: a supervised classifier whose training starts from what another network learned "
             "(a run folder given with --from, or a weights file) instead of a random initialisation, as in "
             "Yosinski, Clune, Bengio & Lipson 2014, \"How transferable are features in deep neural networks?\". "
             "The source's layers are copied (all of them, or the first transfer.copy_layers), the head is new by "
             "default, and the strategy decides what trains: linear-probe freezes every copied layer, finetune "
             "trains them all, freeze:K freezes the first K. Copied layers learn at transfer.backbone_lr times the "
             "head's rate, optionally lower still layer by layer down the network (discriminative fine-tuning, "
             "Howard & Ruder 2018, \"Universal language model fine-tuning for text classification\"); the loss, "
             "the evaluation and the other figures are the supervised recipe's. The transfer figure shows which "
             "layers were copied, which are new and which are frozen. Compare the accuracy with the same recipe run "
             "without --from on the same labels: that difference is what the source's knowledge is worth, and it "
             "can be small or even negative when the source task is far from the target.")
    captions = {
        **Supervised.captions,
        "transfer": "The network's layers from the input (bottom) to the head (top): blue bars were copied from the "
                    "source, orange ones are new, hatched ones are frozen, and each says its learning-rate scale.",
    }
    commands = ("attack", "certify")

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        return Supervised.preset(name, dataset)

    @classmethod
    def prepare(cls, cfg: FinetuneConfig) -> FinetuneConfig:
        """A run folder source decides the architecture: the network must be the one that was trained."""
        if cfg.source is None:
            return cfg
        if not Path(cfg.source).expanduser().exists():
            raise UserError(f"source {cfg.source} does not exist (give a run folder, a .safetensors file or a "
                            "PyTorch state dict)")
        if not Path(cfg.source).expanduser().is_dir():
            return cfg
        source_cfg = weights.source_config(Path(cfg.source).expanduser())
        from ..recipes import ImageRecipe, get

        if not issubclass(get(source_cfg.recipe), ImageRecipe):
            raise UserError(f"source run {cfg.source} is a {source_cfg.recipe!r} run of text; finetune starts image "
                            f"networks (a text encoder fine-tunes through paradigms.language.classify, or a "
                            f"{source_cfg.recipe} run with --set init_from=RUN)")
        model = getattr(source_cfg, "model", None)
        if model is None:
            raise UserError(f"source run {cfg.source} ({source_cfg.recipe}) has no `model` section to rebuild")
        return cfg.model_copy(update={"model": model})

    def make_net(self, in_shape, num_classes):
        net = super().make_net(in_shape, num_classes)
        t = self.cfg.transfer
        self.report = weights.ImportReport(self.cfg.source or "none (from scratch)", head="new",
                                        layers=weights.layer_table(net))
        copied = 0 if self.cfg.source is None else t.copy_layers  # from scratch every layer is new; None: all
        self.groups = core.apply_strategy(net, t.strategy, t.lr_decay, t.backbone_lr, copied, report=self.report)
        return net

    def param_groups(self) -> list[dict]:
        return self.groups

    def start(self) -> None:
        """Import the source's weights (a fresh run only: a resumed run has them in its checkpoint)."""
        cfg, t = self.cfg, self.cfg.transfer
        if cfg.source is None:
            return
        tensors, _ = weights.read_weights(cfg.source, t.key_map)
        frozen = {l["name"]: (l["frozen"], l["lr_scale"]) for l in self.report.layers}
        report = weights.import_weights(self.net, tensors, cfg.source, copy=t.copy_layers,
                                     head=core.head_for(t.strategy, t.head))
        for layer in report.layers:
            layer["frozen"], layer["lr_scale"] = frozen[layer["name"]]
        self.report = report
        if self.ctx.is_main and getattr(self.ctx, "run_dir", None) is not None:
            run = Path(self.ctx.run_dir)
            (run / "notes").mkdir(parents=True, exist_ok=True)
            (run / "transfer.json").write_text(report.to_json())
            (run / "notes" / "transfer.txt").write_text(report.text())
            print(report.summary(), file=sys.stderr)

    def figures(self):
        yield from super().figures()
        report, saved = self.report, Path(getattr(self.ctx, "run_dir", None) or ".") / "transfer.json"
        if not report.loaded and self.cfg.source and saved.is_file():  # redrawn later (`paradigms report`)
            report = weights.ImportReport(**json.loads(saved.read_text()))
        yield "transfer", layers_figure(report)


def layers_figure(report: weights.ImportReport):
    """One bar per layer, bottom to top: copied or new, frozen or trained, its learning-rate scale."""
    rows = report.layers
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.3))
    for i, l in enumerate(rows):
        color = "#4c72b0" if l["loaded"] else "#dd8452"
        ax.barh(i, 1, color=color, hatch="///" if l["frozen"] else None, edgecolor="white")
        what = ("copied" if l["loaded"] else "new") + (", frozen" if l["frozen"] else f", lr x{l['lr_scale']:.3g}")
        ax.text(0.02, i, f"{l['name']}  ({l['params']:,} params): {what}", va="center", fontsize=8, color="white",
                bbox={"facecolor": color, "edgecolor": "none", "pad": 2})
    ax.set_yticks([])
    ax.set_xticks([])
    ax.set_xlim(0, 1)
    ax.set_title(f"transfer from {Path(report.source).name}: blue copied, orange new, hatched frozen", fontsize=9)
    fig.tight_layout()
    return fig


__all__ = ["Finetune", "FinetuneConfig", "TransferConfig", "layers_figure"]
