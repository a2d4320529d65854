# %% [markdown]
# # 9. Autoencoders and the VAE
#
# An autoencoder learns with no labels at all: an encoder E squeezes the image into a small code and a decoder D
# rebuilds it, trained to make ||D(E(x)) − x||² small (Hinton & Salakhutdinov 2006). What the code keeps is what the
# network found mattered; an image unlike those it learnt from comes back badly, so the reconstruction error is an
# anomaly score. The variational autoencoder (Kingma & Welling 2014) makes the code a distribution, so that decoding
# codes drawn from the prior N(0, I) gives new images, and measures how likely the test images are, in nats.

# %% tags=["parameters"]
FAST = True             # True: the embedded digits, seconds on 2 cores; False: the quick preset on MNIST
RUNS = "runs/lecture"   # where the runs are kept: a second build finds them and reuses them
DATA_DIR = None         # the real datasets' folder (paradigms datasets says where it looks)

# %%
import matplotlib.pyplot as plt
from IPython.display import Image, display

from paradigms.autoencoder.anomaly import anomaly_run
from paradigms.autoencoder.anomaly import figures as anomaly_figures
from paradigms.autoencoder.recipe import reconstruction_error
from paradigms.data import load_images, unit
from paradigms.engine.trainer import load_trained
from paradigms.lecture import claim, experiment, headline, measure, panel, say

dataset = "digits" if FAST else "mnist"
short = ["train.epochs=10"] if FAST else []

# %% [markdown]
# ## A 2-number code
#
# An autoencoder whose code has two numbers, trained on every class: test images and their reconstructions, and the
# codes of test images coloured by the class they are (the network never saw a label):

# %%
ae = experiment("autoencoder", dataset, [*short, "code=2"], runs=RUNS, data_dir=DATA_DIR)
data = load_images(dataset, DATA_DIR)
six = unit(data.test_x[data.test_y == 6][:1])                       # (1, C, H, W): the first 6 of the test set
trained = load_trained(ae.run_dir, "cpu")
trained.enc.eval(); trained.dec.eval()
rebuilt = trained.reconstruct(six).detach()                          # D(E(x))
fig, axes = plt.subplots(1, 3, figsize=(5.4, 2.1))
for ax, img, title in zip(axes, (six[0], rebuilt[0], (rebuilt[0] - six[0]).abs()), ("x", "D(E(x))", "|D(E(x)) − x|")):
    ax.imshow(img.permute(1, 2, 0).squeeze(-1), cmap="gray", vmin=0, vmax=1); ax.set_title(title, fontsize=9)
    ax.axis("off")
plt.show()
say("Squeezed through two numbers and back, the 6 comes out at a squared distance ||D(E(x)) − x||² of {err} from "
    "itself ({pixels} pixels).", err=measure(ae, "||D(E(x)) - x||^2 of the first test 6",
                                             float(reconstruction_error(rebuilt, six)[0]), "{:.2f}"),
    pixels=six[0].numel())
display(Image(filename=str(ae.run_dir / "figures" / "reconstructions.png")))
display(Image(filename=str(ae.run_dir / "figures" / "codes.png")))
say("Its reconstruction error: {mse} per pixel on the test images; PCA's, with as many numbers: {pca}.",
    mse=claim(ae, "test/mse", "{:.4f}"), pca=claim(ae, "test/pca_mse", "{:.4f}"))
headline("autoencoder", "a 2-number code of each image, with no labels", claim(ae, "test/mse", "{:.4f}"))

# %% [markdown]
# ## The anomaly score
#
# The same network trained on images of a single class (the 0s) and asked to rebuild every test image: the others come
# back worse.

# %%
zeros = experiment("autoencoder", dataset, [*short, "classes=[0]"], runs=RUNS, data_dir=DATA_DIR)
found = anomaly_run(zeros.run_dir)
for fig in anomaly_figures(found).values():
    plt.show()
say("Ranking the test images by their reconstruction error finds the images of other classes with an AUROC of {auroc}.",
    auroc=measure(zeros, "anomaly AUROC (0s normal)", found["auroc"], "{:.3f}"))

# %% [markdown]
# ## The VAE: new images, and how likely the test images are

# %%
vae = experiment("vae", dataset, ["train.epochs=10"] if FAST else [], runs=RUNS, data_dir=DATA_DIR)
display(Image(filename=str(vae.run_dir / "figures" / "samples.png")))
say("The test images' negative log-likelihood: {nll} per image (the importance-weighted bound), the looser ELBO "
    "{elbo}.", nll=claim(vae, "test/nll", "{:.1f} nats"), elbo=claim(vae, "test/neg_elbo", "{:.1f} nats",
                                                                      paper=None if FAST else "VAE on MNIST: about 87 nats with 50 latent numbers (Burda et al. 2016)"))
headline("VAE", "a distribution of images it can sample from", claim(vae, "test/nll", "{:.1f} nats"))

# %%
panel("autoencoder", zeros, RUNS, test=0)
