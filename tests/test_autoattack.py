"""AutoAttack and its attacks (APGD, APGD-T, FAB-T, Square): APGD's step schedule and the DLR loss against the
formulas written out, budgets and pixel ranges kept, the ensemble never above any of its attacks alone, networks left
as found, bad input refused on one line. Tiny networks on synthetic 3x8x8 images and 2-D points, fixed seeds."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from torch import nn

from paradigms.adversarial import apgd_targeted, dlr_loss
from paradigms.adversarial.autoattack import apgd, autoattack, fab, square
from paradigms.adversarial.apgd import checkpoints, halve
from paradigms.adversarial.fab import plane_step
from paradigms.adversarial.square import pattern, share
from paradigms.errors import UserError

EPS = {"linf": 0.08, "l2": 1.0}


def trained(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 150) -> nn.Module:
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    net.zero_grad(set_to_none=True)
    return net.eval()


@pytest.fixture(scope="module")
def images():
    """Ten classes of 3x8x8 images (a template each, plus noise) and an MLP that tells them apart."""
    g = torch.Generator().manual_seed(0)
    templates = torch.rand(10, 3, 8, 8, generator=g) * 0.3 + 0.35
    y = torch.arange(10).repeat(30)
    x = (templates[y] + 0.3 * torch.randn(len(y), 3, 8, 8, generator=g)).clamp(0, 1)
    torch.manual_seed(0)
    net = trained(nn.Sequential(nn.Flatten(), nn.Linear(192, 32), nn.ReLU(), nn.Linear(32, 10)), x, y)
    return net, x[:40], y[:40]


@pytest.fixture(scope="module")
def points():
    """Five classes of 2-D points in [0, 1]^2 around five centres, and an MLP on them."""
    g = torch.Generator().manual_seed(1)
    centres = torch.tensor([[0.2, 0.2], [0.8, 0.2], [0.5, 0.5], [0.2, 0.8], [0.8, 0.8]])
    y = torch.arange(5).repeat(40)
    x = (centres[y] + 0.08 * torch.randn(len(y), 2, generator=g)).clamp(0, 1)
    torch.manual_seed(1)
    net = trained(nn.Sequential(nn.Linear(2, 32), nn.Tanh(), nn.Linear(32, 5)), x, y, 300)
    return net, x[:30], y[:30]


def accuracy(net, x, y) -> float:
    with torch.no_grad():
        return float((net(x).argmax(1) == y).float().mean())


def sizes(adv, x, norm) -> torch.Tensor:
    d = (adv - x).flatten(1)
    return d.abs().amax(1) if norm == "linf" else d.norm(dim=1)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- APGD: the step-size schedule ---------------------------------------------------------------------------------

def test_checkpoints_follow_the_papers_recurrence():
    assert checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    for n in (1, 5, 10, 37, 100, 250):
        p, before, want = Fraction(22, 100), Fraction(0), [0]  # exact: p_0 = 0, p_1 = 0.22
        while p <= 1:
            want.append(math.ceil(p * n))  # w_j = ceil(p_j N)
            p, before = p + max(p - before - Fraction(3, 100), Fraction(6, 100)), p
        assert checkpoints(n) == sorted(set(want)), n


def test_the_halving_condition_is_the_papers_two_conditions():
    rose = torch.tensor([16.0, 17.0, 17.0, 20.0, 20.0])
    halved_before = torch.tensor([False, False, False, False, True])
    best_before = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])
    best = torch.tensor([2.0, 2.0, 1.0, 2.0, 1.0])
    # window 22: rho * 22 = 16.5; 16 rises halve (1.), 17 do not; f_max unchanged and not halved before (2.)
    assert halve(rose, 22, halved_before, best_before, best).tolist() == [True, False, True, False, False]


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_apgd_steps_follow_the_schedule_on_a_tiny_network(points, norm):
    net, x, y = points
    eps, steps, trace = {"linf": 0.1, "l2": 0.15}[norm], 50, []
    apgd(net, x, y, eps, norm, loss="dlr", steps=steps, generator=seeded(), trace=trace)
    assert [t["step"] for t in trace] == list(range(steps + 1))
    assert torch.equal(trace[0]["eta"], torch.full((len(x),), 2 * eps))  # eta^(0) = 2 eps
    marks = checkpoints(steps)
    last, prev, rose = 0, trace[0]["loss"], torch.zeros(len(x))
    halved_before, best_before = torch.zeros(len(x), dtype=torch.bool), trace[0]["best"]
    halvings = 0
    for t, before in zip(trace[1:], trace):
        k = t["step"]
        assert torch.all(t["best"] >= before["best"]) and torch.all(t["best"] >= t["loss"])  # f_max is the max so far
        rose += (t["loss"] > prev).float()  # 1[f(x^(k)) > f(x^(k-1))]
        prev = t["loss"]
        if k not in marks:
            assert torch.equal(t["eta"], before["eta"])
            continue
        stalled = rose < 0.75 * (k - last)  # 1. rises in fewer than rho (w_j - w_(j-1)) steps
        stuck = ~halved_before & (t["best"] == best_before)  # 2. eta and f_max unchanged since the last checkpoint
        cut = stalled | stuck
        assert torch.equal(t["halved"], cut), k
        assert torch.allclose(t["eta"], torch.where(cut, before["eta"] / 2, before["eta"]))
        prev = torch.where(cut, t["best"], prev)  # restarted from x_max: the next step is compared with f_max
        last, rose, halved_before, best_before = k, torch.zeros(len(x)), cut, t["best"]
        halvings += int(cut.sum())
    assert 0 < halvings < len(x) * (len(marks) - 1)  # the schedule both halved and kept steps


# --- the DLR loss -----------------------------------------------------------------------------------------------

def test_the_dlr_loss_is_the_formula_written_out(points):
    net, x, y = points
    with torch.no_grad():
        z = net(x)
    target = (y + 2) % 5
    untargeted, targeted = dlr_loss(z, y), dlr_loss(z, y, target)
    for i in range(len(y)):
        row = z[i].tolist()
        s = sorted(row, reverse=True)  # z_pi1 >= z_pi2 >= ...
        zy, zt = row[int(y[i])], row[int(target[i])]
        best_other = max(v for j, v in enumerate(row) if j != int(y[i]))
        assert untargeted[i].item() == pytest.approx(-(zy - best_other) / (s[0] - s[2] + 1e-12), rel=1e-5, abs=1e-6)
        want = -(zy - zt) / (s[0] - (s[2] + s[3]) / 2 + 1e-12)
        assert targeted[i].item() == pytest.approx(want, rel=1e-5, abs=1e-6)
    # invariant to shifting and scaling the logits: a network cannot hide behind a saturated softmax
    assert torch.allclose(dlr_loss(3 * z + 7, y), untargeted, atol=1e-5)
    assert torch.allclose(dlr_loss(3 * z + 7, y, target), targeted, atol=1e-5)
    with pytest.raises(UserError, match="at least 4 classes"):
        dlr_loss(z[:, :3], y.clamp(max=2), target.clamp(max=2))


# --- budgets and pixel ranges -----------------------------------------------------------------------------------

@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_every_attack_stays_inside_epsilon_and_the_pixel_range(images, points, norm):
    for net, x, y, eps in ((*images, EPS[norm]), (*points, {"linf": 0.1, "l2": 0.15}[norm])):
        attacks = {
            "apgd-ce": lambda: apgd(net, x, y, eps, norm, steps=20, restarts=2, generator=seeded()),
            "apgd-dlr": lambda: apgd(net, x, y, eps, norm, loss="dlr", steps=20, generator=seeded()),
            "apgd-t": lambda: apgd_targeted(net, x, y, eps, norm, steps=10, n_target_classes=3, generator=seeded()),
            "fab-t": lambda: fab(net, x, y, eps, norm, steps=10, restarts=2, n_target_classes=3, generator=seeded()),
            "square": lambda: square(net, x, y, eps, norm, queries=200, generator=seeded()),
            "autoattack": lambda: autoattack(net, x, y, eps, norm, steps=10, queries=100, n_target_classes=3)[0],
        }
        clean = accuracy(net, x, y)
        for name, attack in attacks.items():
            adv = attack()
            assert adv.shape == x.shape and adv.dtype == x.dtype
            assert float(sizes(adv, x, norm).max()) <= eps + 1e-5, name
            assert float(adv.min()) >= 0 and float(adv.max()) <= 1, name
            assert accuracy(net, adv, y) < clean, name  # each one breaks something at these budgets


def test_a_budget_of_zero_changes_nothing(images):
    net, x, y = images
    for norm in ("linf", "l2"):
        assert torch.equal(apgd(net, x, y, 0.0, norm, steps=5), x)
        assert torch.equal(fab(net, x, y, 0.0, norm, steps=5, n_target_classes=2), x)
        adv, record = autoattack(net, x, y, 0.0, norm, steps=3, queries=10, n_target_classes=2)
        assert torch.equal(adv, x) and record["robust_acc"] == record["clean_acc"]


def test_the_box_projection_is_on_the_plane_and_no_longer_than_other_points_on_it():
    g = torch.Generator().manual_seed(3)
    u = torch.rand(64, 5, generator=g)
    w = torch.randn(64, 5, generator=g)
    r = torch.randn(64, generator=g) * 0.3
    for norm, p in (("linf", float("inf")), ("l2", 2.0)):
        delta = plane_step(u, w, r, norm)
        inside = (u + delta >= -1e-6).all(1) & (u + delta <= 1 + 1e-6).all(1)
        assert inside.all()
        reach = (w * torch.where(w * r[:, None] > 0, torch.where(w > 0, 1 - u, -u), torch.zeros_like(u))).sum(1)
        meets = reach.abs() >= r.abs()  # the plane cuts the box
        assert torch.allclose((w * delta).sum(1)[meets], r[meets], atol=1e-4)
        # any other point of the plane in the box (random directions, scaled onto it) is at least as far
        for _ in range(200):
            v = torch.randn(64, 5, generator=g)
            other = v * (r / (w * v).sum(1))[:, None]
            ok = meets & (u + other >= 0).all(1) & (u + other <= 1).all(1)
            assert (delta.norm(p=p, dim=1)[ok] <= other.norm(p=p, dim=1)[ok] + 1e-4).all()


def test_the_l2_square_spends_the_whole_budget_where_nothing_clips():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(192, 10))
    x = torch.full((20, 3, 8, 8), 0.5)
    y = net(x).argmax(1)
    adv = square(net, x, y, 0.2, "l2", queries=100, generator=seeded())  # pixels stay far from 0 and 1
    assert torch.allclose(sizes(adv, x, "l2"), torch.full((20,), 0.2), atol=1e-5)  # ||nu||_2 = eps after each step
    adv = square(net, x, y, 0.05, "linf", queries=100, generator=seeded())
    assert torch.allclose((adv - x).abs(), torch.full_like(x, 0.05))  # every pixel at +-eps


def test_the_square_schedule_and_the_l2_pattern():
    assert share(0.8, 10, 10000) == 0.8 and share(0.8, 11, 10000) == 0.4 and share(0.8, 9000, 10000) == 0.8 / 512
    assert share(0.8, 100, 5000) == 0.8 / 4  # query 100 of 5,000 is query 200 of 10,000
    eta = pattern(6)
    assert eta.norm().item() == pytest.approx(1.0) and (eta[:3] > 0).all() and (eta[3:] < 0).all()
    assert eta[1, 3] == eta[:3].max()  # each half peaks at its centre


# --- the ensemble -----------------------------------------------------------------------------------------------

class Rounded(nn.Module):
    """A masked gradient: the logits rounded to 0.01, so the gradient is zero everywhere while the scores still move."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.round(self.net(x) * 100) / 100


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("case", ["plain", "one step", "masked"])
def test_autoattack_never_reports_more_robust_accuracy_than_any_attack_alone(images, norm, case):
    """plain: APGD-CE breaks what it can; one step: APGD and FAB of one iteration, so the later attacks break
    images the first left; masked: a zero gradient, so only the black-box Square breaks anything."""
    net, x, y = images
    net = Rounded(net) if case == "masked" else net
    eps = EPS[norm] if case == "masked" else EPS[norm] / 2
    steps, queries, k = (1 if case == "one step" else 10), 150, 3
    adv, record = autoattack(net, x, y, eps, norm, steps=steps, queries=queries, n_target_classes=k, seed=0)
    alone = {
        "apgd-ce": apgd(net, x, y, eps, norm, "ce", steps, generator=seeded()),
        "apgd-t": apgd_targeted(net, x, y, eps, norm, steps, n_target_classes=k, generator=seeded()),
        "fab-t": fab(net, x, y, eps, norm, steps, n_target_classes=k, generator=seeded()),
        "square": square(net, x, y, eps, norm, queries, generator=seeded()),
    }
    robust = accuracy(net, adv, y)
    assert robust == pytest.approx(record["robust_acc"])
    for name, a in alone.items():
        assert robust <= accuracy(net, a, y), name
    # the record: clean first, then robust accuracy after each attack, never rising, and the images each one broke
    assert record["clean_acc"] == pytest.approx(accuracy(net, x, y))
    rows = record["rows"]
    assert [r["attack"] for r in rows] == ["apgd-ce", "apgd-t", "fab-t", "square"]
    accs = [record["clean_acc"]] + [r["robust_acc"] for r in rows]
    assert all(b <= a for a, b in zip(accs, accs[1:]))
    assert [r["broken"] for r in rows] == [round((a - b) * len(y)) for a, b in zip(accs, accs[1:])]
    assert rows[0]["robust_acc"] == pytest.approx(accuracy(net, alone["apgd-ce"], y))  # the first sees all images
    assert all(r["seconds"] >= 0 for r in rows) and record["seconds"] >= sum(r["seconds"] for r in rows)
    assert record["clean_acc"] > record["robust_acc"]
    broken = {r["attack"]: r["broken"] for r in rows}
    if case == "one step":
        assert broken["apgd-t"] + broken["fab-t"] + broken["square"] > 0  # the later attacks had work left
    if case == "masked":
        assert broken["apgd-ce"] == broken["apgd-t"] == broken["fab-t"] == 0 < broken["square"]


def test_an_attack_treats_an_image_the_same_whichever_others_it_attacks(images):
    net, x, y = images
    some = torch.arange(len(x)) % 3 == 0
    for attack in (lambda **kw: apgd(net, x, y, 0.05, "linf", steps=10, generator=seeded(), **kw),
                   lambda **kw: apgd_targeted(net, x, y, 0.5, "l2", 5, n_target_classes=2, generator=seeded(), **kw),
                   lambda **kw: fab(net, x, y, 0.05, "linf", 5, restarts=2, n_target_classes=2, generator=seeded(),
                                    **kw),
                   lambda **kw: square(net, x, y, 0.05, "l2", queries=100, generator=seeded(), **kw)):
        whole, part = attack(), attack(active=some)
        assert torch.allclose(whole[some], part[some], atol=1e-6)
        assert torch.equal(part[~some], x[~some])


def test_the_same_seed_gives_the_same_adversarial_batch(images):
    net, x, y = images
    torch.manual_seed(5)
    a = square(net, x, y, 0.05, "linf", queries=50)
    torch.manual_seed(5)
    assert torch.equal(a, square(net, x, y, 0.05, "linf", queries=50))
    one = autoattack(net, x, y, 0.05, "linf", steps=5, queries=20, n_target_classes=2, seed=1)[0]
    assert torch.equal(one, autoattack(net, x, y, 0.05, "linf", steps=5, queries=20, n_target_classes=2, seed=1)[0])


def test_few_classes_use_fewer_targets(points):
    net, x, y = points
    two = nn.Sequential(net, nn.Linear(5, 2))  # a 2-class network: one target, the targeted cross-entropy
    yy = torch.zeros(len(x), dtype=torch.long)
    adv, record = autoattack(two, x, yy, 0.1, "linf", steps=5, queries=20)
    assert float(sizes(adv, x, "linf").max()) <= 0.1 + 1e-6 and len(record["rows"]) == 4


# --- the network left as found; bad input ------------------------------------------------------------------------

def test_the_network_is_left_as_it_was_found():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(),
                        nn.Linear(256, 10))
    x, y = torch.rand(6, 3, 8, 8), torch.arange(6)
    net.train()
    net[1].eval()  # a mixed state, as a frozen layer leaves it
    net[5].weight.requires_grad_(False)
    flags = {n: m.training for n, m in net.named_modules()}
    stats = net[1].running_mean.clone()
    for attack in (lambda: apgd(net, x, y, 0.05, "linf", steps=3), lambda: apgd(net, x, y, 0.3, "l2", "dlr", 3),
                   lambda: apgd_targeted(net, x, y, 0.05, "linf", 3, n_target_classes=2),
                   lambda: fab(net, x, y, 0.05, "l2", 3, n_target_classes=2),
                   lambda: square(net, x, y, 0.05, "linf", 20),
                   lambda: autoattack(net, x, y, 0.05, "linf", steps=2, queries=10, n_target_classes=2)):
        with torch.no_grad():  # also when called inside no_grad, as evaluation loops are
            attack()
        attack()
        assert {n: m.training for n, m in net.named_modules()} == flags
        assert [p.requires_grad for p in net.parameters()] == [n != "5.weight" for n, _ in net.named_parameters()]
        assert all(p.grad is None for p in net.parameters())
        assert torch.equal(net[1].running_mean, stats)  # evaluated in eval mode: BatchNorm's statistics untouched


@pytest.mark.parametrize("call, words", [
    (lambda n, x, y: apgd(n, x, y, 0.1, "l1"), "unknown norm 'l1'"),
    (lambda n, x, y: apgd(n, x, y, -0.1, "linf"), "eps=-0.1 is out of range"),
    (lambda n, x, y: apgd(n, x, y, 0.1, "linf", loss="hinge"), "unknown APGD loss 'hinge'"),
    (lambda n, x, y: apgd(n, x, y, 0.1, "linf", restarts=0), "restarts=0 is out of range"),
    (lambda n, x, y: apgd(n, x, y, 0.1, "linf", steps=0), "steps=0 is out of range"),
    (lambda n, x, y: square(n, x, y, float("nan"), "l2"), "eps=nan is out of range"),
    (lambda n, x, y: square(n, x, y, 0.1, "l2", queries=0), "queries=0 is out of range"),
    (lambda n, x, y: fab(n, x, y, 0.1, "L2"), "unknown norm 'L2'"),
    (lambda n, x, y: fab(n, x, y, -1, "l2"), "eps=-1 is out of range"),
    (lambda n, x, y: autoattack(n, x, y, 0.1, "linf", version="plus"), "unknown AutoAttack version 'plus'"),
    (lambda n, x, y: autoattack(n, x, y, -0.1, "linf"), "eps=-0.1 is out of range"),
    (lambda n, x, y: autoattack(n, x, y, 0.1, "l0"), "unknown norm 'l0'"),
])
def test_bad_input_is_a_one_line_user_error(points, call, words):
    net, x, y = points
    with pytest.raises(UserError) as err:
        call(net, x, y)
    assert words in str(err.value) and "\n" not in str(err.value)
