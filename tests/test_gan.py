"""GANs (issue 15): the losses against the paper's formulas, the techniques, the classifier-FD, the recipes."""

from __future__ import annotations

import json
import math
import signal
import time

import numpy as np
import pytest
import torch

from paradigms.gan import (HistoricalAverage, MinibatchDiscrimination, discriminator_loss, feature_matching_loss,
                           frechet_distance, generator_loss, real_fake_logit, with_fake_class)


def logit(p):
    return torch.log(p / (1 - p))


def test_the_losses_equal_the_papers_formulas_on_hand_set_discriminator_outputs():
    d_real, d_fake = torch.tensor([0.9, 0.6, 0.75]), torch.tensor([0.2, 0.5, 0.05])
    m = 3
    objective = (torch.log(d_real) + torch.log(1 - d_fake)).sum() / m            # (1/m) sum [log D(x) + log(1 - D(G(z)))]
    assert float(discriminator_loss(logit(d_real), logit(d_fake))) == pytest.approx(-float(objective), rel=1e-5)
    assert float(generator_loss(logit(d_fake), "minimax")) == pytest.approx(float(torch.log(1 - d_fake).mean()), rel=1e-5)
    assert float(generator_loss(logit(d_fake), "non-saturating")) == pytest.approx(float(-torch.log(d_fake).mean()),
                                                                                   rel=1e-5)
    # one-sided label smoothing: the real term is the cross-entropy against 0.9, the fake one unchanged
    smoothed = -(0.9 * torch.log(d_real) + 0.1 * torch.log(1 - d_real)).mean() - torch.log(1 - d_fake).mean()
    assert float(discriminator_loss(logit(d_real), logit(d_fake), 0.9)) == pytest.approx(float(smoothed), rel=1e-5)
    with pytest.raises(ValueError, match="minimax or non-saturating"):
        generator_loss(logit(d_fake), "wasserstein")


def test_the_minimax_generator_loss_saturates_where_the_non_saturating_one_does_not():
    # D rejects the samples confidently: D(G(z)) = sigmoid(-12) ~ 6e-6
    for kind, vanishes in (("minimax", True), ("non-saturating", False)):
        fake = torch.full((4,), -12.0, requires_grad=True)
        generator_loss(fake, kind).backward()
        g = fake.grad.abs().max().item()
        assert (g < 1e-5) if vanishes else (g > 0.2), (kind, g)          # d/dl: -sigmoid(l) vs -(1 - sigmoid(l))
    # where D is unsure both push the same way
    a, b = torch.zeros(4, requires_grad=True), torch.zeros(4, requires_grad=True)
    generator_loss(a, "minimax").backward()
    generator_loss(b, "non-saturating").backward()
    assert torch.allclose(a.grad, b.grad)


def test_feature_matching_is_zero_for_identical_batches_and_only_the_means_count():
    f = torch.randn(32, 16)
    assert float(feature_matching_loss(f, f.clone())) == 0.0
    assert float(feature_matching_loss(f, f[torch.randperm(32)])) == pytest.approx(0.0, abs=1e-10)   # same mean
    shifted = f + torch.arange(16.0)
    assert float(feature_matching_loss(f, shifted)) == pytest.approx(float((torch.arange(16.0) ** 2).sum()), rel=1e-5)


def test_the_frechet_distance_of_a_set_with_itself_is_zero_and_matches_a_direct_computation():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(size=(400, 8)) @ rng.normal(size=(8, 8)) + 0.5
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    mu_a, mu_b, sa, sb = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    direct = ((mu_a - mu_b) ** 2).sum() + np.trace(sa + sb - 2 * linalg.sqrtm(sa @ sb).real)
    assert frechet_distance(torch.tensor(a), torch.tensor(b)) == pytest.approx(direct, rel=1e-6)
    # two Gaussians with equal covariances: the squared distance of the means
    x = rng.normal(size=(20_000, 3))
    assert frechet_distance(x, x + [3.0, 0.0, 4.0]) == pytest.approx(25.0, rel=1e-6)
    with pytest.raises(ValueError, match="one width"):
        frechet_distance(a, b[:, :4])


def test_the_semi_supervised_discriminators_k_plus_1_logits_reduce_to_k_class_logits():
    torch.manual_seed(0)
    full = torch.randn(6, 11)                                            # a network with K + 1 = 11 outputs
    k_logits = full[:, :10] - full[:, 10:]                               # subtract the fake class's logit
    assert torch.allclose(with_fake_class(k_logits).softmax(1), full.softmax(1), atol=1e-6)   # the same softmax
    p_fake = full.softmax(1)[:, 10]
    d = torch.sigmoid(real_fake_logit(k_logits))                         # D(x) = Z / (Z + 1)
    assert torch.allclose(d, 1 - p_fake, atol=1e-6)
    z = k_logits.exp().sum(1)
    assert torch.allclose(d, z / (z + 1), atol=1e-6)
    # the class given real: the softmax of the K logits alone
    assert torch.allclose(full.softmax(1)[:, :10] / (1 - p_fake).unsqueeze(1), k_logits.softmax(1), atol=1e-6)


def test_minibatch_discrimination_sees_a_collapsed_batch_and_historical_averaging_penalises_drift():
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(8, kernels=4, kernel_dim=3)
    varied, collapsed = torch.randn(16, 8), torch.randn(1, 8).expand(16, 8)
    out_v, out_c = mbd(varied), mbd(collapsed)
    assert out_v.shape == (16, 12) and torch.equal(out_v[:, :8], varied)
    assert torch.allclose(out_c[:, 8:], torch.full((16, 4), 16.0))     # every c_b = exp(0) = 1, 16 of them
    assert (out_v[:, 8:] < out_c[:, 8:]).all()
    net = torch.nn.Linear(3, 2)
    ha = HistoricalAverage(net)
    assert float(ha.penalty().detach()) == 0.0
    with torch.no_grad():
        net.weight.add_(1.0)
    assert float(ha.penalty().detach()) == pytest.approx(6.0)                     # 6 weights moved by 1 from the average
    ha.update()                                                          # the average of theta_1 and theta_2
    assert float(ha.penalty().detach()) == pytest.approx(6 * 0.25)


def config(recipe, sets):
    from .test_engine import config as engine_config

    return engine_config(recipe, sets)


def test_a_gan_run_draws_its_figures_samples_and_measures_the_classifier_fd(tmp_path, capsys):
    from paradigms.engine import Trainer

    from .test_cli import run_cli

    Trainer(config("supervised", ["train.epochs=3"]), tmp_path / "clf", progress=False).fit()
    final = Trainer(config("gan", ["train.epochs=4", f"fd_classifier={tmp_path / 'clf'}", "fd_n=300",
                                   "loss=minimax"]), tmp_path / "gan", progress=False).fit()
    assert final["test/classifier_fd"] > final["test/classifier_fd_real"] > 0
    for f in ("samples", "progress", "interpolation", "game", "curves"):
        assert (tmp_path / "gan" / "figures" / f"{f}.png").is_file(), f
    rows = [json.loads(line) for line in (tmp_path / "gan" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert all(k in train[-1] for k in ("loss_d", "loss_g", "d_real", "d_fake", "g_grad_norm"))
    code, out, err = run_cli(capsys, "sample", str(tmp_path / "gan"), "--n", "9")
    assert code == 0 and "wrote 9 samples" in out, err
    import paradigms

    g = paradigms.load(tmp_path / "gan")
    assert g(torch.randn(5, g.card["latent"])).shape == (5, 1, 8, 8)


def test_k_discriminator_steps_per_generator_step(tmp_path):
    from paradigms.engine import Trainer

    trainer = Trainer(config("gan", ["train.epochs=1", "k=3", "train.log_every=1"]), tmp_path / "k3", progress=False)
    trainer.fit()
    rows = [json.loads(line) for line in (tmp_path / "k3" / "metrics.jsonl").read_text().splitlines()]
    d_steps = [r["step"] for r in rows if r["split"] == "train" and "loss_d" in r]
    g_steps = [r["step"] for r in rows if r["split"] == "train" and "loss_g" in r]
    assert d_steps == list(range(1, len(d_steps) + 1)) and g_steps == [s for s in d_steps if s % 3 == 0]


def test_a_discriminator_that_wins_outright_stops_the_run_keeping_the_checkpoint_from_before(tmp_path):
    from paradigms.engine import Trainer
    from paradigms.engine import checkpoint as ckpt
    from paradigms.errors import Diverged

    # a generator that barely learns against a fast discriminator: D wins outright within a few hundred steps
    sets = ["train.epochs=40", "optim_g.lr=1e-7", "optim_d.lr=5e-4", "diverge_steps=30", "train.log_every=5",
            "train.checkpoint_every_s=0.001"]
    trainer = Trainer(config("gan", sets), tmp_path / "lost", progress=False)
    with pytest.raises(Diverged) as err:
        trainer.fit()
    msg = str(err.value)
    assert "won outright since step" in msg and "30 steps in a row" in msg and "last good checkpoint" in msg
    assert "\n" not in msg
    kept = ckpt.read_pointer(tmp_path / "lost" / "checkpoints")["step"]
    assert 0 < kept <= err.value.since and f"(step {kept}) is kept" in msg
    steps = [int(p.name[5:13]) for p in (tmp_path / "lost" / "checkpoints").glob("step-*.safetensors")]
    assert max(steps) == kept


def test_a_killed_gan_resumes_exactly_with_its_two_optimisers(tmp_path):
    from .test_engine import cli

    sets = ["train.epochs=12", "train.checkpoint_every_s=0.3", "train.log_every=4", "historical_averaging=0.001"]
    args = sum((["--set", s] for s in sets), [])
    ref = cli("run", "gan", "--quiet", "--out", str(tmp_path / "ref"), *args)
    assert ref.wait(timeout=300) == 0, ref.stderr.read()
    expected = json.loads((tmp_path / "ref" / "final.json").read_text())
    run_dir = tmp_path / "killed"
    proc = cli("run", "gan", "--quiet", "--out", str(run_dir), *args)
    pointer = run_dir / "checkpoints" / "latest.json"
    deadline, killed = time.time() + 240, False
    while time.time() < deadline and proc.poll() is None:
        if pointer.is_file() and json.loads(pointer.read_text())["step"] > 0:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert killed, "the run ended before it could be killed: make it longer"
    state = torch.load(sorted((run_dir / "checkpoints").glob("*.state.pt"))[-1], weights_only=True)
    assert set(state["optimizers"]) == {"d", "g"}
    resumed = cli("run", "--resume", str(run_dir), "--quiet")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert json.loads((run_dir / "final.json").read_text()) == expected


def test_a_semi_supervised_gan_learns_from_few_labels_and_its_discriminator_is_a_classifier(tmp_path, capsys):
    import paradigms
    from paradigms.engine import Trainer

    from .test_cli import error_line, run_cli

    final = Trainer(config("semi-gan", ["train.epochs=8"]), tmp_path / "semi", progress=False).fit()
    assert final["test/error"] == pytest.approx(1 - final["test/acc"]) and final["test/acc"] > 0.6
    net = paradigms.load(tmp_path / "semi")
    assert net.classes == [str(c) for c in range(10)] and net(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    code, out, err = run_cli(capsys, "attack", str(tmp_path / "semi"), "--method", "fgsm", "--eps", "0,0.1",
                             "--n", "50")                                 # one pipeline: the attacks take it
    assert code == 0 and "eps 0.1: accuracy" in out, err
    alone = Trainer(config("semi-gan", ["train.epochs=2", "unsupervised_weight=0"]), tmp_path / "alone",
                    progress=False)
    assert "g" not in alone.recipe.optimizers and len(alone.recipe.lab_y) == 50
    assert torch.bincount(alone.recipe.lab_y).tolist() == [5] * 10       # labels / K of each class
    alone.fit()
    assert "trained no generator" in error_line(capsys, "sample", str(tmp_path / "alone"))


@pytest.mark.parametrize("recipe,sets,expected", [
    ("gan", ["latent=0"], "config latent = 0"),
    ("gan", ["k=0"], "config k = 0"),
    ("semi-gan", ["labels=5000"], "at most the 1,"),
    ("semi-gan", ["labels=55"], "multiple of the 10 classes"),
    ("semi-gan", ["labels=1430"], "smallest class has 139"),
    ("gan", ["fd_classifier=/nonexistent/run"], "not a run folder"),
])
def test_bad_gan_settings_are_one_line_and_exit_2(capsys, recipe, sets, expected):
    from .test_cli import error_line

    line = error_line(capsys, "run", recipe, *sum((["--set", s] for s in sets), []))
    assert expected in line, line


def test_dcgan_refuses_images_whose_sides_do_not_divide_by_4():
    from paradigms.gan.models import DCGANGenerator

    with pytest.raises(ValueError, match="divisible by 4"):
        DCGANGenerator(10, (1, 30, 30))
    assert math.prod(DCGANGenerator(10, (3, 32, 32), 4)(torch.randn(2, 10)).shape) == 2 * 3 * 32 * 32


def test_a_gan_trains_with_ddp_over_two_processes(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    from paradigms.engine import evaluate_run

    torchrun = Path(sys.executable).with_name("torchrun")
    out = tmp_path / "ddp"
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "paradigms", "run", "gan",
                           "--quiet", "--device", "cpu", "--out", str(out), "--set", "train.epochs=2"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    final = json.loads((out / "final.json").read_text())
    # its checkpoint, evaluated in one process, gives the final metrics the ranks printed
    again = evaluate_run(out, "cpu")
    assert again["test/d_real"] == pytest.approx(final["test/d_real"], abs=1e-6)
    assert again["test/d_fake"] == pytest.approx(final["test/d_fake"], abs=1e-6)


def test_virtual_batch_norm_makes_each_sample_independent_of_its_batch(tmp_path):
    from paradigms.engine import Trainer
    from paradigms.gan.models import DCGANGenerator, VirtualBatchNorm

    torch.manual_seed(0)
    for g in (DCGANGenerator(8, (1, 8, 8), width=4, virtual_bn=16), DCGANGenerator(8, (1, 8, 8), width=4)):
        g.train()
        z = torch.randn(3, 8)
        other = torch.cat([z[:1], torch.randn(2, 8)])
        same = torch.allclose(g(z)[0], g(other)[0], atol=1e-6)
        assert same == any(isinstance(m, VirtualBatchNorm) for m in g.modules())   # batch norm: the batch matters
    vbn = VirtualBatchNorm(3, n_ref=4)
    x = torch.randn(6, 3, 5, 5)
    y = vbn(x)
    ref = x[:4]
    mu, var = ref.mean((0, 2, 3), keepdim=True), ref.var((0, 2, 3), unbiased=False, keepdim=True)
    assert torch.allclose(y[:4], (ref - mu) / (var + 1e-5).sqrt(), atol=1e-5)          # the reference: its own stats
    own = x[4:5]
    m = (4 * mu + own.mean((2, 3), keepdim=True)) / 5
    s = (4 * ref.pow(2).mean((0, 2, 3), keepdim=True) + own.pow(2).mean((2, 3), keepdim=True)) / 5
    assert torch.allclose(y[4:5], (own - m) / (s - m**2 + 1e-5).sqrt(), atol=1e-5)    # Salimans et al.'s mixture
    trainer = Trainer(config("gan", ["train.epochs=1", "virtual_batchnorm=32"]), tmp_path / "vbn", progress=False)
    trainer.fit()                                                                      # the recipe trains with it
    from paradigms.engine import checkpoint as ckpt

    weights = ckpt.module_weights(tmp_path / "vbn" / "checkpoints", "generator")
    assert weights["net.z_ref"].shape == (32, trainer.cfg.latent)                      # the reference batch is kept
