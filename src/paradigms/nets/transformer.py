"""One transformer for every paradigm that reads sequences: GPT, BERT, and later the MAE's ViT and CLIP's text tower.

Read top to bottom: the config, attention, the MLP, a block, the whole model, generation. Shapes in comments use
B = batch, T = sequence length, C = width (``n_embd``), H = heads, D = C / H, V = vocabulary.

    h_0 = E_tok[ids] + E_pos[0..T-1]                              token and position embeddings  (B, T, C)
    h_l = Block_l(h_{l-1}),  l = 1..L                             attention, then an MLP, each residual
    logits = h_L E_tok^T                                          the output layer shares E_tok    (B, T, V)

Attention is softmax(Q K^T / sqrt(D) + M) V (Vaswani et al. 2017) through ``F.scaled_dot_product_attention``; the
mask M is causal for GPT (position t sees 0..t: next-token prediction) and absent for BERT (every position sees
every other: masked-token prediction), plus padding where a batch has it. ``norm_first`` places the LayerNorm
before each sub-layer (GPT-2; a final LayerNorm after the last block) or after the residual sum (the original
transformer and BERT; a LayerNorm on the embeddings instead).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class TransformerConfig:
    vocab_size: int
    block_size: int = 64            # the longest sequence: the number of position embeddings
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    causal: bool = True             # GPT: True; BERT: False
    norm_first: bool = True         # pre-norm (GPT-2) or post-norm (BERT)
    bias: bool = True               # biases in the linear layers and LayerNorms
    mlp_ratio: int = 4              # the MLP's hidden width is mlp_ratio * n_embd
    activation: str = "gelu"        # gelu (exact, BERT) | gelu_tanh (GPT-2)
    type_vocab_size: int = 0        # BERT's segment embeddings (imported checkpoints); 0 = none
    layer_norm_eps: float = 1e-5
    mlm_transform: bool = False     # BERT's output transform (dense, gelu, LayerNorm) before the tied decoder

    def __post_init__(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if self.activation not in ("gelu", "gelu_tanh"):
            raise ValueError(f"activation={self.activation!r}: gelu | gelu_tanh")

    def to_dict(self) -> dict:
        return asdict(self)


class SelfAttention(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.n_head, self.causal, self.dropout = cfg.n_head, cfg.causal, cfg.dropout
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)   # W_Q, W_K, W_V side by side
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)      # W_O
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)                              # 3 x (B, T, C)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        mask = None
        if keep is not None:                                               # padding: (B, T) True = a real token
            mask = keep[:, None, None, :]                                  # (B, 1, 1, T): no query sees a pad key
            if self.causal:
                mask = mask & torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
                                           is_causal=self.causal and mask is None)   # softmax(QK^T/sqrt(D) + M) V
        y = y.transpose(1, 2).contiguous().view(B, T, C)                   # the heads side by side again
        return self.drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.n_embd, cfg.mlp_ratio * cfg.n_embd, bias=cfg.bias)
        self.approximate = "tanh" if cfg.activation == "gelu_tanh" else "none"
        self.proj = nn.Linear(cfg.mlp_ratio * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x), approximate=self.approximate)))   # (B, T, C)


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.norm_first = cfg.norm_first
        self.ln1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.attn = SelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        if self.norm_first:                                                # pre-norm: x + f(LN(x))
            x = x + self.attn(self.ln1(x), keep)
            return x + self.mlp(self.ln2(x))
        x = self.ln1(x + self.attn(x, keep))                               # post-norm: LN(x + f(x))
        return self.ln2(x + self.mlp(x))


class Transformer(nn.Module):
    """Token ids (B, T) -> logits over the vocabulary (B, T, V); ``hidden`` gives the last layer's states (B, T, C)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        C = cfg.n_embd
        self.wte = nn.Embedding(cfg.vocab_size, C)                         # E_tok
        self.wpe = nn.Embedding(cfg.block_size, C)                         # E_pos (learned, as GPT-2 and BERT)
        self.wtt = nn.Embedding(cfg.type_vocab_size, C) if cfg.type_vocab_size else None
        self.ln_emb = None if cfg.norm_first else nn.LayerNorm(C, eps=cfg.layer_norm_eps, bias=cfg.bias)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(C, eps=cfg.layer_norm_eps, bias=cfg.bias) if cfg.norm_first else None
        gelu = nn.GELU(approximate="tanh" if cfg.activation == "gelu_tanh" else "none")
        self.transform = nn.Sequential(nn.Linear(C, C), gelu, nn.LayerNorm(C, eps=cfg.layer_norm_eps)) \
            if cfg.mlm_transform else None
        self.head_bias = nn.Parameter(torch.zeros(cfg.vocab_size)) if cfg.mlm_transform else None
        self.apply(self._init)
        for name, p in self.named_parameters():                            # GPT-2: residual outputs / sqrt(2L)
            if name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    def hidden(self, ids: torch.Tensor, keep: torch.Tensor | None = None,
               types: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer's states (B, T, C); ``keep`` (B, T) marks real tokens where a batch is padded."""
        B, T = ids.shape
        if T > self.cfg.block_size:
            raise ValueError(f"a sequence of {T} tokens is longer than the block size {self.cfg.block_size}")
        x = self.wte(ids) + self.wpe(torch.arange(T, device=ids.device))  # (B, T, C)
        if self.wtt is not None:
            x = x + self.wtt(types if types is not None else torch.zeros_like(ids))
        if self.ln_emb is not None:
            x = self.ln_emb(x)
        x = self.drop(x)
        for block in self.blocks:
            x = block(x, keep)                                             # (B, T, C)
        return self.ln_f(x) if self.ln_f is not None else x

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """States (..., C) -> logits (..., V) through the tied output layer."""
        if self.transform is not None:
            h = self.transform(h)
        return F.linear(h, self.wte.weight, self.head_bias)                # tied: logits = h E_tok^T (+ b)

    def forward(self, ids: torch.Tensor, keep: torch.Tensor | None = None,
                types: torch.Tensor | None = None) -> torch.Tensor:
        return self.logits(self.hidden(ids, keep, types))                  # (B, T, V)

    def num_params(self, embeddings: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n if embeddings else n - self.wpe.weight.numel()

    @torch.no_grad()
    def generate(self, ids: torch.Tensor, new_tokens: int, temperature: float = 1.0, top_k: int | None = None,
                 generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
        """Yield ``new_tokens`` next tokens (B,) one at a time, each drawn from softmax(logits / temperature) over
        the ``top_k`` most likely; the context is the last ``block_size`` tokens."""
        if not self.cfg.causal:
            raise ValueError("generate needs a causal (GPT) transformer")
        if temperature <= 0:
            raise ValueError(f"temperature={temperature}: it must be > 0")
        for _ in range(new_tokens):
            logits = self(ids[:, -self.cfg.block_size:])[:, -1, :] / temperature   # (B, V): the last position's
            if top_k is not None and top_k < logits.size(-1):
                kth = torch.topk(logits, top_k).values[:, -1:]             # (B, 1)
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)   # (B, 1)
            ids = torch.cat([ids, nxt], dim=1)
            yield nxt[:, 0]


def mean_pool(h: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """One vector per sequence: the mean of the states (B, T, C) over its real tokens (``keep`` (B, T)), (B, C);
    sentence-transformers' mean pooling."""
    if keep is None:
        return h.mean(1)
    w = keep.unsqueeze(-1).to(h.dtype)                                     # (B, T, 1)
    return (h * w).sum(1) / w.sum(1).clamp(min=1e-9)                       # (B, C)
