# %% [markdown]
# # 1. Supervised learning by backpropagation
#
# A network learns from labelled examples by going down the gradient of its loss, and backpropagation (Rumelhart,
# Hinton & Williams 1986) computes that gradient exactly: the chain rule applied layer by layer, from the output back.
# Every mistake the network makes on a training example moves its weights a little: the model is fine-tuned with
# every mistake.

# %% tags=["parameters"]
FAST = True             # True: the embedded digits, seconds on 2 cores; False: the quick preset on MNIST
RUNS = "runs/lecture"   # where the runs are kept: a second build finds them and reuses them
DATA_DIR = None         # the real datasets' folder (paradigms datasets says where it looks)

# %%
import matplotlib.pyplot as plt
import numpy as np

from paradigms.engine.runlog import read_metrics
from paradigms.evaluate.classifier import class_probabilities, eval_images, load_classifier, mistakes_figure
from paradigms.lecture import claim, experiment, headline, measure, panel, say
from paradigms.supervised.backprop import MLP, numerical_grads

# %% [markdown]
# ## The gradient backpropagation computes is the gradient
#
# The hand-written numpy backpropagation of `paradigms.supervised.backprop` against central differences,
# (L(w + ε) − L(w − ε)) / 2ε for every weight, on a small network and batch:

# %%
rng = np.random.default_rng(0)
mlp = MLP([16, 8, 4], seed=rng)
x, y = rng.normal(size=(5, 16)), rng.integers(0, 4, size=5)
_, backprop = mlp.loss_and_grads(x, y)
numeric = numerical_grads(mlp, x, y)
worst = max(float(np.abs(b - n).max() / (np.abs(b).max() + np.abs(n).max())) for b, n in zip(backprop, numeric))
say("Over the {n} weights and biases, the largest relative difference between the two is {worst}: "
    "backpropagation is the derivative, not an estimate of it.", n=sum(g.size for g in backprop), worst=f"{worst:.1e}")

# %% [markdown]
# ## Learning from the training set
#
# LeNet-5 (LeCun et al. 1998) trained by backpropagation with SGD: its loss on the training batches falls, and its
# accuracy on test images it never trained on rises.

# %%
dataset = "digits" if FAST else "mnist"
early = experiment("supervised", dataset, ["train.epochs=1"], runs=RUNS, data_dir=DATA_DIR)
run = experiment("supervised", dataset, [] if not FAST else ["train.epochs=20"], runs=RUNS, data_dir=DATA_DIR)
rows = read_metrics(run.run_dir)
train = [(r["step"], r["loss"]) for r in rows if r.get("split") == "train"]
test = [(r["step"], r["test/acc"]) for r in rows if r.get("split") == "eval" and "test/acc" in r]
fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3))
a.plot(*zip(*train)); a.set_xlabel("step"); a.set_ylabel("training loss"); a.set_yscale("log")
b.plot(*zip(*test), marker="o"); b.set_xlabel("step"); b.set_ylabel("test accuracy")
fig.tight_layout(); plt.show()
say("After one epoch the network is right on {early} of the test images; at the end of its training, on {final}.",
    early=claim(early, "test/acc", "{:.1%}"), final=claim(run, "test/acc", "{:.1%}",
                                                          paper=None if FAST else "LeNet-5 on MNIST: 99.05% (LeCun et al. 1998)"))
headline("supervised (backprop)", f"{dataset} classes from labelled images", claim(run, "test/acc", "{:.1%}"))

# %% [markdown]
# ## Fine-tuning the model with every mistake
#
# The test images each network gets wrong with the most confidence, after one epoch and at the end:

# %%
for name, r in (("after one epoch", early), ("at the end", run)):
    net = load_classifier(r.run_dir)
    (x, y), _ = eval_images(r.run_dir, 2000)
    probs = class_probabilities(net, x)
    pred = probs.argmax(1).numpy()
    say("{name}: {wrong} of the first {n} test images wrong.", name=name, n=len(y),
        wrong=measure(r, "test mistakes", int((pred != y.numpy()).sum()), "{:,}"))
    fig = mistakes_figure(x, y.numpy(), pred, probs, net.classes, n=16)
    plt.show()

# %%
panel("classify", run, RUNS, test=0)
