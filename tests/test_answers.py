"""No silent wrong answer: a command refuses or flags input whose answer would mean nothing."""

from __future__ import annotations

import pytest

from paradigms.engine import Trainer

from .test_cli import error_line, run_cli
from .test_engine import config


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("clip") / "run"
    Trainer(config("clip", ["train.epochs=1", "train_size=300"]), run, progress=False).fit()
    return run


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory):
    from PIL import Image

    from paradigms.data import load_images

    path = tmp_path_factory.mktemp("img") / "seven.png"
    Image.fromarray(load_images("digits").test_x[0, 0].numpy()).save(path)
    return path


def test_zero_shot_refuses_labels_its_text_tower_cannot_read(clip_run, digit_png, capsys):
    """Captions said "zero".."nine": the digits 0..9 are words no caption held, so every label would be [UNK]."""
    line = error_line(capsys, "zero-shot", str(clip_run), str(digit_png), "--labels", "0,1,2,3,4,5,6,7,8,9")
    assert "cannot read any of them" in line and "'0' (0)" in line
    assert "zero, one, two" in line                                    # the run's own class names, to use instead


def test_zero_shot_warns_about_the_labels_it_cannot_read_and_answers_the_rest(clip_run, digit_png, capsys):
    code, out, err = run_cli(capsys, "zero-shot", str(clip_run), str(digit_png), "--labels", "seven,one,banana")
    assert code == 0, err
    assert "warning: the text tower cannot read 'banana' (banana)" in err
    assert "seven" in out and "one" in out
    code, out, err = run_cli(capsys, "zero-shot", str(clip_run), str(digit_png), "--labels", "seven,one")
    assert code == 0 and "warning" not in err
    from paradigms.engine.results import read_results

    kept = [r for r in read_results(clip_run) if r.command == "zero-shot"]   # both answers kept, in order
    assert [r.parameters["labels"] for r in kept] == ["seven, one, banana", "seven, one"]
    assert "cannot read 'banana'" in kept[0].summary and kept[1].rows[0][0] == "seven.png"


@pytest.mark.parametrize("eps, norm", [("2", "linf"), ("0.1,1.5", "linf"), ("9", "l2")])
def test_an_attack_budget_outside_its_range_is_refused(tmp_path, capsys, eps, norm):
    Trainer(config("supervised", ["train.epochs=1", "train_size=200"]), tmp_path / "r", progress=False).fit()
    line = error_line(capsys, "attack", str(tmp_path / "r"), "--eps", eps, "--norm", norm, "--n", "10")
    assert "out of range" in line and (("[0, 1]" in line) if norm == "linf" else ("[0, 8]" in line))


def test_fill_never_proposes_a_special_token(tmp_path):
    """A model that would rather say [MASK] or [PAD]: fill still answers with words (the specials are left out)."""
    from paradigms.engine.trainer import load_trained

    run = tmp_path / "bert"
    Trainer(config("bert", ["train.epochs=1", "steps_per_epoch=5", "eval_batches=1"]), run, progress=False).fit()
    trained = load_trained(run)
    specials = [trained.tokenizer.token_id(s) for s in trained.tokenizer.specials]
    forward = trained.net.forward

    def favour_specials(*args, **kwargs):                 # every special token far above every word
        logits = forward(*args, **kwargs)
        logits[..., specials] += 100.0
        return logits

    trained.net.forward = favour_specials
    guesses = trained.fill("def [MASK](self): return [MASK]", top=5)
    assert len(guesses) == 2 and all(len(g) == 5 for g in guesses)
    words = [t for g in guesses for t, _ in g]
    assert not set(words) & set(trained.tokenizer.specials), words
    assert all(0 < p < 1 for g in guesses for _, p in g)


def test_sample_into_a_path_it_cannot_write_is_one_line(tmp_path, capsys):
    Trainer(config("vae", ["train.epochs=1", "train_size=100", "iwae_n=10", "iwae_k=2"]), tmp_path / "v",
            progress=False).fit()
    (tmp_path / "file").write_text("x")
    line = error_line(capsys, "sample", str(tmp_path / "v"), "--out", "/proc/forbidden/x.png")
    assert "/proc/forbidden" in line and "cannot be created" in line
    line = error_line(capsys, "sample", str(tmp_path / "v"), "--out", str(tmp_path / "file" / "x.png"))
    assert f"{tmp_path / 'file'}: a file of that name is in the way" in line
    line = error_line(capsys, "sample", str(tmp_path / "v"), "--out", str(tmp_path))
    assert "is a folder; give a file name" in line
