"""Self-supervised language models (issue 16): BERT's masking."""

import torch
import torch.nn.functional as F

from paradigms.language import IGNORE, mask_tokens, masked_lm_loss


def test_mask_statistics_are_15_percent_and_80_10_10_on_a_large_batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (256, 512), generator=g)             # 131,072 tokens; ids 0-4 are special
    inputs, targets = mask_tokens(ids, mask_id=4, vocab_size=1000, generator=g)
    chosen = targets != IGNORE
    n = int(chosen.sum())
    assert abs(n / ids.numel() - 0.15) < 0.005
    assert torch.equal(targets[chosen], ids[chosen])                  # the targets are the original tokens
    masked = (inputs == 4) & chosen
    same = (inputs == ids) & chosen
    other = chosen & ~masked & ~same
    assert abs(masked.sum() / n - 0.8) < 0.01
    assert abs(same.sum() / n - 0.1) < 0.01                           # includes the random draws that hit the same id
    assert abs(other.sum() / n - 0.1) < 0.01
    assert torch.equal(inputs[~chosen], ids[~chosen])                 # the unchosen are untouched


def test_positions_not_kept_are_never_chosen():
    ids = torch.randint(0, 100, (64, 64))
    keep = torch.ones_like(ids, dtype=torch.bool)
    keep[:, 0] = keep[:, -8:] = False                                 # [CLS] and padding
    inputs, targets = mask_tokens(ids, 1, 100, keep=keep, generator=torch.Generator().manual_seed(1))
    assert (targets[~keep] == IGNORE).all() and torch.equal(inputs[~keep], ids[~keep])


def test_the_loss_ignores_the_positions_not_chosen():
    torch.manual_seed(0)
    logits = torch.randn(4, 10, 30)
    targets = torch.full((4, 10), IGNORE)
    targets[0, 3], targets[2, 7] = 5, 11
    expected = (F.cross_entropy(logits[0, 3], torch.tensor(5)) + F.cross_entropy(logits[2, 7], torch.tensor(11))) / 2
    assert torch.allclose(masked_lm_loss(logits, targets), expected)
    scrambled = logits.clone()
    scrambled[targets == IGNORE] = torch.randn_like(scrambled[targets == IGNORE])
    assert torch.allclose(masked_lm_loss(scrambled, targets), expected)   # what the others predict does not count


# -- tokenisers --------------------------------------------------------------------------------------
import pytest  # noqa: E402

from paradigms.data.tokenize import BERT_SPECIALS, load_tokenizer, train_tokenizer  # noqa: E402
from paradigms.errors import UserError  # noqa: E402
from tests.test_cli import error_line, run_cli  # noqa: E402

CORPUS = ("First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
          "def read(path):\n    return open(path).read()  # the whole file\n") * 40
SAMPLE = "First Citizen:\nWe are accounted poor citizens, the patricians good.\n"


@pytest.mark.parametrize("kind", ["char", "bpe", "wordpiece"])
def test_every_tokeniser_round_trips_text_and_saves(kind, tmp_path):
    specials = BERT_SPECIALS if kind != "bpe" else ()
    tok = train_tokenizer(kind, CORPUS + SAMPLE, vocab_size=300, specials=specials)
    text = SAMPLE + "Speak [MASK] further." if specials else SAMPLE
    ids = tok.encode(text)
    assert ids.dtype == torch.int64 and int(ids.max()) < tok.vocab_size
    back = tok.decode(ids)
    if kind == "wordpiece":  # BERT uncased: lower-cased, spacing around punctuation its own
        assert back.replace(" ", "") == "".join(text.lower().split()).replace("[mask]", "[MASK]")
    else:
        assert back == text
    if specials:
        assert tok.token_id("[MASK]") in ids.tolist()                   # a special token written in the text is one id
    again = load_tokenizer(tok.save(tmp_path / "tokenizer.json"))
    assert again.encode(text).tolist() == ids.tolist() and again.vocab_size == tok.vocab_size


def test_byte_level_bpe_never_meets_an_unknown_character():
    tok = train_tokenizer("bpe", CORPUS, vocab_size=300)
    text = "naïve café, 日本語 ✓"
    assert tok.decode(tok.encode(text)) == text


def test_a_character_outside_the_vocabulary_is_named():
    tok = train_tokenizer("char", "abc ")
    with pytest.raises(UserError, match="'z' is not in the vocabulary"):
        tok.encode("abz")


# -- the gpt and bert recipes ------------------------------------------------------------------------
SETS = ["model.n_layer=1", "model.n_embd=32", "model.n_head=2", "model.block_size=16", "train.batch_size=8",
        "steps_per_epoch=10", "train.epochs=2", "eval_batches=2", "train_chars=20000"]  # a tiny model, 20 steps


@pytest.fixture(scope="module")
def gpt_run(tmp_path_factory):
    from paradigms.api import run

    out = tmp_path_factory.mktemp("gpt") / "run"
    sets = SETS + ["sample_tokens=30"]
    result = run("gpt", "stdlib", preset="none", sets=sets, out=out)
    return out, result.metrics


def test_gpt_learns_and_repeats_itself(gpt_run, tmp_path):
    from paradigms.api import run

    out, metrics = gpt_run
    assert metrics["val/loss"] < torch.log(torch.tensor(100.0))        # below a uniform guess over ~100 characters
    again = run("gpt", "stdlib", preset="none", sets=SETS + ["sample_tokens=0"],
                out=tmp_path / "again")
    assert again.metrics == metrics                                    # a fixed seed gives the same metrics twice
    assert (out / "tokenizer.json").is_file() and (out / "notes" / "sample.txt").is_file()


def test_sample_streams_reproducibly_and_refuses_bad_input(gpt_run, capsys):
    out, _ = gpt_run
    code, first, _ = run_cli(capsys, "sample", str(out), "--prompt", "def ", "--tokens", "40", "--seed", "3")
    assert code == 0 and first.startswith("def ") and len(first) >= 40
    _, second, _ = run_cli(capsys, "sample", str(out), "--prompt", "def ", "--tokens", "40", "--seed", "3")
    assert first == second
    _, other, _ = run_cli(capsys, "sample", str(out), "--prompt", "def ", "--tokens", "40", "--seed", "4")
    assert other != first
    assert "not in the vocabulary" in error_line(capsys, "sample", str(out), "--prompt", "def \u2603")
    assert "longer than this model's block size 16" in error_line(capsys, "sample", str(out), "--prompt", "x" * 17)
    assert "--temperature 0" in error_line(capsys, "sample", str(out), "--temperature", "0")
    assert "--top-k 0" in error_line(capsys, "sample", str(out), "--top-k", "0")


def test_gpt_init_from_starts_from_the_source_weights(gpt_run, tmp_path):
    from paradigms.engine import checkpoint as ckpt
    from paradigms.engine.trainer import Trainer
    from paradigms import config as configlib, recipes

    out, _ = gpt_run
    cfg = configlib.resolve(recipes.get("gpt"), "none", None, SETS
                            + [f"init_from={out}", "train.epochs=0", "sample_tokens=0"], {"dataset": "stdlib"})
    trainer = Trainer(cfg, tmp_path / "ft", progress=False)
    trainer.fit()
    source = ckpt.module_weights(out / "checkpoints", "transformer")
    for k, v in trainer.recipe.net.state_dict().items():
        assert torch.equal(v, source[k]), k
    assert (tmp_path / "ft" / "tokenizer.json").read_text() == (out / "tokenizer.json").read_text()


def test_text_slice_cuts_a_small_corpus_from_the_text_before_its_split(tmp_path):
    from paradigms import config as configlib, recipes
    from paradigms.engine.trainer import Trainer

    (tmp_path / "corpus.txt").write_text(CORPUS)
    sets = SETS + ["text_slice=[-3000, null]", "train.epochs=0", "sample_tokens=0", "train.figures=false"]
    cfg = configlib.resolve(recipes.get("gpt"), "none", None, sets, {"dataset": f"textfile:{tmp_path / 'corpus.txt'}"})
    trainer = Trainer(cfg, tmp_path / "cut", progress=False)
    trainer.fit()
    text = trainer.recipe.text
    assert text.text == CORPUS[-3000:] and text.train == CORPUS[-3000:-300] and text.val == CORPUS[-300:]
    assert text.name.endswith("corpus.txt[-3000:]") and len(trainer.recipe.val_ids) == 300


@pytest.fixture(scope="module")
def bert_run(tmp_path_factory):
    from paradigms.api import run

    out = tmp_path_factory.mktemp("bert") / "run"
    sets = SETS + ["tokenizer.vocab_size=500"]
    return out, run("bert", "stdlib", preset="none", sets=sets, out=out).metrics


def test_bert_fills_in_the_blank_and_refuses_text_without_one(bert_run, capsys):
    out, metrics = bert_run
    assert 0 <= metrics["val/masked_accuracy"] <= 1 and metrics["val/loss"] > 0
    code, text, _ = run_cli(capsys, "fill", str(out), "def [MASK](self):", "--top", "3")
    assert code == 0 and text.startswith("[MASK] 1: ")
    probs = [float(x) for x in text.split()[3::2]]
    assert len(probs) == 3 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
    assert "no [MASK]" in error_line(capsys, "fill", str(out), "The cat sat on the mat")
    assert "block size 16" in error_line(capsys, "fill", str(out), "[MASK] " + "word " * 40)
    assert (out / "notes" / "fill.txt").is_file()


def test_embed_compares_texts_with_a_bert_run_and_refuses_what_is_not_a_bert(bert_run, gpt_run, capsys, tmp_path):
    out, _ = bert_run
    code, text, _ = run_cli(capsys, "embed", str(out), "def f(x):", "def g(y):", "import os")
    rows = text.strip().splitlines()[1:]
    assert code == 0 and len(rows) == 3 and rows[0].split()[-3] == "+1.000"   # each text is itself
    assert "embed needs a bidirectional encoder" in error_line(capsys, "embed", str(gpt_run[0]), "a", "b")
    assert "not a Hugging Face BERT" in error_line(capsys, "embed", str(tmp_path), "a", "b")
    assert "two or more texts" in error_line(capsys, "embed", str(out), "alone")


def test_the_speaker_task_takes_the_most_frequent_speakers_and_keeps_test_lines_apart():
    from paradigms.language.classify import SentenceClassifier, finetune, speaker_lines, speaker_task
    from paradigms.nets.transformer import Transformer, TransformerConfig

    speeches = [("ANNE", "my lord i pray you hear me now"), ("BOB", "the ships are come into the bay"),
                ("CAROL", "what news from rome my gentle friend"), ("ANNE", "i will not stay another hour here")]
    text = "\n\n".join(f"{who}:\n{line}\n{line} again" for who, line in speeches * 30) + "\n"
    lines = speaker_lines(text, top=2)
    assert list(lines) == ["ANNE", "BOB"] and len(lines["ANNE"]) == 120
    task = speaker_task(text, per_class=5, test_per_class=20, top=2, seed=0)
    assert len(task.train_texts) == 10 and len(task.test_texts) == 40 and task.classes == ["ANNE", "BOB"]
    tok = train_tokenizer("wordpiece", text, vocab_size=100, specials=BERT_SPECIALS)
    torch.manual_seed(0)
    model = SentenceClassifier(Transformer(TransformerConfig(tok.vocab_size, 16, 1, 2, 16, causal=False)), 2)
    r = finetune(model, [{"params": list(model.parameters())}], tok, task, epochs=20, lr=3e-3)
    assert r["test/acc"] > 0.9                                         # the two speakers' words differ entirely
    with pytest.raises(UserError, match="4 are needed"):
        speaker_lines(text, top=4)


def test_finetune_of_images_refuses_a_text_run_with_the_way_to_go(gpt_run, capsys):
    out, _ = gpt_run
    line = error_line(capsys, "run", "finetune", "--from", str(out))
    assert "is a 'gpt' run of text" in line and "init_from" in line
