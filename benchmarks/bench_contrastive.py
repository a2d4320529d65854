"""`make bench-contrastive`: contrastive learning against its baselines, into BENCHMARKS.md.

1. Triplet on the AT&T/Olivetti faces, people split so that 10 test people are never seen: verification accuracy and
   recall@1 for each mining strategy, against raw pixels, PCA (eigenfaces) and the untrained network; the figure.
2. SimCLR and MoCo, quick presets, Fashion-MNIST and CIFAR-10: kNN and linear-probe accuracy (the one protocol,
   paradigms.evaluate) against a randomly initialised encoder of the same shape and the supervised recipe's.
3. Few labels: the SimCLR encoder fine-tuned on 10 and 100 labels per class against the same network from scratch.
4. Speed: pre-training images/s of the engine against a plain PyTorch loop of the same model, views and loss.

Runs are kept in ``--work`` (an interrupted one resumes; a finished one is recalled); each section's lines are kept
too, so one section run later completes the BENCHMARKS.md block without redoing or erasing the others.

Usage: python benchmarks/bench_contrastive.py --data-dir ../shared/datasets [--sections 1,2,3,4]
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

from driver import name_list, number_list, run_benchmark  # noqa: E402
from paradigms import augment, recipes  # noqa: E402
from paradigms import config as configlib  # noqa: E402
from paradigms.contrastive import KeyQueue, info_nce, nt_xent  # noqa: E402
from paradigms.contrastive.triplet_figures import distance_table_figure  # noqa: E402
from paradigms.contrastive.views import projection_head  # noqa: E402
from paradigms.data import load_images  # noqa: E402
from paradigms.engine.report import save_figure  # noqa: E402
from paradigms.engine.trainer import load_trained  # noqa: E402
from paradigms.nets import build_encoder  # noqa: E402
from paradigms.evaluate import probe_run  # noqa: E402
from runs import COMMON, Runs  # noqa: E402
from speed import engine_rate  # noqa: E402

HERE = Path(__file__).resolve().parent
DATASETS = ("cifar10", "fashion-mnist")
MINING = ("batch-all", "batch-hard", "semi-hard")


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


# -- 1. triplet on faces ---------------------------------------------------------------------------------------------
def section_faces(runs: Runs, data_dir, seeds: list[int]) -> list[str]:
    rows = {}
    for mining in MINING:
        rows[mining] = [runs(f"triplet-{mining}", "triplet", [f"mining={mining}"], seed, metric=None,
                             flags={"dataset": "olivetti-faces"}) for seed in seeds]
    first = rows["semi-hard"][0]
    run_dir = runs.dir("triplet-semi-hard", seeds[0])
    if run_dir.is_dir():
        recipe = load_trained(run_dir, data_dir=data_dir)
        tx, ty = recipe.parts["test"]
        save_figure(distance_table_figure(recipe, tx, ty), HERE / "figures" / "triplet-faces-distances.png")

    def mean(key, ms):
        return sum(m[f"test/{key}"] for m in ms) / len(ms)

    lines = ["### 1. Triplet loss on faces of people never seen in training", "",
             f"`paradigms run triplet --dataset olivetti-faces --set mining=M` (quick preset: ResNet-9 width 16, "
             f"embedding 64, margin 0.2, 10 people x 4 faces per batch, 60 epochs, flips), seed(s) "
             f"{', '.join(map(str, seeds))}, mean over seeds. The 40 people are split by the seed: 25 train, 5 choose "
             "the "
             "verification threshold, 10 are the test (100 faces, 4,950 pairs). Verification: balanced accuracy "
             "(the mean of the same-person and different-person pair accuracies) at the validation people's best "
             "threshold; recall@1: a face's nearest other face is the same person's.", "",
             "| embedding | verification | recall@1 | training time |", "|---|---|---|---|"]
    for mining in MINING:
        ms = rows[mining]
        secs = sum(runs.seconds(f"triplet-{mining}", s) for s in seeds) / len(seeds)
        lines.append(f"| triplet, {mining} | {pct(mean('verify_acc', ms))} | {pct(mean('recall1', ms))} | "
                     f"{secs:.0f} s |")
    for name, label in (("pixels", "raw pixels"), ("pca", "PCA, 50 eigenfaces (fitted on the training people)"),
                        ("untrained", "the same network, untrained")):
        ms = rows["semi-hard"]
        lines.append(f"| {label} | {pct(mean(f'{name}_verify_acc', ms))} | {pct(mean(f'{name}_recall1', ms))} | - |")
    best = max(MINING, key=lambda m: mean("verify_acc", rows[m]))
    beats = [m for m in MINING if mean("verify_acc", rows[m]) > max(mean("pixels_verify_acc", rows[m]),
                                                                   mean("pca_verify_acc", rows[m]))]
    lines += ["", f"Mining strategies above both baselines in verification: {', '.join(beats) or 'none'}; the best: "
              f"{best}. Recall@1 is near its ceiling for every method on 10 people of 10 faces (a face's nearest "
              f"neighbour is usually the same person's even in pixels), so verification is the measure that separates "
              f"them. Seed {seeds[0]}, semi-hard: verification {pct(first['test/verify_acc'])}.", "",
              "![distance table](benchmarks/figures/triplet-faces-distances.png)", "",
              "The lecture's table (`figures/distances.png` of a triplet run): squared distances between two faces "
              "of each of three unseen people, before and after training (0: the same point on the sphere, 4: "
              "opposite).", ""]
    return lines


# -- 2. SimCLR and MoCo: the protocol ---------------------------------------------------------------------------------
def section_ssl(runs: Runs, data_dir, args) -> list[str]:
    lines = ["### 2. SimCLR and MoCo: kNN and linear probe of the frozen encoder", "",
             "Quick presets (ResNet-9 width 16; `paradigms run simclr|moco --dataset D`), seed 0. Every encoder is "
             "measured by the same function (`paradigms.evaluate`): kNN with k = 200, cosine similarity, votes "
             "weighted by exp(cos / 0.1), and an offline linear probe (logistic regression by L-BFGS on standardised "
             "frozen features); all training and test images. *Random*: the same encoder untrained (`--set "
             "train.epochs=0`). *Supervised*: `paradigms run supervised` with the same network, on all labels; "
             "its features are the layer below the head. The autoencoder and the MAE are measured by the same "
             "function on their own networks.", "",
             "| dataset | encoder | epochs | kNN | linear probe | training time |", "|---|---|---|---|---|---|"]
    for ds in args.datasets:
        flags = {"dataset": ds}
        extra = [("simclr-e16", "simclr", ["train.epochs=16", *args.subset])] if ds == "cifar10" else []
        for key, recipe, sets in (("random", "simclr", ["train.epochs=0"]), ("simclr", "simclr", args.subset),
                                  *extra, ("moco", "moco", args.subset)):
            m = runs(f"{ds}-{key}", recipe, sets, 0, metric=None, flags=flags)
            cfg = configlib.resolve(recipes.get(recipe), "quick", None, [*COMMON, *sets], {**flags, **runs.flags})
            lines.append(f"| {ds} | {key} | {cfg.train.epochs} | {pct(m.get('test/knn_acc'))} | "
                         f"{pct(m.get('test/probe_acc'))} | {runs.seconds(f'{ds}-{key}') / 60:.1f} min |")
        sup = ["model.name=resnet", "model.width=16", *args.subset]
        m = runs(f"{ds}-supervised", "supervised", sup, 0, metric=None, flags=flags)
        p = probed(runs, f"{ds}-supervised", runs.dir(f"{ds}-supervised", 0), data_dir)
        lines.append(f"| {ds} | supervised (test accuracy {pct(m['test/acc'])}) | - | {pct(p['knn_acc'])} | "
                     f"{pct(p['probe_acc'])} | {runs.seconds(f'{ds}-supervised') / 60:.1f} min |")
        runs(f"{ds}-autoencoder", "autoencoder", args.subset, 0, metric=None, flags=flags)
        p = probed(runs, f"{ds}-autoencoder", runs.dir(f"{ds}-autoencoder", 0), data_dir)
        lines.append(f"| {ds} | autoencoder (its quick preset's encoder) | - | {pct(p['knn_acc'])} | "
                     f"{pct(p['probe_acc'])} | {runs.seconds(f'{ds}-autoencoder') / 60:.1f} min |")
        mae = Path(args.mae_work) / f"{ds}-mae-s0"
        if mae.is_dir():
            p = probed(runs, f"{ds}-mae", mae, data_dir)
            lines.append(f"| {ds} | MAE (a ViT, `make bench-mae`'s kept run) | - | {pct(p['knn_acc'])} | "
                         f"{pct(p['probe_acc'])} | (bench-mae) |")
    lines += ["", "*simclr-e16*: the quick preset at twice its epochs (`--set train.epochs=16`), the target's 30-minute "
              "budget. The target: CIFAR-10 kNN >= 60% within 30 minutes here. lightly's benchmark (ResNet-18, "
              "200 epochs, batch 512, on a GPU): kNN 84.8% (SimCLR), 84.7% (MoCo): the `full` presets, for a GPU.",
              ""]
    return lines


def probed(runs: Runs, key: str, run_dir: Path, data_dir) -> dict[str, float]:
    """The protocol on a kept run's network (``probe_run``), remembered in the study's results."""
    return runs.measured(f"{key}-probe", lambda: probe_run(run_dir, data_dir=data_dir))


# -- 3. few labels ----------------------------------------------------------------------------------------------------
def section_few(runs: Runs, data_dir, args) -> list[str]:
    lines = ["### 3. Few labels: SimCLR, then fine-tune", "",
             "`paradigms run finetune --from SIMCLR_RUN --dataset cifar10 --set labels_per_class=N` against the same "
             "network from scratch (`finetune` with no source) on the same N images per class, the same schedule.",
             "", "| dataset | labels per class | from scratch | from SimCLR | gain |", "|---|---|---|---|---|"]
    for ds in args.datasets:
        source = runs.dir(f"{ds}-simclr", 0)
        if not source.is_dir():
            lines.append(f"| {ds} | - | section 2's SimCLR run is not kept: run section 2 first | | |")
            continue
        for n, epochs in ((10, 60), (100, 20)):
            sets = [f"labels_per_class={n}", f"train.epochs={epochs}", "model.name=resnet", "model.width=16",
                    "train.batch_size=64"]
            flags = {"dataset": ds}
            scratch = runs(f"{ds}-scratch-{n}", "finetune", sets, 0, flags=flags)
            tuned = runs(f"{ds}-from-simclr-{n}", "finetune", sets, 0, source=source, flags=flags)
            lines.append(f"| {ds} | {n} | {pct(scratch)} | {pct(tuned)} | {100 * (tuned - scratch):+.1f} points |")
    return lines + [""]


# -- 4. speed ---------------------------------------------------------------------------------------------------------
def build_model(cfg, data) -> torch.nn.Sequential:
    """x -> z: the recipe's encoder (channels_last, MoCo's split BN) and projection head, built by hand."""
    enc = build_encoder(cfg.model, (data.channels, *data.size), data.mean, data.std)
    enc = enc.to(memory_format=torch.channels_last)
    moco = cfg.recipe == "moco"
    head = projection_head(enc.embed_dim, cfg.proj_hidden or enc.embed_dim, cfg.proj_dim, batchnorm=not moco)
    if moco:
        from paradigms.contrastive.moco import split_batchnorm

        split_batchnorm(enc, cfg.bn_splits)
    return torch.nn.Sequential(enc, head)


def step_flops(cfg, data) -> float:
    """FLOPs of one pre-training step: SimCLR forward and backward on 2N views; MoCo on N queries, and N keys
    forward only (``torch.utils.flop_counter``)."""
    from torch.utils.flop_counter import FlopCounterMode

    model, bs = build_model(cfg, data), cfg.train.batch_size
    moco = cfg.recipe == "moco"
    with FlopCounterMode(display=False) as counter:
        model(torch.rand(bs * (1 if moco else 2), data.channels, *data.size)).sum().backward()
        if moco:
            with torch.no_grad():
                model(torch.rand(bs, data.channels, *data.size))
    return counter.get_total_flops()


def plain_loop(cfg, data, steps: int) -> float:
    """Images/s of a hand-written SimCLR or MoCo loop of the same encoder, head, views, loss and SGD."""
    torch.manual_seed(0)
    model = build_model(cfg, data)
    moco = cfg.recipe == "moco"
    key = copy.deepcopy(model).requires_grad_(False) if moco else None
    queue = KeyQueue(cfg.queue_size, cfg.proj_dim) if moco else None
    views = augment.build(cfg.views, cfg.dataset, data.channels, mean=data.mean)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.optim.lr, momentum=cfg.optim.momentum,
                          weight_decay=cfg.optim.weight_decay)
    bs = cfg.train.batch_size
    t = time.perf_counter()
    for _ in range(steps):
        x = data.train_x[torch.randint(len(data.train_x), (bs,))].float().div(255)
        v1, v2 = views(x), views(x)
        if moco:
            with torch.no_grad():
                for pk, pq in zip(key.parameters(), model.parameters()):
                    pk.mul_(cfg.momentum).add_(pq, alpha=1 - cfg.momentum)
                perm = torch.randperm(bs)
                k = key(v2[perm])[torch.argsort(perm)]
            loss = info_nce(model(v1), k, queue.keys.clone(), cfg.temperature)
        else:
            z = model(torch.cat([v1, v2]))
            loss = nt_xent(z[:bs], z[bs:], cfg.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if moco:
            queue.push(k)
    return steps * bs / (time.perf_counter() - t)


def section_speed(data_dir, work: Path, rounds: int, images: int) -> list[str]:
    from bench_supervised import matmul_peak

    peak = matmul_peak()
    data = load_images("cifar10", data_dir)
    rows = []
    for recipe in ("simclr", "moco"):
        cfg = configlib.resolve(recipes.get(recipe), "quick", None,
                                [*COMMON, f"train_size={images}", "probe=false", "knn_k=1"],
                                {"dataset": "cifar10", "data_dir": data_dir})
        steps = images // cfg.train.batch_size
        plain_loop(cfg, data, 2)  # warm-up
        plain, ours = [], []
        for k in range(rounds):
            plain.append(plain_loop(cfg, data, steps))
            ours.append(engine_rate(cfg, 1, work, f"{recipe}-{k}")[1] * cfg.train.batch_size)
        row = {"recipe": recipe, "batch": cfg.train.batch_size, "steps": steps, "plain": max(plain), "ours": max(ours)}
        row["ratio"] = row["ours"] / row["plain"]
        row["gflops"] = step_flops(cfg, data) * row["ours"] / cfg.train.batch_size / 1e9
        row["share"] = row["gflops"] / peak
        rows.append(row)
        print(json.dumps(row), flush=True)
    lines = ["### 4. Pre-training speed against a plain PyTorch loop", "",
             f"CIFAR-10, quick presets (ResNet-9 width 16, batch 512, two views per image); each measurement one epoch "
             f"of the first {images:,} training images, {rounds} alternated rounds, best round; the same process, "
             f"{torch.get_num_threads()} torch threads; float32 matmul peak {peak:.0f} GFLOP/s in this run. The plain "
             "loop draws random batches, makes the same two views with the same `paradigms.augment` policy, and runs "
             "the same encoder, head, loss and SGD (MoCo: the momentum update, the shuffled split-BN keys, the queue); "
             "the engine's figure includes its logging, NaN checks and checkpoints.", "",
             "| recipe | batch | steps | plain loop img/s | paradigms img/s | ratio | achieved GFLOP/s | share of "
             "matmul peak |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['recipe']} | {r['batch']} | {r['steps']} | {r['plain']:.0f} | {r['ours']:.0f} | "
                     f"{r['ratio']:.2f}x | {r['gflops']:.1f} | {r['share']:.1%} |")
    return lines + ["", "Target: >= 0.95x the plain loop. Images/s counts images, each seen as two views. "
                    "FLOPs: the networks' forward and backward (not the augmentation, which runs on the same cores).",
                    ""]


def options(ap) -> None:
    ap.add_argument("--seeds", type=number_list, default="0",
                    help="section 1: seeds of each mining strategy, e.g. 0,1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--speed-images", type=int, default=10240, help="section 4: training images per measurement")
    ap.add_argument("--datasets", type=name_list, default=",".join(DATASETS), help="sections 2 and 3: which datasets")
    ap.add_argument("--mae-work", default="runs/bench-mae", help="section 2: where bench-mae keeps its MAE runs")
    ap.add_argument("--train-size", type=int, help="a smoke test: section 2 and 3 runs on the first N images only")


def parts(args, runs: Runs) -> dict:
    args.subset = [f"train_size={args.train_size}"] if args.train_size else []
    return {"1": lambda: section_faces(runs, args.data_dir, args.seeds),
            "2": lambda: section_ssl(runs, args.data_dir, args),
            "3": lambda: section_few(runs, args.data_dir, args),
            "4": lambda: section_speed(args.data_dir, runs.work, args.rounds, args.speed_images)}


def main() -> None:
    kept = ("simclr", "supervised", "autoencoder", "triplet-semi")
    run_benchmark(__file__, parts, options=options, sections="1,2,3,4", title="Contrastive learning",
                  keep=lambda key: any(k in key for k in kept))


if __name__ == "__main__":
    main()
