"""Adversarial attacks: budgets kept, pixels in range, attacks that work, models left as found, bad input refused."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

import paradigms
from paradigms import recipes
from paradigms.adversarial import draw, fgsm, paste, pgd, side, train_patch
from paradigms.data import load_images
from paradigms.engine.results import read_results
from paradigms.engine import Trainer

from .test_cli import error_line, run_cli
from .test_engine import trained_once


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """LeNet-5 trained on digits (the quick preset): about 98% accurate."""
    return trained_once(tmp_path_factory, "attack", ["train.epochs=10"])


@pytest.fixture(scope="module")
def batch():
    data = load_images("digits")
    return data.test_x[:200].float() / 255, data.test_y[:200]


def accuracy(net, x, y) -> float:
    with torch.no_grad():
        return float((net(x).argmax(1) == y).float().mean())


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_perturbations_stay_in_the_ball_and_pixels_in_range(run, batch, norm):
    net, (x, y) = paradigms.load(run), batch
    for eps in (0.05, 0.3, 1.0):
        advs = [pgd(net, x, y, eps, eps / 4, 10, norm=norm, restarts=2)]
        if norm == "linf":
            advs.append(fgsm(net, x, y, eps))
        for adv in advs:
            delta = (adv - x).flatten(1)
            size = delta.abs().max(1).values if norm == "linf" else delta.norm(dim=1)
            assert float(size.max()) <= eps + 1e-5
            assert float(adv.min()) >= 0 and float(adv.max()) <= 1
            assert float(size.max()) > 0.5 * eps  # it did move


def test_eps_zero_is_the_clean_accuracy_and_accuracy_falls_with_eps(run, batch):
    net, (x, y) = paradigms.load(run), batch
    clean = accuracy(net, x, y)
    assert clean > 0.9
    assert torch.equal(pgd(net, x, y, 0.0, 0.01, 5), x) and torch.equal(fgsm(net, x, y, 0.0), x)
    accs = [accuracy(net, pgd(net, x, y, e, 2.5 * e / 10 if e else 0.01, 10), y) for e in (0.0, 0.05, 0.1, 0.2, 0.3)]
    assert accs[0] == clean
    slack = 3 / len(y)  # PGD's random start: past the point where almost nothing is left, a few images either way
    assert all(a >= b - slack for a, b in zip(accs, accs[1:])) and accs[-1] < 0.1, accs
    assert accs[0] > accs[1] > accs[2] > accs[3], accs  # while accuracy is left, strictly
    for e in (0.05, 0.1, 0.2):  # many projected steps are at least as strong as one
        assert accuracy(net, pgd(net, x, y, e, 2.5 * e / 20, 20), y) <= accuracy(net, fgsm(net, x, y, e), y)


def test_a_targeted_attack_raises_the_targets_probability(run, batch):
    net, (x, y) = paradigms.load(run), batch
    keep = y != 3
    x, target = x[keep], torch.full((int(keep.sum()),), 3)
    with torch.no_grad():
        before = net(x).softmax(1)[:, 3]
        after = net(pgd(net, x, target, 0.2, 0.02, 20, targeted=True)).softmax(1)[:, 3]
        one_step = net(fgsm(net, x, target, 0.2, targeted=True)).softmax(1)[:, 3]
    assert after.mean() > 0.5 > 0.1 > before.mean()
    assert one_step.mean() > before.mean()


def test_the_model_is_left_as_it_was_found(run, batch):
    net, (x, y) = paradigms.load(run), batch
    net.train()
    net.blocks[0].eval()  # a mixed state, as a frozen layer leaves it
    net.head.weight.requires_grad_(False)
    flags = {n: m.training for n, m in net.named_modules()}
    for attack in (lambda: fgsm(net, x, y, 0.1), lambda: pgd(net, x, y, 0.1, 0.02, 3, restarts=2),
                   lambda: train_patch(net, x, 3, steps=2, batch_size=8)):
        attack()
        assert {n: m.training for n, m in net.named_modules()} == flags
        assert [p.requires_grad for p in net.parameters()] == [n != "head.weight" for n, _ in net.named_parameters()]
        assert all(p.grad is None for p in net.parameters())


def test_the_patch_is_pasted_whole_at_the_drawn_position():
    torch.manual_seed(0)
    x = torch.zeros(50, 3, 20, 24)
    k = side(0.1, 20, 24)
    assert k == 7  # sqrt(0.1 * 480) = 6.9
    where = draw(50, k, 20, 24, degrees=0, scale=(1.0, 1.0))
    out = paste(x, torch.ones(3, k, k), where)
    for img, top, left in zip(out, where["top"], where["left"]):
        lit = img[0].nonzero()
        assert lit.min(0).values.tolist() == [top, left] and lit.max(0).values.tolist() == [top + k - 1, left + k - 1]
        assert int(lit.shape[0]) == k * k
    assert (where["top"] + k <= 20).all() and (where["left"] + k <= 24).all()
    rotated = paste(x, torch.ones(3, k, k), draw(50, k, 20, 24, degrees=45))
    assert (rotated.flatten(1).count_nonzero(1) > 0).all()  # rotated and scaled: still pasted, inside the image


def test_place_puts_the_patch_centre_where_asked_and_keeps_it_inside():
    from paradigms.adversarial import place

    where = place(0.5, 0.25, 3, 8, 10)
    assert int(where["left"]) == 4 and int(where["top"]) == 0       # centre 5 across: 5 - 1.5; 2 down: clipped to 0
    out = paste(torch.zeros(1, 1, 8, 10), torch.ones(1, 3, 3), where)[0, 0]
    lit = out.nonzero()
    assert lit.min(0).values.tolist() == [0, 4] and lit.max(0).values.tolist() == [2, 6] and len(lit) == 9
    corner = place(1.0, 1.0, 3, 8, 10, angle=45, scale=0.8)
    assert (int(corner["top"]), int(corner["left"])) == (5, 7) and float(corner["angle"]) == 45
    turned = paste(torch.zeros(1, 1, 8, 10), torch.ones(1, 3, 3), corner)[0, 0]
    assert 0 < float(turned.sum()) < 9 and float(turned[:5].sum()) == 0 and float(turned[:, :7].sum()) == 0
    with pytest.raises(paradigms.errors.UserError, match="fractions of the image"):
        place(1.5, 0, 3, 8, 10)


class Chain(nn.Module):
    """A 3-class network of 4x4 images that torch.fx cannot trace (it branches on data), counting its forwards."""

    forwards = 0

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(16, 3)

    def forward(self, x):
        type(self).forwards += isinstance(x, torch.Tensor)             # not torch.fx's attempt to trace it
        out = self.fc(x.flatten(1))
        return out if float(out.sum()) < float("inf") else -out


def test_the_smoothing_generators_draw_the_same_noise_and_give_the_same_counts():
    from paradigms.adversarial.smoothing import Smooth, finish

    torch.manual_seed(0)
    smooth, x = Smooth(Chain(), 3, 0.5), torch.rand(2, 1, 4, 4)
    torch.manual_seed(3)
    counts = smooth.counts(x, 250, batch_size=64)
    torch.manual_seed(3)
    steps = smooth.counting(x, 250, batch_size=64)
    done = []
    while True:
        try:
            done.append(next(steps))
        except StopIteration as stop:
            stepped = stop.value
            break
    assert torch.equal(stepped, counts) and int(counts.sum()) == 500
    assert done == sorted(done) and done[-1] == 500 and len(done) > 2        # batches of 64 copies at most
    # a generator of its own seeded alike draws the very noise of the global one, and leaves the global one alone
    torch.manual_seed(11)
    assert torch.equal(smooth.counts(x, 250, 64, generator=torch.Generator().manual_seed(3)), counts)
    after = torch.rand(3)
    torch.manual_seed(11)
    assert torch.equal(after, torch.rand(3))
    torch.manual_seed(5)
    many = smooth.certify_many(x, 20, 300, 0.01, 64)
    torch.manual_seed(5)
    progress, steps = [], smooth.certifying(x, 20, 300, 0.01, 64)
    while True:
        try:
            progress.append(next(steps))
        except StopIteration as stop:
            assert stop.value == many
            break
    assert progress == sorted(progress) and progress[-1] == 2 * (20 + 300)
    assert finish(smooth.certifying(x, 20, 300, 0.01, 64, torch.Generator().manual_seed(5))) == many


def test_closing_a_certification_stops_its_forward_passes():
    from paradigms.adversarial.smoothing import Smooth

    smooth = Smooth(Chain(), 3, 0.5)
    steps = smooth.certifying(torch.rand(1, 1, 4, 4), 10, 100_000, 0.01, 64)
    before = Chain.forwards
    assert [next(steps) for _ in range(3)] == [10, 10 + 64, 10 + 128]    # the n0 copies, then n in batches of 64
    steps.close()
    ran = Chain.forwards - before
    with pytest.raises(StopIteration):
        next(steps)
    assert Chain.forwards - before == ran == 5                # 3 batches and 2 probes of the activations' size
    assert smooth.model.training                              # closed, it put the network back as it found it


def test_same_seed_same_adversarial_batch(run, batch):
    net, (x, y) = paradigms.load(run), batch

    def attack(seed):
        torch.manual_seed(seed)
        return pgd(net, x, y, 0.1, 0.02, 3, restarts=2)

    assert torch.equal(attack(1), attack(1)) and not torch.equal(attack(1), attack(2))


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_attacking_in_chunks_changes_no_result(run, batch, norm, monkeypatch):
    """On a CPU pgd attacks cache-sized chunks of the batch; the inputs are independent, so one chunk or many
    give the same adversarial batch (the random starts are drawn for the whole batch first)."""
    from paradigms.adversarial import attacks

    net, (x, y) = paradigms.load(run), batch
    assert 1 <= attacks.chunk_size(net, x) <= len(x)

    def attack(n):
        monkeypatch.setattr(attacks, "chunk_size", lambda model, x: n)
        torch.manual_seed(0)
        return pgd(net, x, y, 0.1, 0.02, 5, norm=norm, restarts=2)

    whole, chunked = attack(len(x)), attack(7)
    assert (whole - chunked).abs().max() < 1e-4


def test_a_patch_turns_images_into_the_target_better_than_noise(run, batch):
    from paradigms.adversarial import patch_success

    net, (x, y) = paradigms.load(run), batch
    torch.manual_seed(0)
    data = load_images("digits")
    train = data.train_x[data.train_y != 3].float() / 255
    patch = train_patch(net, train, 3, size=0.4, steps=300, batch_size=64)  # 5x5 on 8x8 digits
    held_out = x[y != 3]
    success, noise = patch_success(net, patch, held_out, 3), patch_success(net, torch.rand_like(patch), held_out, 3)
    assert success > noise + 0.2, (success, noise)


def test_the_attack_command_reports_and_draws_into_the_run(run, capsys, tmp_path):
    r = tmp_path / "r"
    shutil.copytree(run, r)
    code, out, err = run_cli(capsys, "attack", str(r), "--eps", "0,0.1,3/10", "--steps", "5", "--n", "100")
    assert code == 0, err
    first = read_results(r)[0]
    result = first.values
    assert [row["eps"] for row in result["rows"]] == [0.0, 0.1, 0.3] and result["rows"][0]["acc"] == result["clean_acc"]
    assert [f["file"] for f in first.figures] == ["001-attack-pgd-linf-panel.png", "001-attack-pgd-linf-curve.png"]
    assert all((r / "results" / f["file"]).is_file() and f["caption"] for f in first.figures)
    assert first.rows[2] == ["0.3", f"{100 * result['rows'][2]['acc']:.1f}%"]        # a table, read as written
    assert "PGD-5 (linf) on 100 test images" in (r / "report.html").read_text()
    code, out, err = run_cli(capsys, "attack", str(r), "--method", "fgsm", "--target", "3", "--n", "50")
    assert code == 0, err
    assert "targeted success" in out
    # a second attack is kept beside the first, never over it; the report lists both, in order
    kept = read_results(r)
    assert [k.name for k in kept] == ["attack-pgd-linf", "attack-fgsm-linf-to-3"] and kept[0].values == result
    page = (r / "report.html").read_text()
    assert page.index("PGD-5 (linf) on 100") < page.index("FGSM, targeted at &#39;3&#39;")
    # the lecture's example on a picture of one's own
    from PIL import Image

    digit = (load_images("digits").test_x[0, 0].numpy() * 1).repeat(4, 0).repeat(4, 1)
    Image.fromarray(digit).convert("RGB").save(tmp_path / "seven.png")
    code, out, err = run_cli(capsys, "attack", str(r), "--image", str(tmp_path / "seven.png"), "--target", "3",
                             "--eps", "0.3")
    assert code == 0, err
    assert "before:" in out and "after (eps 0.3)" in out
    assert (tmp_path / "seven-adversarial.png").is_file() and (tmp_path / "seven-adversarial-panel.png").is_file()
    assert Image.open(tmp_path / "seven-adversarial.png").size == (8, 8)
    code, out, err = run_cli(capsys, "attack", str(r), "--method", "patch", "--target", "3", "--size", "0.4",
                             "--patch-steps", "20", "--n", "50")
    assert code == 0, err
    patch = read_results(r)[-1]
    assert "a noise patch" in out and Image.open(r / "results" / patch.files[0]).size == (5, 5)
    assert patch.values["side"] == 5 and patch.files == ["003-attack-patch-to-3.png"]
    from paradigms.adversarial.runs import load_patch, patches

    kept, = patches(r)                                   # the lab's patch panel finds it so
    assert (kept["index"], kept["name"], kept["target"]) == (3, "003-attack-patch-to-3", "3")
    assert kept["success"] == patch.values["success"]
    sticker = load_patch(kept["path"], 1)
    assert sticker.shape == (1, 5, 5) and 0 <= float(sticker.min()) and float(sticker.max()) <= 1
    assert load_patch(kept["path"], 3).shape == (3, 5, 5) and patches(run) == []


class Regressor(recipes.Recipe):
    """A recipe whose network is no classifier."""

    name, family, measures, network = "regressor-test", "test", "nothing", "net"

    class Config(paradigms.config.RecipeConfig):
        recipe: str = "regressor-test"

    def __init__(self, cfg, ctx):
        super().__init__(cfg, ctx)
        self.net = nn.Linear(2, 1)
        self.modules = {"net": self.net}

    steps_per_epoch = 1

    def batches(self, epoch, start=0):
        return range(start, 1)

    def train_step(self, batch, step):
        return {"loss": torch.zeros(())}

    def network_card(self):
        return {"kind": "regressor"}

    @classmethod
    def build_network(cls, card):
        return nn.Linear(2, 1)


def test_bad_input_is_one_line_and_exit_2(run, capsys, tmp_path, monkeypatch):
    assert "must be >= 0" in error_line(capsys, "attack", str(run), "--eps", "-0.1")
    assert "is not a number" in error_line(capsys, "attack", str(run), "--eps", "x")
    assert "'l3' is not one of 'linf', 'l2'" in error_line(capsys, "attack", str(run), "--norm", "l3")
    assert "'cw' is not one of 'fgsm', 'pgd', 'patch'" in error_line(capsys, "attack", str(run), "--method", "cw")
    assert "no such class" in error_line(capsys, "attack", str(run), "--target", "dog")
    assert "needs --target" in error_line(capsys, "attack", str(run), "--method", "patch")
    (tmp_path / "cat.jpg").write_bytes(b"not a picture")
    assert "cannot read image" in error_line(capsys, "attack", str(run), "--image", str(tmp_path / "cat.jpg"))
    bare = tmp_path / "bare"
    shutil.copytree(run, bare)
    shutil.rmtree(bare / "checkpoints")
    assert "no checkpoint" in error_line(capsys, "attack", str(bare))
    monkeypatch.setitem(recipes.REGISTRY, "regressor-test", Regressor)
    Trainer(Regressor.Config(train={"epochs": 1}), tmp_path / "reg", progress=False).fit()
    assert "is not a classifier" in error_line(capsys, "attack", str(tmp_path / "reg"))
    with pytest.raises(paradigms.errors.UserError, match="unknown norm"):
        pgd(nn.Linear(2, 2), torch.rand(1, 2), torch.zeros(1, dtype=torch.long), 0.1, 0.01, 1, norm="l1")
