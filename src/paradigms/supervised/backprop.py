"""Backpropagation by hand, in numpy, for a multilayer perceptron.

Rumelhart, Hinton & Williams (1986), "Learning representations by back-propagating errors", Nature 323.

The network maps an input ``x`` through layers ``z_l = h_{l-1} W_l + b_l``, ``h_l = sigma(z_l)``
(``h_0 = x``); the last layer is linear and gives the logits ``f(x) = z_L``. We minimise the mean
softmax cross-entropy over a batch of N examples with labels ``y_n``::

    L = -1/N  sum_n  log softmax(f(x_n))_{y_n}

Backpropagation is the chain rule applied layer by layer, from the output back::

    delta_L = dL/dz_L = (softmax(z_L) - onehot(y)) / N
    delta_l = (delta_{l+1} W_{l+1}^T) * sigma'(z_l)
    dL/dW_l = h_{l-1}^T delta_l,     dL/db_l = sum_n delta_l

LeCun, Bottou, Orr & Müller (1998), "Efficient BackProp", recommend, and this module offers:

- standardised inputs: every feature at zero mean and unit variance, with the statistics of the
  training set only (:func:`standardize`);
- the scaled tanh ``f(x) = 1.7159 tanh(2x/3)``, so that ``f(+-1) = +-1`` (``activation="scaled_tanh"``);
- fan-in initialisation: ``W ~ N(0, std = m^-1/2)`` with ``m`` the fan-in (``init="fanin"``);
- shuffling the training examples every epoch (:func:`batches` with a generator).

The "plain" baseline for each, used in the comparison, is the common naive choice:

- inputs only divided by the training set's maximum, into [0, 1] (:func:`scale_max`);
- the standard tanh (``activation="tanh"``);
- weights ~ U(-0.5, 0.5) whatever the fan-in, the classic "small random weights" (``init="plain"``);
- the dataset's fixed order, no shuffling (:func:`batches` with ``rng=None``).

Biases start at zero in both schemes.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from paradigms.errors import UserError, unknown

ACTIVATIONS = ("tanh", "scaled_tanh", "relu")
INITS = ("fanin", "plain")


def input_scaling(x_train: np.ndarray, standardized: bool = True, eps: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """``(shift, div)`` per feature, from the training set only: inputs become ``(x - shift) / div``.

    Standardised: the mean and std (+ eps, so constant features such as always-blank pixels stay at 0);
    else the plain baseline: 0 and the training set's largest value, so inputs lie in [0, 1].
    """
    if standardized:
        return x_train.mean(axis=0), x_train.std(axis=0) + eps
    top = float(np.abs(x_train).max()) or 1.0
    return np.zeros(x_train.shape[1:]), np.full(x_train.shape[1:], top)


def standardize(x_train: np.ndarray, *others: np.ndarray, eps: float = 1e-8) -> tuple[np.ndarray, ...]:
    """``(x - mean) / std`` per feature, with the training mean and std, applied to every array given."""
    shift, div = input_scaling(x_train, True, eps)
    return tuple((x - shift) / div for x in (x_train, *others))


def scale_max(x_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """The plain baseline: divide by the training set's largest value, so inputs lie in [0, 1]."""
    shift, div = input_scaling(x_train, False)
    return tuple((x - shift) / div for x in (x_train, *others))


def _activation(name: str):
    """``(sigma, sigma')`` as functions of the pre-activation ``z``."""
    if name == "tanh":
        return np.tanh, lambda z: 1.0 - np.tanh(z) ** 2
    if name == "scaled_tanh":
        a, s = 1.7159, 2.0 / 3.0
        # f(z) = a tanh(s z),   f'(z) = a s (1 - tanh^2(s z))
        return (lambda z: a * np.tanh(s * z)), (lambda z: a * s * (1.0 - np.tanh(s * z) ** 2))
    if name == "relu":
        return (lambda z: np.maximum(z, 0.0)), (lambda z: (z > 0).astype(z.dtype))
    raise unknown("activation", name, ACTIVATIONS)


def log_softmax(z: np.ndarray) -> np.ndarray:
    """``z - log sum_k exp z_k``, with the max subtracted first so nothing overflows."""
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


class MLP:
    """A fully connected network: ``sizes = [inputs, hidden..., classes]``; linear last layer (logits)."""

    def __init__(self, sizes: list[int], activation: str = "scaled_tanh", init: str = "fanin",
                 seed: int | np.random.Generator = 0, dtype=np.float64):
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise UserError(f"MLP sizes must be at least [inputs, outputs], all positive; got {list(sizes)}")
        if init not in INITS:
            raise unknown("init", init, INITS)
        self.sigma, self.dsigma = _activation(activation)
        self.activation, self.init, self.sizes = activation, init, [int(s) for s in sizes]
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.params: list[np.ndarray] = []
        for m, n in zip(self.sizes[:-1], self.sizes[1:]):
            if init == "fanin":
                w = rng.normal(0.0, m ** -0.5, size=(m, n))  # W ~ N(0, std = m^-1/2), m = fan-in
            else:
                w = rng.uniform(-0.5, 0.5, size=(m, n))  # W ~ U(-0.5, 0.5)
            self.params += [w.astype(dtype), np.zeros(n, dtype=dtype)]

    def _layers(self):
        return [(self.params[i], self.params[i + 1]) for i in range(0, len(self.params), 2)]

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The logits ``f(x)``, shape (N, classes)."""
        h = np.asarray(x, dtype=self.params[0].dtype)
        layers = self._layers()
        for w, b in layers[:-1]:
            h = self.sigma(h @ w + b)  # h_l = sigma(h_{l-1} W_l + b_l)
        w, b = layers[-1]
        return h @ w + b  # z_L = h_{L-1} W_L + b_L

    def loss_and_grads(self, x: np.ndarray, y: np.ndarray) -> tuple[float, list[np.ndarray]]:
        """Mean softmax cross-entropy of the batch and its gradient for every parameter (same order)."""
        y = np.asarray(y, dtype=np.int64)
        hs, zs = [np.asarray(x, dtype=self.params[0].dtype)], []  # h_0 = x
        layers = self._layers()
        for l, (w, b) in enumerate(layers):
            zs.append(hs[-1] @ w + b)  # z_l = h_{l-1} W_l + b_l
            if l < len(layers) - 1:
                hs.append(self.sigma(zs[-1]))  # h_l = sigma(z_l)
        n = len(y)
        logp = log_softmax(zs[-1])
        loss = -logp[np.arange(n), y].mean()  # L = -1/N sum_n log softmax(f(x_n))_{y_n}

        delta = np.exp(logp)
        delta[np.arange(n), y] -= 1.0
        delta /= n  # delta_L = (softmax(z_L) - onehot(y)) / N
        grads: list[np.ndarray] = []
        for l in range(len(layers) - 1, -1, -1):
            w, _ = layers[l]
            grads[:0] = [hs[l].T @ delta, delta.sum(axis=0)]  # dL/dW_l = h_{l-1}^T delta_l, dL/db_l = sum_n delta_l
            if l > 0:
                delta = (delta @ w.T) * self.dsigma(zs[l - 1])  # delta_l = (delta_{l+1} W_{l+1}^T) * sigma'(z_l)
        return float(loss), grads

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The most likely class of every row."""
        return self.forward(x).argmax(axis=1)


class SGD:
    """Stochastic gradient descent with (heavy-ball) momentum, updating the parameter arrays in place."""

    def __init__(self, params: list[np.ndarray], lr: float, momentum: float = 0.9):
        self.params, self.lr, self.momentum = params, float(lr), float(momentum)
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray]) -> None:
        for p, v, g in zip(self.params, self.velocity, grads):
            v *= self.momentum
            v -= self.lr * g  # v <- mu v - lr g
            p += v  # p <- p + v


def numerical_grads(model: MLP, x: np.ndarray, y: np.ndarray, eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences ``(L(p + eps) - L(p - eps)) / 2 eps``, one parameter entry at a time."""
    grads = []
    for p in model.params:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = model.loss_and_grads(x, y)[0]
            p[i] = old - eps
            down = model.loss_and_grads(x, y)[0]
            p[i] = old
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def batches(n: int, batch_size: int, rng: np.random.Generator | None) -> Iterator[np.ndarray]:
    """Index arrays of one epoch: shuffled by ``rng``, or in the fixed order 0..n-1 when it is None."""
    if batch_size < 1:
        raise UserError(f"batch_size must be at least 1; got {batch_size}")
    order = np.arange(n) if rng is None else rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def accuracy(model: MLP, x: np.ndarray, y: np.ndarray) -> float:
    """The fraction of rows whose predicted class is the label."""
    return float((model.predict(x) == np.asarray(y)).mean())
