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
from paradigms.engine.trainer import load_config, load_trained
from paradigms.lecture import claim, experiment, headline, panel, say

dataset = "digits" if FAST else "mnist"
run = experiment("mae", dataset, ["train.epochs=6"] if FAST else [], runs=RUNS, data_dir=DATA_DIR)
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

# %% [markdown]
# ## Fine-tuned, against the same network from scratch
#
# The MAE's encoder with a classification head, every layer trained at one learning rate on a few labelled images per
# class, against the same ViT from random weights on the same images with the same schedule:

# %%
vit = load_config(run.run_dir).model                  # the scratch network is the MAE's encoder, to the layer
labels = 50 if FAST else 100
tune = ["optim.name=adamw", "optim.lr=1e-3", "transfer.backbone_lr=1", f"labels_per_class={labels}",
        *(["train.epochs=10", "train.batch_size=32"] if FAST else ["train.epochs=3"])]
tuned = experiment("finetune", dataset, tune, runs=RUNS, data_dir=DATA_DIR, source=str(run.run_dir))
scratch = experiment("finetune", dataset, [*tune, "model.name=vit", f"model.patch={vit.patch}", f"model.dim={vit.dim}",
                                           f"model.depth={vit.depth}", f"model.heads={vit.heads}"],
                     runs=RUNS, data_dir=DATA_DIR)
after, before = claim(tuned, "test/acc", "{:.1%}"), claim(scratch, "test/acc", "{:.1%}")
say("With {n} labelled images per class: {tuned} fine-tuned from the MAE, {scratch} from scratch.",
    n=labels, tuned=after, scratch=before)
gap = after.value - before.value
say("The verdict here: {verdict}", verdict=(
    "pre-training without labels helps the network learn from few labels, as the paper found." if gap > 0.01 else
    "pre-training does not beat scratch here (within a point or worse): a few epochs of masked reconstruction on these "
    "small images do not give the encoder a start that a few labels cannot beat from random weights; the finding does "
    "not reproduce at this scale (on CIFAR-10, BENCHMARKS.md's masked-autoencoder section, it does)."))

# %%
panel("mae", run, RUNS, test=0, ratio=0.8)
