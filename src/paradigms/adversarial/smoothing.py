"""Certified robustness by randomized smoothing (Cohen, Rosenfeld & Kolter 2019, "Certified adversarial
robustness via randomized smoothing").

From any base classifier f, the smoothed classifier g returns the class f most often gives under
Gaussian noise,

    g(x) = argmax_c  P( f(x + e) = c ),        e ~ N(0, sigma^2 I),

and is provably constant within an L2 ball around x (their Theorem 1): if the top class has
probability at least pA > 1/2, then g(x + d) = g(x) for every ||d||_2 < R with

    R = sigma * Phi^-1(pA).

:class:`Smooth` implements the paper's two algorithms. PREDICT draws n noisy copies, counts the two
top classes and abstains unless a two-sided binomial test separates them at level alpha. CERTIFY
picks the top class on n0 copies, counts it on n fresh copies, bounds pA from below with the
one-sided Clopper-Pearson interval at confidence 1 - alpha, and abstains (-1) when that bound is not
above 1/2. :meth:`Smooth.certify_many` certifies several images at once, their noisy copies sharing
the base network's batches; :meth:`Smooth.certifying` is the same work as a generator that says how many
noisy copies it has classified (a progress bar: the lab's certify panel) and stops when closed.
"""

from __future__ import annotations

import math
from typing import Generator

import torch
from scipy.stats import beta, binomtest, norm
from torch import nn

from ..errors import UserError
from .attacks import chunk_size

ABSTAIN = -1


def check(sigma: float | None = None, alpha: float | None = None, n0: int | None = None,
          n: int | None = None, batch_size: int | None = None) -> None:
    """One line per bad value, naming it and what it must be."""
    if sigma is not None and not (isinstance(sigma, (int, float)) and sigma > 0 and math.isfinite(sigma)):
        raise UserError(f"sigma={sigma} is out of range: the noise's standard deviation must be > 0 "
                        "(in [0, 1] pixels, e.g. 0.25, 0.5 or 1.0)")
    if alpha is not None and not 0 < alpha < 1:
        raise UserError(f"alpha={alpha} is out of range: the failure probability must be in (0, 1), e.g. 0.001")
    if n is not None and (int(n) != n or n < 1):
        raise UserError(f"n={n} is out of range: the number of noisy samples must be a whole number >= 1")
    if n0 is not None and (int(n0) != n0 or n0 < 1):
        raise UserError(f"n0={n0} is out of range: the selection samples must be a whole number >= 1")
    if n0 is not None and n is not None and n0 >= n:
        raise UserError(f"n0={n0} must be smaller than n={n}: n0 samples pick the class, n (many more) "
                        "estimate its probability (the paper: n0=100, n=100000)")
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise UserError(f"batch_size={batch_size} is out of range: a whole number >= 1")


def lower_confidence_bound(k: int, n: int, alpha: float) -> float:
    """One-sided (1 - alpha) Clopper-Pearson lower bound on p from k successes in n trials."""
    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def radius(p_lower: float, sigma: float) -> float:
    """sigma * Phi^-1(pA): the L2 radius within which the smoothed prediction cannot change."""
    return sigma * float(norm.ppf(p_lower))


def finish(steps: Generator):
    """Run a generator form (:meth:`Smooth.counting`, :meth:`Smooth.certifying`) to its end: what it returns."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


def shifted(steps: Generator, by: int) -> Generator:
    """``steps`` with ``by`` added to each number it yields, returning what it returns (closed with it)."""
    try:
        while True:
            try:
                done = next(steps)
            except StopIteration as stop:
                return stop.value
            yield by + done
    finally:
        steps.close()


def inference_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` with each batch norm folded into the convolution before it (torch.fx),
    the same function in fewer passes over memory; ``model`` itself where it cannot be traced."""
    import warnings

    with warnings.catch_warnings():  # torch's own modules warn of their deprecated torch.jit use on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from torch.fx.experimental.optimization import fuse

        try:
            return fuse(model)
        except Exception:  # noqa: BLE001 - any model fx cannot trace runs as it is
            return model


class Smooth:
    """The smoothed classifier g of ``model`` (pixels in [0, 1]) under N(0, sigma^2) noise."""

    def __init__(self, model: nn.Module, num_classes: int, sigma: float):
        check(sigma=sigma)
        self.model, self.num_classes, self.sigma = model, int(num_classes), float(sigma)

    # -- the Monte Carlo counts -----------------------------------------------------------------------------------
    def counts(self, x: torch.Tensor, num: int, batch_size: int = 1000,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """(N, K) class counts of the base network on ``num`` noisy copies of each image of ``x`` (N, C, H, W).

        The copies of several images share each forward batch of ``batch_size`` (a few copies each when
        ``num`` is small, one image's copies when it is large), drawn afresh from ``generator`` (default: the global
        one). On a CPU a batch is at most as large as keeps the network's largest activation in cache
        (:func:`.attacks.chunk_size`), and the network runs with its batch norms folded (:func:`inference_copy`).
        :meth:`counting` is the same, one forward batch at a time.
        """
        return finish(self.counting(x, num, batch_size, generator))

    @torch.inference_mode()
    def counting(self, x: torch.Tensor, num: int, batch_size: int = 1000,
                 generator: torch.Generator | None = None) -> Generator[int, None, torch.Tensor]:
        """:meth:`counts` as a generator: after each forward batch it yields how many noisy copies it has classified
        so far (of ``len(x) * num``), and it returns the (N, K) counts, the very noise and counts of :meth:`counts`
        (for a progress bar; closing it stops the work)."""
        check(n=num, batch_size=batch_size)
        x = x.detach()
        n_img, k = len(x), self.num_classes
        out = torch.zeros(n_img, k, dtype=torch.long, device=x.device)
        was_training = self.model.training
        self.model.eval()
        model = inference_copy(self.model)
        done = 0
        try:
            # on a CPU, no larger a forward batch than keeps the largest activation in cache (as attacks.pgd)
            size = chunk_size(model, x[:1].expand(batch_size, *x.shape[1:]))
            per_image = max(1, min(num, size))                # copies of one image per forward batch
            images = max(1, size // per_image)                # images sharing a batch
            for i in range(0, n_img, images):
                xs = x[i:i + images]                          # (m, C, H, W)
                left = num
                while left > 0:
                    r = min(per_image, left)
                    batch = xs.repeat_interleave(r, dim=0)    # (m*r, C, H, W), each image's copies together
                    e = (torch.randn_like(batch) if generator is None else
                         torch.randn(batch.shape, generator=generator, dtype=batch.dtype, device=batch.device))
                    noisy = e.mul_(self.sigma).add_(batch)    # x + e, e ~ N(0, sigma^2 I)
                    pred = model(noisy).argmax(1).view(len(xs), r)
                    offset = torch.arange(len(xs), device=x.device).view(-1, 1) * k
                    out[i:i + len(xs)] += torch.bincount((pred + offset).flatten(), minlength=len(xs) * k).view(-1, k)
                    left -= r
                    done += len(batch)
                    yield done
        finally:
            self.model.train(was_training)
        return out

    # -- PREDICT ---------------------------------------------------------------------------------------
    def predict(self, x: torch.Tensor, n: int, alpha: float, batch_size: int = 1000) -> int:
        """The smoothed class of one image ``x`` (C, H, W), or -1 (abstain) when a two-sided binomial test at
        level ``alpha`` cannot tell the two most frequent classes apart among ``n`` noisy copies."""
        check(alpha=alpha, n=n)
        c = self.counts(x.unsqueeze(0), n, batch_size)[0]
        top2 = c.topk(2).indices.tolist()
        n_a, n_b = int(c[top2[0]]), int(c[top2[1]])
        if binomtest(n_a, n_a + n_b, 0.5).pvalue > alpha:
            return ABSTAIN
        return top2[0]

    # -- CERTIFY ---------------------------------------------------------------------------------------
    def certify(self, x: torch.Tensor, n0: int, n: int, alpha: float, batch_size: int = 1000) -> tuple[int, float]:
        """CERTIFY for one image (C, H, W): ``(class, radius)``, or ``(-1, 0.0)`` when it abstains."""
        (c, r), = self.certify_many(x.unsqueeze(0), n0, n, alpha, batch_size)
        return c, r

    def certify_many(self, x: torch.Tensor, n0: int = 100, n: int = 100_000, alpha: float = 0.001,
                     batch_size: int = 1000) -> list[tuple[int, float]]:
        """CERTIFY for each image of ``x`` (N, C, H, W), their noisy copies batched together.

        Per image: cA = the top class on n0 copies (selection); nA = its count on n fresh copies
        (estimation); pA = the Clopper-Pearson lower bound of nA / n; ``(cA, sigma * Phi^-1(pA))`` when
        pA > 1/2, else ``(-1, 0.0)``.
        """
        return finish(self.certifying(x, n0, n, alpha, batch_size))

    def certifying(self, x: torch.Tensor, n0: int = 100, n: int = 100_000, alpha: float = 0.001,
                   batch_size: int = 1000, generator: torch.Generator | None = None
                   ) -> Generator[int, None, list[tuple[int, float]]]:
        """:meth:`certify_many` as a generator: it yields how many noisy copies it has classified so far (of
        ``len(x) * (n0 + n)``) and returns its list, drawing the same noise in the same order (from ``generator``,
        default the global one) and so giving the same certificates. Closing it stops the work."""
        check(alpha=alpha, n0=n0, n=n, batch_size=batch_size)
        guesses = (yield from self.counting(x, n0, batch_size, generator)).argmax(1)   # selection: n0 samples
        estimation, first = self.counting(x, n, batch_size, generator), len(x) * n0
        counts = yield from shifted(estimation, first)                        # estimation: n fresh samples
        out = []
        for c_a, row in zip(guesses.tolist(), counts):
            p_a = lower_confidence_bound(int(row[c_a]), n, alpha)
            out.append((c_a, radius(p_a, self.sigma)) if p_a > 0.5 else (ABSTAIN, 0.0))
        return out
