"""Hand-written backpropagation: gradients against finite differences and torch.autograd, and training on digits."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from paradigms.errors import UserError
from paradigms.supervised.backprop import (
    ACTIVATIONS,
    MLP,
    SGD,
    accuracy,
    batches,
    numerical_grads,
    scale_max,
    standardize,
)

SHAPES = [[3, 2], [4, 5, 3], [5, 4, 6, 3]]


def rel_err(a: np.ndarray, b: np.ndarray, tiny: float = 1e-12) -> float:
    """Robust relative error of two gradients: ||a - b|| / max(||a|| + ||b||, tiny)."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), tiny))


def problem(sizes, activation, seed=0, n=7):
    rng = np.random.default_rng(seed + 100)
    model = MLP(sizes, activation=activation, seed=seed)
    for b in model.params[1::2]:  # non-zero biases so their gradient paths are exercised too
        b[:] = rng.normal(0, 0.3, size=b.shape)
    x = rng.normal(size=(n, sizes[0]))
    y = rng.integers(0, sizes[-1], size=n)
    return model, x, y


def pre_activations(model, x):
    h, zs = x, []
    for i in range(0, len(model.params) - 2, 2):
        zs.append(h @ model.params[i] + model.params[i + 1])
        h = model.sigma(zs[-1])
    return zs


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("sizes", SHAPES)
def test_grads_match_finite_differences(sizes, activation):
    eps = 1e-6
    model, x, y = problem(sizes, activation)
    zs = pre_activations(model, x)
    if zs:  # no pre-activation near a ReLU kink, or the finite difference would straddle it
        assert min(np.abs(z).min() for z in zs) > 1e3 * eps
    _, grads = model.loss_and_grads(x, y)
    numeric = numerical_grads(model, x, y, eps=eps)
    for g, ng in zip(grads, numeric):
        assert g.shape == ng.shape
        assert np.abs(g).max() > 1e-4  # the check compares something non-trivial
        assert rel_err(g, ng) < 1e-6


def torch_loss(model, x, y):
    params = [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in model.params]
    act = {
        "tanh": torch.tanh,
        "scaled_tanh": lambda z: 1.7159 * torch.tanh(2.0 * z / 3.0),
        "relu": torch.relu,
    }[model.activation]
    h = torch.tensor(x, dtype=torch.float64)
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i < len(params) - 2:
            h = act(h)
    loss = torch.nn.functional.cross_entropy(h, torch.tensor(y, dtype=torch.long))
    loss.backward()
    return loss.item(), [p.grad.numpy() for p in params]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("sizes", SHAPES + [[10, 32, 32, 4]])
def test_grads_match_autograd(sizes, activation):
    model, x, y = problem(sizes, activation, seed=3, n=16)
    loss, grads = model.loss_and_grads(x, y)
    tloss, tgrads = torch_loss(model, x, y)
    assert loss == pytest.approx(tloss, rel=1e-12)
    assert len(grads) == len(model.params)
    for p, g, tg in zip(model.params, grads, tgrads):
        assert g.shape == p.shape
        assert rel_err(g, tg) < 1e-6
        assert np.abs(g - tg).max() < 1e-10


def test_loss_is_stable_for_huge_logits():
    model = MLP([2, 3], seed=0)
    model.params[0][:] = [[1e4, -1e4, 0.0], [0.0, 0.0, 0.0]]
    loss, grads = model.loss_and_grads(np.array([[1.0, 0.0]]), np.array([1]))
    assert np.isfinite(loss) and loss == pytest.approx(2e4)
    assert all(np.isfinite(g).all() for g in grads)


def test_digits_reaches_95_percent_with_lecun_options():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    x_train, x_test = standardize(x_train, x_test)
    start = time.perf_counter()
    model = MLP([64, 64, 10], activation="scaled_tanh", init="fanin", seed=0)
    opt = SGD(model.params, lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    before = accuracy(model, x_test, y_test)
    for _ in range(20):
        for idx in batches(len(x_train), 32, rng):
            _, grads = model.loss_and_grads(x_train[idx], y_train[idx])
            opt.step(grads)
    acc = accuracy(model, x_test, y_test)
    assert before < 0.5
    assert acc >= 0.95, acc
    assert time.perf_counter() - start < 10


def test_standardize_uses_training_statistics():
    rng = np.random.default_rng(0)
    train = rng.normal(5.0, 3.0, size=(200, 4))
    train[:, 3] = 2.0  # a constant feature must not divide by zero
    test = train[:10] + 1.0
    s_train, s_test = standardize(train, test)
    assert np.allclose(s_train[:, :3].mean(0), 0) and np.allclose(s_train[:, :3].std(0), 1)
    assert np.all(s_train[:, 3] == 0)
    assert np.allclose(s_test[:, :3], s_train[:10, :3] + 1.0 / train[:, :3].std(0))
    p_train, p_test = scale_max(train, test)
    assert np.abs(p_train).max() == pytest.approx(1.0)
    assert np.allclose(p_test, test / np.abs(train).max())


def test_sgd_momentum_step_by_hand():
    p = np.array([1.0, -2.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    opt.step([np.array([0.5, 1.0])])  # v = -0.1 * g
    assert np.allclose(opt.velocity[0], [-0.05, -0.1]) and np.allclose(p, [0.95, -2.1])
    opt.step([np.array([1.0, -1.0])])  # v = 0.9 v - 0.1 g
    assert np.allclose(opt.velocity[0], [0.9 * -0.05 - 0.1, 0.9 * -0.1 + 0.1])
    assert np.allclose(p, [0.95 - 0.145, -2.1 + 0.01])


def test_batches_cover_every_example_once():
    fixed = list(batches(10, 4, None))
    assert [len(b) for b in fixed] == [4, 4, 2]
    assert np.array_equal(np.concatenate(fixed), np.arange(10))
    rng = np.random.default_rng(0)
    first, second = np.concatenate(list(batches(10, 4, rng))), np.concatenate(list(batches(10, 4, rng)))
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert not np.array_equal(first, np.arange(10)) and not np.array_equal(first, second)


def test_init_schemes_and_seeds():
    a, b, c = MLP([64, 100, 10], seed=1), MLP([64, 100, 10], seed=1), MLP([64, 100, 10], seed=2)
    assert all(np.array_equal(p, q) for p, q in zip(a.params, b.params))
    assert not np.array_equal(a.params[0], c.params[0])
    assert [p.shape for p in a.params] == [(64, 100), (100,), (100, 10), (10,)]
    assert a.params[0].std() == pytest.approx(64**-0.5, rel=0.05)  # N(0, m^-1/2)
    assert a.params[2].std() == pytest.approx(100**-0.5, rel=0.1)
    plain = MLP([64, 100, 10], init="plain", seed=1)
    assert np.abs(plain.params[0]).max() <= 0.5 and plain.params[0].std() == pytest.approx(12**-0.5, rel=0.05)
    assert MLP([3, 2], dtype=np.float32).forward(np.ones((1, 3))).dtype == np.float32


def test_unknown_names_raise_user_error():
    with pytest.raises(UserError, match="activation 'sigmoidd'"):
        MLP([2, 2], activation="sigmoidd")
    with pytest.raises(UserError, match="init"):
        MLP([2, 2], init="xavier")
