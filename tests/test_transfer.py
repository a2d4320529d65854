"""Transfer learning: frozen means frozen, heads follow the class count, every encoder run loads, bad weights fail clearly."""

from __future__ import annotations

import json
import statistics

import pytest
import torch

import paradigms
from safetensors.torch import save_file
from torch import nn

from paradigms import recipes
from paradigms.engine import Trainer
from paradigms.errors import CheckpointError, UserError
from paradigms.transfer import apply_strategy, parse_strategy, transfer
from paradigms.weights import layers, read_weights
from paradigms.nets import NetConfig, build_net

from .test_engine import cli, config, trained_once

A, B = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A LeNet-5 trained on digits 0-4 (the source task)."""
    return trained_once(tmp_path_factory, "source", ["train.epochs=6", f"classes={A}"])


def finetune(tmp_path, source, sets=(), name="ft", **flags) -> Trainer:
    cfg = config("finetune", ["train.epochs=2", f"classes={B}", *sets], source=str(source) if source else None, **flags)
    return Trainer(cfg, tmp_path / name, progress=False)


def state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("strategy,frozen", [("freeze:2", 2), ("linear-probe", 4)])
def test_frozen_layers_stay_bit_identical_with_their_batchnorm_statistics(tmp_path, source, strategy, frozen):
    src, _ = read_weights(source)
    t = finetune(tmp_path, source, [f"transfer.strategy={strategy}"])
    t.fit()
    net = t.recipe.net
    names = [n for n, _ in layers(net)]
    after = state(net)
    for i, name in enumerate(names):
        keys = [k for k in after if k.startswith(name + ".")]
        same = all(torch.equal(after[k], src[k]) for k in keys)
        assert same == (i < frozen), f"{name}: frozen={i < frozen} but unchanged={same}"
        if i < frozen:
            assert all(not p.requires_grad and p.grad is None for p in dict(layers(net))[name].parameters())
    # LeNet's first layer has batch norm: its running statistics are those of the source
    assert torch.equal(after["blocks.0.1.running_mean"], src["blocks.0.1.running_mean"])
    assert torch.equal(after["blocks.0.1.num_batches_tracked"], src["blocks.0.1.num_batches_tracked"])
    # the head is new for a linear probe and trained in both cases
    assert not torch.equal(after["head.weight"], src["head.weight"])
    report = json.loads((tmp_path / "ft" / "transfer.json").read_text())
    assert [l["frozen"] for l in report["layers"][:-1]] == [i < frozen for i in range(len(names))]
    assert (tmp_path / "ft" / "figures" / "transfer.png").is_file()
    # paradigms.load gives the fine-tuned network itself, the source's input statistics with it
    loaded = paradigms.load(tmp_path / "ft")
    assert all(torch.equal(v, after[k]) for k, v in loaded.state_dict().items())
    assert json.loads((tmp_path / "ft" / "model.json").read_text())["mean"] == src["standardize.mean"].flatten().tolist()
    assert "transfer" in (tmp_path / "ft" / "report.html").read_text()


def test_head_is_recreated_when_the_class_count_changes(tmp_path, source):
    t = finetune(tmp_path, source, ["classes=null"])  # all ten digits; the source head has five outputs
    t.fit()
    report = json.loads((tmp_path / "ft" / "transfer.json").read_text())
    assert t.recipe.net.head.out_features == 10
    assert report["head"] == "new" and {"head.weight", "head.bias"} <= set(report["new"])
    assert {"head.weight", "head.bias"} <= set(report["skipped"])
    assert len(report["loaded"]) > 10 and not set(report["loaded"]) & set(report["new"])
    # same class count (another task): a new head by default; head: auto keeps the source's when it fits
    fresh = finetune(tmp_path, source, name="fresh")
    fresh.recipe.start()
    assert fresh.recipe.report.head == "new"
    same = finetune(tmp_path, source, ["transfer.head=auto"], name="same")
    same.recipe.start()
    assert same.recipe.report.head == "kept"
    src, _ = read_weights(source)
    assert torch.equal(same.recipe.net.head.weight, src["head.weight"])


def test_copy_layers_reinitialises_the_layers_above_like_yosinski(tmp_path, source):
    src, _ = read_weights(source)
    t = finetune(tmp_path, source, ["transfer.copy_layers=2", "transfer.strategy=freeze:2"])
    t.recipe.start()
    own = state(t.recipe.net)
    assert torch.equal(own["blocks.1.0.weight"], src["blocks.1.0.weight"])
    assert not torch.equal(own["blocks.2.1.weight"], src["blocks.2.1.weight"])
    assert t.recipe.report.head == "new" and "blocks.2.1.weight" in t.recipe.report.new


def test_every_encoder_recipe_run_is_a_transfer_source(tmp_path):
    bearing = {n: r for n, r in recipes.all_recipes().items() if r.encoder and issubclass(r, recipes.ImageRecipe)}
    assert {"supervised", "finetune"} <= set(bearing)
    for name in bearing:
        sets = ["train.epochs=1", "train_size=200", "train.figures=false"]      # no figures: the weights are the point
        Trainer(config(name, sets, dataset="digits"), tmp_path / name, progress=False).fit()
        t = finetune(tmp_path, tmp_path / name, ["train.epochs=1"], name=f"from-{name}")
        t.recipe.start()
        report = t.recipe.report  # every layer of the backbone came from the source (the head is new)
        assert report.loaded and all(layer["loaded"] for layer in report.layers if layer["name"] != "head"), name
    with pytest.raises(UserError, match="trains no encoder"):
        Trainer(config("backprop", ["train.epochs=1"]), tmp_path / "bp", progress=False).fit()
        finetune(tmp_path, tmp_path / "bp", name="from-bp")


def test_discriminative_learning_rates_scale_each_layer(tmp_path, source):
    net = build_net(NetConfig(name="lenet5", width=2), (1, 8, 8), 5)
    groups = apply_strategy(net, "freeze:1", lr_decay=0.5)
    assert [g["lr_scale"] for g in groups] == [0.25, 0.5, 1.0, 1.0]  # layers 2-4 (layer 1 frozen), then the head
    # the recipe: copied layers at backbone_lr (0.1) x lr_decay^(L-l), the head at lr
    t = finetune(tmp_path, source, ["transfer.lr_decay=0.5", "optim.schedule=constant", "optim.lr=0.04"])
    t.recipe.train_step(next(iter(t.recipe.batches(0))), 0)
    lrs = sorted({round(g["lr"], 6) for g in t.recipe.optimizers["opt"].param_groups})
    assert lrs == [0.0005, 0.001, 0.002, 0.004, 0.04]
    # Yosinski's protocol: layers above copy_layers are new and train at the full rate
    t = finetune(tmp_path, source, ["transfer.copy_layers=2", "optim.schedule=constant", "optim.lr=0.04"], name="y")
    t.recipe.train_step(next(iter(t.recipe.batches(0))), 0)
    assert sorted({round(g["lr"], 6) for g in t.recipe.optimizers["opt"].param_groups}) == [0.004, 0.04]


@pytest.mark.slow
def test_finetune_from_a_supervised_run_beats_scratch_on_a_small_target(tmp_path, shared_data):
    """MNIST digits 0-4 -> 5-9 with ten labels per class (Yosinski's A -> B split, made small).

    Needs real MNIST: on sklearn's 8x8 digits, five source classes of 720 images teach features that
    do not beat a fresh LeNet on 5-9 (measured: 0.87 vs 0.90 at ten labels per class), so that
    pair cannot show transfer helping.
    """
    common = ["train.eval_every=0", "train.figures=false"]
    flags = {"dataset": "mnist", "data_dir": str(shared_data)}
    src = tmp_path / "src"
    Trainer(config("supervised", [*common, f"classes={A}", "train_size=12000", "train.epochs=2"], **flags), src,
            progress=False).fit()
    sets = [*common, "labels_per_class=10", "train.epochs=40"]
    acc = {"scratch": [], "finetune": []}
    for seed in (0, 1):
        for how, source in (("scratch", None), ("finetune", src)):
            t = finetune(tmp_path, source, sets, name=f"{how}{seed}", seed=seed, **flags)
            acc[how].append(t.fit()["test/acc"])
    assert statistics.mean(acc["finetune"]) > statistics.mean(acc["scratch"]) + 0.03, acc


def test_transfer_api_on_a_users_own_module(tmp_path):
    def make(k):
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, k))

    torch.manual_seed(0)
    trained = make(10)
    torch.save({"state_dict": {"module." + k: v for k, v in trained.state_dict().items()}}, tmp_path / "w.pt")
    model = make(10)
    groups, report = transfer(model, tmp_path / "w.pt", "freeze:1", num_classes=3)
    assert model[4].out_features == 3 and report.head == "new"
    assert torch.equal(model[0].weight, trained[0].weight) and not model[0].weight.requires_grad
    assert model[1].weight.requires_grad and set(report.skipped) == {"4.weight", "4.bias"}
    assert {"0.weight", "1.weight", "1.running_mean"} <= set(report.loaded)
    model.train()
    model(torch.randn(8, 1, 8, 8))
    assert model[0].training is False  # a frozen layer stays in eval mode
    # renamed keys: a key_map puts them back
    save_file({"backbone." + k: v for k, v in trained.state_dict().items()}, str(tmp_path / "w.safetensors"))
    _, report = transfer(make(10), tmp_path / "w.safetensors", "linear-probe", key_map={"backbone.": ""})
    assert report.head == "new" and "0.weight" in report.loaded
    sgd = torch.optim.SGD([{"params": g["params"], "lr": 0.1 * g["lr_scale"]} for g in groups])
    assert len(sgd.param_groups) == len(groups)


def test_mismatched_missing_and_corrupt_weights_fail_clearly(tmp_path, source):
    other = build_net(NetConfig(name="lenet5", width=3), (1, 8, 8), 5)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(tmp_path / "wide.safetensors"))
    with pytest.raises(CheckpointError, match=r"shape mismatch: blocks\.0\.0\.weight source \(18, 1, 5, 5\)"):
        finetune(tmp_path, tmp_path / "wide.safetensors", name="wide").recipe.start()
    src, _ = read_weights(source)
    save_file({k: v for k, v in src.items() if not k.startswith("blocks.0.")}, str(tmp_path / "part.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing in the source: blocks\.0\.0\.weight, blocks\.0\.1\.weight"):
        finetune(tmp_path, tmp_path / "part.safetensors", name="part").recipe.start()
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "bad.pt").write_bytes(b"not a pickle")
    for bad in ("bad.safetensors", "bad.pt"):
        with pytest.raises(CheckpointError, match="cannot be read"):
            read_weights(tmp_path / bad)
    proc = cli("run", "finetune", "--quiet", "--from", str(tmp_path / "wide.safetensors"), "--out", str(tmp_path / "x"))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and err.strip().startswith("error: cannot transfer") and len(err.strip().splitlines()) == 1
    proc = cli("run", "supervised", "--quiet", "--from", str(source))
    assert proc.wait(timeout=60) == 2 and "--from is for recipes" in proc.stderr.read()


def test_strategy_names_and_ranges_are_checked(tmp_path):
    assert parse_strategy("finetune") == 0 and parse_strategy("freeze: 3") == 3 and parse_strategy({"freeze": 1}) == 1
    assert parse_strategy("linear-probe", 4) == 4
    with pytest.raises(UserError, match="valid: linear-probe, finetune, freeze:K"):
        config("finetune", ["transfer.strategy=freze:2"])
    with pytest.raises(UserError, match="the model has 4 layers; use freeze:0..4"):
        finetune(tmp_path, None, ["transfer.strategy=freeze:9"])
    with pytest.raises(UserError, match="does not exist"):
        finetune(tmp_path, tmp_path / "nowhere", name="nowhere").recipe.start()
