"""`make bench-gans`: GANs against the papers' findings, into BENCHMARKS.md.

1. MNIST and Fashion-MNIST: classifier-FD of 10,000 samples against the test set for the minimax loss, the
   non-saturating loss, and non-saturating + feature matching (quick preset: DCGAN, width 32), beside the
   real-versus-real value; the generator's gradient norm over training for each (the minimax loss saturates
   early) and the samples, as figures.
2. Semi-supervised GAN on MNIST with 100 labels (Salimans et al. section 5): test error against the same
   discriminator trained on the 100 labels alone. 2b (not run by default: hours): the ``full`` preset, or its
   first ``--full-epochs``.
3. Speed: training steps/s of the gan recipe against a plain PyTorch loop of the same two networks.

The classifier of the classifier-FD is the supervised recipe's quick network of each dataset (LeNet-5 x4), its
features the layer before its head. Networks are trained once and kept in ``--work``; each section's lines are
kept, so one section run later completes the BENCHMARKS.md section without redoing or erasing the others.

Usage: python benchmarks/bench_gans.py --data-dir ../shared/datasets [--sections 1,2,3] [--sections 2b --full-epochs 100]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from driver import run_benchmark  # noqa: E402
from paradigms import config as configlib  # noqa: E402
from paradigms import recipes  # noqa: E402
from paradigms.data import load_images  # noqa: E402
from paradigms.engine.report import grid_figure, save_figure  # noqa: E402
from paradigms.engine.runlog import read_metrics  # noqa: E402
from paradigms.engine.trainer import load_trained  # noqa: E402
from runs import COMMON, Runs  # noqa: E402
from speed import engine_rate  # noqa: E402

HERE = Path(__file__).resolve().parent
DATASETS = ("mnist", "fashion-mnist")
LOSSES = {"minimax": ["loss=minimax"], "non-saturating": ["loss=non-saturating"],
          "non-saturating + feature matching": ["loss=non-saturating", "feature_matching=true"]}


def key(ds: str, loss: str) -> str:
    return f"{ds}-" + loss.replace(" + ", "+").replace(" ", "-")


def section_fd(runs: Runs, fd_n: int) -> list[str]:
    table = {}
    for ds in DATASETS:
        runs(f"clf-{ds}", "supervised", [], 0, flags={"dataset": ds})        # the classifier-FD's classifier
        clf = runs.dir(f"clf-{ds}", 0)
        grads, samples = {}, []
        for loss, sets in LOSSES.items():
            k = key(ds, loss)
            # diverge_steps=0: every objective gets the whole budget (the minimax one would stop where D wins outright)
            m = runs(k, "gan", [*sets, f"fd_classifier={clf}", f"fd_n={fd_n}", "train.figures=true", "diverge_steps=0"],
                     0, metric=None, flags={"dataset": ds})
            table[ds, loss] = {**m, "s": runs.seconds(k)}
            rows = [r for r in read_metrics(runs.dir(k, 0)) if r["split"] == "train" and "g_grad_norm" in r]
            grads[loss] = ([r["step"] for r in rows], [r["g_grad_norm"] for r in rows])
            gan = load_trained(runs.dir(k, 0), "cpu")
            samples.append(gan.sample(10, gan.fixed_z[:10]))
            print(json.dumps({"fd": [ds, loss], **{k2: round(v, 4) for k2, v in m.items()}}), flush=True)
        fig, ax = plt.subplots(figsize=(6, 3.4))
        for loss, (steps, norms) in grads.items():
            ax.plot(steps, norms, label=loss)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("generator gradient norm")
        ax.set_title(f"{ds}: the generator's gradient norm through training (log scale)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        save_figure(fig, HERE / "figures" / f"gan-grad-norm-{ds}.png")
        save_figure(grid_figure(torch.cat(samples), f"{ds}: 10 samples (the same z) per row: "
                                + ", ".join(LOSSES), 10), HERE / "figures" / f"gan-samples-{ds}.png")
    cfg = configlib.resolve(recipes.get("gan"), "quick", None, [], {"dataset": "mnist"})
    lines = ["### 1. The generator's loss: classifier-FD on MNIST and Fashion-MNIST (Goodfellow et al. 2014; "
             "Salimans et al. 2016)", "",
             f"`paradigms run gan --dataset D --set loss=L [--set feature_matching=true] --set fd_classifier=CLF` "
             f"(quick preset: DCGAN width {cfg.width}, latent {cfg.latent}, {cfg.train.epochs} epochs, batch "
             f"{cfg.train.batch_size}, Adam 2e-4, beta1 0.5, k = {cfg.k}). classifier-FD: the Frechet distance of the "
             f"features of the supervised quick network (LeNet-5 x4, the layer before its head; CLF = "
             f"`paradigms run supervised --dataset D`) between {fd_n:,} samples and {fd_n:,} test images; real versus "
             f"real: {fd_n:,} training images against the same test images. Lower is better; the numbers compare "
             f"only within a dataset (it is not FID: no Inception network here). Every run trains its whole budget "
             f"(`--set diverge_steps=0`): with the default guard the minimax run stops once its discriminator has won "
             f"outright for 2,000 steps.", "",
             "| dataset | generator loss | classifier-FD | real vs real | D(x), test | D(G(z)) | training time |",
             "|---|---|---|---|---|---|---|"]
    for ds in DATASETS:
        for loss in LOSSES:
            r = table[ds, loss]
            lines.append(f"| {ds} | {loss} | {r['test/classifier_fd']:.2f} | {r['test/classifier_fd_real']:.2f} | "
                         f"{r['test/d_real']:.3f} | {r['test/d_fake']:.3f} | {r['s'] / 60:.1f} min |")
    lines += ["", "Figures: the generator's gradient norm through training, "
              + ", ".join(f"`benchmarks/figures/gan-grad-norm-{ds}.png`" for ds in DATASETS) + "; samples, "
              + ", ".join(f"`benchmarks/figures/gan-samples-{ds}.png`" for ds in DATASETS) + "."]
    return lines + [""]


def section_semi(runs: Runs) -> list[str]:
    res = {}
    for name, sets in (("semi-supervised GAN (feature matching)", []),
                       ("the same discriminator, the 100 labels alone", ["unsupervised_weight=0"])):
        m = runs(f"semi-mnist-{'alone' if sets else 'gan'}", "semi-gan", sets, 0, metric=None,
                 flags={"dataset": "mnist"})
        res[name] = {**m, "s": runs.seconds(f"semi-mnist-{'alone' if sets else 'gan'}")}
        print(json.dumps({"semi": name, **{k: round(v, 4) for k, v in m.items()}}), flush=True)
    cfg = configlib.resolve(recipes.get("semi-gan"), "quick", None, [], {"dataset": "mnist"})
    gan = res["semi-supervised GAN (feature matching)"]["test/error"]
    verdict = "met" if gan <= 0.05 else "NOT met"
    lines = ["### 2. Semi-supervised learning with a GAN on MNIST, 100 labels (Salimans et al. 2016, section 5)", "",
             f"`paradigms run semi-gan --dataset mnist` (quick preset: {cfg.labels} labels, {cfg.labels // 10} per "
             f"class; the paper's networks: D {'-'.join(map(str, [784, *cfg.hidden_d, 10]))} with Gaussian noise "
             f"{cfg.input_noise:g} / {cfg.hidden_noise:g}, G {'-'.join(map(str, [cfg.latent, *cfg.hidden_g, 784]))}; "
             f"{cfg.train.epochs} epochs, batch {cfg.train.batch_size}, Adam {cfg.optim_d.lr:g} decaying to 0); the "
             f"baseline is the same command with `--set unsupervised_weight=0`. Test error on the 10,000 test images.", "",
             "| training | test error | training time |", "|---|---|---|"]
    for name, r in res.items():
        lines.append(f"| {name} | {r['test/error']:.2%} | {r['s'] / 60:.1f} min |")
    lines += ["| the paper (Salimans et al., 100 labels, feature matching) | 0.93% | |", "",
              f"Target: quick preset <= 5% error on 2 cores: {verdict}. The `full` preset (300 epochs, the "
              f"paper's): section 2b."]
    return lines + [""]


def section_semi_full(runs: Runs, epochs: int) -> list[str]:
    """The semi-supervised GAN's ``full`` preset (the paper's 300 epochs), or its first ``epochs`` of them."""
    cfg = configlib.resolve(recipes.get("semi-gan"), "full", None, [], {"dataset": "mnist"})
    sets = [] if epochs == cfg.train.epochs else [f"train.epochs={epochs}"]
    m = runs(f"semi-mnist-full-{epochs}", "semi-gan", sets, 0, metric=None, flags={"dataset": "mnist"}, preset="full")
    s = runs.seconds(f"semi-mnist-full-{epochs}")
    print(json.dumps({"semi-full": epochs, **{k: round(v, 4) for k, v in m.items()}}), flush=True)
    verdict = "met" if m["test/error"] <= 0.015 else "NOT met"
    command = "paradigms run semi-gan --dataset mnist --preset full" + "".join(f" --set {x}" for x in sets)
    scale = ("the paper's 300 epochs" if not sets else
             f"{epochs} of the preset's {cfg.train.epochs} epochs, the learning rate decaying to 0 over the {epochs}")
    return ["### 2b. The semi-supervised GAN's `full` preset on MNIST, 100 labels", "",
            f"`{command}`: {scale}, batch {cfg.train.batch_size}, otherwise section 2's settings.", "",
            "| training | test error | training time |", "|---|---|---|",
            f"| semi-supervised GAN, {epochs} epochs | {m['test/error']:.2%} | {s / 60:.0f} min |",
            "| a public PyTorch reproduction (Sleepychord/ImprovedGAN-pytorch), 100 epochs | 1.5% | |",
            "| the paper (Salimans et al.) | 0.93% | |", "",
            f"Target: `full` preset <= 1.5% error: {verdict}"
            + ("." if not sets else f" at {epochs} epochs (the whole 300 would take about {s * 300 / epochs / 3600:.0f} "
                                   f"hours on this machine)."), ""]


def plain_loop(cfg, data, steps: int) -> float:
    """The gan recipe's step written by hand: the same two networks (same constructors), optimisers and losses;
    one discriminator step and one generator step (k = 1) on random real batches; steps/s."""
    import torch.nn.functional as F

    from paradigms.gan.models import DCGANDiscriminator, DCGANGenerator

    torch.manual_seed(0)
    shape = (data.channels, *data.size)
    g, d = DCGANGenerator(cfg.latent, shape, cfg.width), DCGANDiscriminator(shape, 1, cfg.width)
    opt_g = torch.optim.Adam(g.parameters(), lr=cfg.optim_g.lr, betas=cfg.optim_g.betas)
    opt_d = torch.optim.Adam(d.parameters(), lr=cfg.optim_d.lr, betas=cfg.optim_d.betas)
    x_all, b = data.train_x, cfg.train.batch_size
    g.train()
    d.train()
    t = time.perf_counter()
    for _ in range(steps):
        x = x_all[torch.randint(0, len(x_all), (b,))].float() / 255
        with torch.no_grad():
            fake = g(torch.randn(b, cfg.latent))
        real_l, fake_l = d(x).squeeze(1), d(fake).squeeze(1)
        loss_d = (F.binary_cross_entropy_with_logits(real_l, torch.ones_like(real_l))
                  + F.binary_cross_entropy_with_logits(fake_l, torch.zeros_like(fake_l)))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-d(g(torch.randn(b, cfg.latent))).squeeze(1)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    return steps / (time.perf_counter() - t)


def step_flops(cfg, data) -> float:
    """FLOPs of one D step and one G step (forward and backward), as the recipe does them."""
    from torch.utils.flop_counter import FlopCounterMode

    from paradigms.gan.models import DCGANDiscriminator, DCGANGenerator

    shape = (data.channels, *data.size)
    g, d = DCGANGenerator(cfg.latent, shape, cfg.width), DCGANDiscriminator(shape, 1, cfg.width)
    b = cfg.train.batch_size
    with FlopCounterMode(display=False) as fc:
        with torch.no_grad():
            fake = g(torch.randn(b, cfg.latent))
        (d(torch.rand(b, *shape)).sum() + d(fake).sum()).backward()
        d(g(torch.randn(b, cfg.latent))).sum().backward()
    return float(fc.get_total_flops())


def section_speed(data_dir, work: Path, epochs: int, rounds: int) -> list[str]:
    from bench_supervised import matmul_peak

    peak = matmul_peak()
    data = load_images("mnist", data_dir)
    cls = recipes.get("gan")
    cfg = cls.prepare(configlib.resolve(cls, "quick", None, COMMON, {"dataset": "mnist", "data_dir": data_dir}))
    steps = epochs * (len(data.train_y) // cfg.train.batch_size)
    plain_loop(cfg, data, 3)  # warm-up
    plain, ours = [], []
    for k in range(rounds):
        plain.append(plain_loop(cfg, data, steps))
        ours.append(engine_rate(cfg, epochs, work, f"gan-{k}")[1])
    flops = step_flops(cfg, data)
    r = {"plain": max(plain), "ours": max(ours), "ratio": max(ours) / max(plain), "gflops": flops * max(ours) / 1e9}
    print(json.dumps(r), flush=True)
    return ["### 3. Training speed against a plain PyTorch loop", "",
            f"MNIST, the gan recipe's quick preset (DCGAN width {cfg.width}, batch {cfg.train.batch_size}, k = 1: one "
            f"discriminator and one generator step per step); {steps} steps ({epochs} epoch{'s' if epochs > 1 else ''}) "
            f"each, {rounds} alternated rounds, best "
            f"round; the same process, {torch.get_num_threads()} torch threads; float32 matmul peak {peak:.0f} GFLOP/s "
            f"in this run.", "",
            "| plain loop steps/s | paradigms steps/s | ratio | achieved GFLOP/s | share of matmul peak |",
            "|---|---|---|---|---|",
            f"| {r['plain']:.2f} | {r['ours']:.2f} | {r['ratio']:.2f}x | {r['gflops']:.1f} | {r['gflops'] / peak:.1%} |",
            "", "Target: >= 0.95x the plain loop. The engine's figure includes its logging, NaN and "
            "divergence checks, the generator's gradient norm and its checkpoint; the plain loop does nothing else. "
            "FLOPs: both steps' forward and backward passes (`torch.utils.flop_counter`).", ""]


def options(ap) -> None:
    ap.add_argument("--full-epochs", type=int, default=300, help="section 2b: epochs of the semi-gan full preset")
    ap.add_argument("--fd-n", type=int, default=10_000, help="section 1: samples and test images of the classifier-FD")
    ap.add_argument("--speed-epochs", type=int, default=1, help="section 3: epochs per measurement")
    ap.add_argument("--rounds", type=int, default=3)


def parts(args, runs: Runs) -> dict:
    return {"1": lambda: section_fd(runs, args.fd_n), "2": lambda: section_semi(runs),
            "2b": lambda: section_semi_full(runs, args.full_epochs),
            "3": lambda: section_speed(args.data_dir, runs.work, args.speed_epochs, args.rounds)}


def main() -> None:
    run_benchmark(__file__, parts, options=options, sections="1,2,3", sections_help="1, 2, 2b, 3",
                  title="GANs", part_arguments=lambda args: {"2b": f"--full-epochs {args.full_epochs}"},
                  footer=("The full presets and CIFAR-10 DCGAN samples need a GPU: none "
                          "was available here.",))


if __name__ == "__main__":
    main()
