# %% [markdown]
# # 6. The triplet loss (FaceNet)
#
# FaceNet (Schroff et al. 2015) learns an embedding in which two faces of one person are close and faces of different
# people are far: for an anchor a, a positive p (the same person) and a negative n (another), the triplet loss
# max(0, ||f(a) − f(p)||² − ||f(a) − f(n)||² + α) pushes each negative at least α farther than each positive. Then
# "same person?" is a distance under a threshold, even for people the network never saw: the lecture's Jack, Bob and
# Tim.

# %% tags=["parameters"]
FAST = True             # True: the embedded digits (each class a "person"), seconds; False: the Olivetti faces
RUNS = "runs/lecture"   # where the runs are kept: a second build finds them and reuses them
DATA_DIR = None         # the real datasets' folder (paradigms datasets says where it looks)

# %%
from IPython.display import Image, display

from paradigms.lecture import claim, experiment, headline, panel, say

dataset = "digits" if FAST else "olivetti-faces"
run = experiment("triplet", dataset, ["train.epochs=10"] if FAST else [], runs=RUNS, data_dir=DATA_DIR)

# %% [markdown]
# ## Distances between people the network never saw
#
# Two images each of people kept out of training: the squared distances between their embeddings, small within a
# person, large across (the lecture's Jack / Bob / Tim table):

# %%
display(Image(filename=str(run.run_dir / "figures" / "distances.png")))

# %% [markdown]
# ## Verification against pixels and eigenfaces
#
# "Same person?" for every pair of unseen people's images, at the threshold chosen on other people (balanced accuracy),
# for the trained embedding, raw pixels, PCA (Turk & Pentland's eigenfaces) and the untrained network:

# %%
display(Image(filename=str(run.run_dir / "figures" / "verification.png")))
acc = claim(run, "test/verify_acc", "{:.1%}", paper=None if FAST else "FaceNet on LFW: 99.63% (Schroff et al. 2015)")
say("Verification of unseen people: {acc} with the trained embedding; {pca} with eigenfaces, {pixels} with pixels, "
    "{untrained} with the untrained network.", acc=acc, pca=claim(run, "test/pca_verify_acc", "{:.1%}"),
    pixels=claim(run, "test/pixels_verify_acc", "{:.1%}"), untrained=claim(run, "test/untrained_verify_acc", "{:.1%}"))
beats = acc.value > max(claim(run, "test/pca_verify_acc").value, claim(run, "test/pixels_verify_acc").value)
say("The verdict here: {verdict}", verdict=(
    "the learnt embedding tells unseen people apart better than pixels and eigenfaces, as FaceNet found." if beats else
    "at this scale the learnt embedding does not beat pixels or eigenfaces: the digits' three held-out classes are "
    "easy to tell apart by their pixels, and a few epochs of a tiny network are not enough. On the Olivetti faces "
    "(paradigms lecture without --fast) it does."))
headline("triplet loss", "an embedding where one person's faces are close", acc)

# %%
panel("triplet", run, RUNS, a=0, b=1)
