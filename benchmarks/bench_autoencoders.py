"""`make bench-autoencoders`: autoencoders and VAEs against PCA and the papers, into BENCHMARKS.md.

1. One-class anomaly detection on MNIST and Fashion-MNIST: an autoencoder trained on the training images of one
   class scores every test image by its reconstruction error (`paradigms anomaly`); AUROC for each of the 10
   classes and their mean, beside PCA with as many components as the code, fitted on the same images.
2. Test reconstruction error per pixel against PCA at code sizes 2, 8 and 32 (MLP and convolutional encoders).
3. Linear probes (logistic regression) on the codes of section 2's runs, on raw pixels and on PCA codes.
4. The VAE's test negative log-likelihood on dynamically binarised MNIST (quick preset), by the IWAE bound with
   k = 5,000 on all 10,000 test images, beside the IWAE paper; the evaluation's time.
5. Training speed of both recipes against a plain PyTorch loop of the same model, in the same process.

Networks are trained once and kept in ``--work`` (an interrupted run resumes); each section's printed lines are
kept too, so one section run later completes the BENCHMARKS.md section without redoing or erasing the others.

Usage: python benchmarks/bench_autoencoders.py --data-dir ../shared/datasets [--sections 1,2,3,4,5]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import torch  # noqa: E402

from driver import run_benchmark  # noqa: E402
from paradigms import config as configlib  # noqa: E402
from paradigms import recipes  # noqa: E402
from paradigms.autoencoder.anomaly import anomaly_run, auroc  # noqa: E402
from paradigms.data import load_images  # noqa: E402
from paradigms.engine.trainer import load_trained  # noqa: E402
from runs import COMMON, Runs  # noqa: E402
from speed import engine_rate  # noqa: E402

DATASETS = ("mnist", "fashion-mnist")
CODES = (2, 8, 32)
ENCODERS = {"mlp": [], "conv": ["model.name=lenet5", "model.width=4"]}  # the recipe's default encoder is the MLP
IWAE_PAPER = 86.76  # Burda et al. 2016, VAE with one stochastic layer (784-200-200-50), k = 5,000


def pca_scores(train: np.ndarray, test: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Each test image's squared reconstruction error by PCA with ``k`` components fitted on ``train`` (clipped to
    [0, 1] pixels, as the recipe's own PCA baseline)."""
    from sklearn.decomposition import PCA

    pca = PCA(n_components=k, random_state=seed).fit(train)
    recon = np.clip(pca.inverse_transform(pca.transform(test)), 0, 1)
    return ((recon - test) ** 2).sum(1)


def flat(x: torch.Tensor) -> np.ndarray:
    return x.float().div(255).flatten(1).numpy()


def section_anomaly(runs: Runs, data_dir, epochs: int, code: int) -> list[str]:
    table = {}
    for ds in DATASETS:
        data = load_images(ds, data_dir)
        for c, name in enumerate(data.classes):
            key = f"{ds}-oneclass-{c}"
            runs(key, "autoencoder", [f"classes=[{c}]", f"code={code}", "probe_n=0", f"train.epochs={epochs}"], 0,
                 metric=None, flags={"dataset": ds})
            ae = anomaly_run(runs.dir(key, 0))["auroc"]
            normal = data.train_y == c
            pca = auroc(pca_scores(flat(data.train_x[normal]), flat(data.test_x), code), (data.test_y != c).numpy())
            table[ds, c] = (str(name), ae, pca)
            print(json.dumps({"anomaly": ds, "class": c, "name": str(name), "ae": round(ae, 4), "pca": round(pca, 4)}),
                  flush=True)
    lines = ["### 1. One-class anomaly detection (AUROC on the whole test set)", "",
             f"Train on the training images of one class (`paradigms run autoencoder --dataset D --set 'classes=[C]' "
             f"--set code={code} --set train.epochs={epochs}`: the quick preset's MLP encoder 784-256-128-{code}), score "
             f"all 10,000 test images by reconstruction error (`paradigms anomaly RUN_DIR`): the other nine classes are "
             f"the anomalies. PCA: {code} components fitted on the same training images, scored the same way.", "",
             "| class | MNIST: autoencoder | MNIST: PCA | Fashion-MNIST class | Fashion-MNIST: autoencoder | "
             "Fashion-MNIST: PCA |", "|---|---|---|---|---|---|"]
    for c in range(10):
        (m_name, m_ae, m_pca), (f_name, f_ae, f_pca) = table["mnist", c], table["fashion-mnist", c]
        lines.append(f"| {m_name} | {m_ae:.3f} | {m_pca:.3f} | {f_name} | {f_ae:.3f} | {f_pca:.3f} |")
    mean = {(ds, i): np.mean([table[ds, c][i] for c in range(10)]) for ds in DATASETS for i in (1, 2)}
    lines.append(f"| **mean** | **{mean['mnist', 1]:.3f}** | **{mean['mnist', 2]:.3f}** | | "
                 f"**{mean['fashion-mnist', 1]:.3f}** | **{mean['fashion-mnist', 2]:.3f}** |")
    wins = {ds: sum(table[ds, c][1] > table[ds, c][2] for c in range(10)) for ds in DATASETS}
    lines += ["", f"The autoencoder scores above PCA on {wins['mnist']} of 10 MNIST classes and "
              f"{wins['fashion-mnist']} of 10 Fashion-MNIST classes."]
    return lines + [""]


def section_reconstruction(runs: Runs) -> tuple[list[str], dict]:
    results = {}
    for ds in DATASETS:
        for enc, sets in ENCODERS.items():
            for code in CODES:
                m = runs(f"{ds}-{enc}-code{code}", "autoencoder", [f"code={code}", *sets], 0, metric=None,
                         flags={"dataset": ds})
                results[ds, enc, code] = {**m, "s": runs.seconds(f"{ds}-{enc}-code{code}")}
                print(json.dumps({"reconstruction": [ds, enc, code], **{k: round(v, 5) for k, v in m.items()}}),
                      flush=True)
    lines = ["### 2. Dimensionality reduction: test reconstruction error against PCA", "",
             "`paradigms run autoencoder --dataset D --set code=K` (quick preset: 5 epochs, Adam; MLP encoder "
             "784-256-128-K with the mirrored decoder; conv: `--set model.name=lenet5 --set model.width=4` with the "
             "transposed-convolution decoder). Mean squared error per pixel (pixels in [0, 1]) on the 10,000 test "
             "images; PCA with K components fitted on 20,000 training images.", "",
             "| dataset | code size | PCA | MLP autoencoder | conv autoencoder | training time (MLP, conv) |",
             "|---|---|---|---|---|---|"]
    for ds in DATASETS:
        for code in CODES:
            mlp, conv = results[ds, "mlp", code], results[ds, "conv", code]
            lines.append(f"| {ds} | {code} | {mlp['test/pca_mse']:.4f} | {mlp['test/mse']:.4f} | {conv['test/mse']:.4f} "
                         f"| {mlp['s']:.0f} s, {conv['s']:.0f} s |")
    return lines + [""], results


def section_probes(results: dict) -> list[str]:
    lines = ["### 3. Feature learning: linear probes on the codes", "",
             "The one linear probe of every encoder (`paradigms.evaluate.linear_probe`: multinomial logistic regression "
             "by full-batch L-BFGS on standardised features, weight decay 1e-4, as in the SimCLR/MoCo and CLIP "
             "benchmarks) fitted on 5,000 training images' features, test accuracy on the 10,000 test images; the "
             "codes are section 2's runs' (the recipe's `probe_n`).", "",
             "| dataset | code size | raw pixels (784) | PCA codes | MLP autoencoder codes | conv autoencoder codes |",
             "|---|---|---|---|---|---|"]
    for ds in DATASETS:
        for code in CODES:
            mlp, conv = results[ds, "mlp", code], results[ds, "conv", code]
            lines.append(f"| {ds} | {code} | {mlp['test/probe_pixels']:.2%} | {mlp['test/probe_pca']:.2%} | "
                         f"{mlp['test/probe_code']:.2%} | {conv['test/probe_code']:.2%} |")
    return lines + [""]


def section_vae(runs: Runs, work: Path, k: int) -> list[str]:
    sets = ["iwae_n=1", "iwae_k=1"]  # the run's own final evaluation is a stand-in; the whole test set is below
    runs("vae-mnist", "vae", sets, 0, flags={"dataset": "mnist"}, metric=None)
    row = runs.done["vae-mnist-s0"]
    kept = work / "vae-eval.json"
    evals = json.loads(kept.read_text()) if kept.is_file() else {}
    tag = f"{row['config']}-k{k}"
    if tag not in evals:
        recipe = load_trained(runs.dir("vae-mnist", 0))
        recipe.cfg = recipe.cfg.model_copy(update={"iwae_n": None, "iwae_k": k})
        t = time.monotonic()
        m = recipe.evaluate()
        evals[tag] = {**m, "s": time.monotonic() - t, "images": len(recipe.test_x), "threads": torch.get_num_threads()}
        kept.write_text(json.dumps(evals, indent=1))
    e = evals[tag]
    print(json.dumps({"vae": e, "train_s": row["s"]}), flush=True)
    cfg = recipes.get("vae").prepare(configlib.resolve(recipes.get("vae"), "quick", None, [], {"dataset": "mnist"}))
    verdict = "met" if e["test/nll"] <= 95 else "NOT met"
    return ["### 4. The VAE's test log-likelihood on binarised MNIST (Kingma & Welling 2014; Burda et al. 2016)", "",
            f"`paradigms run vae --dataset mnist` (quick preset: encoder 784-{'-'.join(map(str, cfg.model.hidden))}-"
            f"{2 * cfg.code} ({cfg.model.activation}), code {cfg.code}, Bernoulli decoder, {cfg.train.epochs} epochs, "
            f"batch {cfg.train.batch_size}, Adam {cfg.optim.lr:g} with a {cfg.optim.schedule} schedule, dynamic binarisation), then its test negative ELBO "
            f"and the IWAE bound with k = {k:,} on all {e['images']:,} test images (binarised once, seed 0).", "",
            "| | test negative ELBO | test NLL (IWAE, k = 5,000) | training time | evaluation time (k = 5,000, "
            "10,000 images) |", "|---|---|---|---|---|",
            f"| quick preset, 2 CPU cores | {e['test/neg_elbo']:.2f} nats | **{e['test/nll']:.2f} nats** | "
            f"{row['s'] / 60:.1f} min | {e['s'] / 60:.1f} min |",
            f"| the IWAE paper (784-200-200-50 VAE, 3,280 epochs) | | {IWAE_PAPER} nats | | |", "",
            f"Target: <= 95 nats with the quick preset: {verdict}. The `full` preset (the IWAE paper's "
            f"architecture and 3,280 epochs, batch 20) has not run here: at this machine's speed it is hours of CPU; "
            f"it is for a GPU.", ""]


def plain_loop(recipe_name: str, cfg, data, steps: int) -> float:
    """The recipe's training step written by hand in plain PyTorch: same networks (built by the same constructors),
    optimiser, schedule and loss, random batches from the same uint8 images; images/s."""
    from paradigms.autoencoder.models import Decoder
    from paradigms.autoencoder.vae import elbo, gaussian_kl
    from paradigms.nets import build_net, is_convolutional
    from paradigms.optim import build_optimizer, lr_at

    torch.manual_seed(0)
    shape = (data.channels, *data.size)
    vae = recipe_name == "vae"
    enc = build_net(cfg.model, shape, 2 * cfg.code if vae else cfg.code, data.mean, data.std)
    kind = "conv" if not vae and is_convolutional(enc) else "mlp"
    dec = Decoder(cfg.code, shape, kind, cfg.model.hidden, cfg.model.activation)
    opt = build_optimizer([{"params": [*enc.parameters(), *dec.parameters()]}], cfg.optim)
    x_all, b = data.train_x, cfg.train.batch_size
    enc.train()
    dec.train()
    t = time.perf_counter()
    for i in range(steps):
        x = x_all[torch.randint(0, len(x_all), (b,))].float() / 255
        for g in opt.param_groups:
            g["lr"] = lr_at(i, steps, cfg.optim)
        if vae:
            x = torch.bernoulli(x)
            mu, logvar = enc(x).chunk(2, dim=1)
            z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
            log_px = -torch.nn.functional.binary_cross_entropy_with_logits(dec(z), x, reduction="none").flatten(1).sum(1)
            loss = -elbo(log_px, mu, logvar).mean()
            gaussian_kl(mu, logvar).mean().detach()  # the recipe reports the KL too
        else:
            loss = (torch.sigmoid(dec(enc(x))) - x).pow(2).flatten(1).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * b / (time.perf_counter() - t)


def step_flops(recipe_name: str, cfg, data) -> float:
    """FLOPs of one training step's forward and backward (torch.utils.flop_counter)."""
    from torch.utils.flop_counter import FlopCounterMode

    from paradigms.autoencoder.models import Decoder
    from paradigms.nets import build_net, is_convolutional

    shape = (data.channels, *data.size)
    vae = recipe_name == "vae"
    enc = build_net(cfg.model, shape, 2 * cfg.code if vae else cfg.code)
    dec = Decoder(cfg.code, shape, "conv" if not vae and is_convolutional(enc) else "mlp", cfg.model.hidden,
                  cfg.model.activation)
    x = torch.rand(cfg.train.batch_size, *shape)
    with FlopCounterMode(display=False) as fc:
        out = enc(x)
        dec(out[:, :cfg.code]).sum().backward()
    return float(fc.get_total_flops())


def section_speed(data_dir, work: Path, rounds: int, epochs: int) -> list[str]:
    from bench_supervised import matmul_peak

    peak = matmul_peak()
    data = load_images("mnist", data_dir)
    rows = []
    for name, sets, n_epochs in (("autoencoder", ["probe_n=0"], epochs), ("autoencoder", ["probe_n=0", *ENCODERS["conv"]], 1),
                                 ("vae", ["iwae_n=1", "iwae_k=1"], epochs)):
        cls = recipes.get(name)
        cfg = cls.prepare(configlib.resolve(cls, "quick", None, [*COMMON, *sets], {"dataset": "mnist",
                                                                                    "data_dir": data_dir}))
        steps = n_epochs * (len(data.train_y) // cfg.train.batch_size)
        plain_loop(name, cfg, data, 5)  # warm-up
        plain, ours = [], []
        for k in range(rounds):
            plain.append(plain_loop(name, cfg, data, steps))
            ours.append(engine_rate(cfg, n_epochs, work, f"{name}-{k}")[1] * cfg.train.batch_size)
        flops = step_flops(name, cfg, data)
        row = {"recipe": name, "encoder": cfg.model.name, "batch": cfg.train.batch_size, "steps": steps,
               "plain": max(plain), "ours": max(ours), "ratio": max(ours) / max(plain),
               "gflops": flops * max(ours) / cfg.train.batch_size / 1e9}
        row["share"] = row["gflops"] / peak
        rows.append(row)
        print(json.dumps(row), flush=True)
    lines = ["### 5. Training speed against a plain PyTorch loop", "",
             f"MNIST, quick presets; each measurement {epochs} epochs of the training set (the conv autoencoder 1), "
             f"{rounds} alternated rounds, best round; the same process, {torch.get_num_threads()} torch threads; "
             f"float32 matmul peak {peak:.0f} GFLOP/s in this run.", "",
             "| recipe | encoder | batch | steps | plain loop img/s | paradigms img/s | ratio | achieved GFLOP/s | "
             "share of matmul peak |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['recipe']} | {r['encoder']} | {r['batch']} | {r['steps']} | {r['plain']:.0f} | "
                     f"{r['ours']:.0f} | {r['ratio']:.2f}x | {r['gflops']:.1f} | {r['share']:.1%} |")
    lines += ["", "Target: >= 0.95x the plain loop. The engine's figure includes its logging, NaN checks and "
              "checkpoints; the plain loop draws random batches and does nothing else. FLOPs: forward and backward of "
              "both networks (`torch.utils.flop_counter`)."]
    return lines + [""]


def options(ap) -> None:
    ap.add_argument("--oneclass-epochs", type=int, default=20, help="section 1: epochs on one class (~6,000 images)")
    ap.add_argument("--oneclass-code", type=int, default=8, help="section 1: code size (and PCA components)")
    ap.add_argument("--iwae-k", type=int, default=5000, help="section 4: importance samples of the test NLL")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--speed-epochs", type=int, default=3, help="section 5: epochs per measurement (MLP recipes)")


def parts(args, runs: Runs) -> dict:
    return {"1": lambda: section_anomaly(runs, args.data_dir, args.oneclass_epochs, args.oneclass_code),
            "2": lambda: section_reconstruction(runs)[0], "3": lambda: section_probes(section_reconstruction(runs)[1]),
            "4": lambda: section_vae(runs, runs.work, args.iwae_k),
            "5": lambda: section_speed(args.data_dir, runs.work, args.rounds, args.speed_epochs)}


def main() -> None:
    run_benchmark(__file__, parts, options=options, sections="1,2,3,4,5",
                  title="Autoencoders and variational autoencoders")


if __name__ == "__main__":
    main()
