"""Tokenisers trained the same in every process, and a run's tokeniser kept in its folder safely under DDP."""

from __future__ import annotations

import difflib
import itertools
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from paradigms.data.tokenize import BERT_SPECIALS, CharTokenizer, kept_tokenizer, load_tokenizer, train_tokenizer
from paradigms.errors import DataError

REPO = Path(__file__).resolve().parents[1]


def tied_text() -> str:
    """A few thousand words in which many pairs tie: every ordering of 3 of 8 letters once (each first letter
    before each continuation, and each continuation pair, 6 times), then a standard library module's source."""
    tied = " ".join("".join(p) for p in itertools.permutations("abcdefgh", 3))
    return tied + "\n" + Path(difflib.__file__).read_text(encoding="utf-8")


TRAIN = """
import sys
from pathlib import Path
from paradigms.data.tokenize import BERT_SPECIALS, train_tokenizer
text, out = Path(sys.argv[1]).read_text(encoding="utf-8"), Path(sys.argv[2])
train_tokenizer("wordpiece", text, 400, BERT_SPECIALS).save(out / "wordpiece.json")
train_tokenizer("bpe", text, 500).save(out / "bpe.json")
"""


def test_the_same_text_trains_the_same_tokeniser_file_in_another_process(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(tied_text(), encoding="utf-8")
    outs = []
    for seed in ("0", "12345"):
        out = tmp_path / f"seed{seed}"
        out.mkdir()
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", TRAIN, str(text), str(out)], check=True, cwd=REPO, env=env, timeout=120)
        outs.append(out)
    for name in ("wordpiece.json", "bpe.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_equal_counts_go_to_the_pair_of_lower_ids():
    from paradigms.data.wordpiece import learn_wordpieces

    # [UNK] a b ##a ##b: ("a", "##b") and ("b", "##a") both occur once; "a" (1) is before "b" (2)
    assert learn_wordpieces({"ab": 1, "ba": 1}, 6, ("[UNK]",)) == ["[UNK]", "a", "b", "##a", "##b", "ab"]
    # a more frequent pair comes first whatever its ids
    assert learn_wordpieces({"ab": 1, "ba": 2}, 6, ("[UNK]",))[-1] == "ba"
    # ("a", "##b") before ("##b", "##c"): the older pieces first; then nothing is left to merge
    assert learn_wordpieces({"abc": 3}, 100, ()) == ["a", "b", "c", "##b", "##c", "ab", "abc"]


def test_the_wordpiece_trainer_learns_what_the_tokenizers_trainer_learns_given_its_order():
    """The ``tokenizers`` WordPiece trainer, told our ``##`` order, is our trainer: same merges, same ties."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    from paradigms.data.wordpiece import learn_wordpieces, lines, word_counts

    text = tied_text()
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(lines(text), trainers.WordPieceTrainer(vocab_size=400, special_tokens=list(BERT_SPECIALS),
                                                                    show_progress=False))
    vocab = tok.get_vocab()
    theirs = sorted(vocab, key=vocab.get)
    order = [t for t in theirs if t.startswith("##") and len(t) == 3]   # its ## characters, in its own order
    assert learn_wordpieces(word_counts(text), 400, BERT_SPECIALS, continuations=order) == theirs
    ours = train_tokenizer("wordpiece", text, 400, BERT_SPECIALS)
    assert ours.vocab_size == 400 and ours.specials == BERT_SPECIALS
    assert [ours.token(i) for i in range(5)] == list(BERT_SPECIALS)


# -- kept_tokenizer -----------------------------------------------------------------------------------
def chars(text: str = "abc ") -> CharTokenizer:
    return CharTokenizer.train(text)


def never():
    raise AssertionError("this process should have read the main process's tokeniser, not made one")


def test_the_main_process_writes_the_tokeniser_whole_and_then_reads_it_back(tmp_path, monkeypatch):
    saved = tmp_path / "run" / "tokenizer.json"
    real_save = CharTokenizer.save

    def save(self, path):   # what is written first is a temporary file beside the final one
        assert Path(path).parent == saved.parent and Path(path) != saved and not saved.exists()
        return real_save(self, path)

    monkeypatch.setattr(CharTokenizer, "save", save)
    tok = kept_tokenizer(tmp_path / "run", chars, is_main=True)
    assert [p.name for p in saved.parent.iterdir()] == ["tokenizer.json"]   # no temporary file left
    assert load_tokenizer(saved).chars == tok.chars
    assert kept_tokenizer(tmp_path / "run", never, is_main=True).chars == tok.chars   # there: read, not made


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def save(self, path):
        Path(path).write_text("{half a fi")
        raise OSError("disk full")

    monkeypatch.setattr(CharTokenizer, "save", save)
    with pytest.raises(OSError, match="disk full"):
        kept_tokenizer(tmp_path, chars, is_main=True)
    assert list(tmp_path.iterdir()) == []


def test_another_rank_waits_for_the_main_process_file_and_reads_it(tmp_path):
    def main():
        time.sleep(0.3)
        kept_tokenizer(tmp_path, lambda: chars("xyz"), is_main=True)

    writer = threading.Thread(target=main)
    writer.start()
    try:
        tok = kept_tokenizer(tmp_path, never, is_main=False, wait_s=30)
    finally:
        writer.join()
    assert tok.chars == ["x", "y", "z"]


def test_another_rank_gives_up_naming_the_file(tmp_path):
    with pytest.raises(DataError, match=r"waited 0\.2 s .* tokeniser .*tokenizer\.json"):
        kept_tokenizer(tmp_path, never, is_main=False, wait_s=0.2)


def test_without_a_run_folder_every_process_makes_its_own(tmp_path):
    assert kept_tokenizer(None, chars, is_main=False).chars == [" ", "a", "b", "c"]
