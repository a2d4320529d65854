"""Autoencoders and VAEs (issue 14): the objective's pieces against independent computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from paradigms.autoencoder import bernoulli_log_prob, elbo, gaussian_kl, gaussian_log_prob, iwae_bound


def test_the_closed_form_kl_matches_a_monte_carlo_estimate():
    torch.manual_seed(0)
    mu, logvar = torch.randn(4, 3), torch.randn(4, 3) * 0.5
    q = D.Normal(mu, (0.5 * logvar).exp())
    z = q.sample((200_000,))
    p = D.Normal(torch.zeros(3), torch.ones(3))
    mc = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
    assert torch.allclose(gaussian_kl(mu, logvar), mc, atol=0.02)
    assert torch.allclose(gaussian_kl(mu, logvar), D.kl_divergence(q, p).sum(-1), atol=1e-5)


def test_the_bernoulli_and_gaussian_log_likelihoods_match_torch_distributions():
    torch.manual_seed(1)
    logits, x = torch.randn(5, 1, 4, 4), torch.randint(0, 2, (5, 1, 4, 4)).float()
    expected = D.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(bernoulli_log_prob(logits, x), expected, atol=1e-5)
    mean, logvar, y = torch.randn(5, 6), torch.randn(5, 6), torch.randn(5, 6)
    expected = D.Normal(mean, (0.5 * logvar).exp()).log_prob(y).sum(1)
    assert torch.allclose(gaussian_log_prob(mean, logvar, y), expected, atol=1e-5)


def test_the_iwae_bound_is_above_the_elbo_rises_with_k_and_reaches_the_exact_likelihood():
    """A linear-Gaussian model, z ~ N(0, 1), x | z ~ N(a z, s^2), has log p(x) in closed form: x ~ N(0, a^2 + s^2).
    With a deliberately poor q(z|x), L_1 (the ELBO) < L_10 < L_1000 <= log p(x), the last within a little."""
    torch.manual_seed(2)
    a, s = 2.0, 0.5
    x = torch.randn(64, 1) * math.sqrt(a * a + s * s)
    exact = D.Normal(0.0, math.sqrt(a * a + s * s)).log_prob(x).sum(1)

    def encode(xs):  # a poor posterior: the true one is N(a x / (a^2 + s^2), s^2 / (a^2 + s^2))
        return 0.3 * xs, torch.zeros_like(xs)

    def log_px_given_z(xs, z):
        return gaussian_log_prob(a * z, torch.full_like(xs, 2 * math.log(s)), xs)

    bounds = {k: float(iwae_bound(x, encode, log_px_given_z, k=k, chunk=300).mean()) for k in (1, 10, 1000)}
    xs = x.repeat(500, 1)  # the ELBO's expectation over many one-sample draws: what L_1 estimates
    mu, logvar = encode(xs)
    z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
    expected_elbo = float(elbo(log_px_given_z(xs, z), mu, logvar).mean())
    l1 = float(iwae_bound(xs, encode, log_px_given_z, k=1).mean())
    assert bounds[1] < bounds[10] < bounds[1000] <= float(exact.mean()) + 0.02
    assert float(exact.mean()) - bounds[1000] < 0.1
    assert abs(expected_elbo - l1) < 0.1  # L_1 is the ELBO


def test_an_autoencoder_on_digits_reconstructs_better_than_pca_and_its_encoder_transfers(tmp_path):
    from paradigms.engine import Trainer

    import paradigms

    from .test_engine import config

    final = Trainer(config("autoencoder", ["train.epochs=15"]), tmp_path / "ae", progress=False).fit()
    assert final["test/mse"] < final["test/pca_mse"] < 0.05, final
    # feature learning at the end of training: linear probes on the code, raw pixels and PCA codes
    assert final["test/probe_code"] > 0.7 and final["test/probe_pixels"] > 0.9 and final["test/probe_pca"] > 0.7
    assert all((tmp_path / "ae" / "figures" / f"{f}.png").is_file() for f in ("reconstructions", "codes"))
    enc = paradigms.load(tmp_path / "ae")
    assert enc(torch.rand(3, 1, 8, 8)).shape == (3, 8)  # the code
    probe = Trainer(config("finetune", ["transfer.strategy=linear-probe", "train.epochs=5"], source=str(tmp_path / "ae")),
                    tmp_path / "probe", progress=False).fit()
    assert probe["test/acc"] > 0.8


def test_a_denoising_run_corrupts_the_input_and_scores_against_the_clean_image(tmp_path):
    from paradigms.autoencoder.recipe import reconstruction_error
    from paradigms.engine import Trainer

    from .test_engine import config

    recipe = Trainer(config("autoencoder", ["denoise=0.5"]), tmp_path / "dae", progress=False).recipe
    seen = []
    recipe.enc.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().clone()))
    x, y = next(iter(recipe.batches(0)))
    torch.manual_seed(0)
    loss = float(recipe.train_step((x, y), 0)["loss"])
    assert not torch.allclose(seen[0], x) and float((seen[0] - x).std()) > 0.4  # the encoder saw x + noise
    # the loss is the clean image's error for the reconstruction of the same noisy input (same noise, before the step)
    recipe2 = Trainer(config("autoencoder", ["denoise=0.5"]), tmp_path / "dae2", progress=False).recipe
    torch.manual_seed(0)
    with torch.no_grad():
        recon = recipe2.reconstruct(recipe2.corrupt(x))
    assert loss == pytest.approx(float(reconstruction_error(recon, x).mean()), rel=1e-5)
    assert loss != pytest.approx(float(reconstruction_error(recon, seen[0]).mean()), rel=1e-3)


def test_a_trained_vaes_iwae_bound_rises_with_k_above_its_elbo(tmp_path):
    from paradigms.engine import Trainer

    from .test_engine import config

    trainer = Trainer(config("vae", ["train.epochs=10", "iwae_k=200"]), tmp_path / "vae", progress=False)
    final = trainer.fit()
    assert final["test/nll"] < final["test/neg_elbo"], final
    vae = trainer.recipe
    x = torch.bernoulli(next(iter(vae.test_loader.epoch(0)))[0], generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    bounds = [float(iwae_bound(x, vae.encode, vae.log_px_given_z, k=k).mean()) for k in (1, 10, 100)]
    assert bounds[0] < bounds[1] < bounds[2], bounds


def test_sample_writes_a_grid_for_a_vae_and_refuses_a_run_that_cannot_sample(tmp_path, capsys):
    from PIL import Image

    from paradigms.engine import Trainer

    from .test_cli import error_line, run_cli
    from .test_engine import config

    Trainer(config("vae", ["train.epochs=2", "iwae_k=10", "iwae_n=50"]), tmp_path / "vae", progress=False).fit()
    assert all((tmp_path / "vae" / "figures" / f"{f}.png").is_file() for f in ("samples", "reconstructions",
                                                                               "interpolation"))
    assert "drawn for a 2-D code only" in (tmp_path / "vae" / "notes" / "manifold.txt").read_text()  # said, not drawn
    assert not (tmp_path / "vae" / "figures" / "manifold.png").exists()
    code, out, err = run_cli(capsys, "sample", str(tmp_path / "vae"), "--n", "12", "--seed", "3")
    assert code == 0, err
    png = tmp_path / "vae" / "samples-seed3.png"
    assert Image.open(png).size == (4 * 65 + 1, 3 * 65 + 1)  # 12 8x8 digits shown 64 px wide, 4 columns, 1-px lines
    # the 2-D manifold, asked for on a 20-D code: said in one line (exit 2), nothing drawn
    line = error_line(capsys, "sample", str(tmp_path / "vae"), "--manifold")
    assert "drawn for a 2-D code only" in line and "20 dimensions" in line and "code=2" in line
    assert not (tmp_path / "vae" / "manifold.png").exists()
    Trainer(config("autoencoder", ["train.epochs=1"]), tmp_path / "ae", progress=False).fit()
    assert "cannot sample" in error_line(capsys, "sample", str(tmp_path / "ae"))
    assert "cannot draw a latent manifold" in error_line(capsys, "sample", str(tmp_path / "ae"), "--manifold")


def test_a_vae_with_a_2d_code_draws_its_latent_manifold(tmp_path, capsys):
    from PIL import Image

    from paradigms.engine import Trainer

    from .test_cli import run_cli
    from .test_engine import config

    Trainer(config("vae", ["train.epochs=2", "code=2", "iwae_k=10", "iwae_n=50"]), tmp_path / "vae2",
            progress=False).fit()
    assert (tmp_path / "vae2" / "figures" / "manifold.png").is_file()
    assert not (tmp_path / "vae2" / "notes" / "manifold.txt").exists()
    code, out, err = run_cli(capsys, "sample", str(tmp_path / "vae2"), "--manifold")
    assert code == 0, err
    assert "15x15 latent manifold" in out
    assert Image.open(tmp_path / "vae2" / "manifold.png").size == (15 * 65 + 1, 15 * 65 + 1)  # 8x8 digits, x8


def test_auroc_matches_scikit_learn_with_ties():
    from sklearn.metrics import roc_auc_score

    from paradigms.autoencoder.anomaly import auroc

    rng = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (300,), generator=rng).numpy()
    scores = (torch.randint(0, 20, (300,), generator=rng) + 3 * torch.as_tensor(labels)).numpy()  # many ties
    assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert auroc([0.1, 0.2, 0.9], [0, 0, 1]) == 1.0 and auroc([0.9, 0.2, 0.1], [0, 0, 1]) == 0.0


def test_the_anomaly_command_on_a_one_class_autoencoder(tmp_path, capsys):
    from paradigms.engine import Trainer

    from .test_cli import error_line, run_cli
    from .test_engine import config

    Trainer(config("autoencoder", ["classes=[0]", "train.epochs=10"]), tmp_path / "zero", progress=False).fit()
    code, out, err = run_cli(capsys, "anomaly", str(tmp_path / "zero"))
    assert code == 0, err
    from paradigms.engine.results import read_results

    kept = read_results(tmp_path / "zero")[0]
    result = kept.values
    assert result["normal"] == ["0"] and result["auroc"] > 0.9 and f"AUROC {result['auroc']:.4f}" in out
    assert [f["file"] for f in kept.figures] == [f"001-anomaly-normal-0-{f}.png" for f in ("scores", "most", "least")]
    assert result["caveat"] == "" and "note:" not in err
    assert "has no class '12'" in error_line(capsys, "anomaly", str(tmp_path / "zero"), "--normal", "12")
    Trainer(config("autoencoder", ["train.epochs=1"]), tmp_path / "all", progress=False).fit()
    assert "none is anomalous" in error_line(capsys, "anomaly", str(tmp_path / "all"))
    code, out, err = run_cli(capsys, "anomaly", str(tmp_path / "all"), "--normal", "0")   # a caveat, not silence
    assert code == 0 and "note: The run trained on every class" in err
    assert "trained on every class" in read_results(tmp_path / "all")[0].summary
    Trainer(config("supervised", ["train.epochs=1"]), tmp_path / "clf", progress=False).fit()
    assert "gives no anomaly score" in error_line(capsys, "anomaly", str(tmp_path / "clf"), "--normal", "0")


def test_the_anomaly_threshold_is_the_quantile_of_the_normal_training_images_scores(tmp_path):
    """t_q = quantile_q of the scores of the images the run learnt from: about 1 - q of them score above it."""
    import numpy as np

    from paradigms.autoencoder.anomaly import anomaly_threshold, normal_scores, score_quantile, share_below
    from paradigms.data import unit
    from paradigms.engine import Trainer
    from paradigms.engine.trainer import load_trained

    from .test_engine import config

    Trainer(config("autoencoder", ["classes=[0]", "train.epochs=2", "probe_n=0", "train.figures=false"]),
            tmp_path / "zero", progress=False).fit()
    trained = load_trained(tmp_path / "zero", "cpu")
    assert (trained.train_y == 0).all()                                      # the normal class alone
    every = trained.anomaly_score(unit(trained.train_x)).numpy()            # (n,) each training image's score
    scores = normal_scores(trained)
    assert np.allclose(scores.numpy(), np.sort(every), rtol=1e-6) and len(scores) == len(trained.train_x)
    t = anomaly_threshold(trained)
    assert t == pytest.approx(float(np.quantile(every, 0.95)), rel=1e-6)
    assert t == anomaly_threshold(trained, 0.95, scores) == score_quantile(scores, 0.95)
    above = float((every > t).mean())
    assert abs(above - 0.05) <= 1 / len(every)                              # about 1 - q of the normal images
    assert anomaly_threshold(trained, 0.99, scores) > t > anomaly_threshold(trained, 0.5, scores)
    assert share_below(t, scores) == pytest.approx(1 - above) and share_below(float(scores[0]), scores) == 0
    for bad in (0, 1, 1.5):
        with pytest.raises(ValueError, match="quantile"):
            anomaly_threshold(trained, bad, scores)


def test_a_vae_reconstructs_from_mu_and_paradigms_load_gives_its_encoder(tmp_path):
    import json

    import paradigms
    from paradigms.engine import Trainer
    from paradigms.engine.trainer import load_trained

    from .test_engine import config

    Trainer(config("vae", ["train.epochs=1", "train_size=200", "iwae_k=2", "iwae_n=10", "train.figures=false"]),
            tmp_path / "vae", progress=False).fit()
    vae = load_trained(tmp_path / "vae", "cpu")
    x = next(iter(vae.test_loader.epoch(0)))[0][:6]
    mu, logvar = vae.encode(x)
    recon = vae.reconstruct(x)
    assert torch.equal(recon, vae.decode(mu)) and torch.equal(recon, vae.reconstruct(x))   # no draw: the same twice
    assert recon.shape == x.shape and 0 <= float(recon.min()) and float(recon.max()) <= 1
    card = json.loads((tmp_path / "vae" / "model.json").read_text())
    assert card["kind"] == "encoder" and card["code"] == 20 and card["features"] == 40 and card["recipe"] == "vae"
    net = paradigms.load(tmp_path / "vae")                                  # the encoder q(z|x): (mu, logvar)
    assert torch.allclose(net(x), torch.cat([mu, logvar], 1), atol=1e-6)
