"""The ``gpt`` recipe: next-token prediction (the objective: :mod:`.gpt`) on a text corpus.

    paradigms run gpt --dataset tinyshakespeare          # the quick preset: nanoGPT's CPU "baby GPT"
    paradigms sample RUN_DIR --prompt "ROMEO:" --tokens 500 --temperature 0.8 --top-k 200

quick = nanoGPT's CPU configuration of its README (4 layers, 4 heads, width 128, block 64, batch 12, 2,000
iterations, no dropout, AdamW 1e-3 -> 1e-4 by warm-up and cosine, betas 0.9/0.99, weight decay 0.1, clip 1.0,
validation every 250 iterations on 20 batches); full = its GPU configuration (6 layers, 6 heads, width 384, block
256, batch 64, 5,000 iterations, dropout 0.2). ``init_from`` starts from another gpt run (pretrain, fine-tune).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from pydantic import Field

from .. import optim
from ..errors import UserError
from ..recipes import register
from .corpus import TextRecipe, TextRecipeConfig
from .gpt import next_token_loss


class GPTConfig(TextRecipeConfig):
    recipe: str = "gpt"
    sample_tokens: int = Field(500, ge=0, le=100_000, description="tokens of sample text in the report")


@register
class GPT(TextRecipe):
    name = "gpt"
    family = "self-supervised"
    measures = "validation loss (nats per token) of next-token prediction"
    Config = GPTConfig
    causal = True
    about = ("A GPT learns language by predicting each next token of a text from the tokens before it (Radford, "
             "Narasimhan, Salimans & Sutskever 2018, \"Improving language understanding by generative "
             "pre-training\"): a causal transformer reads a window of T tokens and minimises L = -(1/T) sum_t log "
             "p(x_{t+1} | x_1..x_t), all T predictions in one forward pass. The quick preset is the small CPU "
             "\"baby GPT\" of Karpathy's nanoGPT and the full one its GPU configuration; the default corpus is "
             "Python's own standard library, read character by character, and init_from starts a run from another "
             "gpt run, to pretrain on general text and fine-tune on a small corpus. It is measured by the "
             "validation loss in nats per token (exp of it, the perplexity, is how many equally likely tokens the "
             "model is still choosing between). The recipe draws no figure of its own: read the learning curves (a "
             "validation loss that rises while the training loss falls is overfitting) and the sample of generated "
             "text in the notes, to judge how much of the corpus's words, spelling and layout it has picked up; "
             "paradigms sample RUN_DIR --prompt TEXT generates more.")
    captions = {}  # no figure of its own: the engine's learning curves and the sample in the notes
    commands = ("sample",)

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        if name == "full":  # nanoGPT's train_shakespeare_char.py on a GPU
            return {"model": {"n_layer": 6, "n_head": 6, "n_embd": 384, "block_size": 256, "dropout": 0.2},
                    "train": {"epochs": 20, "batch_size": 64, "grad_clip": 1.0}}
        return {"model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0},
                "train": {"epochs": 8, "batch_size": 12, "grad_clip": 1.0}}

    def __init__(self, cfg: GPTConfig, ctx):
        super().__init__(cfg, ctx)
        self.load_corpus()
        self.build_model()

    def train_step(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        x, y = batch[:, :-1], batch[:, 1:]                                   # (B, T) inputs, (B, T) next tokens
        opt = self.optimizers["opt"]
        lr = optim.set_lr(opt, optim.lr_at(step, self.total_steps, self.cfg.optim))
        self.train_net.train()
        with self.ctx.autocast():
            loss = next_token_loss(self.train_net(x), y)
        optim.step(opt, loss, self.cfg.train.grad_clip)
        return {"loss": loss.detach(), "lr": lr}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.net.eval()
        out = {}
        for split, ids in (("val", self.val_ids), ("train", self.train_ids)):
            losses = []
            for w in self.eval_windows(ids):
                with self.ctx.autocast():
                    losses.append(float(next_token_loss(self.net(w[:, :-1]), w[:, 1:])))
            out[f"{split}/loss"] = sum(losses) / len(losses)
        return out

    # -- generation -------------------------------------------------------------------------------------
    def encode_prompt(self, prompt: str) -> torch.Tensor:
        """The prompt's ids (1, P); an empty prompt starts from a newline (nanoGPT's sample.py)."""
        ids = self.tokenizer.encode(prompt if prompt else "\n")
        if len(ids) == 0:
            ids = torch.zeros(1, dtype=torch.int64)
        block = self.net.cfg.block_size
        if len(ids) > block:
            raise UserError(f"the prompt is {len(ids)} tokens, longer than this model's block size {block} "
                            f"(its context); give a prompt of at most {block} tokens")
        return ids[None].to(self.ctx.device)

    def stream(self, prompt: str, tokens: int, temperature: float = 0.8, top_k: int | None = 200,
               seed: int = 0) -> Iterator[str]:
        """The text generated after ``prompt``, piece by piece as each token is drawn (reproducible under ``seed``).

        Each piece is what the new token adds to the decoded text, so a character that a byte-level BPE splits over
        two tokens comes out whole."""
        if temperature <= 0:
            raise UserError(f"--temperature {temperature}: it must be > 0 (1 samples the model's own distribution, "
                            "lower is more conservative)")
        if top_k is not None and top_k < 1:
            raise UserError(f"--top-k {top_k}: it must be >= 1 (or omitted: no limit)")
        ids = self.encode_prompt(prompt)
        self.net.eval()
        gen = torch.Generator(device=self.ctx.device).manual_seed(seed)
        new: list[int] = []
        shown = text = ""
        for t in self.net.generate(ids, tokens, temperature, top_k, generator=gen):
            new.append(int(t[0]))
            text = self.tokenizer.decode(new)
            if text.endswith("\ufffd"):                                      # an incomplete UTF-8 character: wait
                continue
            yield text[len(shown):]
            shown = text
        if len(text) > len(shown):                                           # it ended inside a character
            yield text[len(shown):]

    def next_tokens(self, prompt: str, top: int = 10, temperature: float = 1.0) -> list[tuple[str, float]]:
        """The ``top`` most likely tokens to follow ``prompt``, each with its probability

            p(x_{t+1} | x_1..x_t) = softmax(logits_t / temperature)

        the distribution each step of :meth:`stream` draws from (before its top-k cut)."""
        if temperature <= 0:
            raise UserError(f"temperature {temperature}: it must be > 0")
        ids = self.encode_prompt(prompt)
        self.net.eval()
        with torch.no_grad():
            logits = self.net(ids)[0, -1].float()                             # (V,) at the last position
        p = (logits / temperature).softmax(-1)
        values, index = p.topk(min(top, p.numel()))
        return [(self.tokenizer.decode([int(i)]), float(v)) for v, i in zip(values, index)]

    def figures(self):
        """No figure of its own (the engine draws the loss curves): a sample of text in the report's notes."""
        run_dir = getattr(self.ctx, "run_dir", None)
        if run_dir is None or not self.cfg.sample_tokens:
            return iter(())
        text = "".join(self.stream("", self.cfg.sample_tokens, temperature=0.8, top_k=200, seed=self.cfg.seed))
        notes = Path(run_dir) / "notes"
        notes.mkdir(parents=True, exist_ok=True)
        (notes / "sample.txt").write_text(f"{self.cfg.sample_tokens} tokens from a newline, temperature 0.8, "
                                          f"top-k 200, seed {self.cfg.seed}:\n\n{text}\n")
        return iter(())
