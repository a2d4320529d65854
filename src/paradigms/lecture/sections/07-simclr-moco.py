# %% [markdown]
# # 7. SimCLR and MoCo
#
# Contrastive learning needs no labels: two random views of one image (cropped, recoloured) should have close
# features, and views of other images far ones. SimCLR (Chen et al. 2020) takes the other images of the batch as
# negatives with the NT-Xent loss; MoCo (He et al. 2020) keeps a queue of past keys from a slowly moving copy of the
# encoder. The frozen encoder is then measured by how well its features sort the test images: a k-nearest-neighbour
# vote and a linear probe, the labels used only there.

# %% tags=["parameters"]
FAST = True             # True: the embedded digits, seconds on 2 cores; False: the quick preset on CIFAR-10
RUNS = "runs/lecture"   # where the runs are kept: a second build finds them and reuses them
DATA_DIR = None         # the real datasets' folder (paradigms datasets says where it looks)

# %%
from IPython.display import Image, display

from paradigms.evaluate import probe_run
from paradigms.lecture import claim, experiment, headline, measure, panel, say

dataset = "digits" if FAST else "cifar10"
short = ["train.epochs=10"] if FAST else []
simclr = experiment("simclr", dataset, short, runs=RUNS, data_dir=DATA_DIR)
moco = experiment("moco", dataset, short, runs=RUNS, data_dir=DATA_DIR)

# %% [markdown]
# ## Two views of one image
#
# What the recipe shows its encoder at each step: two augmentations of each image, to be recognised as one:

# %%
display(Image(filename=str(simclr.run_dir / "figures" / "views.png")))

# %% [markdown]
# ## What the features know
#
# The test images' features, laid out in two dimensions (t-SNE) and coloured by their class, which training never read;
# then the same protocol on each encoder and on the same network untrained (its random features are the baseline):

# %%
display(Image(filename=str(simclr.run_dir / "figures" / "embedding.png")))
for name, r in (("SimCLR", simclr), ("MoCo", moco)):
    say("{name}: kNN accuracy {knn}, linear probe {probe}.", name=name, knn=claim(r, "test/knn_acc", "{:.1%}"),
        probe=claim(r, "test/probe_acc", "{:.1%}"))
before = probe_run(simclr.run_dir, data_dir=DATA_DIR, untrained=True)
say("The same network untrained: kNN accuracy {knn}, linear probe {probe}.",
    knn=measure(simclr, "untrained test/knn_acc", before["knn_acc"], "{:.1%}"),
    probe=measure(simclr, "untrained test/probe_acc", before["probe_acc"], "{:.1%}"))
gains = {"kNN vote": claim(simclr, "test/knn_acc").value - before["knn_acc"],
         "linear probe": claim(simclr, "test/probe_acc").value - before["probe_acc"]}
flat = [name for name, gain in gains.items() if gain <= 0.01]
say("The verdict here: {verdict}", verdict=(
    "contrastive training made the features better than the untrained network's for both the kNN vote and the "
    "linear probe, as the papers found." if not flat else
    f"at this scale contrastive training does not clearly improve on the untrained network's features for the "
    f"{' and the '.join(flat)} (within a point or worse): a random convolutional network's features already sort "
    f"small images well; the finding does not reproduce here."))
headline("SimCLR", "features that sort images, from no labels", claim(simclr, "test/probe_acc", "{:.1%}"))

# %%
panel("neighbours", simclr, RUNS, b=moco.run_dir.name, test=0)
