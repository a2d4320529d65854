# %% [markdown]
# # 4. Adversarial attacks
#
# A network that is right on nearly every test image can be made wrong by a change of its pixels too small to see
# (Szegedy et al. 2014; Goodfellow et al. 2015): the attacker follows the gradient of the loss with respect to the
# image instead of the weights. Projected gradient descent (Madry et al. 2018) takes many such steps, each kept within
# ε of the original; aimed at a class of its choosing, it turns a cat into a "dog". A universal patch (Brown et al.
# 2017) is one sticker that, pasted anywhere on any image, makes the network say the class it was trained for.

# %% tags=["parameters"]
FAST = True             # True: the embedded digits, seconds on 2 cores; False: the quick preset on CIFAR-10
RUNS = "runs/lecture"   # where the runs are kept: a second build finds them and reuses them
DATA_DIR = None         # the real datasets' folder (paradigms datasets says where it looks)

# %%
import matplotlib.pyplot as plt
import torch

from paradigms.adversarial.patch import draw, paste, patch_success, train_patch
from paradigms.adversarial.runs import attack_fn, attack_picture, batched
from paradigms.data import unit
from paradigms.evaluate.classifier import class_probabilities, eval_images, load_classifier
from paradigms.lecture import claim, experiment, headline, measure, panel, say

dataset = "digits" if FAST else "cifar10"
run = experiment("supervised", dataset, ["train.epochs=20"] if FAST else [], runs=RUNS, data_dir=DATA_DIR)
net = load_classifier(run.run_dir)
(x, y), (train_x, train_y) = eval_images(run.run_dir, 500)
say("The network under attack: {recipe} on {dataset}, right on {acc} of the test images.",
    recipe="LeNet-5" if FAST else "the quick preset's ResNet", dataset=dataset, acc=claim(run, "test/acc", "{:.1%}"))

# %% [markdown]
# ## One picture, turned into another class
#
# Targeted PGD (40 steps within an L∞ ball of radius ε): the picture, the change it made (amplified to be seen) and the
# picture the network now misreads.

# %%
source, target = ("3", "8") if FAST else ("cat", "dog")
eps = 0.2 if FAST else 8 / 255
s, t = net.classes.index(source), net.classes.index(target)
pred = class_probabilities(net, x).argmax(1)
i = int(((y == s) & (pred == s)).nonzero()[0])
adv, p_clean, p_adv = attack_picture(net, x[i:i + 1], eps, "pgd", "linf", 40, None, 1, t, 0)
delta = adv[0] - x[i]
fig, axes = plt.subplots(1, 3, figsize=(7, 2.6))
for ax, img, title in zip(axes, [x[i], delta / (2 * delta.abs().max()) + 0.5, adv[0]],
                          [f"{net.classes[int(p_clean.argmax())]} ({float(p_clean.max()):.0%})", "perturbation, amplified",
                           f"{net.classes[int(p_adv.argmax())]} ({float(p_adv.max()):.0%})"]):
    ax.imshow(img.permute(1, 2, 0).squeeze(-1).clamp(0, 1), cmap="gray", vmin=0, vmax=1); ax.set_title(title); ax.axis("off")
plt.show()
say("Test image {i}, a {source}: the network says {before}; after the attack, which moves no pixel by more than "
    "{eps}, it says {after}.", i=i, source=source, eps=f"{eps:.3g}",
    before=measure(run, f"p({source}) before the attack on test image {i}", float(p_clean[0, s]), "{:.0%} " + source),
    after=measure(run, f"p({target}) after it", float(p_adv[0, t]), "{:.0%} " + target))

# %% [markdown]
# ## Accuracy against ε
#
# Untargeted PGD (10 steps) on the first 500 test images, for growing budgets:

# %%
budgets = [0, 0.05, 0.1, 0.2, 0.3] if FAST else [0, 1 / 255, 2 / 255, 4 / 255, 8 / 255]
torch.manual_seed(0)
accs = []
for e in budgets:
    fn = attack_fn(net, "pgd", e, "linf", 10, None, 1, None)
    accs.append(float((class_probabilities(net, batched(fn, x, y)).argmax(1) == y).float().mean()))
plt.figure(figsize=(4, 2.8)); plt.plot(budgets, accs, marker="o"); plt.xlabel("ε (L∞, pixels in [0, 1])")
plt.ylabel("accuracy under PGD-10"); plt.ylim(0, 1); plt.grid(alpha=0.3); plt.show()
worst = measure(run, f"accuracy under PGD-10 at eps {budgets[-1]:.3g}", accs[-1], "{:.1%}")
say("From {clean} on clean images to {worst} at ε = {eps}.", clean=measure(run, "accuracy at eps 0", accs[0], "{:.1%}"),
    worst=worst, eps=f"{budgets[-1]:.3g}")
headline("adversarial attack", "nothing: it finds the changes that fool a trained network", worst)

# %% [markdown]
# ## A sticker
#
# A universal patch covering a tenth of the image, trained on training images to make the network say the target
# class, then pasted at random places, turned and scaled, on test images of other classes:

# %%
torch.manual_seed(0)
patch = train_patch(net, unit(train_x[train_y != t]), t, size=0.1, steps=200 if FAST else 500)
held_out = x[y != t]
success = patch_success(net, patch, held_out, t)
noise = patch_success(net, torch.rand_like(patch), held_out, t)
shown = held_out[:8]
patched = paste(shown, patch, draw(len(shown), patch.shape[-1], *shown.shape[-2:]))
said = class_probabilities(net, patched).argmax(1)
fig, axes = plt.subplots(1, 8, figsize=(10, 1.8))
for ax, img, p in zip(axes, patched, said):
    ax.imshow(img.permute(1, 2, 0).squeeze(-1), cmap="gray", vmin=0, vmax=1); ax.set_title(net.classes[int(p)]); ax.axis("off")
plt.show()
say("Pasted anywhere, the patch makes the network say {target} for {success} of {n} held-out images of other classes; "
    "a patch of noise of the same size, for {noise}.", target=target, n=len(held_out),
    success=measure(run, f"patch success (to {target})", success, "{:.1%}"),
    noise=measure(run, "noise patch success", noise, "{:.1%}"))
say("The verdict here: {verdict}", verdict=(
    "the sticker works: the network reads the target class where it is pasted, far more often than for noise."
    if success > max(2 * noise, 0.2) else
    "at this scale the sticker does little better than noise (a patch of a few pixels on a small image has little "
    "room to act); on CIFAR-10's 32 x 32 pictures, with the full preset, it does far better."))

# %%
panel("attack", run, RUNS, test=i, eps=eps, method="pgd", target=target)
