"""Adversarial training and certified robustness by randomized smoothing (issue 13)."""

from __future__ import annotations

import json
import math
from statistics import NormalDist

import pytest
import torch
from torch import nn

import paradigms
from paradigms import augment
from paradigms.adversarial import training
from paradigms.adversarial.smoothing import ABSTAIN, Smooth, lower_confidence_bound, radius
from paradigms.engine import Trainer

from .test_cli import error_line, run_cli
from .test_engine import config, trained_once


class Constant(nn.Module):
    """Always class ``c`` of ``k``, whatever the input."""

    def __init__(self, c: int, k: int = 3):
        super().__init__()
        self.c, self.k = c, k

    def forward(self, x):
        out = torch.zeros(len(x), self.k)
        out[:, self.c] = 1
        return out


class Linear2(nn.Module):
    """Two classes split by the hyperplane w.x + b = 0 (class 1 on the positive side)."""

    def __init__(self, w: torch.Tensor, b: float):
        super().__init__()
        self.w, self.b = w.flatten(), b

    def forward(self, x):
        s = x.flatten(1) @ self.w + self.b
        return torch.stack([-s, s], 1)

    def distance(self, x) -> float:
        return abs(float(x.flatten() @ self.w + self.b)) / float(self.w.norm())


def test_the_radius_is_sigma_times_the_normal_quantile_of_the_clopper_pearson_bound():
    # k = n: the one-sided Clopper-Pearson bound solves p^n = alpha, so pA = alpha^(1/n) by hand
    n, alpha, sigma = 100, 0.001, 0.5
    c, r = Smooth(Constant(2), 3, sigma).certify(torch.zeros(1, 4, 4), n0=10, n=n, alpha=alpha, batch_size=64)
    assert c == 2
    assert r == pytest.approx(sigma * NormalDist().inv_cdf(alpha ** (1 / n)), rel=1e-9)
    # k < n: the bound p solves P(Binomial(n, p) >= k) = alpha; check that tail at the computed p directly
    k, n = 970, 1000
    p = lower_confidence_bound(k, n, alpha)
    tail = sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k, n + 1))
    assert tail == pytest.approx(alpha, rel=1e-6)
    assert radius(p, 0.25) == pytest.approx(0.25 * NormalDist().inv_cdf(p), rel=1e-9)


def test_the_smoothed_classifier_abstains_when_the_vote_is_split():
    w = torch.zeros(16)
    w[0] = 1.0  # class by the sign of one pixel: at x = 0 the noise splits the vote 50/50
    smooth = Smooth(Linear2(w, 0.0), 2, sigma=0.5)
    torch.manual_seed(0)
    assert smooth.predict(torch.zeros(1, 4, 4), n=2000, alpha=0.001) == ABSTAIN
    assert smooth.certify(torch.zeros(1, 4, 4), n0=100, n=2000, alpha=0.001) == (ABSTAIN, 0.0)
    # far on one side, it answers
    assert smooth.predict(torch.full((1, 4, 4), 0.0).index_fill_(2, torch.tensor([0]), 1.0), 2000, 0.001) == 1


def test_a_linear_classifiers_certified_radius_is_below_its_exact_distance_and_close_with_large_n():
    torch.manual_seed(1)
    w = torch.randn(1, 6, 6)
    model, sigma = Linear2(w, 0.3), 0.5
    xs = torch.rand(6, 1, 6, 6) * 0.2
    smooth = Smooth(model, 2, sigma)
    for (c, r), x in zip(smooth.certify_many(xs, n0=100, n=100_000, alpha=0.001, batch_size=5000), xs):
        d = model.distance(x)
        # for a linear f, g = f and pA = Phi(d / sigma): the exact radius is d
        assert c == int(model(x[None]).argmax()) or c == ABSTAIN
        assert r <= d + 1e-9
        if d > 0.2 * sigma:  # well inside a class, 100,000 samples get within a tenth of sigma
            assert r >= d - 0.1 * sigma


def test_a_point_certified_at_radius_r_keeps_its_label_under_perturbations_smaller_than_r():
    torch.manual_seed(2)
    w = torch.randn(1, 5, 5)
    model, sigma = Linear2(w, 1.0), 0.4
    x = torch.rand(1, 5, 5)
    smooth = Smooth(model, 2, sigma)
    c, r = smooth.certify(x, n0=100, n=20_000, alpha=0.001)
    assert c != ABSTAIN and r > 0
    for _ in range(20):
        d = torch.randn_like(x)
        x2 = x + d / d.norm() * r * float(torch.rand(())) * 0.999
        assert smooth.predict(x2, n=2000, alpha=0.001) in (c, ABSTAIN)
        assert int(model(x2[None]).argmax()) == c  # the exact classifier too


def test_the_training_noise_differs_between_two_steps_and_has_the_asked_sigma():
    policy = augment.build([{"gaussian_noise": {"sigma": 0.5}}], "digits", 1)
    x = torch.full((64, 1, 8, 8), 0.5)
    a, b = policy(x), policy(x)
    assert not torch.equal(a, b)
    assert float((a - x).std()) == pytest.approx(0.5, rel=0.05)
    assert float(a.min()) < 0 and float(a.max()) > 1  # not clipped: the smoothed classifier sees x + e
    with pytest.raises(Exception, match="sigma"):
        augment.build([{"gaussian_noise": {"sigma": 0}}], "digits", 1)


def flags(net: nn.Module):
    return [(m.training, tuple(p.requires_grad for p in m.parameters(recurse=False))) for m in net.modules()]


@pytest.mark.parametrize("method", ["fgsm-mix", "pgd", "fast-fgsm"])
def test_adversarial_training_steps_leave_the_flags_as_they_found_them(tmp_path, method):
    cfg = config("supervised", [f"adversarial.method={method}", "adversarial.eps=0.1", "adversarial.steps=3",
                                "adversarial.check_n=64", "train.epochs=1"])
    recipe = Trainer(cfg, tmp_path / "run", progress=False).recipe
    net = recipe.net
    net.train()
    net.head.requires_grad_(False) if hasattr(net, "head") else None
    before = flags(net)
    x, y = next(iter(recipe.batches(0)))
    metrics = recipe.train_step((x, y), 0)
    assert math.isfinite(float(metrics["loss"]))
    assert flags(net) == before
    net.eval()
    before = flags(net)
    training.adversarial_examples(net, x, y, recipe.cfg.adversarial)
    assert flags(net) == before
    assert all(p.grad is None for p in net.parameters() if not p.requires_grad)


def test_the_collapse_guard_fires_on_a_made_up_collapse():
    guard = training.CollapseGuard(drop=0.2)
    assert [guard.update(a) for a in (0.30, 0.55, 0.70, 0.62)] == [False, False, False, False]
    assert guard.best == 0.70 and not guard.improved()
    assert guard.update(0.05) is True  # PGD accuracy fell from 70% to 5%: catastrophic overfitting


def test_fast_fgsm_stops_at_a_collapse_and_keeps_the_best_epochs_weights(tmp_path, monkeypatch):
    """A made-up collapse (the held-out PGD accuracy 0.5, 0.6, then 0.01): the run stops after epoch 3 with the
    weights of epoch 2, says why, and a resumed run does not train on."""
    from paradigms.supervised import classify

    seen = iter([0.5, 0.6, 0.01, 0.9, 0.9])
    weights = {}
    real = classify.Supervised.end_epoch

    def end_epoch(self, epoch):
        weights[epoch] = {k: v.clone() for k, v in self.net.state_dict().items()}
        return real(self, epoch)

    monkeypatch.setattr(training, "robust_accuracy", lambda *a, **k: next(seen))
    monkeypatch.setattr(classify.Supervised, "end_epoch", end_epoch)
    cfg = config("supervised", ["adversarial.method=fast-fgsm", "adversarial.eps=0.1", "adversarial.check_n=64",
                                "adversarial.eval_n=0", "train.epochs=5"])
    run = tmp_path / "run"
    Trainer(cfg, run, progress=False).fit()
    assert sorted(weights) == [1, 2, 3]
    note = (run / "notes" / "stopped.txt").read_text()
    assert "catastrophic overfitting at epoch 3" in note and "epoch 2" in note
    kept = paradigms.load(run).state_dict()
    assert all(torch.equal(kept[k], v) for k, v in weights[2].items())
    assert any(json.loads(line)["split"] == "stopped" for line in (run / "metrics.jsonl").read_text().splitlines())
    Trainer(cfg, run, resume=True, progress=False).fit()
    assert sorted(weights) == [1, 2, 3]  # nothing more trained


def test_an_adversarially_trained_run_resists_pgd_better_and_draws_its_examples(tmp_path):
    """PGD training on digits (eps 0.1): robust accuracy well above the standard network's, a figure in the report."""
    sets = ["train.epochs=6", "adversarial.eval_n=300", "adversarial.eval_steps=10"]
    plain = Trainer(config("supervised", sets), tmp_path / "plain", progress=False).fit()
    robust_cfg = config("supervised", [*sets, "adversarial.method=pgd", "adversarial.eps=0.1", "adversarial.steps=5"])
    robust = Trainer(robust_cfg, tmp_path / "robust", progress=False).fit()
    net = paradigms.load(tmp_path / "plain")
    x, y = next(iter(Trainer(robust_cfg, tmp_path / "probe", progress=False).recipe.test_loader.epoch(0)))
    torch.manual_seed(0)
    plain_pgd = training.robust_accuracy(net, x[:300], y[:300], 0.1, 10)
    assert robust["test/pgd_acc"] > plain_pgd + 0.2, (robust, plain_pgd)
    assert robust["test/acc"] > 0.9 and plain["test/acc"] > 0.9
    assert (tmp_path / "robust" / "figures" / "adversarial_examples.png").is_file()


def test_adversarial_training_refuses_mixed_labels_and_a_zero_budget(tmp_path):
    from paradigms.errors import UserError

    with pytest.raises(UserError, match="mix"):
        Trainer(config("supervised", ["adversarial.method=pgd", "augment=[mixup]"]), tmp_path / "a", progress=False)
    with pytest.raises(Exception, match="eps > 0"):
        config("supervised", ["adversarial.method=pgd", "adversarial.eps=0"])


@pytest.fixture(scope="module")
def noisy_run(tmp_path_factory):
    """LeNet-5 on digits trained under Gaussian noise sigma 0.5."""
    return trained_once(tmp_path_factory, "smooth", ["train.epochs=10", "augment=[{gaussian_noise: {sigma: 0.5}}]"])


def test_the_certify_command_writes_a_table_resumes_and_draws_the_curve(noisy_run, capsys):
    args = ["certify", str(noisy_run), "--n", "400", "--n0", "20", "--skip", "30", "--alpha", "0.01"]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert "certified accuracy at radius 0 " in out
    table = next((noisy_run / "certify").glob("sigma0.5_n400_*.tsv"))
    lines = table.read_text().splitlines()
    assert lines[0].split("\t") == ["idx", "label", "predict", "radius", "correct", "time"]
    assert [int(line.split("\t")[0]) for line in lines[1:]] == list(range(0, 360, 30))
    from paradigms.engine.results import read_results

    kept = read_results(noisy_run)[-1]
    summary = kept.values
    assert summary["radii"][0] == 0 and 0.5 < summary["certified_acc"][0] <= 1
    assert all(a >= b for a, b in zip(summary["certified_acc"], summary["certified_acc"][1:]))
    assert kept.name == "certify-sigma0.5-n400" and (noisy_run / "results" / kept.figures[0]["file"]).is_file()
    assert kept.columns == ["L2 radius", "certified accuracy"] and kept.rows[0][0] == "0"

    def rows(text):  # every column but the seconds
        return [line.rsplit("\t", 1)[0] for line in text.splitlines()]

    # interrupted after 5 images (and a torn line): the same command finishes it with the same rows
    table.write_text("\n".join(lines[:6]) + "\n" + lines[6][:4])
    code, _, err = run_cli(capsys, *args)
    assert code == 0 and "continuing" in err
    assert rows(table.read_text()) == rows("\n".join(lines))
    # another skip reuses the rows it shares (each image's noise is seeded by its index): nothing new to certify
    code, out, err = run_cli(capsys, *args[:-4], "--skip", "60", "--alpha", "0.01")
    assert code == 0 and "continuing" in err and "6 of 6 images already certified" in err
    assert rows(table.read_text()) == rows("\n".join(lines))


def test_certify_bad_input_is_one_line_and_exit_2(noisy_run, capsys, tmp_path, monkeypatch):
    from paradigms import recipes

    from .test_adversarial import Regressor

    run = str(noisy_run)
    assert "sigma=0.0 is out of range" in error_line(capsys, "certify", run, "--sigma", "0")
    assert "sigma=-1.0 is out of range" in error_line(capsys, "certify", run, "--sigma", "-1")
    assert "alpha=1.5 is out of range" in error_line(capsys, "certify", run, "--alpha", "1.5")
    assert "alpha=0.0 is out of range" in error_line(capsys, "certify", run, "--alpha", "0")
    assert "n0=500 must be smaller than n=400" in error_line(capsys, "certify", run, "--n0", "500", "--n", "400")
    assert "n=0 is out of range" in error_line(capsys, "certify", run, "--n", "0")
    monkeypatch.setitem(recipes.REGISTRY, "regressor-test", Regressor)
    Trainer(Regressor.Config(train={"epochs": 1}), tmp_path / "reg", progress=False).fit()
    assert "is not a classifier" in error_line(capsys, "certify", str(tmp_path / "reg"), "--sigma", "0.5")
    assert "did not train with gaussian_noise" in error_line(capsys, "certify", str(tmp_path / "reg"))
