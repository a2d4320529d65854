"""Sample quality by the Frechet distance between two sets of features (Heusel et al. 2017), each set summarised
as a Gaussian N(mu, Sigma):

    FD = || mu_a - mu_b ||^2 + Tr( Sigma_a + Sigma_b - 2 (Sigma_a Sigma_b)^(1/2) ).

FID takes the features from an Inception network, which cannot be fetched here, so the features come from a
classifier trained on the same dataset (any classifier run: ``paradigms.load`` and its ``features``, the layer
before the head). That number is called **classifier-FD** wherever it appears, never FID: it is comparable only
with itself, on the same dataset and classifier, which is why the real-versus-real value goes beside it
(:class:`ClassifierFD`).
"""

from __future__ import annotations

import numpy as np
import torch


def frechet_distance(features_a, features_b) -> float:
    """The Frechet distance between Gaussians fitted to ``features_a`` (N, F) and ``features_b`` (M, F).

    The trace of (Sigma_a Sigma_b)^(1/2) is the sum of the square roots of the eigenvalues of the symmetric
    matrix Sigma_a^(1/2) Sigma_b Sigma_a^(1/2) (similar to Sigma_a Sigma_b), computed in float64.
    """
    a = np.asarray(torch.as_tensor(features_a).detach().cpu().double())
    b = np.asarray(torch.as_tensor(features_b).detach().cpu().double())
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError(f"frechet_distance needs two sets of at least 2 feature vectors of one width; got "
                         f"{a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T                   # Sigma_a^(1/2), symmetric
    eig = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_sqrt = np.sqrt(np.clip(eig, 0, None)).sum()                   # Tr (Sigma_a Sigma_b)^(1/2)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


@torch.no_grad()
def classifier_features(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``net.features`` (the classifier's layer before its head) of images in [0, 1], in eval mode, on the CPU."""
    was = net.training
    net.eval()
    try:
        device = next(net.parameters()).device
        return torch.cat([net.features(images[i:i + batch_size].to(device)).float().cpu()
                          for i in range(0, len(images), batch_size)])
    finally:
        net.train(was)


class ClassifierFD:
    """The classifier-FD of a dataset with the classifier of run folder ``run``: the features of ``test`` and ``real``
    images (uint8, (N, C, H, W)) are computed once; ``scores(samples)`` gives ``classifier_fd`` (samples against the
    test images) and ``classifier_fd_real`` (real training images against them, the floor to compare with)."""

    def __init__(self, run, device: str, dataset: str, in_shape, test: torch.Tensor, real: torch.Tensor):
        from ..api import load
        from ..data import unit
        from ..errors import UserError

        net = load(run, device)
        if tuple(net.input_shape or ()) != tuple(in_shape) or not hasattr(net, "features"):
            raise UserError(f"fd_classifier={run} takes images of shape {net.input_shape}; {dataset} has "
                            f"{tuple(in_shape)}: give a classifier run of {dataset}")
        self.net = net
        self.test, self.real = classifier_features(net, unit(test)), classifier_features(net, unit(real))

    def scores(self, samples: torch.Tensor) -> dict[str, float]:
        """``{"classifier_fd", "classifier_fd_real"}`` for generated images in [0, 1]."""
        fake = classifier_features(self.net, samples)
        return {"classifier_fd": frechet_distance(fake, self.test),
                "classifier_fd_real": frechet_distance(self.real, self.test)}
