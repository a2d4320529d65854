"""The engine: determinism, resume after SIGKILL, DDP, checkpoints, config layering, loaders."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from paradigms import config as configlib
from paradigms import recipes
from paradigms.data import index_batches
from paradigms.engine import Trainer
from paradigms.engine import checkpoint as ckpt
from paradigms.errors import CheckpointError, UserError

SMALL = ["train.epochs=3", "train_size=512", "model.width=1", "train.batch_size=64"]


def config(recipe="supervised", sets=(), **flags):
    return configlib.resolve(recipes.get(recipe), "quick", None, list(sets), flags)


def trained_once(tmp_path_factory, name: str, sets, recipe: str = "supervised") -> Path:
    """A run for a module-scoped fixture: trained once in its own folder, offline, with its own cache (the autouse
    isolation of conftest.py does not reach module fixtures); returns the run folder."""
    d = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PARADIGMS_OFFLINE", "1")
        mp.setenv("XDG_CACHE_HOME", str(d / "cache"))
        Trainer(config(recipe, sets), d / "run", progress=False).fit()
    return d / "run"


def train(tmp_path, name, sets=SMALL, **flags):
    cfg = config("supervised", sets, **flags)
    return Trainer(cfg, tmp_path / name, progress=False).fit()


def test_same_seed_same_metrics_other_seed_other_metrics(tmp_path):
    a = train(tmp_path, "a", seed=3)
    b = train(tmp_path, "b", seed=3)
    c = train(tmp_path, "c", seed=4)
    assert a == b
    assert a != c
    assert a["test/acc"] > 0.8  # it learned something in 3 short epochs


def test_run_folder_layout(tmp_path):
    train(tmp_path, "run")
    run = tmp_path / "run"
    for name in ("config.yaml", "metrics.jsonl", "final.json", "report.html", "figures/curves.png",
                 "figures/confusion.png", "checkpoints/latest.json"):
        assert (run / name).is_file(), name
    assert list((run / "tb").glob("events.out.tfevents.*"))
    pointer = json.loads((run / "checkpoints/latest.json").read_text())
    assert (run / "checkpoints" / pointer["weights"]).suffix == ".safetensors"
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2 and "test/acc" in html and "recipe: supervised" in html
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"train", "eval", "final"} <= {r["split"] for r in rows}
    # config.yaml is the fully resolved config: loading it gives back the same config
    cfg = configlib.validate(recipes.get("supervised").Config, configlib.load_yaml(run / "config.yaml"))
    assert cfg.train_size == 512 and cfg.model.name == "lenet5"


RESUME_SETS = ["train.epochs=6", "train_size=768", "model.width=2", "train.batch_size=32",
               "train.checkpoint_every_s=0.1", "train.log_every=4"]
RESUME_STEPS = 6 * 768 // 32


def cli(*args, env=None, **kw):
    return subprocess.Popen([sys.executable, "-m", "paradigms", *args], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_resume_after_sigkill_gives_the_same_final_metrics(tmp_path):
    ref = cli("run", "supervised", "--quiet", "--out", str(tmp_path / "ref"), *sum((["--set", s] for s in RESUME_SETS), []))
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    expected = json.loads((tmp_path / "ref" / "final.json").read_text())

    run_dir = tmp_path / "killed"
    proc = cli("run", "supervised", "--quiet", "--out", str(run_dir), *sum((["--set", s] for s in RESUME_SETS), []))
    pointer = run_dir / "checkpoints" / "latest.json"
    deadline = time.time() + 240
    kills = 0
    while time.time() < deadline and proc.poll() is None:
        if pointer.is_file():
            step = json.loads(pointer.read_text())["step"]
            if 0 < step < RESUME_STEPS:  # killed after at least one checkpoint, in the middle of the run (not the last)
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert kills == 1, "the run ended before it could be killed: make it longer"
    assert not (run_dir / "final.json").exists()
    resumed = cli("run", "--resume", str(run_dir), "--quiet")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert json.loads((run_dir / "final.json").read_text()) == expected
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["split"] == "train"]
    assert steps == sorted(set(steps)), "metrics.jsonl repeats or loses steps after the resume"


def test_torchrun_ddp_two_processes_on_cpu(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "ddp"
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "paradigms", "run",
                           "supervised", "--quiet", "--device", "cpu", "--out", str(out),
                           "--set", "train.epochs=3", "--set", "train.batch_size=64"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = json.loads((out / "final.json").read_text())
    assert final["test/acc"] > 0.9
    # rank 0 alone wrote: one copy of each line, and the summary is printed once
    assert proc.stdout.count("run folder:") == 1
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len([r for r in rows if r["split"] == "final"]) == 1
    # both ranks trained the same weights: evaluating the checkpoint in one process agrees
    from paradigms.engine import evaluate_run

    assert evaluate_run(out, "cpu")["test/acc"] == pytest.approx(final["test/acc"], abs=1e-6)


PROBE = """
import json, os, sys, torch
from paradigms import cli
from paradigms.supervised.classify import Supervised

train_step, draws = Supervised.train_step, []

def probe(self, batch, step):  # what the augmentation would draw at this step
    draws.append(float(torch.rand(())))
    return train_step(self, batch, step)

Supervised.train_step = probe
try:
    cli.main(sys.argv[1:])
finally:
    with open(os.path.join(os.environ["PROBE_OUT"], "draws-" + os.environ["RANK"] + ".json"), "w") as f:
        json.dump(draws, f)
"""


def test_ddp_ranks_draw_their_own_augmentations(tmp_path):
    """Under DDP each rank's random stream differs (else every rank crops its images alike)."""
    torchrun = Path(sys.executable).with_name("torchrun")
    (tmp_path / "probe.py").write_text(PROBE)
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(tmp_path / "probe.py"),
                           "run", "supervised", "--quiet", "--device", "cpu", "--out", str(tmp_path / "run"),
                           "--set", "train.epochs=1", "--set", "train.batch_size=64", "--set", "train_size=512"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "PROBE_OUT": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"draws-{r}.json").read_text()) for r in range(2))
    assert len(r0) == len(r1) > 1
    assert all(a != b for a, b in zip(r0, r1)), "ranks drew the same random numbers"
    assert len(set(r0)) == len(r0)


def test_data_are_sharded_by_rank_without_overlap():
    n, b = 103, 16
    ranks = [index_batches(n, b, seed=1, epoch=2, rank=r, world=2) for r in range(2)]
    single = index_batches(n, b, seed=1, epoch=2)
    assert len(ranks[0]) == len(ranks[1]) == len(single) == n // b
    for g, (r0, r1) in enumerate(zip(*ranks)):
        assert sorted(torch.cat([r0, r1]).tolist()) == sorted(single[g].tolist())
        assert not set(r0.tolist()) & set(r1.tolist())
    assert not torch.equal(torch.cat(single), torch.cat(index_batches(n, b, seed=1, epoch=3)))


# -- checkpoints ----------------------------------------------------------------------------------
def test_checkpoint_round_trip_and_corruption(tmp_path):
    m = nn.Linear(3, 2)
    d = tmp_path / "ck"
    ckpt.save(d, 5, ckpt.flat_weights({"m": m}), {"step": 5, "rng": ckpt.rng_state()})
    weights, state, step = ckpt.load(d)
    assert step == 5 and torch.equal(weights["m.weight"], m.weight.detach())
    m2 = nn.Linear(3, 2)
    ckpt.load_weights({"m": m2}, weights, "test")
    assert torch.equal(m2.weight, m.weight)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        ckpt.load_weights({"m": nn.Linear(4, 2)}, weights, "test")
    wfile = d / json.loads((d / "latest.json").read_text())["weights"]
    wfile.write_bytes(wfile.read_bytes()[:-7])
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt.load(d)
    (d / "latest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="pointer"):
        ckpt.load(d)


def test_old_checkpoints_are_pruned_and_rng_restored(tmp_path):
    d = tmp_path / "ck"
    for s in range(1, 5):
        ckpt.save(d, s, {"x": torch.zeros(1)}, {"rng": ckpt.rng_state()}, keep=2)
    assert sorted(p.name for p in d.glob("*.safetensors")) == ["step-00000003.safetensors", "step-00000004.safetensors"]
    torch.manual_seed(0)
    state = ckpt.rng_state()
    a = torch.rand(3)
    ckpt.set_rng_state(state)
    assert torch.equal(torch.rand(3), a)


# -- config layering ------------------------------------------------------------------------------
def test_config_layers_and_errors(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("optim:\n  lr: 0.05\ntrain:\n  epochs: 7\n")
    cfg = configlib.resolve(recipes.get("supervised"), "quick", f, ["train.epochs=9", "augment=[flip, crop]"],
                            {"seed": 11, "dataset": "digits"})
    assert (cfg.optim.lr, cfg.train.epochs, cfg.augment, cfg.seed) == (0.05, 9, ["flip", "crop"], 11)
    assert cfg.model.name == "lenet5"  # from the digits quick preset
    with pytest.raises(UserError, match=r"unknown config key 'optim.lrr'; did you mean 'optim.lr'"):
        config(sets=["optim.lrr=1"])
    with pytest.raises(UserError, match=r"optim.lr = -1.*valid: > 0"):
        config(sets=["optim.lr=-1"])
    with pytest.raises(UserError, match="expected key=value"):
        config(sets=["optim.lr"])
    # one key of a section whose defaults are the recipe's own (the VAE's Adam, a GAN's optimisers): the rest stay
    vae = config("vae", ["optim.lr=0.005"])
    assert (vae.optim.name, vae.optim.lr, vae.optim.weight_decay, vae.optim.schedule) == ("adam", 0.005, 0.0, "constant")
    gan = config("gan", ["optim_d.lr=0.01", "optim_g.betas=[0.0, 0.9]"])
    assert (gan.optim_d.name, gan.optim_d.lr, gan.optim_d.betas) == ("adam", 0.01, (0.5, 0.999))
    assert (gan.optim_g.name, gan.optim_g.lr, gan.optim_g.betas) == ("adam", 2e-4, (0.0, 0.9))
    ae = config("autoencoder", ["model.width=3"])
    assert (ae.model.name, ae.model.hidden, ae.model.width) == ("mlp", [256, 128], 3)


# -- the Python API: a user's own recipe on their own module runs in the same engine ----------------
class Ridge(recipes.Recipe):
    name, family, measures = "ridge-test", "test", "mse"

    class Config(configlib.RecipeConfig):
        recipe: str = "ridge-test"

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(256, 4, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
        self.net = nn.Linear(4, 1)
        self.modules = {"net": self.net}
        self.optimizers = {"opt": torch.optim.SGD(self.net.parameters(), lr=0.1)}

    steps_per_epoch = 8

    def batches(self, epoch, start=0):
        for i in range(start, 8):
            yield self.x[i * 32:(i + 1) * 32], self.y[i * 32:(i + 1) * 32]

    def train_step(self, batch, step):
        x, y = batch
        loss = ((self.net(x).squeeze(1) - y) ** 2).mean()
        self.optimizers["opt"].zero_grad()
        loss.backward()
        self.optimizers["opt"].step()
        return {"loss": loss.detach()}

    def evaluate(self):
        with torch.no_grad():
            return {"mse": float(((self.net(self.x).squeeze(1) - self.y) ** 2).mean())}


def test_a_users_recipe_runs_in_the_engine(tmp_path, monkeypatch):
    monkeypatch.setitem(recipes.REGISTRY, "ridge-test", Ridge)
    cfg = Ridge.Config(train={"epochs": 20})
    final = Trainer(cfg, tmp_path / "ridge", progress=False).fit()
    assert final["mse"] < 1e-3
    assert (tmp_path / "ridge" / "report.html").is_file()
