# %% [markdown]
# # 5. Adversarial training and certified robustness
#
# Training on attacked images (Madry et al. 2018: the worst case within ε, found by PGD, at every step) makes a
# network that keeps more of its answers under attack, at some cost on clean images. Randomized smoothing (Cohen et
# al. 2019) goes further: the class a network gives most often under Gaussian noise cannot change within a radius it
# certifies, whatever the attack.

# %% tags=["parameters"]
FAST = True             # True: the embedded digits, seconds on 2 cores; False: the quick preset on MNIST
RUNS = "runs/lecture"   # where the runs are kept: a second build finds them and reuses them
DATA_DIR = None         # the real datasets' folder (paradigms datasets says where it looks)

# %%
import matplotlib.pyplot as plt
import torch

from paradigms.adversarial.certify import certify_run, curve_figure
from paradigms.adversarial.runs import attack_fn, batched
from paradigms.evaluate.classifier import class_probabilities, eval_images, load_classifier
from paradigms.lecture import claim, experiment, headline, measure, panel, say

dataset = "digits" if FAST else "mnist"
eps = 0.1 if FAST else 0.3
common = ["train.epochs=15"] if FAST else []
standard = experiment("supervised", dataset, common, runs=RUNS, data_dir=DATA_DIR)
robust = experiment("supervised", dataset, [*common, "adversarial.method=pgd", f"adversarial.eps={eps}",
                                            "adversarial.steps=5"], runs=RUNS, data_dir=DATA_DIR)

# %% [markdown]
# ## Clean and attacked accuracy
#
# The same network trained on clean images and on PGD-5 attacked ones, both attacked with PGD-20 on the first 500 test
# images:

# %%
rows = {}
for name, r in (("standard", standard), ("adversarially trained", robust)):
    net = load_classifier(r.run_dir)
    (x, y), _ = eval_images(r.run_dir, 500)
    torch.manual_seed(0)
    adv = batched(attack_fn(net, "pgd", eps, "linf", 20, None, 1, None), x, y)
    rows[name] = (claim(r, "test/acc", "{:.1%}"),
                  measure(r, f"accuracy under PGD-20 at eps {eps:g}", float((class_probabilities(net, adv).argmax(1) == y)
                                                                           .float().mean()), "{:.1%}"))
for name, (clean, attacked) in rows.items():
    say("{name}: {clean} on clean test images, {attacked} under attack (ε = {eps}).", name=name, clean=clean,
        attacked=attacked, eps=f"{eps:g}")
headline("adversarial training", "to keep its answer within ε of each image", rows["adversarially trained"][1])

# %% [markdown]
# ## Certified accuracy by randomized smoothing
#
# A network trained with Gaussian noise (σ = 0.25), certified on every tenth test image with n noisy samples each: the
# share of images certified right at each L2 radius.

# %%
noisy = experiment("supervised", dataset, [*common, "augment=[{gaussian_noise: {sigma: 0.25}}]"], runs=RUNS,
                   data_dir=DATA_DIR)
summary = certify_run(noisy.run_dir, 0.25, n0=50, n=1000 if FAST else 10_000, skip=10, progress=False)
curve_figure(summary); plt.show()
say("Of {images} test images, {at0} are certified right at radius 0 and {abstained} abstain.",
    images=summary["images"], at0=measure(noisy, "certified accuracy at radius 0", summary["certified_acc"][0], "{:.0%}"),
    abstained=measure(noisy, "images abstained", summary["abstained"], "{:d}"))

# %%
panel("attack", robust, RUNS, b=standard.run_dir.name, test=0, eps=eps)     # the two networks side by side
