# %% [markdown]
# # 11. Self-supervised language models: GPT and BERT
#
# Text labels itself. GPT (Radford et al. 2018) reads a text left to right and learns to predict each next token: its
# attention is causal, each position sees only those before it. BERT (Devlin et al. 2019) hides some tokens and learns
# to guess them from both sides: every position sees every other. Both learn from raw text alone.

# %% tags=["parameters"]
FAST = True             # True: Python's standard library as text, seconds; False: the quick presets on Tiny Shakespeare
RUNS = "runs/lecture"   # where the runs are kept: a second build finds them and reuses them
DATA_DIR = None         # the real datasets' folder (paradigms datasets says where it looks)

# %%
import html

import matplotlib.pyplot as plt
import torch
from IPython.display import HTML, display

from paradigms.engine.trainer import load_trained
from paradigms.lecture import claim, experiment, headline, panel, say

dataset = "stdlib" if FAST else "tiny-shakespeare"
# --fast: 2-layer models, 200 steps (the GPT is section 2's pretrained one: the same config, so the same run)
small = ["model.n_layer=2", "model.n_head=4", "model.n_embd=64", "model.block_size=32", "eval_batches=8",
         "steps_per_epoch=100", "train.epochs=2"] if FAST else []
gpt_run = experiment("gpt", dataset, [*small, "sample_tokens=0"] if FAST else [], runs=RUNS, data_dir=DATA_DIR)
bert_run = experiment("bert", dataset, small, runs=RUNS, data_dir=DATA_DIR)
gpt, bert = load_trained(gpt_run.run_dir, "cpu"), load_trained(bert_run.run_dir, "cpu")

# %% [markdown]
# ## Who sees whom
#
# The attention mask of each model, for a sequence of 12 tokens (row: the position that looks; column: the positions
# it may see), read from each trained model's own configuration:

# %%
fig, axes = plt.subplots(1, 2, figsize=(6, 3))
for ax, (name, model) in zip(axes, (("BERT: encoder only", bert), ("GPT: decoder only", gpt))):
    seen = torch.ones(12, 12).tril() if model.net.cfg.causal else torch.ones(12, 12)
    ax.imshow(seen, cmap="Blues", vmin=0, vmax=1); ax.set_title(name, fontsize=9); ax.set_xticks([]); ax.set_yticks([])
plt.show()

# %% [markdown]
# ## BERT fills the blank

# %%
sentence = "The cat [MASK] on the mat."
fills = bert.fill(sentence, 5)[0]
display(HTML("<table><tr><th>fill</th><th>probability</th></tr>" + "".join(
    f"<tr><td><code>{html.escape(t)}</code></td><td class='num'>{p:.1%}</td></tr>" for t, p in fills) + "</table>"))
say("{sentence}: the top five fills of our BERT, whatever they are, learnt from {corpus}; its masked-token accuracy "
    "on held-out text: {acc}.", sentence=sentence, corpus="Python's standard library" if FAST else "Tiny Shakespeare",
    acc=claim(bert_run, "val/masked_accuracy", "{:.1%}"))
headline("BERT", "to fill in hidden tokens from both sides", claim(bert_run, "val/masked_accuracy", "{:.1%}"))

# %% [markdown]
# ## GPT writes

# %%
prompt = "def " if FAST else "ROMEO:"
table = gpt.next_tokens(prompt, top=8)
display(HTML("<table><tr><th>next token</th><th>probability</th></tr>" + "".join(
    f"<tr><td><code>{html.escape(repr(t))}</code></td><td class='num'>{p:.1%}</td></tr>" for t, p in table) + "</table>"))
text = "".join(gpt.stream(prompt, 200, 0.8, 200, 0))
display(HTML(f"<pre>{html.escape(prompt + text)}</pre>"))
say("Its loss on held-out text: {loss} per token.", loss=claim(gpt_run, "val/loss", "{:.2f} nats"))
headline("GPT", "to predict the next token", claim(gpt_run, "val/loss", "{:.2f} nats"))

# %%
panel("gpt", gpt_run, RUNS, prompt=prompt, top_k=1)
