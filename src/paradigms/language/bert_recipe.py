"""The ``bert`` recipe: masked language modelling (the objective: :mod:`.bert`) on a text corpus.

    paradigms run bert --dataset tinyshakespeare
    paradigms fill RUN_DIR "The cat [MASK] on the mat"

A bidirectional, post-norm transformer (BERT's layout) reads windows of ``block_size`` tokens, 15% of them chosen
and replaced 80/10/10, and predicts the chosen ones. The tokeniser is a lower-cased WordPiece trained on the corpus by
default, so that a blank is a word. Evaluation: the masked-LM loss and the accuracy of the predicted tokens at the
chosen positions of held-out text (the same masks at every evaluation).
"""

from __future__ import annotations

from pathlib import Path

import torch
from pydantic import Field

from .. import optim
from ..data.tokenize import BERT_SPECIALS
from ..errors import UserError
from ..nets.transformer import TransformerConfig
from ..recipes import register
from .bert import IGNORE, mask_tokens, masked_lm_loss
from .corpus import ModelConfig, TextRecipe, TextRecipeConfig, TokenizerConfig

FILL_EXAMPLES = 8  # held-out lines with a word masked, in the report


class BERTConfig(TextRecipeConfig):
    recipe: str = "bert"
    tokenizer: TokenizerConfig = TokenizerConfig(kind="wordpiece", vocab_size=4000)
    model: ModelConfig = ModelConfig(block_size=64)
    mask_p: float = Field(0.15, gt=0, lt=1, description="the share of tokens chosen for prediction (BERT: 0.15)")
    norm_first: bool = Field(False, description="pre-norm instead of BERT's post-norm")


@register
class BERT(TextRecipe):
    name = "bert"
    family = "self-supervised"
    measures = "masked-token accuracy on held-out text"
    Config = BERTConfig
    specials = BERT_SPECIALS
    causal = False
    about = ("BERT (Devlin, Chang, Lee & Toutanova 2019, \"BERT: pre-training of deep bidirectional transformers for "
             "language understanding\") learns language by filling in blanks: 15% of the tokens of each window are "
             "chosen, 80% of those become [MASK], 10% a random token and 10% stay as they are, and a bidirectional "
             "transformer (post-norm, BERT's layout) predicts the chosen tokens from the text on both sides, "
             "L = -(1/|M|) sum over the chosen positions t of log p(x_t | the altered text). The tokeniser is a "
             "lower-cased WordPiece trained on the corpus, so a blank is usually a whole word. It is measured on "
             "held-out text, always under the same masks, by the masked-token loss and the share of chosen tokens "
             "predicted exactly. The recipe draws no figure of its own: the notes show held-out lines with one word "
             "masked and the model's five best guesses (are they at least the right kind of word?), paradigms fill "
             "asks it about a sentence of your own, and paradigms embed compares sentences by the mean of its last "
             "states.")
    captions = {}  # no figure of its own: the engine's learning curves and the guesses in the notes
    commands = ("fill", "embed")

    @classmethod
    def preset(cls, name: str, dataset: str) -> dict:
        if name == "full":  # BERT-small-ish: 4 layers of 256 (Turc et al.'s BERT-Mini), 128-token windows
            return {"model": {"n_layer": 4, "n_head": 4, "n_embd": 256, "block_size": 128, "dropout": 0.1},
                    "optim": {"lr": 5e-4}, "train": {"epochs": 40, "batch_size": 128, "grad_clip": 1.0}}
        return {"model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0},
                "train": {"epochs": 8, "batch_size": 32, "grad_clip": 1.0}}

    def __init__(self, cfg: BERTConfig, ctx):
        super().__init__(cfg, ctx)
        self.load_corpus()
        self.mask_id = self.tokenizer.token_id("[MASK]")
        self.build_model()

    def transformer_config(self) -> TransformerConfig:
        tc = super().transformer_config()
        tc.norm_first = self.cfg.norm_first
        return tc

    def train_step(self, batch: torch.Tensor, step: int) -> dict[str, torch.Tensor]:
        ids = batch[:, :-1]                                                  # (B, T): windows of T tokens
        inputs, targets = mask_tokens(ids, self.mask_id, self.tokenizer.vocab_size, self.cfg.mask_p)
        opt = self.optimizers["opt"]
        lr = optim.set_lr(opt, optim.lr_at(step, self.total_steps, self.cfg.optim))
        self.train_net.train()
        with self.ctx.autocast():
            loss = masked_lm_loss(self.train_net(inputs), targets)
        optim.step(opt, loss, self.cfg.train.grad_clip)
        return {"loss": loss.detach(), "lr": lr}

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        self.net.eval()
        g = torch.Generator(device=self.ctx.device).manual_seed(self.cfg.seed)   # the same masks every time
        loss, right, n = 0.0, 0, 0
        for w in self.eval_windows(self.val_ids):
            inputs, targets = mask_tokens(w[:, :-1], self.mask_id, self.tokenizer.vocab_size, self.cfg.mask_p,
                                          generator=g)
            with self.ctx.autocast():
                logits = self.net(inputs)
            chosen = targets != IGNORE
            k = int(chosen.sum())
            loss += float(masked_lm_loss(logits, targets)) * k
            right += int((logits.argmax(-1)[chosen] == targets[chosen]).sum())
            n += k
        return {"val/loss": loss / max(n, 1), "val/masked_accuracy": right / max(n, 1)}

    # -- fill in the blanks --------------------------------------------------------------------------
    @torch.no_grad()
    def fill(self, text: str, top: int = 5) -> list[list[tuple[str, float]]]:
        """For each [MASK] in ``text``, the ``top`` most likely tokens and their probabilities; never a special token
        ([MASK], [PAD], [CLS], ...): the probabilities are over the vocabulary's words and pieces alone."""
        if "[MASK]" not in text:
            raise UserError(f"no [MASK] in {text!r}: write [MASK] where the word to predict goes, "
                            "e.g. \"The cat [MASK] on the mat\"")
        ids = self.tokenizer.encode(text)
        block = self.net.cfg.block_size
        if len(ids) > block:
            raise UserError(f"the text is {len(ids)} tokens, longer than this model's block size {block}; "
                            f"give at most {block} tokens")
        self.net.eval()
        logits = self.net(ids[None].to(self.ctx.device))[0].float()          # (T, V)
        specials = [self.tokenizer.token_id(s) for s in self.tokenizer.specials]
        logits[:, specials] = float("-inf")                                  # a blank is filled with a word
        probs = logits.softmax(-1)
        out = []
        for pos in (ids == self.mask_id).nonzero().flatten().tolist():
            p, idx = probs[pos].topk(top)
            out.append([(self.tokenizer.token(i), float(q)) for q, i in zip(p.tolist(), idx.tolist())])
        return out

    def figures(self):
        """The report's notes: held-out lines with one word masked, and the model's top guesses."""
        run_dir = getattr(self.ctx, "run_dir", None)
        if run_dir is None:
            return iter(())
        lines = [l.strip() for l in self.text.val.splitlines() if 6 <= len(l.split()) <= 14][:200]
        g = torch.Generator().manual_seed(self.cfg.seed)
        rows = []
        for i in torch.randperm(len(lines), generator=g)[:FILL_EXAMPLES].tolist():
            words = lines[i].split()
            j = int(torch.randint(len(words), (1,), generator=g))
            blank = " ".join(words[:j] + ["[MASK]"] + words[j + 1:])
            try:
                guesses = self.fill(blank)[0]
            except UserError:                                                # longer than the block: skip it
                continue
            rows.append(f"{blank}\n    truth: {words[j]!r}\n    model: "
                        + ", ".join(f"{t!r} {p:.2f}" for t, p in guesses))
        notes = Path(run_dir) / "notes"
        notes.mkdir(parents=True, exist_ok=True)
        (notes / "fill.txt").write_text("held-out lines, one word masked (the model's five most likely tokens):\n\n"
                                        + "\n\n".join(rows) + "\n")
        return iter(())
