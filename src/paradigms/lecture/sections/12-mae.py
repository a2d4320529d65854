# %% [markdown]
# # 12. Masked autoencoders
#
# Hide most of an image and learn to paint the hidden part back: the masked autoencoder (He et al. 2022) cuts the
# image into patches, shows a vision transformer only a quarter of them, and trains a small decoder to rebuild the
# rest, with the loss on the hidden patches alone. The encoder it leaves behind has learnt what images are made of,
# with no label.

# %% tags=["parameters"]
FAST = True             # True: the embedded digits, seconds on 2 cores; False: the quick preset on MNIST
RUNS = "runs/lecture"   # where the runs are kept: a second build finds them and reuses them
DATA_DIR = None         # the real datasets' folder (paradigms datasets says where it looks)

# %%
import matplotlib.pyplot as plt
import torch

from paradigms.data import load_images, unit
from paradigms.engine.trainer import load_trained
from paradigms.lecture import claim, experiment, headline, panel, say

dataset = "digits" if FAST else "mnist"
run = experiment("mae", dataset, ["train.epochs=20"] if FAST else [], runs=RUNS, data_dir=DATA_DIR)
mae = load_trained(run.run_dir, "cpu")

# %% [markdown]
# ## Masked at 80%, the reconstruction, the original

# %%
x = unit(load_images(dataset, DATA_DIR).test_x[:6])
masked, rebuilt = mae.reconstruct(x, 0.8, torch.Generator().manual_seed(0))
fig, axes = plt.subplots(3, len(x), figsize=(1.4 * len(x), 4.4))
for j in range(len(x)):
    for row, (img, name) in enumerate([(masked[j], "masked 80%"), (rebuilt[j], "reconstruction"), (x[j], "original")]):
        axes[row, j].imshow(img.permute(1, 2, 0).squeeze(-1), cmap="gray", vmin=0, vmax=1); axes[row, j].axis("off")
        if j == 0:
            axes[row, j].set_title(name, fontsize=8, loc="left")
plt.show()
say("The loss on the hidden patches of the test images, at the training mask ratio: {loss} (per pixel, standardised).",
    loss=claim(run, "test/masked_loss", "{:.3f}"))
headline("MAE", "to paint hidden patches back, with no labels", claim(run, "test/masked_loss", "{:.3f}"))

# %%
panel("mae", run, RUNS, test=0, ratio=0.8)
