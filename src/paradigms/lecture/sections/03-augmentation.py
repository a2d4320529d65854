# %% [markdown]
# # 3. Data augmentation
#
# A network that has seen a digit, a face or a cat from one angle, at one size, in one light, has not learnt that it
# stays what it is under all the others. Augmentation makes many training images of one: each epoch sees every image
# rotated, scaled, recoloured, blurred or cropped afresh ("1 => 18"), and Cutout (DeVries & Taylor 2017) and mixup
# (Zhang et al. 2018) go further, hiding a square of the image or blending two images and their labels.

# %% tags=["parameters"]
FAST = True             # True: the embedded digits, seconds on 2 cores; False: the quick preset on CIFAR-10
RUNS = "runs/lecture"   # where the runs are kept: a second build finds them and reuses them
DATA_DIR = None         # the real datasets' folder (paradigms datasets says where it looks)

# %%
import matplotlib.pyplot as plt
import torch

from paradigms.augment.figures import grid_figure
from paradigms.data import load_images, unit
from paradigms.lecture import claim, experiment, headline, panel, say

# %% [markdown]
# ## One image becomes eighteen
#
# Rotation, scaling, colour (contrast, brightness, greyscale and hue on colour images), blur and random crops, each
# drawn afresh for every picture:

# %%
dataset = "digits" if FAST else "cifar10"
data = load_images(dataset, DATA_DIR)
image = unit(data.test_x[:1])[0]
torch.manual_seed(0)
fig = grid_figure(image, 18, title=f"one {dataset} test image, 18 ways")
plt.show()

# %% [markdown]
# ## Does it help here?
#
# The same network trained on the same images with no augmentation, with Cutout and with mixup, one seed each:

# %%
epochs = ["train.epochs=20"] if FAST else []
policies = {"none": "augment=[]", "Cutout": "augment=[cutout]", "mixup": "augment=[mixup]"}
runs = {name: experiment("supervised", dataset, [*epochs, setting], runs=RUNS, data_dir=DATA_DIR)
        for name, setting in policies.items()}
accs = {name: claim(r, "test/acc", "{:.1%}") for name, r in runs.items()}
say("Test accuracy with no augmentation: {none}; with Cutout: {cutout}; with mixup: {mixup}.",
    none=accs["none"], cutout=accs["Cutout"], mixup=accs["mixup"])
best = max(accs, key=lambda k: accs[k].value)
say("The verdict at this scale, one seed each: {verdict}",
    verdict=(f"{best} comes out ahead of plain training; a second seed would say whether by more than noise."
             if best != "none" else "no policy beats plain training here; the papers' gains come from long training "
                                    "on CIFAR-10, where a network has time to overfit."))
headline("augmentation", "the same classes from varied copies of each image", accs[best])

# %%
panel("augment", runs["none"], RUNS, test=0)
