"""`make bench-augment`: does augmentation help, as the papers found? Results into BENCHMARKS.md.

1. Low-data CIFAR-10 (the first 5,000 training images, the full test set), the quick preset's
   ResNet (width 16) trained with the papers' recipe (PROTOCOL below), 3 seeds: no augmentation, the
   standard policy (pad-crop + flip), standard + Cutout (16x16, DeVries & Taylor 2017), standard +
   Mixup (alpha 1, Zhang et al. 2018), standard + CutMix (alpha 1, Yun et al. 2019). Mean +- std, a
   table and a bar chart at 40 epochs; at the papers' 200 epochs, the papers' comparison alone
   (standard, + Cutout, + Mixup: about 20 minutes a run here) over 5 seeds, since the gains there are
   a fraction of a point. A policy adds when its mean gain over paired seeds is over 0.1 point and
   over twice its standard error (``verdict``). Then Cutout's size chosen as the paper chose it, on
   held-out training images (8, 12 or 16; ``choose_cutout``), and that size against the standard
   policy on the test set over the same 5 seeds.
2. The same on Fashion-MNIST with 1,000 training images (LeNet-5, cutout 14x14), 200 epochs.
3. Throughput: augmenting a CIFAR-10 batch of 256 on this machine, images/s per transform and for
   the standard policy, and the share of a training step that the standard policy takes.

Every finished run is kept in WORK/results.jsonl (benchmarks/runs.py): the command trains only what is
missing, an interrupted run resumes from its checkpoint, and --report-only writes the section from
what is done so far (a partial study is marked as such).

Usage: python benchmarks/bench_augment.py --data-dir ../shared/datasets [--seeds 3] [--fashion-epochs 200]
       [--cifar-epochs 40] [--cifar-long-epochs 200] [--cifar-long-seeds 5] [--report-only] [--no-throughput]
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from driver import run_benchmark  # noqa: E402
from paradigms import augment  # noqa: E402
from paradigms import config as configlib  # noqa: E402
from paradigms import recipes  # noqa: E402
from runs import Runs, mean, std  # noqa: E402

BEGIN, END = "<!-- bench:augment:begin -->", "<!-- bench:augment:end -->"
HERE = Path(__file__).resolve().parent


def policies(cutout: int) -> dict[str, list]:
    # Cutout fills with the dataset's mean colour (zero once standardised), as the authors' code does
    return {"none": [], "standard": ["standard"],
            "standard + cutout": ["standard", {"cutout": {"size": cutout, "fill": "mean"}}],
            "standard + mixup": ["standard", "mixup"], "standard + cutmix": ["standard", "cutmix"]}


# The order runs are trained in: the papers' comparison (does Cutout or Mixup add to the standard policy?) for
# every seed first, so that a partial study already answers it; then CutMix and no augmentation.
ORDER = [["standard", "standard + cutout", "standard + mixup"], ["standard + cutmix", "none"]]

# The papers' training recipe (Cutout: DeVries & Taylor 2017; Mixup: Zhang et al. 2018), the same for every policy:
# SGD with Nesterov momentum 0.9, lr 0.1, weight decay 5e-4, batch 128, plain cross-entropy (no label smoothing,
# which would be a second regulariser on the targets), a cosine schedule in place of their step decay.
PROTOCOL = ["optim.name=sgd", "optim.lr=0.1", "optim.momentum=0.9", "optim.nesterov=true",
            "optim.weight_decay=5e-4", "optim.schedule=cosine", "train.batch_size=128", "label_smoothing=0"]

# dataset -> (training images, Cutout size, network, title)
STUDIES = {"fashion-mnist": (1000, 14, "LeNet-5 x4", "Fashion-MNIST, 1,000 training images"),
           "cifar10": (5000, 16, "ResNet width 16", "CIFAR-10, 5,000 training images")}


def run_key(dataset: str, name: str, epochs: int, cutout: int | None = None, val: int | None = None) -> str:
    """The cache key of a study's run (less its seed); a Cutout size other than the study's is in the name."""
    train_size, default, _, _ = STUDIES[dataset]
    size = f"{cutout}" if "cutout" in name and cutout not in (None, default) else ""
    held = f"-val{val}" if val else ""
    return f"{dataset}-{name.replace(' + ', '+')}{size}-n{train_size}{held}-e{epochs}"


def policy_run(runs: Runs, dataset: str, name: str, epochs: int, seed: int, run: bool = True,
               cutout: int | None = None, val: int | None = None) -> dict[str, float] | None:
    """The metrics of one run of a study (None if not run and ``run=False``): the papers' protocol with policy
    ``name`` (``cutout``: a Cutout size other than the study's), on the study's first training images, scored on
    the test set, or with ``val`` on that many training images after them."""
    train_size, default, _, _ = STUDIES[dataset]
    sets = [*PROTOCOL, f"train_size={train_size}", *([f"val_size={val}"] if val else []), f"train.epochs={epochs}",
            "augment=" + json.dumps(policies(cutout or default)[name])]
    return runs(run_key(dataset, name, epochs, cutout, val), "supervised", sets, seed, metric=None,
                flags={"dataset": dataset}, train=run)


def study(runs: Runs, dataset: str, epochs: int, seeds: int, run: bool = True, only: list[str] | None = None,
          cutout: int | None = None) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Test accuracy and test loss per policy (in ``policies`` order), seed by seed; ``run=False`` only
    recalls. Runs imported from a printed log kept only their accuracy, so a loss list may be shorter.
    ``cutout``: a Cutout size other than the study's own."""
    out: dict[str, list[float]] = {name: [] for name in policies(0) if only is None or name in only}
    losses: dict[str, list[float]] = {name: [] for name in out}
    for seed, name in [(seed, name) for tier in ORDER for seed in range(seeds) for name in tier
                       if only is None or name in only]:
        metrics = policy_run(runs, dataset, name, epochs, seed, run, cutout)
        if metrics is not None:  # every list holds seeds 0, 1, ... in order: the order above fills them so
            out[name].append(metrics["test/acc"])
            if "test/loss" in metrics:
                losses[name].append(metrics["test/loss"])
    return out, losses


# Cutout's size, chosen as DeVries & Taylor chose it: by accuracy on held-out training images, never the test set.
# The 1,000 images after the 5,000 the study trains on are held out; the network trains on the same 5,000.
# Size 0 is the standard policy alone, scored the same way for reference (it is not a candidate).
SIZES, VAL = (8, 12, 16), 1000


def choose_cutout(runs: Runs, epochs: int, run: bool = True) -> dict[int, float]:
    """Held-out accuracy of standard + Cutout per size, then of standard alone (size 0); one seed each
    (``run=False`` only recalls)."""
    out = {}
    for size in (*SIZES, 0):
        metrics = policy_run(runs, "cifar10", "standard + cutout" if size else "standard", epochs, 0, run, size, VAL)
        if metrics is not None:
            out[size] = metrics["val/acc"]
    return out


def chosen_lines(runs: Runs, epochs: int, seeds: int, run: bool) -> list[str]:
    """Cutout at the size the held-out images chose, against the standard policy on the test set."""
    val = choose_cutout(runs, epochs, run)
    shown = [(f"{size}x{size}" if size else "none (the standard policy alone, for reference)", size)
             for size in (*SIZES, 0)]
    lines = [f"### CIFAR-10, {epochs} epochs: Cutout's size chosen on held-out images", "",
             f"As the Cutout paper chose it: standard + Cutout at sizes {', '.join(map(str, SIZES))} trained on the "
             f"same 5,000 images (seed 0) and scored on the {VAL:,} training images after them; the test set is "
             "not read for the choice.", "",
             "| Cutout size | held-out accuracy |", "|---|---|",
             *[f"| {label} | {f'{val[size]:.2%}' if size in val else 'not run yet'} |" for label, size in shown], ""]
    if any(size not in val for size in SIZES):
        return lines + [f"**Partial: {len(val)} of {len(SIZES) + 1} runs so far.** The same command trains the rest.", ""]
    best = max(SIZES, key=lambda size: val[size])  # ties go to the smaller size
    p = mean(list(val.values()))
    se = 100 * (p * (1 - p) / VAL) ** 0.5
    lines += [f"One run's accuracy on {VAL:,} images has a binomial standard error of {se:.1f} points, "
              "so these runs do not tell the sizes apart: the choice follows the paper's procedure, it is not "
              "evidence that one size is best.", ""]
    res, losses = study(runs, "cifar10", epochs, seeds, run=run, only=["standard", "standard + cutout"], cutout=best)
    done = sum(len(v) for v in res.values())
    lines += [f"Chosen: {best}x{best}. On the test set, against the standard policy (the same seeds as above):", ""]
    if done < 2 * seeds:
        lines += [f"**Partial: {done} of {2 * seeds} runs so far.** The same command trains the rest.", ""]
    return lines + [*table(res, losses), "", f"What it shows: {verdict(res)}", ""]


def throughput(data_dir, batch: int = 256, reps: int = 5) -> tuple[list[tuple[str, float]], float, float]:
    from paradigms.data import load_images
    from paradigms.engine.context import Context

    data = load_images("cifar10", data_dir)
    x = data.train_x[:batch].float() / 255
    y = data.train_y[:batch]
    rows = []
    names = [*augment.TRANSFORMS, *augment.MIXES, "standard"]
    for name in names:
        pol = augment.build([name], "cifar10", 3)
        pol(x, y, 10)  # warm-up
        best = float("inf")
        for _ in range(3):  # best of three rounds: a busy disk or a stray process only ever slows a round
            t = time.perf_counter()
            for _ in range(reps):
                pol(x, y, 10)
            best = min(best, time.perf_counter() - t)
        rows.append((name, reps * batch / best))
    # the share of a quick-preset training step that the standard policy takes
    cfg = configlib.resolve(recipes.get("supervised"), "quick", None, [], {"dataset": "cifar10", "data_dir": data_dir})
    recipe = recipes.get("supervised")(cfg, Context.create("cpu"))
    batches = recipe.batches(0)
    for i in range(2):
        recipe.train_step(next(batches), i)
    t_step = []
    for i in range(reps):
        b = next(batches)
        t = time.perf_counter()
        recipe.train_step(b, i)
        t_step.append(time.perf_counter() - t)
    std_rate = dict(rows)["standard"]
    step = statistics.median(t_step)
    return rows, batch / std_rate / step, step


def bar_chart(results: dict[str, dict[str, list[float]]], path: Path) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6), squeeze=False)
    for ax, (title, res) in zip(axes[0], results.items()):
        names = [n for n in res if res[n]]
        means = [mean(res[n]) * 100 for n in names]
        stds = [std(res[n]) * 100 for n in names]
        colours = {"none": "#999", "standard": "#4c72b0", "standard + cutout": "#55a868",
                   "standard + mixup": "#c44e52", "standard + cutmix": "#8172b2"}
        ax.bar(range(len(names)), means, yerr=stds, capsize=4, color=[colours[n] for n in names])
        ax.set_xticks(range(len(names)), [n.replace("standard + ", "std +\n") for n in names], fontsize=8)
        lo = min(m - s for m, s in zip(means, stds))
        ax.set_ylim(max(0, lo - 5), min(100, max(means) + 3))
        for i, (m, s) in enumerate(zip(means, stds)):
            ax.text(i, m + s + 0.3, f"{m:.1f}", ha="center", fontsize=8)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def table(res: dict[str, list[float]], losses: dict[str, list[float]] | None = None) -> list[str]:
    """Accuracy per policy; a test-loss column when every run shown has its loss kept (runs imported from a
    printed log have only their accuracy)."""
    ref = "none" if "none" in res else "standard"
    base = mean(res[ref]) if res[ref] else None
    loss = bool(losses) and all(len(losses.get(n, [])) == len(a) for n, a in res.items())
    lines = ["| policy | test accuracy, mean ± std | seeds | vs " + ref + " |" + (" test loss, mean |" if loss else ""),
             "|---|---|---|---|" + ("---|" if loss else "")]
    for name, accs in res.items():
        if not accs:
            lines.append(f"| {name} | not run yet | | |" + (" |" if loss else ""))
            continue
        m = mean(accs)
        vs = f"{m - base:+.2%}" if base is not None else f"({ref} not run yet)"
        lines.append(f"| {name} | {m:.2%} ± {std(accs):.2%} | {', '.join(f'{a:.2%}' for a in accs)} | {vs} |"
                     + (f" {mean(losses[name]):.3f} |" if loss else ""))
    return lines


def verdict(res: dict[str, list[float]]) -> str:
    """Against the papers' expected direction: standard > none, and each extra > standard.

    Policies are compared seed by seed (seed s of both runs shares its data order and initialisation), on the
    seeds both ran: the gain d is the mean of the paired differences and se its standard error. A gain counts
    when it is over 0.1 point and over twice se; a loss likewise; anything between is within seed noise.
    """
    parts = []
    for extra, ref in (("standard", "none"), ("standard + cutout", "standard"), ("standard + mixup", "standard"),
                       ("standard + cutmix", "standard")):
        k = min(len(res.get(extra, [])), len(res.get(ref, [])))
        if not k:
            continue
        diffs = [a - b for a, b in zip(res[extra][:k], res[ref][:k])]
        d = round(mean(diffs), 9)  # so that exactly 0.1 point reads as noise
        se = statistics.stdev(diffs) / k ** 0.5 if k > 1 else 0.0
        bar = max(0.001, 2 * se)
        good, bad = ("as expected", "NOT the expected direction") if ref == "none" else ("adds", "does not add")
        what = good if d > bar else bad if d < -bar else "within seed noise"
        spread = f" ± {se:.2%} (paired se)" if k > 1 else ""
        parts.append(f"{extra.replace('standard + ', '')} vs {ref} {d:+.2%}{spread} over {k} seed(s): {what}")
    return "; ".join(parts) + "." if parts else "no runs yet."


def study_lines(runs: Runs, dataset: str, epochs: int, seeds: int, res: dict[str, list[float]],
                losses: dict[str, list[float]] | None = None) -> list[str]:
    train_size, cutout, net, title = STUDIES[dataset]
    done = sum(len(v) for v in res.values())
    total = seeds * len(res)
    secs = [row["s"] for key, row in runs.done.items()
            if key.startswith(f"{dataset}-") and f"-n{train_size}-e{epochs}-" in key and "s" in row
            and not row.get("resumed")]  # a resumed run's seconds are only its last part
    scope = "" if "none" in res else ": the papers' comparison"
    lines = [f"### {title}, {epochs} epochs{scope} ({net}, Cutout {cutout}x{cutout})", ""]
    if done < total:
        lines += [f"**Partial: {done} of {total} runs so far.** The rest are trained by the same command, "
                  "which picks up where it stopped.", ""]
    lines += [*table(res, losses), "", f"What it shows: {verdict(res)}"]
    if secs:
        lines[-1] += f" One run takes {mean(secs) / 60:.1f} minutes here (mean of {len(secs)} uninterrupted)."
    return lines + [""]


def options(ap) -> None:
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cifar-epochs", type=int, nargs="*", default=[40],
                    help="CIFAR-10 budgets (epochs over its 5,000 images) for all five policies, a table each")
    ap.add_argument("--cifar-long-epochs", type=int, nargs="*", default=[200],
                    help="CIFAR-10 budgets for the papers' comparison alone (standard, + cutout, + mixup)")
    ap.add_argument("--cifar-long-seeds", type=int, default=5,
                    help="seeds for the 200-epoch comparison, whose gains are a fraction of a point")
    ap.add_argument("--fashion-epochs", type=int, default=200, help="Fashion-MNIST epochs over its 1,000 images")
    ap.add_argument("--skip-cifar", action="store_true")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: write the section from the runs already finished (partial studies marked)")
    ap.add_argument("--no-throughput", action="store_true",
                    help="keep the throughput table already in --out (measure it only with the machine otherwise idle)")


def block(args, runs: Runs) -> list[str]:
    rows, share, step = throughput(args.data_dir) if not args.no_throughput else (None, None, None)
    budgets = [("fashion-mnist", args.fashion_epochs, args.seeds, None)]
    if not args.skip_cifar:
        budgets += [("cifar10", e, args.seeds, None) for e in args.cifar_epochs]
        budgets += [("cifar10", e, args.cifar_long_seeds, ORDER[0]) for e in args.cifar_long_epochs]
    results, lines = {}, []
    for dataset, epochs, seeds, only in budgets:
        res, losses = study(runs, dataset, epochs, seeds, run=not args.report_only, only=only)
        results[f"{STUDIES[dataset][3]}, {epochs} epochs"] = res
        lines += study_lines(runs, dataset, epochs, seeds, res, losses)
    if not args.skip_cifar and args.cifar_long_epochs:
        lines += chosen_lines(runs, args.cifar_long_epochs[-1], args.cifar_long_seeds, run=not args.report_only)
    bar_chart({k: v for k, v in results.items() if any(v.values())}, HERE / "figures" / "augment.png")
    cmd = (f"python benchmarks/bench_augment.py --data-dir ../shared/datasets --seeds {args.seeds} "
           f"--fashion-epochs {args.fashion_epochs} --cifar-epochs {' '.join(map(str, args.cifar_epochs))} "
           f"--cifar-long-epochs {' '.join(map(str, args.cifar_long_epochs))} --cifar-long-seeds {args.cifar_long_seeds}")
    head = ["## Data augmentation", "", f"Command: `make bench-augment` (`{cmd}`). "
            f"Finished runs are kept in `{args.work}/results.jsonl`, so the command trains only what is missing. "
            "Same network, optimiser and number of steps for every policy; only the policy changes: the papers' "
            "recipe (SGD + Nesterov 0.9, lr 0.1, weight decay 5e-4, batch 128, cosine schedule, plain "
            "cross-entropy). Test accuracy and loss (cross-entropy, clean images) on the full test set.", ""]
    lines = head + lines + ["![augmentation results](benchmarks/figures/augment.png)", ""]
    if rows is not None:
        lines += ["### Throughput: augmenting a CIFAR-10 batch of 256 on this machine (CPU, 2 cores)", "",
                  "| transform | images/s |", "|---|---|", *[f"| {n} | {r:,.0f} |" for n, r in rows], "",
                  f"The standard policy takes {share:.1%} of a quick-preset training step "
                  f"({step * 1000:.0f} ms for a batch of 256).", ""]
    else:  # keep the throughput table of the last run that measured it
        out = Path(args.out)
        old = out.read_text() if out.is_file() else ""
        old = old.split(BEGIN, 1)[1].split(END, 1)[0] if BEGIN in old else ""
        if "### Throughput" in old:
            lines += ("### Throughput" + old.split("### Throughput", 1)[1]).rstrip("\n").split("\n")
    while not lines[-1]:
        lines.pop()
    return lines


def main() -> None:
    run_benchmark(__file__, block, options=options, data="cifar-10", work_help="run folders and results.jsonl",
                  keep=lambda key: False)


if __name__ == "__main__":
    main()
