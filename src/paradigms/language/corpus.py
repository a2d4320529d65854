"""What the language recipes (``gpt``, ``bert``) share: a corpus, its tokeniser, the transformer's shape, and
batches of random windows of token ids.

    corpus --tokeniser--> train ids (first 90%), val ids (last 10%)
    a batch: B windows of T + 1 consecutive ids at random offsets (nanoGPT's get_batch)

An "epoch" here is ``steps_per_epoch`` steps (nanoGPT's eval_interval): the validation loss is measured after each.
The tokeniser is trained once on the training text and saved in the run folder (``tokenizer.json``); a resumed,
evaluated or sampled run reads it back from there. A run that starts from another run (``init_from``) uses that
run's tokeniser, so the ids mean the same tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, model_validator

from ..config import RecipeConfig, Section
from ..data.tokenize import TOKENIZER_FILE, kept_tokenizer, load_tokenizer, train_tokenizer
from ..errors import UserError
from ..nets.transformer import Transformer, TransformerConfig
from ..optim import OptimConfig
from ..recipes import Recipe


class TokenizerConfig(Section):
    """How text becomes token ids."""

    kind: Literal["char", "bpe", "wordpiece"] = Field("char", description="char (one token per character) | bpe "
                                                      "(byte-level BPE, GPT-2) | wordpiece (BERT, lower-cased)")
    vocab_size: int = Field(2000, ge=64, le=200_000, description="the subword vocabulary's size (bpe, wordpiece)")


class ModelConfig(Section):
    """The transformer's shape (:mod:`paradigms.nets.transformer`)."""

    n_layer: int = Field(4, ge=1, le=96, description="blocks")
    n_head: int = Field(4, ge=1, le=128, description="attention heads per block")
    n_embd: int = Field(128, ge=8, le=16384, description="width (a multiple of n_head)")
    block_size: int = Field(64, ge=2, le=16384, description="the context: tokens per training window")
    dropout: float = Field(0.0, ge=0, lt=1, description="dropout on embeddings, attention and MLP outputs")
    bias: bool = Field(False, description="biases in the linear layers and LayerNorms (nanoGPT: False)")

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be a multiple of n_head={self.n_head}")
        return self


class TextRecipeConfig(RecipeConfig):
    dataset: str = Field("stdlib", description="a text dataset: stdlib | tinyshakespeare | textfile:PATH")
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ModelConfig = ModelConfig()
    optim: OptimConfig = OptimConfig(name="adamw", lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1,
                                     schedule="warmup-cosine", warmup=0.05, min_lr=1e-4)
    steps_per_epoch: int = Field(250, ge=1, description="training steps between evaluations (nanoGPT's "
                                 "eval_interval); train.epochs of them in all")
    eval_batches: int = Field(20, ge=1, description="batches of the validation loss (nanoGPT's eval_iters)")
    text_slice: tuple[int | None, int | None] | None = Field(
        None, description="keep only the characters [start, end) of the dataset's text before its 90/10 split (a "
        "Python slice: negative counts from the end, null runs to the end): a small corpus cut from a large one")
    train_chars: int | None = Field(None, ge=100, description="train on the first N characters of the training "
                                    "text only (a small corpus); None: all of it")
    init_from: str | None = Field(None, description="start from this run folder's weights and tokeniser "
                                  "(a run of the same recipe): pretrain, then fine-tune")


class TextRecipe(Recipe):
    """A recipe that learns from a text corpus with a transformer (see the module docstring)."""

    specials: tuple[str, ...] = ()
    causal: bool = True
    network = "transformer"
    encoder = "transformer"

    def load_corpus(self) -> None:
        """Sets ``text`` (the dataset), ``tokenizer``, ``train_ids`` and ``val_ids`` (1-D int64 tensors)."""
        from ..data import TextData, load_text

        cfg = self.cfg
        self.text = data = load_text(cfg.dataset, cfg.data_dir)
        if cfg.text_slice is not None:                                   # its own 90/10 split and characters
            start, end = ("" if i is None else i for i in cfg.text_slice)
            self.text = data = TextData(f"{data.name}[{start}:{end}]", data.text[slice(*cfg.text_slice)])
        train = data.train if cfg.train_chars is None else data.train[: cfg.train_chars]
        self.tokenizer = self.load_or_train_tokenizer(data, train)
        self.train_ids = self.tokenizer.encode(train)
        self.val_ids = self.tokenizer.encode(data.val)
        for split, ids in (("training", self.train_ids), ("validation", self.val_ids)):
            if len(ids) < cfg.model.block_size + 2:
                raise UserError(f"the {split} text of {cfg.dataset!r} is {len(ids)} tokens, shorter than a window of "
                                f"model.block_size={cfg.model.block_size} + 1; give a longer text or a smaller block")

    def load_or_train_tokenizer(self, data, train: str):
        cfg = self.cfg

        def make():
            if cfg.init_from:
                source = Path(cfg.init_from) / TOKENIZER_FILE
                if not source.is_file():
                    raise UserError(f"init_from={cfg.init_from}: {source} is missing; give the folder of a finished "
                                    f"{cfg.recipe} run")
                return load_tokenizer(source)
            # characters: the whole text's (as nanoGPT), so the validation text has no unknown character;
            # subwords: learned from the training text only
            return train_tokenizer(cfg.tokenizer.kind, data.text if cfg.tokenizer.kind == "char" else train,
                                   cfg.tokenizer.vocab_size, self.specials, name=f"text dataset {cfg.dataset!r}")

        return kept_tokenizer(getattr(self.ctx, "run_dir", None), make, self.ctx.is_main)

    def transformer_config(self) -> TransformerConfig:
        m = self.cfg.model
        return TransformerConfig(vocab_size=self.tokenizer.vocab_size, block_size=m.block_size, n_layer=m.n_layer,
                                 n_head=m.n_head, n_embd=m.n_embd, dropout=m.dropout, causal=self.causal, bias=m.bias)

    def build_model(self) -> None:
        """``net`` (the transformer), ``train_net`` (its DDP wrapper), the optimiser, ``total_steps``."""
        from .. import optim

        self.net = Transformer(self.transformer_config()).to(self.ctx.device)
        self.modules = {"transformer": self.net}
        self.train_net = self.ctx.distribute(self.net)
        self.optimizers = {"opt": optim.build_optimizer(self.net.parameters(), self.cfg.optim)}
        self.total_steps = self.cfg.train.epochs * self.steps_per_epoch

    def start(self) -> None:
        """A fresh run with ``init_from``: the source run's transformer, every tensor (the vocabulary is the same)."""
        if not self.cfg.init_from:
            return
        from ..weights import import_weights, read_weights

        tensors, _ = read_weights(self.cfg.init_from)            # a run of this recipe: checked by prepare
        report = import_weights(self.net, tensors, self.cfg.init_from, head="keep")
        if self.ctx.is_main and getattr(self.ctx, "run_dir", None) is not None:
            notes = Path(self.ctx.run_dir) / "notes"
            notes.mkdir(parents=True, exist_ok=True)
            (notes / "init_from.txt").write_text(report.summary() + "\n")

    @classmethod
    def prepare(cls, cfg):
        """A run that starts from another (of the same recipe) takes that run's transformer shape and tokeniser."""
        if not cfg.init_from:
            return cfg
        from ..weights import source_config

        src = source_config(Path(cfg.init_from))
        if src.recipe != cfg.recipe:
            raise UserError(f"init_from={cfg.init_from} is a {src.recipe!r} run; a {cfg.recipe} run "
                            f"starts from a {cfg.recipe} run")
        return cfg.model_copy(update={"model": src.model, "tokenizer": src.tokenizer})

    # -- the network paradigms.load(RUN_DIR) gives ----------------------------------------------------
    def network_card(self) -> dict:
        return {"kind": "transformer", "transformer": self.net.cfg.to_dict(), "tokenizer": TOKENIZER_FILE}

    @classmethod
    def build_network(cls, card: dict):
        return Transformer(TransformerConfig(**card["transformer"]))

    # -- batches ----------------------------------------------------------------------------------------
    @property
    def steps_per_epoch(self) -> int:
        return self.cfg.steps_per_epoch

    def random_starts(self, ids: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """Uniformly random offsets of windows of T + 1 ids in ``ids``."""
        return torch.randint(len(ids) - self.cfg.model.block_size, shape, generator=generator)

    def windows(self, ids: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        """The windows of T + 1 consecutive ids at ``starts`` (n,): (n, T + 1), on the run's device."""
        return ids[starts[:, None] + torch.arange(self.cfg.model.block_size + 1)].to(self.ctx.device, non_blocking=True)

    def batches(self, epoch: int, start: int = 0):
        """``steps_per_epoch`` batches of windows (T + 1 ids: a GPT's inputs and targets), this rank's share of the
        global batch; the same ones for the same seed, epoch and rank."""
        ctx, cfg = self.ctx, self.cfg
        per_rank = max(1, cfg.train.batch_size // ctx.world)
        g = torch.Generator().manual_seed((cfg.seed * 1_000_003 + epoch) * 1009 + ctx.rank)
        starts = self.random_starts(self.train_ids, (self.steps_per_epoch, per_rank), g)   # the whole epoch's, drawn once
        for i in range(start, self.steps_per_epoch):
            yield self.windows(self.train_ids, starts[i])

    def eval_windows(self, ids: torch.Tensor):
        """``eval_batches`` fixed batches of windows of ``ids`` (the same at every evaluation: less noise)."""
        g = torch.Generator().manual_seed(self.cfg.seed + 1_000_003)
        for _ in range(self.cfg.eval_batches):
            yield self.windows(ids, self.random_starts(ids, (self.cfg.train.batch_size,), g))
