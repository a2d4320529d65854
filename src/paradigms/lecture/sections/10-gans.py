# %% [markdown]
# # 10. GANs
#
# A generator G learns to draw images from noise z without ever seeing a label or being told what is wrong with a
# picture: it plays against a discriminator D that learns to tell its pictures from real ones, and G gets better by
# fooling D (Goodfellow et al. 2014). The game's own loss for G saturates while D rejects the samples, which is why the
# paper trains G on −log D(G(z)) instead; Salimans et al. 2016 added techniques to stabilise the game, and made D a
# classifier that learns the classes from a few labels and the rest of the images without them.

# %% tags=["parameters"]
FAST = True             # True: the embedded digits, seconds on 2 cores; False: the quick presets on MNIST
RUNS = "runs/lecture"   # where the runs are kept: a second build finds them and reuses them
DATA_DIR = None         # the real datasets' folder (paradigms datasets says where it looks)

# %%
import matplotlib.pyplot as plt
import torch

import paradigms
from paradigms.engine.report import image_grid
from paradigms.engine.runlog import read_metrics
from paradigms.engine.trainer import load_config
from paradigms.evaluate.classifier import class_probabilities, eval_images
from paradigms.lecture import claim, experiment, headline, measure, panel, say

dataset = "digits" if FAST else "mnist"
# the classifier whose features score the samples (classifier-FD): section 1's LeNet-5, reused when it is there
clf = experiment("supervised", dataset, ["train.epochs=20"] if FAST else [], runs=RUNS, data_dir=DATA_DIR)
# every generator trains its whole budget (diverge_steps=0: no stop when D wins outright), scored at each epoch;
# on the digits, 6 epochs with Adam at 2e-3 for both players (DCGAN's 2e-4 barely moves in so few steps)
common = [f"fd_classifier={clf.run_dir}", "diverge_steps=0", "train.figures=false",
          *(["train.epochs=6", "train.log_every=5", "optim_d.lr=2e-3", "optim_g.lr=2e-3"] if FAST else [])]
losses = {"minimax": ["loss=minimax"], "non-saturating": ["loss=non-saturating"],
          "feature matching (Salimans)": ["feature_matching=true"]}
gans = {name: experiment("gan", dataset, [*common, *sets], runs=RUNS, data_dir=DATA_DIR)
        for name, sets in losses.items()}

# %% [markdown]
# ## The game, step by step
#
# Each step (Goodfellow et al.'s algorithm 1, k = 1), on a batch of m real images x⁽ⁱ⁾ and m codes z⁽ⁱ⁾ ~ N(0, I):
#
# - the discriminator **ascends** its stochastic gradient
#   ∇θd (1/m) Σᵢ [ log D(x⁽ⁱ⁾) + log(1 − D(G(z⁽ⁱ⁾))) ],
#   so its loss, the first row below, is −(1/m) Σᵢ [ log D(x⁽ⁱ⁾) + log(1 − D(G(z⁽ⁱ⁾))) ] (2 log 2 ≈ 1.39 when D can
#   tell nothing apart);
# - the generator **descends** ∇θg (1/m) Σᵢ log(1 − D(G(z⁽ⁱ⁾))) (minimax, the game itself: its gradient vanishes
#   when D(G(z)) → 0, i.e. when D wins), or ∇θg −(1/m) Σᵢ log D(G(z⁽ⁱ⁾)) (non-saturating, the paper's advice), or
#   ∇θg ‖ (1/m) Σᵢ f(x⁽ⁱ⁾) − (1/m) Σᵢ f(G(z⁽ⁱ⁾)) ‖² (feature matching, Salimans et al. 3.1, f: D's last hidden layer).
#
# The three runs' curves, from their `metrics.jsonl`: the losses, D's mean output on real and generated images, and
# the norm of G's gradient (log scale), which is what saturation would make fall.

# %%
fig, axes = plt.subplots(3, 3, figsize=(11, 7), sharex=True)
for row in axes[1:]:                            # D's outputs and the gradient norms on one scale; the losses differ
    for ax in row[1:]:
        ax.sharey(row[0])
for col, (name, run) in enumerate(gans.items()):
    rows = [r for r in read_metrics(run.run_dir) if r.get("split") == "train"]
    step = [r["step"] for r in rows]
    a, b, c = axes[:, col]
    a.plot(step, [r["loss_d"] for r in rows], label="D's loss")
    a.plot(step, [r["loss_g"] for r in rows], label="G's loss")
    b.plot(step, [r["d_real"] for r in rows], label="D(x), real")
    b.plot(step, [r["d_fake"] for r in rows], label="D(G(z)), generated")
    c.plot(step, [r["g_grad_norm"] for r in rows], color="C2", label="‖∇θg G's loss‖")
    a.set_title(name, fontsize=10); c.set_yscale("log"); c.set_xlabel("step")
    for ax in (a, b, c):
        ax.grid(alpha=0.3)
for ax in axes[:, 0]:
    ax.legend(fontsize=7)
fig.tight_layout(); plt.show()


def grad_norm(run, last: bool) -> float:
    """The generator's gradient norm, averaged over the first (or the last) fifth of the logged steps."""
    norms = [r["g_grad_norm"] for r in read_metrics(run.run_dir) if "g_grad_norm" in r]
    fifth = max(1, len(norms) // 5)
    part = norms[-fifth:] if last else norms[:fifth]
    return sum(part) / len(part)


mm, ns = gans["minimax"], gans["non-saturating"]
norms = {(name, last): grad_norm(run, last) for name, run in (("minimax", mm), ("non-saturating", ns))
         for last in (False, True)}
ratios = {last: norms["minimax", last] / norms["non-saturating", last] for last in (False, True)}
late = ratios[True] < ratios[False]             # where the minimax gradient is weakest against the other
ratio = ratios[late]
say("At the end, D's mean output is {mm_real} on real test images and {mm_fake} on generated ones under the minimax "
    "loss ({ns_real} and {ns_fake} under the non-saturating loss). The generator's gradient norm, in the first fifth "
    "of training and in the last: {mm_first} and {mm_last} under the minimax loss, {ns_first} and {ns_last} under the "
    "non-saturating loss.", mm_real=claim(mm, "test/d_real", "{:.2f}"), mm_fake=claim(mm, "test/d_fake", "{:.2f}"),
    ns_real=claim(ns, "test/d_real", "{:.2f}"), ns_fake=claim(ns, "test/d_fake", "{:.2f}"),
    **{f"{short}_{'last' if last else 'first'}": measure(
        run, f"g_grad_norm, mean of the {'last' if last else 'first'} fifth of the logged steps",
        norms[name, last], "{:.2g}", paper=None if short == "ns" or last else
        "Goodfellow et al. 2014: early in learning, when D rejects the samples with high confidence, log(1 − D(G(z))) "
        "saturates; −log D(G(z)) gives much stronger gradients")
       for short, name, run in (("mm", "minimax", mm), ("ns", "non-saturating", ns)) for last in (False, True)})
weakest = measure(mm, "g_grad_norm of minimax / of non-saturating, the smaller of the first and last fifths", ratio,
                  "{:.2g}")
say("Where it is weakest ({when}), the minimax generator's gradient is {weakest} times the non-saturating one's. The "
    "verdict here: {verdict}", when="in the last fifth of training" if late else "in the first fifth of training",
    weakest=weakest, verdict=(
        "the minimax loss saturates, as Goodfellow et al. warn: while D rejects the generator's samples, log(1 − "
        "D(G(z))) is nearly flat and the minimax generator gets an order of magnitude less gradient, or worse, than "
        "the non-saturating one." if ratio < 0.1 else
        "the minimax loss does not saturate at this scale: its gradient is weaker, but D never rejects the samples "
        "confidently enough for log(1 − D(G(z))) to go flat, and the minimax generator keeps a usable gradient." + (
            " On MNIST (paradigms lecture without --fast; BENCHMARKS.md, GANs) the minimax discriminator wins "
            "outright and its generator's gradient vanishes." if FAST else "")))

# %% [markdown]
# ## Samples
#
# Real test images, then 16 samples G(z) of each generator, for the same 16 codes z:

# %%
(x, y), _ = eval_images(clf.run_dir, 16)
z = torch.randn(16, load_config(ns.run_dir).latent, generator=torch.Generator().manual_seed(0))   # the same for all
fig, axes = plt.subplots(1, 4, figsize=(11, 3))
for ax, (name, images) in zip(axes, [("real test images", x),
                                     *((name, run.load()(z).clamp(0, 1).detach()) for name, run in gans.items())]):
    ax.imshow(image_grid(images, 4)[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(name, fontsize=10)
    ax.axis("off")
fig.tight_layout(); plt.show()

# %% [markdown]
# ## Which generator is closest to the data: classifier-FD
#
# The Fréchet distance between Gaussians fitted to a classifier's features of samples and of test images,
# ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^½) (Heusel et al. 2017's FID, with section 1's LeNet-5 in place of an Inception
# network, so comparable only within this dataset); lower is closer. Real training images against the test images give
# the floor. After each epoch:

# %%
fd = {name: claim(run, "test/classifier_fd", "{:.1f}") for name, run in gans.items()}
floor = claim(ns, "test/classifier_fd_real", "{:.2f}")
fig, ax = plt.subplots(figsize=(6, 3.2))
for name, run in gans.items():
    pts = [(r["epoch"], r["test/classifier_fd"]) for r in read_metrics(run.run_dir) if r.get("split") == "eval"]
    ax.plot(*zip(*pts), marker="o", label=name)
ax.axhline(floor.value, color="gray", ls="--", label="real vs real")
ax.set_yscale("log"); ax.set_xlabel("epoch"); ax.set_ylabel("classifier-FD (lower is better)")
ax.grid(alpha=0.3); ax.legend(fontsize=8); fig.tight_layout(); plt.show()
say("Classifier-FD at the end: minimax {mm}, non-saturating {ns}, feature matching {fm}; real images against the test "
    "images {floor}.", mm=fd["minimax"], ns=fd["non-saturating"], fm=fd["feature matching (Salimans)"], floor=floor)


def last_move(run) -> float:
    """How much the run's classifier-FD moved over its last epoch: how far apart two runs must be to tell them apart."""
    fds = [r["test/classifier_fd"] for r in read_metrics(run.run_dir) if r.get("split") == "eval"]
    return abs(fds[-1] - fds[-2]) if len(fds) > 1 else 0.0


moves = {name: last_move(run) for name, run in gans.items()}
jumpy = max(moves, key=moves.get)
wobble = measure(gans[jumpy], "|change of test/classifier_fd over the last epoch|, the largest of the three runs",
                 moves[jumpy], "{:.1f}")


def compare(better: str, worse: str) -> int:
    """1 when ``better`` is ahead by more than the wobble, -1 when behind by more, 0 within it."""
    gap = fd[worse].value - fd[better].value
    return 0 if abs(gap) <= wobble.value else (1 if gap > 0 else -1)


ns_vs_mm, fm_vs_ns = compare("non-saturating", "minimax"), compare("feature matching (Salimans)", "non-saturating")
say("One seed each, and the distance still moves by up to {wobble} from one epoch to the next (the {jumpy} run), so "
    "only a larger gap counts. The verdict here: {a} {b}", wobble=wobble, jumpy=jumpy, a={
        1: "the non-saturating generator's samples are closer to the test images than the minimax one's, as the "
           "paper's advice predicts.",
        0: "the non-saturating and the minimax generators are within that of each other: the paper's advice makes no "
           "difference that shows at this scale.",
        -1: "the minimax generator's samples are closer to the test images than the non-saturating one's: the "
            "paper's finding does not reproduce at this scale."}[ns_vs_mm], b={
        1: "Feature matching does better still, though Salimans et al. use it for the semi-supervised classifier "
           "below and find their best samples with minibatch discrimination instead.",
        0: "Feature matching is level with the non-saturating loss; Salimans et al. use it for the semi-supervised "
           "classifier below, and find their best samples with minibatch discrimination instead.",
        -1: "Feature matching does worse than the non-saturating loss, which agrees with Salimans et al.: they use it "
            "for the semi-supervised classifier below, and find their best samples with minibatch discrimination "
            "instead."}[fm_vs_ns])
headline("GAN", f"to draw {'digits' if FAST else 'MNIST digits'} from noise, against a discriminator",
         fd["non-saturating"])

# %% [markdown]
# ## The semi-supervised GAN
#
# Salimans et al.'s discriminator is a classifier of the K classes plus a "generated" one: a few labelled images teach
# it the classes (cross-entropy), and every training image, labelled or not, plays the real/fake game against a
# feature-matching generator. The baseline is the same discriminator trained on the same labelled images alone
# (`unsupervised_weight=0`: no generator). Test error after each epoch:

# %%
short = ["train.epochs=10", "train.figures=false"] if FAST else ["train.figures=false"]
semi = experiment("semi-gan", dataset, short, runs=RUNS, data_dir=DATA_DIR)
alone = experiment("semi-gan", dataset, [*short, "unsupervised_weight=0"], runs=RUNS, data_dir=DATA_DIR)
fig, ax = plt.subplots(figsize=(6, 3.2))
for name, run in (("semi-supervised GAN", semi), ("the labelled images alone", alone)):
    pts = [(r["epoch"], r["test/error"]) for r in read_metrics(run.run_dir) if r.get("split") == "eval"]
    ax.plot(*zip(*pts), marker="o", label=name)
ax.set_xlabel("epoch"); ax.set_ylabel("test error"); ax.set_ylim(bottom=0); ax.grid(alpha=0.3); ax.legend(fontsize=8)
fig.tight_layout(); plt.show()
err = claim(semi, "test/error", "{:.2%}", paper=None if FAST else
            "Salimans et al. 2016, MNIST with 100 labels: 0.93% test error (feature matching)")
base = claim(alone, "test/error", "{:.2%}")
say("With {labels} labelled images ({each} of each class) and the rest of the training images unlabelled: {err} test "
    "error for the semi-supervised GAN, {base} for the labelled images alone.", labels=load_config(semi.run_dir).labels,
    each=load_config(semi.run_dir).labels // len(paradigms.load(semi.run_dir).classes), err=err, base=base)

# %% [markdown]
# Is the difference more than luck? Both classifiers on every test image: the images only one of them gets right
# (McNemar's test: with b and c such images, (b − c)² / (b + c) above 3.84 is a difference at the 5% level).

# %%
(test_x, test_y), _ = eval_images(semi.run_dir, 10 ** 9)
right = {name: class_probabilities(paradigms.load(run.run_dir), test_x).argmax(1) == test_y
         for name, run in (("semi", semi), ("alone", alone))}
b = int((right["semi"] & ~right["alone"]).sum())
c = int((~right["semi"] & right["alone"]).sum())
chi2 = (b - c) ** 2 / max(b + c, 1)
say("Of {n} test images, the semi-supervised GAN alone gets {b} right and the labelled images alone {c}: McNemar's "
    "statistic {chi2}.", n=f"{len(test_y):,}", b=measure(semi, "test images right only with the GAN", b, "{:,}"),
    c=measure(alone, "test images right only without it", c, "{:,}"),
    chi2=measure(semi, "McNemar's chi-squared, GAN against the labels alone", chi2, "{:.2f}"))
scale = "in so few epochs on the digits" if FAST else "in the quick preset's epochs"
note = (" (the recipe's own preset for the digits trains much longer; on MNIST, the quick preset's semi-supervised GAN "
        "does far better than its labels alone: BENCHMARKS.md, GANs)" if FAST else "")
say("The verdict here: {verdict}", verdict=(
    "the unlabelled images help: the semi-supervised GAN makes fewer mistakes than the same discriminator trained on "
    "the labelled images alone, by more than luck explains, as Salimans et al. found." if b > c and chi2 > 3.84 else
    f"the semi-supervised GAN makes fewer mistakes than the labelled images alone, but by no more than luck explains "
    f"{scale}{note}." if b > c else
    f"the semi-supervised GAN does not beat the labelled images alone {scale}: Salimans et al.'s finding does not "
    f"reproduce here{note}."))

# %%
panel("gan", ns, RUNS, n=16, seed=0, seed_b=1, steps=8)
