"""`make bench`: the supervised recipe's numbers on this machine, written to BENCHMARKS.md.

1. Time to accuracy: `paradigms run supervised --dataset D` (quick preset) on digits, MNIST,
   CIFAR-10: final test accuracy, the wall time of the whole run, and the time at which the
   evaluation first reached the target (97% / 99% / 75%).
2. Training throughput (images/s) of the engine against a plain hand-written PyTorch loop on the
   same model, data, augmentation and optimiser, in the same process, alternated and best-of.
3. The share of this machine's float32 matmul peak that the training step reaches.

Usage: python benchmarks/bench_supervised.py [--data-dir ../shared/datasets] [--out BENCHMARKS.md] [--skip-cifar]
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from driver import run_benchmark
from paradigms import config as configlib
from paradigms import recipes
from paradigms.engine import Trainer
from paradigms.engine.runlog import read_metrics
from speed import engine_rate

TARGETS = {"digits": 0.97, "mnist": 0.99, "cifar10": 0.75}


def matmul_peak(n: int = 4096, reps: int = 5) -> float:
    """Best float32 GFLOP/s of an n x n matmul on this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t) / 1e9)
    return best


def time_to_accuracy(dataset: str, data_dir: str | None, workdir: Path) -> dict:
    cfg = configlib.resolve(recipes.get("supervised"), "quick", None, [], {"dataset": dataset, "data_dir": data_dir})
    run_dir = workdir / f"tta-{dataset}"
    t0 = time.monotonic()
    trainer = Trainer(cfg, run_dir, progress=False)
    final = trainer.fit()
    wall = time.monotonic() - t0
    evals = [r for r in read_metrics(run_dir) if r["split"] == "eval"]
    hit = next((r for r in evals if r["test/acc"] >= TARGETS[dataset]), None)
    return {"dataset": dataset, "acc": final["test/acc"], "wall_s": wall, "target": TARGETS[dataset],
            "reached_s": hit["time_s"] if hit else None, "epochs": cfg.train.epochs,
            "model": f"{cfg.model.name} (width {cfg.model.width})", "batch": cfg.train.batch_size,
            "command": f"paradigms run supervised --dataset {dataset}" + (" --data-dir DATA" if dataset != "digits" else "")}


def plain_loop(cfg, data, steps: int) -> float:
    """A hand-written PyTorch loop, the same work as the recipe's step; returns images/s."""
    from paradigms import augment
    from paradigms.nets import build_net
    from paradigms.optim import build_optimizer, lr_at

    torch.manual_seed(0)
    # the same network, its first layer standardising [0, 1] pixels as in a run
    net = build_net(cfg.model, (data.channels, *data.size), data.num_classes, data.mean, data.std)
    net = net.to(memory_format=torch.channels_last)
    opt = build_optimizer(net.parameters(), cfg.optim)
    policy = augment.build(cfg.augment, cfg.dataset, data.channels)
    x_all, y_all = data.train_x, data.train_y
    b = cfg.train.batch_size
    net.train()
    t = time.perf_counter()
    for i in range(steps):
        idx = torch.randint(0, len(x_all), (b,))
        x, y = x_all[idx].float() / 255, y_all[idx]
        if policy:
            x, y = policy(x, y, data.num_classes)
        for g in opt.param_groups:
            g["lr"] = lr_at(i, steps, cfg.optim)
        loss = F.cross_entropy(net(x), y, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * b / (time.perf_counter() - t)


def step_flops(cfg, data) -> float:
    from paradigms.nets import build_net

    net = build_net(cfg.model, (data.channels, *data.size), data.num_classes)
    x = torch.randn(cfg.train.batch_size, data.channels, *data.size)
    y = torch.randint(0, data.num_classes, (cfg.train.batch_size,))
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(net(x), y).backward()
    return float(fc.get_total_flops())


def throughput(dataset: str, data_dir: str | None, workdir: Path, steps: int, rounds: int, peak: float) -> dict:
    from paradigms import augment
    from paradigms.data import load_images

    cfg = configlib.resolve(recipes.get("supervised"), "quick", None, [], {"dataset": dataset, "data_dir": data_dir})
    data = load_images(dataset, data_dir)
    steps = steps or data.num_train // cfg.train.batch_size  # default: one real epoch, as a run does it
    plain, ours = [], []
    plain_loop(cfg, data, 3)  # warm-up
    for k in range(rounds):
        plain.append(plain_loop(cfg, data, steps))
        one_epoch = cfg.model_copy(update={"train_size": steps * cfg.train.batch_size})  # of ``steps`` steps
        ours.append(engine_rate(one_epoch, 1, workdir, f"thr-{cfg.dataset}-{k}")[1] * cfg.train.batch_size)
    best_plain, best_ours = max(plain), max(ours)
    flops = step_flops(cfg, data)
    return {"dataset": dataset, "model": f"{cfg.model.name} (width {cfg.model.width})", "batch": cfg.train.batch_size,
            "augment": repr(augment.build(cfg.augment, cfg.dataset, data.channels)), "plain": best_plain, "ours": best_ours,
            "ratio": best_ours / best_plain, "steps": steps, "gflop_step": flops / 1e9,
            "achieved_gflops": flops * best_ours / cfg.train.batch_size / 1e9,
            "peak_share": flops * best_ours / cfg.train.batch_size / 1e9 / peak}


def render(machine: dict, tta: list[dict], thr: list[dict]) -> list[str]:
    lines = ["## Supervised learning", "",
             f"Machine: {machine['cpu']}, {machine['threads']} torch threads, torch {machine['torch']}; "
             f"float32 matmul peak measured {machine['peak']:.0f} GFLOP/s (4096x4096, best of 5).", "",
             "Command: `make bench` (`python benchmarks/bench_supervised.py --data-dir ../shared/datasets`).", "",
             "### Time to accuracy (quick preset, whole run including data loading and evaluation)", "",
             "| dataset | model | epochs | batch | final test acc | target | target first reached at | whole run |",
             "|---|---|---|---|---|---|---|---|"]
    for r in tta:
        reached = f"{r['reached_s']:.0f} s" if r["reached_s"] is not None else "not reached"
        lines.append(f"| {r['dataset']} | {r['model']} | {r['epochs']} | {r['batch']} | {r['acc']:.2%} | "
                     f"{r['target']:.0%} | {reached} | {r['wall_s']:.0f} s |")
    lines += ["", "Each row is `" + "`, `".join(r["command"] for r in tta) + "` (DATA = ../shared/datasets).", "",
              "### Training throughput: the engine against a plain PyTorch loop (same process, same model, data, "
              "augmentation, optimiser; one epoch each, best of alternated rounds)", "",
              "| dataset | model | batch | augment | plain loop img/s | paradigms img/s | ratio | GFLOP/step | "
              "achieved GFLOP/s | share of matmul peak |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in thr:
        lines.append(f"| {r['dataset']} | {r['model']} | {r['batch']} | {r['augment']} | {r['plain']:.0f} | "
                     f"{r['ours']:.0f} | {r['ratio']:.2f}x | {r['gflop_step']:.1f} | {r['achieved_gflops']:.0f} | "
                     f"{r['peak_share']:.0%} |")
    lines += ["", "The engine's figure includes its logging, NaN checks and checkpoints; the plain loop draws "
              "random batches and does nothing else. FLOPs per step are counted by "
              "`torch.utils.flop_counter` (forward + backward)."]
    return lines


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} x {os.cpu_count()} cores"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def options(ap) -> None:
    ap.add_argument("--skip-cifar", action="store_true")
    ap.add_argument("--steps", type=int, default=0, help="steps per throughput measurement (0: one epoch)")
    ap.add_argument("--rounds", type=int, default=2)


def block(args, runs=None) -> list[str]:  # no --work: no run cache
    have_data = args.data_dir and Path(args.data_dir, "mnist").is_dir()
    datasets = ["digits"] + (["mnist"] if have_data else []) + (["cifar10"] if have_data and not args.skip_cifar else [])
    machine = {"cpu": cpu_name(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "peak": matmul_peak()}
    print(f"matmul peak {machine['peak']:.0f} GFLOP/s", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="paradigms-bench-"))
    try:
        thr = []
        for d in (["cifar10"] if have_data else ["digits"]) + (["mnist"] if have_data else []):
            r = throughput(d, args.data_dir, workdir, args.steps, args.rounds, machine["peak"])
            print(json.dumps(r), flush=True)
            thr.append(r)
        tta = []
        for d in datasets:
            r = time_to_accuracy(d, args.data_dir, workdir)
            print(json.dumps(r), flush=True)
            tta.append(r)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return render(machine, tta, thr)


def main() -> None:  # no data check: without the datasets it measures the digits alone
    run_benchmark(__file__, block, options=options, data=None, work=False)


if __name__ == "__main__":
    main()
