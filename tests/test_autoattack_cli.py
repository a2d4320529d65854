"""``paradigms attack --method autoattack`` and ``--checks``: the ensemble's lines, its result in the report, the sanity
checks of Carlini et al. 2019 failing on a masked gradient and passing on the plain network, bad input refused."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

import paradigms
from paradigms import recipes
from paradigms.engine import Trainer
from paradigms.engine.results import read_results

from .test_adversarial import Regressor
from .test_cli import error_line, run_cli
from .test_engine import trained_once

ENSEMBLE = ["APGD-CE", "APGD-T", "FAB-T", "Square"]
FAST = ["--n", "60", "--steps", "5", "--queries", "100"]  # a few seconds on 2 cores


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """LeNet-5 on 300 digits, 3 epochs: a weak but real classifier (8x8 images)."""
    return trained_once(tmp_path_factory, "autoattack", ["train.epochs=3", "train_size=300", "train.figures=false"])


class Rounded(nn.Module):
    """The network behind a rounding of its input to 8 bits: on 8-bit images the very same predictions, but a step
    function in front, so its input gradient is zero everywhere: a masked gradient, robust to PGD in appearance."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.classes, self.input_shape, self.card = net.classes, net.input_shape, net.card

    def forward(self, x):
        return self.net(torch.round(x * 255) / 255)


def test_autoattack_prints_each_attack_and_is_kept_in_the_report(run, capsys, tmp_path):
    r = tmp_path / "r"
    shutil.copytree(run, r)
    code, out, err = run_cli(capsys, "attack", str(r), "--method", "autoattack", "--eps", "0.1", *FAST)
    assert code == 0, err
    assert "clean accuracy" in out and "s in all" in out
    for name in ENSEMBLE:
        assert f"after {name}" in out and "it broke" in out, out
    kept, = read_results(r)
    assert kept.name == "attack-autoattack-linf" and kept.parameters["method"] == "autoattack"
    v = kept.values
    accs = [row["robust_acc"] for row in v["rows"]]
    assert [row["attack"] for row in v["rows"]] == ENSEMBLE
    assert v["clean_acc"] >= accs[0] and accs == sorted(accs, reverse=True) and accs[-1] == v["robust_acc"]
    assert v["clean_acc"] > v["robust_acc"]                       # eps 0.1 on an undefended network: it broke some
    n_right = round(v["clean_acc"] * v["n"])
    assert sum(row["broken"] for row in v["rows"]) == n_right - round(v["robust_acc"] * v["n"])
    assert kept.rows[0][0] == "clean" and [row[0] for row in kept.rows[1:]] == ENSEMBLE
    page = (r / "report.html").read_text()
    assert "AutoAttack (linf, eps 0.1) on 60 test images" in page and "APGD-T" in page
    assert all((r / "results" / f["file"]).is_file() for f in kept.figures)
    code, out, err = run_cli(capsys, "attack", str(r), "--method", "autoattack", "--eps", "0.5", "--norm", "l2",
                             *FAST)
    assert code == 0, err
    assert [k.name for k in read_results(r)] == ["attack-autoattack-linf", "attack-autoattack-l2"]


def test_the_checks_pass_on_the_plain_network_and_fail_on_a_masked_gradient(run, capsys, tmp_path, monkeypatch):
    from paradigms.adversarial.checks import sanity_checks
    from paradigms.evaluate import classifier
    from paradigms.evaluate.classifier import eval_images

    net = paradigms.load(run)
    (x, y), _ = eval_images(run, 60)
    plain = sanity_checks(net, x, y, 0.1, "linf", steps=5, restarts=2, queries=100)
    assert [c.name for c in plain] == ["large eps", "more effort", "black box"]
    assert all(c.passed for c in plain), plain
    masked = {c.name: c for c in sanity_checks(Rounded(net), x, y, 0.1, "linf", steps=5, restarts=2, queries=100)}
    assert not masked["black box"].passed and not masked["large eps"].passed, masked
    assert not net.training                                     # left in the mode it came in

    r = tmp_path / "r"
    shutil.copytree(run, r)
    code, out, err = run_cli(capsys, "attack", str(r), "--method", "autoattack", "--eps", "0.1", "--checks", *FAST)
    assert code == 0, err
    assert out.count("passed") >= 3 and "warning" not in err and "All 3 checks passed" in out
    kept = read_results(r)
    assert [k.name for k in kept] == ["attack-autoattack-linf", "checks-linf"]
    assert [c["passed"] for c in kept[1].values["checks"]] == [True, True, True]
    assert "Sanity checks at eps 0.1" in (r / "report.html").read_text()

    load = classifier.load_classifier
    monkeypatch.setattr(classifier, "load_classifier", lambda *a, **k: Rounded(load(*a, **k)))
    code, out, err = run_cli(capsys, "attack", str(r), "--eps", "0.1", "--checks", "--steps", "5", "--n", "60",
                             "--queries", "100")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert any("black box FAILED" in w for w in warnings) and all("masking gradients" in w for w in warnings), err
    assert "checks failed" in out
    checks = read_results(r)[-1]
    assert checks.name == "checks-linf" and "FAILED" in [row[1] for row in checks.rows]


def test_bad_input_is_one_line_and_exit_2(run, capsys, tmp_path, monkeypatch):
    auto = ["attack", str(run), "--method", "autoattack"]
    assert "must be >= 0" in error_line(capsys, *auto, "--eps", "-0.1")
    assert "'l3' is not one of 'linf', 'l2'" in error_line(capsys, *auto, "--norm", "l3")
    assert "out of range" in error_line(capsys, *auto, "--eps", "2")
    assert "one eps, not a list" in error_line(capsys, *auto, "--eps", "0.1,0.2")
    assert "untargeted" in error_line(capsys, *auto, "--target", "3")
    assert "drop --image" in error_line(capsys, *auto, "--image", str(tmp_path / "seven.png"))
    assert "--checks" in error_line(capsys, "attack", str(run), "--method", "patch", "--target", "3", "--checks")
    assert "--queries" in error_line(capsys, *auto, "--queries", "0")
    monkeypatch.setitem(recipes.REGISTRY, "regressor-test", Regressor)
    Trainer(Regressor.Config(train={"epochs": 1}), tmp_path / "reg", progress=False).fit()
    assert "is not a classifier" in error_line(capsys, "attack", str(tmp_path / "reg"), "--method", "autoattack")
    assert "is not a classifier" in error_line(capsys, "attack", str(tmp_path / "reg"), "--checks")
    from paradigms.adversarial.checks import sanity_checks

    x, y = torch.rand(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    for bad, match in (({"norm": "l1"}, "unknown norm"), ({"eps": -1}, "must be >= 0"),
                       ({"restarts": 1}, "restarts=1")):
        with pytest.raises(paradigms.errors.UserError, match=match):
            sanity_checks(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), x, y, **{"eps": 0.1, **bad})
