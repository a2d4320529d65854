"""`make bench-transfer`: how transferable are features? Results and figures into BENCHMARKS.md.

1. Yosinski, Clune, Bengio & Lipson 2014, at small scale. Split the classes into halves A and B
   (MNIST: 0-4 / 5-9; CIFAR-10: a seeded random half). Train baseA and baseB. For each depth n:
   BnB and BnB+ (copy baseB's first n layers, frozen / fine-tuned; the layers above re-initialised,
   trained on B), AnB and AnB+ (the same from baseA). Every run trains on B for the same budget with
   the paper's protocol: one learning rate for all layers (transfer.backbone_lr=1). The paper's Figure 2.
2. Few labels: baseA's features on B with 1 / 10 / 100 labels per class, fine-tuned (the recipe's
   defaults) or probed linearly, against the same network from scratch; a learning-curve figure.
3. Linear probe vs freeze-k vs fine-tune (and discriminative rates) on A -> B, 100 labels per class.

Every finished run is appended to WORK/results.jsonl; an interrupted benchmark picks up where it stopped.

Usage: python benchmarks/bench_transfer.py --data-dir ../shared/datasets [--dataset mnist|cifar10] [--seeds 3]
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from driver import run_benchmark  # noqa: E402
from paradigms import recipes  # noqa: E402
from runs import Runs, mean, std  # noqa: E402

HERE = Path(__file__).resolve().parent
PAPER = {"co-adaptation": "BnB dips in the middle layers (0.625 -> 0.593 at layer 5)",
         "specificity": "AnB falls at the top layers (0.542 at layer 7)",
         "fine-tuning": "AnB+ beats baseB at every depth (+1.7 points on average)"}


def halves(dataset: str) -> tuple[list[int], list[int]]:
    if dataset == "mnist":
        return [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0)).tolist()
    return sorted(order[:5]), sorted(order[5:])


# -- 1. Yosinski et al. ---------------------------------------------------------------------------------
def yosinski(runs: Runs, A, B, depth: int, seeds: int, epochs: list[str]) -> dict:
    res = {"baseA": [], "baseB": []}
    for s in range(seeds):
        res["baseA"].append(runs("baseA", "supervised", [f"classes={A}", *epochs], s))
        res["baseB"].append(runs("baseB", "supervised", [f"classes={B}", *epochs], s))
    for n in range(1, depth + 1):
        for src in ("A", "B"):
            for plus in (False, True):
                name = f"{src}n{'B+' if plus else 'B'}"
                strategy = "finetune" if plus else f"freeze:{n}"
                sets = [f"classes={B}", *epochs, f"transfer.copy_layers={n}", f"transfer.strategy={strategy}",
                        "transfer.backbone_lr=1"]
                res.setdefault(name, {})[n] = [runs(f"{name}{n}", "finetune", sets, s, runs.dir(f"base{src}", s))
                                               for s in range(seeds)]
    return res


def yosinski_figure(res: dict, depth: int, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    ns = list(range(1, depth + 1))
    styles = {"BnB": ("o", "white", "k", "BnB (selffer, frozen)"), "BnB+": ("o", "#4c72b0", "#4c72b0", "BnB+ (selffer, fine-tuned)"),
              "AnB": ("D", "#c44e52", "#c44e52", "AnB (transfer, frozen)"), "AnB+": ("D", "#ef9fbf", "#c44e52", "AnB+ (transfer, fine-tuned)")}
    base = res["baseB"]
    ax.scatter([0] * len(base), base, marker="s", color="white", edgecolor="k", zorder=3, label="baseB")
    ax.axhline(mean(base), color="k", lw=0.8, ls=":")
    for name, (marker, face, edge, label) in styles.items():
        for i, n in enumerate(ns):
            xs = [n + (0.08 if "+" in name else -0.08)] * len(res[name][n])
            ax.scatter(xs, res[name][n], marker=marker, color=face, edgecolor=edge, zorder=3, label=label if i == 0 else None)
        ax.plot([n + (0.08 if "+" in name else -0.08) for n in ns], [mean(res[name][n]) for n in ns],
                color=edge, lw=1, alpha=0.6, ls="-" if "+" in name else "--")
    ax.set_xticks([0, *ns], ["baseB", *map(str, ns)])
    ax.set_xlabel("layer n at which the network is chopped and retrained")
    ax.set_ylabel("top-1 accuracy on B (test)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def findings(res: dict, depth: int) -> list[tuple[str, bool, str]]:
    base = mean(res["baseB"])
    m = {name: {n: mean(v) for n, v in res[name].items()} for name in ("BnB", "BnB+", "AnB", "AnB+")}
    middle = list(range(2, depth)) or [1]
    low = min(middle, key=lambda n: m["BnB"][n])
    dip = base - m["BnB"][low]
    out = [("co-adaptation", dip > 0, f"baseB {base:.4f}; BnB lowest in the middle at layer {low}: "
            f"{m['BnB'][low]:.4f} ({-dip:+.2%}); BnB by layer: " + ", ".join(f"{n}: {v:.4f}" for n, v in m["BnB"].items()))]
    top = m["AnB"][depth]
    out.append(("specificity", top < m["AnB"][1] and top < m["BnB"][depth],
                "AnB by layer: " + ", ".join(f"{n}: {v:.4f}" for n, v in m["AnB"].items())
                + f"; at the top (layer {depth}) {top - m['BnB'][depth]:+.2%} against BnB"))
    gains = [m["AnB+"][n] - base for n in m["AnB+"]]
    out.append(("fine-tuning", all(g > 0 for g in gains),
                "AnB+ - baseB by layer: " + ", ".join(f"{n}: {g:+.2%}" for n, g in zip(m["AnB+"], gains))
                + f"; mean {mean(gains):+.2%}"))
    return out


# -- 2. and 3. few labels, and the strategies ----------------------------------------------------------
def steps_to_epochs(labels: int, classes: int, batch: int, steps: int) -> int:
    per_epoch = max(1, (labels * classes) // batch)
    return max(1, math.ceil(steps / per_epoch))


def few_labels(runs: Runs, A, B, seeds: int, batch: int, steps: int, epochs: list[str], lpcs=(1, 10, 100)) -> dict:
    methods = {"scratch": ([], False), "fine-tune": ([], True), "linear probe": (["transfer.strategy=linear-probe"], True),
               "freeze:1": (["transfer.strategy=freeze:1"], True), "freeze:2": (["transfer.strategy=freeze:2"], True),
               "freeze:3": (["transfer.strategy=freeze:3"], True),
               "fine-tune, lr_decay 0.5": (["transfer.lr_decay=0.5"], True)}
    res = {}
    for s in range(seeds):  # the source of seed s is baseA of seed s (trained here if the study had fewer seeds)
        runs("baseA", "supervised", [f"classes={A}", *epochs], s)
    for lpc in lpcs:
        epochs = steps_to_epochs(lpc, len(B), batch, steps)
        for name, (extra, transfer) in methods.items():
            if name.startswith("freeze") or "lr_decay" in name:
                if lpc != 100:  # the strategies table is at 100 labels per class
                    continue
            sets = [f"classes={B}", f"labels_per_class={lpc}", f"train.epochs={epochs}", *extra]
            res.setdefault(name, {})[lpc] = [
                runs(f"few-{name.replace(' ', '_').replace(',', '')}-{lpc}", "finetune", sets, s,
                     runs.dir("baseA", s) if transfer else None) for s in range(seeds)]
    return res


def few_labels_figure(res: dict, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, color in (("scratch", "#999"), ("linear probe", "#55a868"), ("fine-tune", "#4c72b0")):
        lpcs = sorted(res[name])
        ms = [mean(res[name][k]) * 100 for k in lpcs]
        ss = [std(res[name][k]) * 100 for k in lpcs]
        ax.errorbar(lpcs, ms, yerr=ss, marker="o", capsize=3, color=color, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("labels per class of the target (log)")
    ax.set_ylabel("test accuracy on B (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def options(ap) -> None:
    ap.add_argument("--dataset", default="mnist", choices=["mnist", "cifar10"])
    ap.add_argument("--seeds", type=int, default=3, help="seeds per point of the Yosinski study")
    ap.add_argument("--few-seeds", type=int, default=None, help="seeds per few-label point (default: --seeds)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs on a half (default: the quick preset's)")
    ap.add_argument("--steps", type=int, default=150, help="training steps of each few-label run")


def block(args, runs: Runs) -> list[str]:
    t0 = time.monotonic()
    A, B = halves(args.dataset)
    quick = recipes.get("supervised").preset("quick", args.dataset)
    epochs = [f"train.epochs={args.epochs}"] if args.epochs else []
    n_epochs = args.epochs or quick["train"]["epochs"]
    depth = 4  # LeNet-5: conv1, conv2, fc1, fc2 (then the head); the ResNet: prep, stage 1, 2, 3
    res = yosinski(runs, A, B, depth, args.seeds, epochs)
    net = f"{quick['model']['name']} (width {quick['model']['width']})"
    fig1 = HERE / "figures" / f"transfer-yosinski-{args.dataset}.png"
    yosinski_figure(res, depth, f"{args.dataset}: A = {A}, B = {B}; {net}, {n_epochs} epochs, {args.seeds} seed(s)", fig1)
    few_seeds = args.few_seeds or args.seeds
    few = few_labels(runs, A, B, few_seeds, quick["train"]["batch_size"], args.steps, epochs)
    fig2 = HERE / "figures" / f"transfer-few-labels-{args.dataset}.png"
    few_labels_figure(few, f"{args.dataset}: B with few labels, from baseA's features ({args.steps} steps)", fig2)
    cmd = (f"python benchmarks/bench_transfer.py --data-dir ../shared/datasets --dataset {args.dataset} "
           f"--seeds {args.seeds} --few-seeds {few_seeds} --steps {args.steps}")
    lines = [f"## Transfer learning on {args.dataset}", "",
             f"Command: `make bench-transfer` (`{cmd}{' --epochs ' + str(args.epochs) if args.epochs else ''}`), "
             f"{(time.monotonic() - t0) / 60:.0f} minutes here for the runs not already "
             f"in `{runs.work}/results.jsonl` (about 20 minutes from nothing: 14 for section 1, 4 for sections 2 and 3). Halves: A = {A}, B = {B}. Network: the quick preset's {net}, "
             f"{n_epochs} epochs on a half, test accuracy on B's test images; {args.seeds} seed(s) per point "
             f"(few labels: {few_seeds}), mean ± std.", "",
             "### 1. How transferable are features? (Yosinski et al. 2014, Figure 2)", "",
             "Layer n is chopped: the first n layers are copied (from baseB: selffer BnB; from baseA: transfer "
             "AnB), the layers above and the head re-initialised; frozen (BnB, AnB) or fine-tuned with all "
             "layers at one learning rate (BnB+, AnB+), as in the paper.", "",
             "| n | BnB | BnB+ | AnB | AnB+ |", "|---|---|---|---|---|",
             f"| baseB | {mean(res['baseB']):.2%} ± {std(res['baseB']):.2%} | | | |"]
    for n in range(1, depth + 1):
        lines.append(f"| {n} | " + " | ".join(f"{mean(res[k][n]):.2%} ± {std(res[k][n]):.2%}"
                                              for k in ("BnB", "BnB+", "AnB", "AnB+")) + " |")
    lines += ["", f"baseA on A: {mean(res['baseA']):.2%} ± {std(res['baseA']):.2%}.", "",
              "| the paper's finding (ImageNet) | reproduced here? | our numbers |", "|---|---|---|"]
    for name, ok, detail in findings(res, depth):
        lines.append(f"| {name}: {PAPER[name]} | {'yes' if ok else 'no'} | {detail} |")
    lines += ["", f"![Yosinski figure]({fig1.relative_to(HERE.parent)})", "",
              f"### 2. Few labels: baseA's features on B ({args.steps} steps per run, recipe defaults: "
              "copied layers at 0.1x the head's learning rate)", "",
              "| labels per class | scratch | linear probe | fine-tune | fine-tune - scratch |", "|---|---|---|---|---|"]
    for lpc in sorted(few["scratch"]):
        s, p, f = (few[k][lpc] for k in ("scratch", "linear probe", "fine-tune"))
        lines.append(f"| {lpc} | {mean(s):.2%} ± {std(s):.2%} | {mean(p):.2%} ± {std(p):.2%} | "
                     f"{mean(f):.2%} ± {std(f):.2%} | {mean(f) - mean(s):+.2%} |")
    lines += ["", f"![few labels]({fig2.relative_to(HERE.parent)})", "",
              "### 3. Linear probe vs freeze-k vs fine-tune, A -> B with 100 labels per class", "",
              "| strategy | test accuracy on B | vs scratch |", "|---|---|---|"]
    base = mean(few["scratch"][100])
    for name in ("scratch", "linear probe", "freeze:3", "freeze:2", "freeze:1", "fine-tune", "fine-tune, lr_decay 0.5"):
        v = few[name][100]
        lines.append(f"| {name} | {mean(v):.2%} ± {std(v):.2%} | {mean(v) - base:+.2%} |")
    return lines + [""]


def main() -> None:  # the base networks are the sources: their folders are kept
    run_benchmark(__file__, block, options=options, name=lambda args: f"transfer-{args.dataset}",
                  data=lambda args: {"mnist": "mnist", "cifar10": "cifar-10"}[args.dataset],
                  work_help="run folders and results.jsonl (default runs/bench-transfer-DATASET)",
                  flags=lambda args: {"dataset": args.dataset}, keep=lambda key: key.startswith("base"))


if __name__ == "__main__":
    main()
