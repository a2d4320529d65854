"""`make bench-autoattack`: AutoAttack (Croce & Hein 2020) on the MNIST PGD-trained network at eps 0.3, beside PGD and
the peers' ensembles on the same network and the same images, into BENCHMARKS.md.

On the first ``--n`` (1,000) MNIST test images, one network: bench-robustness's PGD-trained quick CNN (LeNet-5 x4,
PGD-7 at eps 0.3, 4 epochs), recalled from ``--work`` (the Makefile passes runs/bench-robustness, where
`make bench-robustness` keeps it; trained there first when it is not):

- clean accuracy; PGD-40 (step 0.01, random start); PGD-100 (step 0.01) with 10 restarts;
- ours, ``paradigms.adversarial.autoattack.autoattack``: APGD-CE, APGD-T, FAB-T (``--steps`` iterations, 100 as the
  reference) and Square (``--queries``, 5,000), each on the images the ones before left classified right; robust
  accuracy after each attack, the images each broke, the time of each;
- torchattacks 3.5.1: its ``APGD``, ``APGDT``, ``FAB`` (multi-targeted) and ``Square`` built with the same iterations
  and queries and combined as the reference combines them (each on the images still classified right, the worst case
  per image), and its ``AutoAttack`` as shipped (10 iterations: its issue #196);
- ART 1.20.1's ``AutoAttack`` as shipped (APGD-CE and APGD-DLR with 5 restarts, DeepFool, Square: not the reference's
  ensemble).

An image counts as broken only when its adversarial version lies within eps of it (L-inf, 1e-5 of slack) and in
[0, 1]; outputs that do not are counted and shown. Speed: torchattacks' time over ours at equal steps and queries;
the share of the float32 matmul peak ours reaches, from the forward and backward passes the network ran (counted by
hooks, each priced by ``torch.utils.flop_counter``).

Reference (the AutoAttack README, Madry et al.'s MNIST model): PGD-100 x 50 restarts 89.62%, AutoAttack 88.50%.

Usage: python benchmarks/bench_autoattack.py --data-dir ../shared/datasets --work runs/bench-robustness [--n 1000]
       [--steps 100] [--queries 5000] [--skip-peers]
"""

from __future__ import annotations

import json
import time

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from driver import run_benchmark  # noqa: E402
import paradigms  # noqa: E402
from paradigms.adversarial import pgd  # noqa: E402
from paradigms.adversarial.runs import autoattack_run, batched  # noqa: E402
from paradigms.data import load_images  # noqa: E402
from paradigms.evaluate.classifier import class_probabilities  # noqa: E402
from runs import Runs  # noqa: E402

PGD_TRAINED = ("pgd", ["adversarial.method=pgd", "adversarial.eps=0.3", "adversarial.steps=7"])
"""bench-robustness's PGD-trained network (section 2): the same key and settings, so the kept run is recalled."""
REFERENCE = {"PGD-100 x 50 restarts": 0.8962, "AutoAttack": 0.8850}
ENSEMBLE = ("APGD-CE", "APGD-T", "FAB-T", "Square")
SEED = 0


def correct(net, x, y) -> torch.Tensor:
    return class_probabilities(net, x, 1000).argmax(1) == y


def share(right: torch.Tensor) -> float:
    """The share of True in ``right``, counted exactly (a float32 mean prints 0.30000001)."""
    return int(right.sum()) / max(len(right), 1)


def broken(net, x, adv, y, eps: float) -> tuple[torch.Tensor, int]:
    """Which images ``adv`` breaks (misclassified, within eps of ``x`` in L-inf and in [0, 1]), and how many of its
    images lie outside those bounds (never counted as broken)."""
    adv = torch.as_tensor(adv).to(x.dtype).reshape(x.shape)
    flat = (adv - x).flatten(1)
    valid = (flat.abs().amax(1) <= eps + 1e-5) & (adv.flatten(1).amin(1) >= 0) & (adv.flatten(1).amax(1) <= 1)
    return ~correct(net, adv, y) & valid, int((~valid).sum())


class Passes:
    """Counts, while inside, the images the network ran forward and those whose gradient flowed back through its
    output (each backward through it counts, as FAB's several per forward)."""

    def __init__(self, net: nn.Module):
        self.net, self.forward, self.backward = net, 0, 0

    def __enter__(self):
        def hook(module, inputs, out):
            self.forward += len(out)
            if torch.is_tensor(out) and out.requires_grad:
                out.register_hook(self._back)

        self.handle = self.net.register_forward_hook(hook)
        return self

    def _back(self, grad):
        self.backward += len(grad)

    def __exit__(self, *exc):
        self.handle.remove()


def flops_per_image(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """FLOPs of one image's forward, and of one image's backward to the input alone (no parameter gradients)."""
    x, y = x[:64], y[:64]
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        net(x)
    forward = fc.get_total_flops() / len(x)
    flags = [p.requires_grad for p in net.parameters()]
    for p in net.parameters():
        p.requires_grad_(False)
    try:
        with FlopCounterMode(display=False) as fc:
            x = x.clone().requires_grad_(True)
            nn.functional.cross_entropy(net(x), y).backward()
    finally:
        for p, flag in zip(net.parameters(), flags):
            p.requires_grad_(flag)
    return forward, fc.get_total_flops() / len(x) - forward


def timed(fn):
    """``fn()``'s value and its wall time, seeded as every method is."""
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def ours(net, x, y, eps, steps, queries) -> dict:
    with Passes(net) as passes:
        (adv, record), wall = timed(lambda: autoattack_run(net, x, y, eps, "linf", steps, queries, SEED))
    hit, invalid = broken(net, x, adv, y, eps)
    return {"method": "ours (paradigms.adversarial.autoattack)", "rows": record["rows"], "clean": record["clean_acc"],
            "robust": record["robust_acc"],
            "checked_robust": share(correct(net, x, y) & ~hit), "invalid": invalid,
            "seconds": wall, "forward": passes.forward, "backward": passes.backward}


def combined(net, x, y, eps, attacks: list) -> dict:
    """Each of ``attacks`` (name, fn(x, y) -> adversarial x) on the images the ones before left classified right,
    the worst case per image, as the reference runs its ensemble."""
    right = correct(net, x, y)
    clean, rows, invalid, total = share(right), [], 0, 0.0
    for name, fn in attacks:
        idx = right.nonzero().flatten()
        seconds = 0.0
        hit = torch.zeros(0, dtype=torch.bool)
        if len(idx):
            adv, seconds = timed(lambda: fn(x[idx], y[idx]))
            hit, bad = broken(net, x[idx], adv, y[idx], eps)
            invalid += bad
            right[idx[hit]] = False
        total += seconds
        rows.append({"attack": name, "robust_acc": share(right), "broken": int(hit.sum()),
                     "seconds": seconds})
    return {"rows": rows, "clean": clean, "robust": rows[-1]["robust_acc"], "invalid": invalid, "seconds": total}


def torchattacks_methods(net, x, y, eps, steps, queries) -> list[dict]:
    try:
        import torchattacks
    except Exception as e:  # noqa: BLE001 - a benchmark-only peer: any failure to import means "not available"
        return [{"method": "torchattacks", "error": f"import failed ({type(e).__name__}: {e})"}]
    k = len(net.classes)
    parts = [("APGD-CE", torchattacks.APGD(net, norm="Linf", eps=eps, steps=steps, n_restarts=1, loss="ce",
                                           seed=SEED)),
             ("APGD-T", torchattacks.APGDT(net, norm="Linf", eps=eps, steps=steps, n_restarts=1, n_classes=k,
                                           seed=SEED)),
             ("FAB-T", torchattacks.FAB(net, norm="Linf", eps=eps, steps=steps, n_restarts=1, multi_targeted=True,
                                        n_classes=k, seed=SEED)),
             ("Square", torchattacks.Square(net, norm="Linf", eps=eps, n_queries=queries, n_restarts=1, seed=SEED))]
    one = combined(net, x, y, eps, [(name, lambda a, b, atk=atk: atk(a, b)) for name, atk in parts])
    shipped = torchattacks.AutoAttack(net, norm="Linf", eps=eps, version="standard", n_classes=k, seed=SEED)
    adv, seconds = timed(lambda: shipped(x, y))
    hit, invalid = broken(net, x, adv, y, eps)
    return [{"method": f"torchattacks: APGD, APGDT, FAB, Square at {steps} iterations, {queries:,} queries, combined "
                       "as the reference", **one},
            {"method": "torchattacks: AutoAttack as shipped", "clean": one["clean"],
             "robust": share(correct(net, x, y) & ~hit), "invalid": invalid, "seconds": seconds}]


def art_method(net, x, y, eps) -> list[dict]:
    try:
        from art.attacks.evasion import AutoAttack
        from art.estimators.classification import PyTorchClassifier
    except Exception as e:  # noqa: BLE001
        return [{"method": "ART", "error": f"import failed ({type(e).__name__}: {e})"}]
    estimator = PyTorchClassifier(model=net, loss=nn.CrossEntropyLoss(), input_shape=tuple(x.shape[1:]),
                                  nb_classes=len(net.classes), clip_values=(0.0, 1.0))
    attack = AutoAttack(estimator, norm=np.inf, eps=eps, batch_size=500)  # its defaults: eps_step 0.1, its ensemble
    adv, seconds = timed(lambda: torch.from_numpy(attack.generate(x.numpy(), y.numpy())))
    net.zero_grad(set_to_none=True)  # ART leaves parameter gradients behind
    hit, invalid = broken(net, x, adv, y, eps)
    return [{"method": "ART: AutoAttack as shipped (APGD-CE, APGD-DLR x 5 restarts, DeepFool, Square)",
             "clean": share(correct(net, x, y)),
             "robust": share(correct(net, x, y) & ~hit), "invalid": invalid, "seconds": seconds}]


def met(ok: bool | None) -> str:
    return "n/a" if ok is None else "met" if ok else "NOT met"


def study(args, runs: Runs) -> list[str]:
    from bench_supervised import matmul_peak

    t0 = time.monotonic()
    key, sets = PGD_TRAINED
    runs(key, "supervised", sets, 0)
    net = paradigms.load(runs.dir(key, 0))
    data = load_images("mnist", args.data_dir)
    x, y = data.test_x[:args.n].float() / 255, data.test_y[:args.n]
    eps, n = args.eps, len(y)
    clean = share(correct(net, x, y))
    adv40, s40 = timed(lambda: batched(lambda a, b: pgd(net, a, b, eps, 0.01, 40), x, y, 500))
    adv100, s100 = timed(lambda: batched(lambda a, b: pgd(net, a, b, eps, 0.01, 100, restarts=10), x, y, 500))
    pgd_rows = [("PGD-40 (step 0.01, random start)", share(correct(net, adv40, y)), s40),
                ("PGD-100 (step 0.01) x 10 restarts", share(correct(net, adv100, y)), s100)]
    print(json.dumps({"clean": clean, "pgd": pgd_rows}), flush=True)
    mine = ours(net, x, y, eps, args.steps, args.queries)
    print(json.dumps({k: v for k, v in mine.items()}), flush=True)
    peers = [] if args.skip_peers else [*torchattacks_methods(net, x, y, eps, args.steps, args.queries),
                                        *art_method(net, x, y, eps)]
    for p in peers:
        print(json.dumps(p), flush=True)
    peak = matmul_peak()
    forward, backward = flops_per_image(net, x, y)
    achieved = (mine["forward"] * forward + mine["backward"] * backward) / mine["seconds"] / 1e9

    lines = ["## AutoAttack on the MNIST PGD-trained network (Croce & Hein 2020)", "",
             f"Command: `make bench-autoattack` (`python benchmarks/bench_autoattack.py --data-dir ../shared/datasets "
             f"--work {args.work} --n {n} --steps {args.steps} --queries {args.queries}`); the network is "
             f"bench-robustness's PGD-trained quick CNN (LeNet-5 x4, PGD-7 at eps 0.3, 4 epochs), kept in "
             f"`{args.work}`.", "",
             f"### The network at eps {eps:g} (L-inf), the first {n:,} MNIST test images", "",
             "| attack | accuracy | time (s) | the reference (Madry et al.'s model, AutoAttack README) |",
             "|---|---|---|---|", f"| clean | {clean:.2%} | | |"]
    lines += [f"| {name} | {acc:.2%} | {s:.1f} | {'89.62% (PGD-100 x 50 restarts)' if '100' in name else ''} |"
              for name, acc, s in pgd_rows]
    lines.append(f"| AutoAttack (ours) | {mine['robust']:.2%} | {mine['seconds']:.1f} | 88.50% |")
    lines += ["", "### The ensemble, attack by attack", "",
              "| attack | ours: robust accuracy after it | images it broke | time (s) | torchattacks at equal steps: "
              "robust accuracy after it | images it broke | time (s) | its time / ours |",
              "|---|---|---|---|---|---|---|---|"]
    theirs = next((p for p in peers if "rows" in p), None)
    for i, r in enumerate(mine["rows"]):
        t = theirs["rows"][i] if theirs and i < len(theirs["rows"]) else None
        lines.append(f"| {r['attack']} | {r['robust_acc']:.2%} | {r['broken']} | {r['seconds']:.1f} | "
                     + (f"{t['robust_acc']:.2%} | {t['broken']} | {t['seconds']:.1f} | "
                        f"{t['seconds'] / max(r['seconds'], 1e-9):.2f}x |" if t else "| | | |"))
    lines += ["", "### The same images, every ensemble", "",
              "| method | clean | robust accuracy | outputs outside the ball or [0, 1] | time (s) | its time / ours |",
              "|---|---|---|---|---|---|",
              f"| {mine['method']} | {mine['clean']:.2%} | {mine['robust']:.2%} | {mine['invalid']} | "
              f"{mine['seconds']:.1f} | 1.00x |"]
    for p in peers:
        if "error" in p:
            lines.append(f"| {p['method']} | {p['error']} | | | | |")
            continue
        lines.append(f"| {p['method']} | {p['clean']:.2%} | {p['robust']:.2%} | {p['invalid']} | {p['seconds']:.1f} | "
                     f"{p['seconds'] / mine['seconds']:.2f}x |")
    ran = [p for p in peers if "error" not in p]
    lowest = min((p["robust"] for p in ran), default=None)
    stronger = None if lowest is None else mine["robust"] <= lowest + 0.005
    speed = theirs["seconds"] / mine["seconds"] if theirs else None
    lines += ["", f"Goals: our robust accuracy no higher than any peer's by more than 0.5 points: {met(stronger)}"
              + (f" (ours {mine['robust']:.2%}, the lowest peer {lowest:.2%})" if lowest is not None else "")
              + f"; our time at least 1.0x torchattacks' at equal steps: {met(None if speed is None else speed >= 1.0)}"
              + (f" ({speed:.2f}x)" if speed is not None else "") + ".",
              f"Our ensemble ran {mine['forward']:,} image forwards and {mine['backward']:,} image backwards to the "
              f"input ({forward / 1e6:.2f} and {backward / 1e6:.2f} MFLOP each): {achieved:.1f} GFLOP/s, "
              f"{achieved / peak:.1%} of this machine's float32 matmul peak ({peak:.0f} GFLOP/s), "
              f"{torch.get_num_threads()} torch threads.", "",
              f"- Our robust accuracy, recounted here from its adversarial images (within eps, in [0, 1], "
              f"misclassified): {mine['checked_robust']:.2%}.",
              "- torchattacks' `AutoAttack` as shipped builds APGD, APGD-T and FAB with 10 iterations, not the "
              "reference's 100 (its issue #196); ART's `AutoAttack` runs its own ensemble (APGD-CE and APGD-DLR with 5 "
              "random restarts each, DeepFool, Square; step 0.1), not the reference's: both are shown as a user gets "
              "them.",
              "- Every method is seeded alike (torch and numpy, seed 0) and runs on the same module object and the "
              "same images in one process; times are wall clock of the whole call, numpy conversions (ART) included. "
              "torchattacks' combined time counts its four attacks' calls alone; ours also counts the predictions "
              "that choose the images each attack gets.",
              "", f"This run took {(time.monotonic() - t0) / 60:.0f} minutes here."]
    return lines


def options(ap) -> None:
    ap.add_argument("--n", type=int, default=1000, help="the first N MNIST test images")
    ap.add_argument("--eps", type=float, default=0.3, help="the L-inf budget")
    ap.add_argument("--steps", type=int, default=100, help="APGD, APGD-T and FAB iterations (the reference's 100)")
    ap.add_argument("--queries", type=int, default=5000, help="Square's queries (the reference's 5,000)")
    ap.add_argument("--skip-peers", action="store_true", help="ours and PGD only (no torchattacks, no ART)")


def main() -> None:
    run_benchmark(__file__, study, options=options, flags={"dataset": "mnist"},
                  work_help="where the PGD-trained network is kept (make passes runs/bench-robustness, which "
                            "make bench-robustness fills)")


if __name__ == "__main__":
    main()
