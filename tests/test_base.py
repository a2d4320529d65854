"""The base every paradigm stands on: pixel-space networks and paradigms.load, the engine's metrics and
checks, exact resume, the shared optimiser parts, plugins."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import paradigms
from paradigms import config as configlib
from paradigms import optim, recipes
from paradigms.data import ImageLoader, load_images
from paradigms.engine import Trainer
from paradigms.errors import NonFiniteLoss, UserError
from paradigms.evaluate import evaluate_classifier

from .test_cli import run_cli
from .test_engine import config

TINY = ["train.epochs=2", "train_size=400", "model.width=1"]


def test_accuracy(net, data) -> float:
    """The accuracy of ``net`` on ``data``'s test set, fed [0, 1] pixels in batches as `paradigms eval` does."""
    loader = ImageLoader(data.test_x, data.test_y, batch_size=1024, device=torch.device("cpu"), shuffle=False,
                         drop_last=False)
    return evaluate_classifier(net, loader.epoch(0))["acc"]


test_accuracy.__test__ = False  # a helper, not a test


# -- pixel-space networks and paradigms.load ---------------------------------------------------------
def test_load_gives_the_runs_network_without_reading_the_training_set(tmp_path, capsys, monkeypatch):
    run = tmp_path / "r"
    assert run_cli(capsys, "run", "supervised", "--quiet", "--out", str(run), *sum((["--set", s] for s in TINY), []))[0] == 0
    code, out, _ = run_cli(capsys, "eval", str(run))
    assert code == 0
    evaluated = json.loads(out)["test/acc"]
    data = load_images("digits")  # the test images, read before the data loaders are taken away

    def no_data(*args, **kwargs):
        raise AssertionError("paradigms.load read a dataset")

    from paradigms.data import registry

    monkeypatch.setattr(registry.DatasetInfo, "reader_function", no_data)  # every dataset is read through it
    net = paradigms.load(run)
    assert not net.training and net.classes == [str(i) for i in range(10)] and net.input_shape == (1, 8, 8)
    assert test_accuracy(net, data) == evaluated == json.loads((run / "final.json").read_text())["test/acc"]
    card = json.loads((run / "model.json").read_text())
    assert card["recipe"] == "supervised" and card["mean"] == pytest.approx(list(data.mean))
    # the statistics are the network's own buffers, saved with its weights
    assert torch.allclose(net.standardize.mean.flatten(), torch.tensor(data.mean))


@pytest.mark.parametrize("policy", ["[]", "[standard, {cutout: {size: 2}}]"])
def test_a_network_fed_unit_pixels_reproduces_its_runs_accuracy_with_and_without_augmentation(tmp_path, policy):
    """The network's input scale is [0, 1] whatever the run did: augmentation or not (it used to differ)."""
    sets = ["train.epochs=6", "train_size=800", "model.width=1", f"augment={policy}"]
    final = Trainer(config("supervised", sets), tmp_path / "run", progress=False).fit()
    assert final["test/acc"] > 0.6
    net = paradigms.load(tmp_path / "run")
    assert test_accuracy(net, load_images("digits")) == final["test/acc"]
    # fed standardised pixels instead, the same network is measurably worse: the scale really is [0, 1]
    data = load_images("digits")
    wrong = (data.test_x.float() / 255 - data.mean[0]) / data.std[0]
    acc = (net(wrong).argmax(1) == data.test_y).float().mean().item()
    assert acc < final["test/acc"] - 0.05


def test_load_works_for_the_numpy_backprop_network_and_names_bad_folders(tmp_path):
    result = paradigms.run("backprop", out=tmp_path / "bp", sets=["train.epochs=3", "backprop.compare=false"])
    net = result.load()
    assert isinstance(net, nn.Module) and net.input_shape == (1, 8, 8)
    assert test_accuracy(net, load_images("digits")) == pytest.approx(result.metrics["test/acc"], abs=2 / 360)
    with pytest.raises(UserError, match="not a run folder"):
        paradigms.load(tmp_path / "nowhere")
    (tmp_path / "bp" / "model.json").write_text("{not json")
    with pytest.raises(UserError, match="model.json is corrupt"):
        paradigms.load(tmp_path / "bp")


# -- the engine: metrics that differ between steps, loss checks, exact resume ---------------------------
class Alternating(recipes.Recipe):
    """A toy two-player recipe: ``a`` is reported on even steps, ``b`` on odd ones (a GAN's k-step updates);
    ``loss_g`` turns NaN at step ``nan_at``."""

    name, family, measures = "alternating-test", "test", "nothing"
    nan_at = None

    class Config(configlib.RecipeConfig):
        recipe: str = "alternating-test"

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.net = nn.Linear(2, 1)
        self.modules = {"net": self.net}
        self.optimizers = {"opt": torch.optim.SGD(self.net.parameters(), lr=0.01)}

    steps_per_epoch = 10

    def batches(self, epoch, start=0):
        return range(start, 10)

    def train_step(self, batch, step):
        loss = self.net(torch.ones(1, 2)).pow(2).mean()
        optim.step(self.optimizers["opt"], loss)
        out = {"loss": loss.detach(), "lr": 0.01 * (step + 1)}
        out["a" if step % 2 == 0 else "b"] = float(step)
        out["loss_g"] = float("nan") if step == self.nan_at else 1.0
        return out

    def evaluate(self):
        return {"w": float(self.net.weight.detach().sum())}


def test_each_metric_is_averaged_over_the_steps_that_reported_it(tmp_path, monkeypatch):
    monkeypatch.setitem(recipes.REGISTRY, "alternating-test", Alternating)
    cfg = Alternating.Config(train={"epochs": 1, "log_every": 4})
    Trainer(cfg, tmp_path / "alt", progress=False).fit()
    rows = [json.loads(line) for line in (tmp_path / "alt" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    # steps 0-3: a at 0 and 2, b at 1 and 3; steps 4-7: a at 4, 6; b at 5, 7; steps 8-9: a at 8, b at 9
    assert [(r["step"], r["a"], r["b"]) for r in train] == [(4, 1.0, 2.0), (8, 5.0, 6.0), (10, 8.0, 9.0)]
    assert [r["lr"] for r in train] == pytest.approx([0.04, 0.08, 0.10])  # the rate the recipe reported last


def test_a_nan_in_any_loss_metric_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    class Diverging(Alternating):
        nan_at = 13

    monkeypatch.setitem(recipes.REGISTRY, "alternating-test", Diverging)
    cfg = Alternating.Config(train={"epochs": 3, "log_every": 2, "checkpoint_every_s": 1e-6})
    with pytest.raises(NonFiniteLoss, match="non-finite loss at step 14"):
        Trainer(cfg, tmp_path / "nan", progress=False).fit()
    pointer = json.loads((tmp_path / "nan" / "checkpoints" / "latest.json").read_text())
    assert 0 < pointer["step"] <= 12  # the last good one, saved before the bad flush
    assert not (tmp_path / "nan" / "final.json").exists()


class Stop(Exception):
    pass


def interrupted_then_resumed(tmp_path, recipe: str, sets: list[str], stop_at: int) -> tuple[dict, Trainer]:
    """Train until ``stop_at`` steps are done (the process dies there), then resume in a new Trainer."""
    cfg = config(recipe, [*sets, "train.checkpoint_every_s=0.000001", "train.log_every=1"])
    trainer = Trainer(cfg, tmp_path / "cut", progress=False)
    step_fn = trainer.recipe.train_step

    def dying(batch, step):
        if step == stop_at:
            raise Stop
        return step_fn(batch, step)

    trainer.recipe.train_step = dying
    with pytest.raises(Stop):
        trainer.fit()
    assert json.loads((tmp_path / "cut" / "checkpoints" / "latest.json").read_text())["step"] == stop_at
    resumed = Trainer(configlib.validate(type(cfg), configlib.load_yaml(tmp_path / "cut" / "config.yaml")),
                      tmp_path / "cut", resume=True, progress=False)
    return resumed.fit(), resumed


@pytest.mark.parametrize("recipe,sets,stop_at", [
    ("backprop", ["train.epochs=3"], 50),  # numpy MLPs whose SGD velocity is extra state
    ("supervised", ["train.epochs=2", "train_size=320", "train.batch_size=32", "augment=[standard]"], 13),  # batch norm
])
def test_exact_resume_of_extra_state_and_of_buffers(tmp_path, recipe, sets, stop_at):
    whole = Trainer(config(recipe, [*sets, "train.log_every=1"]), tmp_path / "whole", progress=False)
    expected = whole.fit()
    final, resumed = interrupted_then_resumed(tmp_path, recipe, sets, stop_at)
    assert final == expected
    a, b = whole.recipe.modules, resumed.recipe.modules
    for name in a:
        for (k, x), (_, y) in zip(a[name].state_dict().items(), b[name].state_dict().items()):
            assert torch.equal(x, y), f"{name}.{k} differs after the resume"
    buffers = [k for k, _ in a["model"].named_buffers()]
    assert buffers and (recipe != "supervised" or any("running_mean" in k for k in buffers))


# -- shared training parts ----------------------------------------------------------------------------
def test_optimiser_builder_schedules_clipping_and_ema():
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    adam = optim.build_optimizer(net.parameters(), optim.OptimConfig(name="adam", betas=(0.5, 0.9), weight_decay=0.1))
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["betas"] == (0.5, 0.9)
    decays = {p.ndim: g["weight_decay"] for g in adam.param_groups for p in g["params"]}
    assert decays == {2: 0.1, 1: 0.0}  # no decay on biases and norm gains
    groups = [{"params": list(net[0].parameters()), "lr_scale": 0.1}, {"params": list(net[2].parameters())}]
    sgd = optim.build_optimizer(groups, optim.OptimConfig(lr=1.0))
    assert optim.set_lr(sgd, 0.5) == 0.5
    assert sorted({g["lr"] for g in sgd.param_groups}) == [0.05, 0.5]
    with pytest.raises(UserError, match="every parameter is frozen"):
        optim.build_optimizer([p.requires_grad_(False) for p in nn.Linear(2, 2).parameters()], optim.OptimConfig())
    # clipping: the global norm after the step's backward is at most the limit, and the norm before is returned
    lin = nn.Linear(10, 1)
    opt = torch.optim.SGD(lin.parameters(), lr=0.0)
    norm = optim.step(opt, lin(torch.full((4, 10), 100.0)).sum(), grad_clip=1.0)
    after = torch.sqrt(sum((p.grad ** 2).sum() for p in lin.parameters()))
    assert norm > 100 and after == pytest.approx(1.0, rel=1e-4)
    # EMA: theta' <- m theta' + (1 - m) theta, buffers copied
    a, b = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        a.weight.fill_(1.0), b.weight.fill_(3.0), b.running_mean.fill_(7.0)
    optim.ema_update(a, b, 0.75)
    assert torch.allclose(a.weight, torch.full((3,), 1.5)) and torch.equal(a.running_mean, b.running_mean)
    with pytest.raises(UserError, match="same architecture"):
        optim.ema_update(nn.Linear(2, 2), nn.Linear(3, 2), 0.5)


def test_grad_clip_is_applied_by_the_supervised_recipe(tmp_path):
    sets = ["train.epochs=1", "train_size=256", "model.width=1", "train.eval_every=0", "train.figures=false"]
    free = Trainer(config("supervised", sets), tmp_path / "free", progress=False)
    free.fit()
    clipped = Trainer(config("supervised", [*sets, "train.grad_clip=0.001"]), tmp_path / "clip", progress=False)
    clipped.fit()
    start = Trainer(config("supervised", [*sets, "train.epochs=0"]), tmp_path / "start", progress=False).recipe.net
    moved = {k: (clipped.recipe.net.state_dict()[k] - v).abs().max() for k, v in start.state_dict().items()
             if v.is_floating_point() and "running" not in k and "standardize" not in k}
    free_moved = {k: (free.recipe.net.state_dict()[k] - v).abs().max() for k, v in start.state_dict().items()
                  if k in moved}
    assert sum(moved.values()) < 0.1 * sum(free_moved.values())  # tiny steps: the norm was clipped
    with pytest.raises(UserError, match="grad_clip"):
        Trainer(config("backprop", ["train.grad_clip=1"]), tmp_path / "bp", progress=False)


GATHER = """
import os, torch, torch.distributed as dist
from paradigms.engine import Context
ctx = Context.create(device="cpu")
x = torch.full((2, 3), float(ctx.rank), requires_grad=True)
g = ctx.all_gather(x)
assert g.shape == (4, 3) and g[:2].eq(0).all() and g[2:].eq(1).all(), g
(g * torch.arange(4.0).view(4, 1)).sum().backward()
own = torch.arange(4.0)[2 * ctx.rank: 2 * ctx.rank + 2].view(2, 1).expand(2, 3)
assert torch.equal(x.grad, own), x.grad  # gradients flow into this rank's own part
ctx.close()
open(os.path.join(os.environ["GATHER_OUT"], f"ok-{ctx.rank}"), "w").close()  # each rank: its checks passed
"""


def test_all_gather_across_two_processes(tmp_path):
    from paradigms.engine import Context

    t = torch.randn(3, 2)
    assert Context.create(device="cpu").all_gather(t) is t  # one process: nothing to gather
    (tmp_path / "gather.py").write_text(GATHER)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", str(tmp_path / "gather.py")],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "GATHER_OUT": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("ok-*")) == ["ok-0", "ok-1"]


# -- plugins and the package's face ----------------------------------------------------------------------
def test_every_paradigm_package_brings_its_own_recipes_and_commands():
    from paradigms.cli import build_app
    from paradigms.plugins import plugins

    names = {p.__name__ for p in plugins()}
    assert {"paradigms.supervised.plugin", "paradigms.transfer.plugin", "paradigms.augment.plugin"} <= names
    assert {"supervised", "backprop", "finetune"} <= set(recipes.all_recipes())
    commands = {c.name for c in build_app().registered_commands}
    assert {"list", "run", "eval", "report", "config", "datasets", "augment"} <= commands


def test_importing_the_package_leaves_matplotlibs_backend_alone():
    """A notebook's inline plots must survive `import paradigms...` (the package once forced Agg on import)."""
    code = ("import matplotlib; before = matplotlib.get_backend(); "
            "import paradigms.engine, paradigms.supervised.classify, paradigms.transfer.recipe, paradigms.evaluate; "
            "import paradigms.augment.figures; print(before, matplotlib.get_backend())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "MPLBACKEND": "svg"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["svg", "svg"]


def test_top_level_exports(capsys):
    assert callable(paradigms.load) and callable(paradigms.run) and paradigms.Trainer is Trainer
    assert callable(paradigms.transfer.transfer)
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"paradigms {paradigms.__version__}"
