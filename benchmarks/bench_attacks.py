"""`make bench-attacks`: adversarial attacks against the papers, results and figures into BENCHMARKS.md.

1. Goodfellow et al. 2015 on MNIST: FGSM at eps = 0.25 against a softmax regression (a linear
   network: the paper's 99.9% error) and the quick preset's CNN (the paper's maxout network: 89.4%);
   PGD-40 (Madry et al. 2018: eps 0.3, step 0.01, random start) against the CNN.
2. The lecture's cat -> dog on CIFAR-10 with the quick supervised network: targeted success on test
   cats at eps = 8/255 (PGD-20, L-inf) and eps = 0.5 (PGD-20, L2); the panel figure.
3. A universal patch (Brown et al. 2017) covering 10% of a CIFAR-10 image: targeted success on
   held-out test images at random positions, rotations and scales, against a noise patch.
4. Speed of PGD-40 against a plain loop, torchattacks and ART (benchmarks/attack_speed.py).

The networks are trained once and kept in runs/bench-attacks (benchmarks/runs.py), so a second run
only attacks.

Usage: python benchmarks/bench_attacks.py --data-dir ../shared/datasets [--out BENCHMARKS.md] [--skip-speed]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

from driver import run_benchmark  # noqa: E402
import paradigms  # noqa: E402
from paradigms.adversarial import fgsm, patch_success, pgd, train_patch  # noqa: E402
from paradigms.adversarial.figures import panel_figure, patch_figure  # noqa: E402
from paradigms.adversarial.patch import draw, paste  # noqa: E402
from paradigms.adversarial.runs import batched as attack_batches  # noqa: E402
from paradigms.evaluate.classifier import class_probabilities as probabilities  # noqa: E402
from paradigms.data import load_images  # noqa: E402
from paradigms.engine.report import save_figure  # noqa: E402
from runs import Runs  # noqa: E402

HERE = Path(__file__).resolve().parent


def batched(fn, x, y) -> torch.Tensor:
    return attack_batches(fn, x, y, batch_size=500)


def predictions(net, x) -> torch.Tensor:
    return probabilities(net, x, batch_size=1000)


def mnist_section(runs: Runs, data_dir: str, n_pgd: int) -> tuple[list[str], dict]:
    data = load_images("mnist", data_dir)
    x, y = data.test_x.float() / 255, data.test_y
    runs("softmax", "supervised", ["model.name=mlp", "model.hidden=[]"], 0)
    runs("cnn", "supervised", [], 0)
    res = {}
    for name, title in (("softmax", "softmax regression (linear)"), ("cnn", "LeNet-5 x4 (the quick preset's CNN)")):
        net = paradigms.load(runs.dir(name, 0))
        clean = float((predictions(net, x).argmax(1) == y).float().mean())
        t = time.monotonic()
        adv = batched(lambda a, b: fgsm(net, a, b, 0.25), x, y)
        fgsm_err = float((predictions(net, adv).argmax(1) != y).float().mean())
        res[name] = {"title": title, "clean": clean, "fgsm_error": fgsm_err, "fgsm_s": time.monotonic() - t}
        print(json.dumps({name: res[name]}), flush=True)
    net = paradigms.load(runs.dir("cnn", 0))
    torch.manual_seed(0)
    t = time.monotonic()
    adv = batched(lambda a, b: pgd(net, a, b, 0.3, 0.01, 40), x[:n_pgd], y[:n_pgd])
    res["cnn"]["pgd_acc"] = float((predictions(net, adv).argmax(1) == y[:n_pgd]).float().mean())
    res["cnn"]["pgd_s"] = time.monotonic() - t
    print(json.dumps({"cnn-pgd": res["cnn"]["pgd_acc"]}), flush=True)
    s, c = res["softmax"], res["cnn"]
    lines = ["### 1. FGSM and PGD on MNIST (Goodfellow et al. 2015; Madry et al. 2018)", "",
             "Test set, 10,000 images (PGD: the first %d). eps in [0, 1] pixels." % n_pgd, "",
             "| network | clean accuracy | FGSM eps 0.25: error | the paper | PGD-40 eps 0.3: accuracy |",
             "|---|---|---|---|---|",
             f"| {s['title']} | {s['clean']:.2%} | {s['fgsm_error']:.2%} | 99.9% (softmax regression) | |",
             f"| {c['title']} | {c['clean']:.2%} | {c['fgsm_error']:.2%} | 89.4% (maxout network) | "
             f"{c['pgd_acc']:.2%} |", "",
             f"Goals: the linear network's FGSM error >= 90%: {'met' if s['fgsm_error'] >= 0.9 else 'NOT met'} "
             f"({s['fgsm_error']:.1%}); PGD-40 leaves the CNN <= 2%: "
             f"{'met' if c['pgd_acc'] <= 0.02 else 'NOT met'} ({c['pgd_acc']:.1%}). Training: "
             "`paradigms run supervised --dataset mnist` (quick preset; the softmax regression with "
             "`--set model.name=mlp --set 'model.hidden=[]'`). Attack: `paradigms attack RUN_DIR --method fgsm "
             "--eps 0.25 --n 10000` and `--method pgd --eps 0.3 --steps 40 --step-size 0.01`.", ""]
    return lines, res


def cifar_section(runs: Runs, data_dir: str, n_cats: int) -> tuple[list[str], dict]:
    data = load_images("cifar10", data_dir)
    runs("cifar", "supervised", [], 0)
    net = paradigms.load(runs.dir("cifar", 0))
    cat, dog = net.classes.index("cat"), net.classes.index("dog")
    keep = data.test_y == cat
    x = data.test_x[keep][:n_cats].float() / 255
    clean = predictions(net, x)
    target = torch.full((len(x),), dog)
    res = {"clean_acc": float((clean.argmax(1) == cat).float().mean()),
           "clean_dog": float((clean.argmax(1) == dog).float().mean()), "n": len(x)}
    advs = {}
    for norm, eps, label in (("linf", 8 / 255, "8/255"), ("l2", 0.5, "0.5")):
        torch.manual_seed(0)
        t = time.monotonic()
        adv = batched(lambda a, b: pgd(net, a, b, eps, 2.5 * eps / 20, 20, norm=norm, targeted=True), x, target)
        p = predictions(net, adv)
        res[norm] = {"eps": label, "success": float((p.argmax(1) == dog).float().mean()),
                     "p_dog": float(p[:, dog].mean()), "s": time.monotonic() - t}
        advs[norm] = (adv, p)
        print(json.dumps({f"cat-dog-{norm}": res[norm]}), flush=True)
    adv, p = advs["linf"]
    fig = panel_figure(x, adv, clean, p, net.classes, "CIFAR-10 cat -> dog: PGD-20, L-inf, eps 8/255", n=4)
    save_figure(fig, HERE / "figures" / "attack-cat-dog.png")
    lines = ["### 2. Targeted cat -> dog on CIFAR-10 (the quick supervised network, ResNet-9 width 16)", "",
             f"The first {res['n']} test cats; clean: {res['clean_acc']:.1%} called cat, {res['clean_dog']:.1%} "
             "called dog. PGD-20, random start, step 2.5 eps / 20.", "",
             "| norm | eps | called dog after the attack | mean P(dog) |", "|---|---|---|---|"]
    for norm in ("linf", "l2"):
        r = res[norm]
        lines.append(f"| {'L-inf' if norm == 'linf' else 'L2'} | {r['eps']} | {r['success']:.2%} | {r['p_dog']:.3f} |")
    lines += ["", "Command: `paradigms attack RUN_DIR --target dog --eps 8/255 --steps 20` (and `--norm l2 --eps 0.5`).",
              "", "![cat -> dog](benchmarks/figures/attack-cat-dog.png)", ""]
    return lines, res


def patch_section(runs: Runs, data_dir: str, steps: int, target_name: str = "dog") -> tuple[list[str], dict]:
    data = load_images("cifar10", data_dir)
    net = paradigms.load(runs.dir("cifar", 0))
    tgt = net.classes.index(target_name)
    train = data.train_x[data.train_y != tgt].float() / 255
    test = data.test_x[data.test_y != tgt][:2000].float() / 255
    torch.manual_seed(0)
    t = time.monotonic()
    patch = train_patch(net, train, tgt, size=0.1, steps=steps)
    took = time.monotonic() - t
    success, noise = patch_success(net, patch, test, tgt), patch_success(net, torch.rand_like(patch), test, tgt)
    res = {"side": patch.shape[-1], "success": success, "noise": noise, "steps": steps, "train_s": took, "n": len(test)}
    print(json.dumps({"patch": res}), flush=True)
    shown = test[:7]
    patched = paste(shown, patch, draw(len(shown), patch.shape[-1], 32, 32))
    fig = patch_figure(patch, patched, predictions(net, patched), net.classes,
                       f"a universal patch for {target_name!r} ({patch.shape[-1]}x{patch.shape[-1]} px, 10% of the image)")
    save_figure(fig, HERE / "figures" / "attack-patch.png")
    lines = ["### 3. A universal patch on CIFAR-10 (Brown et al. 2017)", "",
             f"One {res['side']}x{res['side']} patch (10% of the image) trained for {steps} steps of 64 training "
             f"images with random positions, rotations (±20°) and scales (0.8-1.2) ({took:.0f} s here), then pasted "
             f"the same random way on {len(test):,} held-out test images of other classes.", "",
             "| patch | called {0!r} |".format(target_name), "|---|---|",
             f"| trained | {success:.2%} |", f"| random noise, same size (control) | {noise:.2%} |", "",
             f"Command: `paradigms attack RUN_DIR --method patch --target {target_name} --size 0.1 --patch-steps {steps} "
             "--n 2000`.", "", "![patch](benchmarks/figures/attack-patch.png)", ""]
    return lines, res


def options(ap) -> None:
    ap.add_argument("--n-pgd", type=int, default=1000, help="MNIST test images for PGD-40")
    ap.add_argument("--n-cats", type=int, default=1000)
    ap.add_argument("--patch-steps", type=int, default=1000)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)


def block(args, runs: Runs) -> list[str]:
    t0 = time.monotonic()
    cifar_runs = Runs(runs.work, {**runs.flags, "dataset": "cifar10"}, keep=runs.keep)
    lines = ["## Adversarial attacks", "",
             "Command: `make bench-attacks` (`python benchmarks/bench_attacks.py --data-dir ../shared/datasets`); "
             f"the networks are kept in `{args.work}` and recalled by later runs.", ""]
    part, _ = mnist_section(runs, args.data_dir, args.n_pgd)
    lines += part
    lines += cifar_section(cifar_runs, args.data_dir, args.n_cats)[0]
    lines += patch_section(cifar_runs, args.data_dir, args.patch_steps)[0]
    if not args.skip_speed:
        from attack_speed import speed_table
        from bench_supervised import matmul_peak

        speed, rows = speed_table(matmul_peak(), rounds=args.rounds)
        for r in rows:
            print(json.dumps(r), flush=True)
        lines += speed
    trained = sum(row["s"] for row in runs.trained + cifar_runs.trained)
    return lines + ["", f"This run took {(time.monotonic() - t0) / 60:.0f} minutes here, {trained / 60:.0f} of them "
                    f"training networks (none when all were recalled from `{args.work}`; from nothing, the CIFAR-10 "
                    "network takes about 10 minutes and the MNIST ones 2)."]


def main() -> None:
    run_benchmark(__file__, block, options=options, data=None, flags={"dataset": "mnist"})


if __name__ == "__main__":
    main()
