# %% [markdown]
# # 2. Transfer learning
#
# What a network learnt on one task is a start for another: Yosinski et al. (2014) found a network's first layers
# general (they serve a new task as well as its own) and its top layers specific to the task it learnt, and copied
# layers that go on learning beat a network trained on the new task alone. So, too, a language model pretrained on a
# large general text learns a small specialised corpus better than the same network trained on that corpus alone.

# %% tags=["parameters"]
FAST = True             # True: the embedded digits and Python's sources, seconds; False: MNIST and Tiny Shakespeare
RUNS = "runs/lecture"   # where the runs are kept: a second build finds them and reuses them
DATA_DIR = None         # the real datasets' folder (paradigms datasets says where it looks)

# %%
import matplotlib.pyplot as plt

from paradigms.engine.runlog import read_metrics
from paradigms.evaluate.classifier import eval_images
from paradigms.lecture import claim, experiment, headline, measure, panel, run_seconds, say

# %% [markdown]
# ## How transferable are features? AnB, BnB and AnB+
#
# The ten classes split in two: A = 0-4, B = 5-9. baseA learns A, baseB learns B. At each depth n, a network for B
# starts from the first n layers of baseB (BnB, the "selffer") or of baseA (AnB, the transfer); the layers above and
# the head start afresh. The copied layers stay frozen (BnB, AnB) or learn with the rest (AnB+). Every network trains
# on B for the same number of epochs, every layer at the same learning rate, as in the paper (its Figure 2).

# %%
dataset = "digits" if FAST else "mnist"
quiet = ["train.figures=false", "train.eval_every=0"]   # what is shown here is drawn here, from the final test
A, B = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
budget = ["train.epochs=6", *quiet] if FAST else ["train.epochs=2", *quiet]   # MNIST: as BENCHMARKS.md
base = {half: experiment("supervised", dataset, [f"classes={classes}", *budget], runs=RUNS, data_dir=DATA_DIR)
        for half, classes in (("A", A), ("B", B))}
depths = [1, 2, 3, 4]   # LeNet-5's conv1, conv2, fc1, fc2; the head above them is always new


def chopped(source: str, n: int, fine_tune: bool):
    """B's network from the first n layers of base``source``: frozen, or fine-tuned with the rest."""
    sets = [f"classes={B}", *budget, f"transfer.copy_layers={n}", "transfer.backbone_lr=1",
            f"transfer.strategy={'finetune' if fine_tune else f'freeze:{n}'}"]
    return experiment("finetune", dataset, sets, runs=RUNS, data_dir=DATA_DIR, source=str(base[source].run_dir))


studies = {"BnB": ("B", False), "AnB": ("A", False), "AnB+": ("A", True)}
runs = {name: {n: chopped(source, n, plus) for n in depths} for name, (source, plus) in studies.items()}
acc = {name: {n: claim(r, "test/acc", "{:.1%}") for n, r in by_depth.items()} for name, by_depth in runs.items()}
base_b = claim(base["B"], "test/acc", "{:.1%}", paper="Yosinski et al. 2014, Figure 2: baseB 0.625 top-1 on half "
                                                        "of ImageNet's classes")

fig, ax = plt.subplots(figsize=(7, 3.8))
ax.axhline(base_b.value, color="k", lw=0.8, ls=":", label="baseB (trained on B alone)")
styles = {"BnB": ("o", "white", "k", -0.08, "BnB: B's own layers, frozen"),
          "AnB": ("D", "#c44e52", "#c44e52", -0.08, "AnB: A's layers, frozen"),
          "AnB+": ("D", "#ef9fbf", "#c44e52", 0.08, "AnB+: A's layers, fine-tuned")}
for name, (marker, face, edge, shift, label) in styles.items():
    xs, ys = [n + shift for n in depths], [acc[name][n].value for n in depths]
    ax.plot(xs, ys, color=edge, lw=1, alpha=0.6, ls="-" if "+" in name else "--")
    ax.scatter(xs, ys, marker=marker, color=face, edgecolor=edge, zorder=3, label=label)
ax.set_xticks(depths); ax.set_xlabel("layer n at which the network is cut (its first n layers copied)")
ax.set_ylabel("test accuracy on B"); ax.grid(alpha=0.3); ax.legend(fontsize=8, loc="lower left")
ax.set_title(f"{dataset}: A = {A}, B = {B}", fontsize=9)
fig.tight_layout(); plt.show()

# %% [markdown]
# ## What the figure says

# %%
top = depths[-1]
say("baseA learnt A ({base_a} on A's test images); baseB learnt B ({base_b} on B's).",
    base_a=claim(base["A"], "test/acc", "{:.1%}"), base_b=base_b)
specific = acc["AnB"][top].value < min(acc["AnB"][depths[0]].value, acc["BnB"][top].value)
say("Frozen up to layer {low}: AnB {anb_low}, BnB {bnb_low}. Frozen up to layer {top}: AnB {anb_top}, BnB "
    "{bnb_top}.", low=depths[0], top=top,
    anb_low=acc["AnB"][depths[0]], bnb_low=acc["BnB"][depths[0]], bnb_top=acc["BnB"][top],
    anb_top=claim(runs["AnB"][top], "test/acc", "{:.1%}", paper="Yosinski et al. 2014, Figure 2: AnB falls at the "
                                                                  "top layers, 0.542 top-1 at layer 7"))
say("The verdict on specificity: {verdict}", verdict=(
    "AnB falls at the top, as the paper found: the top layers of a network are specific to the classes it learnt."
    if specific else "AnB does not fall at the top here: at this scale A's top layers serve B about as well as the "
                     "lower ones, and the paper's finding does not reproduce."))
(x_test, _), _ = eval_images(base["B"].run_dir, 100_000)
image = 1 / len(x_test)                     # one test image of B, as a fraction of them
gains = {n: acc["AnB+"][n].value - base_b.value for n in depths}
better = [n for n in depths if gains[n] > 0]
say("Fine-tuned, A's layers give " + ", ".join(f"{{at_{n}}} at depth {n}" for n in depths) + " against baseB's "
    "{base_b}: {gain} on average, where one of the {n} test images is {one} points.", base_b=base_b,
    **{f"at_{n}": acc["AnB+"][n] for n in depths}, n=len(x_test), one=f"{100 * image:.2f}",
    gain=measure(runs["AnB+"][top], "mean of AnB+ - baseB over the depths, in points of test accuracy",
                 100 * sum(gains.values()) / len(gains), "{:+.2f} points",
                 paper="Yosinski et al. 2014, Figure 2: AnB+ beats baseB at every depth, +1.7 points on average"))
few = max(abs(g) for g in gains.values()) <= 3.5 * image
say("The verdict on fine-tuning: {verdict}", verdict=(
    "AnB+ beats baseB at every depth, as the paper found: features learnt on A, then fine-tuned, generalise better "
    "than B's alone." if len(better) == len(depths) else
    f"AnB+ beats baseB at {len(better)} of the {len(depths)} depths: the paper's finding does not reproduce here"
    + (", though with one seed the differences are no more than three test images either way." if few else ".")))

# %% [markdown]
# ## General text, then a small specialised corpus
#
# A GPT (Radford et al. 2018) pretrained on a large general text, then fine-tuned on a small corpus, against the
# same network trained on the small corpus alone for the same steps (`--set init_from=RUN` starts a run from
# another run's weights and tokeniser).

# %%
if FAST:   # a 2-layer GPT; the small corpus: the end of the library's text, which the pretraining holds out
    small = ["model.n_layer=2", "model.n_head=4", "model.n_embd=64", "model.block_size=32", "eval_batches=8",
             "sample_tokens=0"]
    cut, chars = 100_000, 20_000
    general = ("stdlib", [*small, "steps_per_epoch=100", "train.epochs=2"])
    special = ("stdlib", [*small, f"text_slice=[-{cut}, null]", f"train_chars={chars}", "steps_per_epoch=25",
                          "train.epochs=4"])
    about = (f"{chars:,} characters of the library's last {cut:,}, which the pretraining never trained on (both "
             "are Python here: with --fast there is no other embedded text; without it, the small corpus is "
             "Shakespeare)")
else:      # the quick preset; the small corpus: the start of Tiny Shakespeare, as in BENCHMARKS.md
    chars = 100_000
    general = ("stdlib", [])
    special = ("tiny-shakespeare", [f"train_chars={chars}", "train.epochs=4"])
    about = f"the first {chars:,} characters of Tiny Shakespeare"
pretrained = experiment("gpt", general[0], general[1], runs=RUNS, data_dir=DATA_DIR)
scratch = experiment("gpt", special[0], special[1], runs=RUNS, data_dir=DATA_DIR)
tuned = experiment("gpt", special[0], [*special[1], f"init_from={pretrained.run_dir}"], runs=RUNS, data_dir=DATA_DIR)
say("The general text: {general}, on which the pretraining reached a validation loss of {loss}. The small corpus: "
    "{special}.", loss=claim(pretrained, "val/loss", "{:.2f} nats per character"),
    general="Python's standard library as text", special=about)

fig, ax = plt.subplots(figsize=(6, 3.4))
for r, label in ((scratch, "from scratch"), (tuned, "pretrained, then fine-tuned")):
    rows = [row for row in read_metrics(r.run_dir) if row.get("split") == "eval" and "val/loss" in row]
    ax.plot([row["step"] for row in rows], [row["val/loss"] for row in rows], marker="o", label=label)
ax.set_xlabel("step on the small corpus"); ax.set_ylabel("validation loss (nats per character)")
ax.set_title(f"GPT on the small corpus ({chars:,} training characters)", fontsize=9)
ax.grid(alpha=0.3); ax.legend(fontsize=8); fig.tight_layout(); plt.show()

after_tuning = claim(tuned, "val/loss", "{:.2f} nats", paper="GPT (Radford et al. 2018), Table 5: without "
                                                             "pre-training the average task score falls from 74.7 "
                                                             "to 59.9")
from_scratch = claim(scratch, "val/loss", "{:.2f} nats")
say("On the small corpus's held-out text, after the same steps: {tuned} per character fine-tuned, {scratch} from "
    "scratch.", tuned=after_tuning, scratch=from_scratch)
say("The verdict on pretraining: {verdict}", verdict=(
    "pretraining on the general text beats training from scratch on the small corpus, as GPT and ULMFiT found."
    if after_tuning.value < from_scratch.value else
    "pretraining does not beat training from scratch here, and the finding does not reproduce at this scale."))
everything = [*base.values(), *(r for by_depth in runs.values() for r in by_depth.values()), pretrained, scratch, tuned]
headline("transfer", "B's classes from A's features; a small corpus from a general text", acc["AnB+"][top],
         sum(run_seconds(r.run_dir) or 0 for r in everything))

# %%
panel("gpt", tuned, RUNS, prompt="def " if FAST else "ROMEO:", tokens=200)
