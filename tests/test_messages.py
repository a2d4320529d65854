"""Bad input users met, each through the command line: one line ``error: ...`` that names the thing (the path, the
key) and says what is wrong, exit status 2; and the note an image folder gives about the files it skips."""

from __future__ import annotations

import pytest

from .test_cli import error_line, run_cli

FAST = ["--quiet", "--set", "train.epochs=0", "--set", "model.width=1"]


# ---------------------------------------------------------------------------------------------
# run folders that cannot be made


def test_run_folder_under_proc(capsys):
    line = error_line(capsys, "run", "supervised", "--out", "/proc/forbidden/run", *FAST)
    assert "run folder /proc/forbidden/run cannot be created" in line and "choose a folder you can write to" in line


def test_run_folder_below_a_file(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    line = error_line(capsys, "run", "supervised", "--out", str(blocker / "run"), *FAST)
    assert f"run folder {blocker / 'run'}" in line and f"{blocker} is a file, not a folder" in line
    line = error_line(capsys, "run", "supervised", "--out", str(blocker), *FAST)
    assert f"run folder {blocker}" in line and "a file of that name is in the way" in line


def test_a_file_where_the_run_keeps_a_folder(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").write_text("in the way")
    line = error_line(capsys, "run", "supervised", "--out", str(run), *FAST)
    assert str(run / "checkpoints") in line and "is a file" in line and "--out" in line


def test_a_failed_run_leaves_no_empty_run_folder(capsys, tmp_path):
    out = tmp_path / "new" / "run"
    assert "does not exist" in error_line(capsys, "run", "supervised", "--dataset",
                                          f"imagefolder:{tmp_path / 'missing'}", "--out", str(out), *FAST)
    assert not (tmp_path / "new").exists()


def test_the_python_api_raises_the_same_error(tmp_path):
    import paradigms
    from paradigms.errors import UserError

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="is a file, not a folder"):
        paradigms.run("supervised", sets=["train.epochs=0"], out=blocker / "run")


# ---------------------------------------------------------------------------------------------
# image folders: missing, empty, nothing readable, files skipped


def _png(path, size=(8, 8), value=0):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)


def test_missing_image_folder(capsys, tmp_path):
    missing = tmp_path / "missing"
    line = error_line(capsys, "run", "supervised", "--dataset", f"imagefolder:{missing}", *FAST)
    assert f"imagefolder path {missing} does not exist" in line
    assert "one sub-folder of images per class" in line and "PATH/cat/1.png" in line


def test_image_folder_with_no_images(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".DS_Store").write_text("hidden files do not count")
    line = error_line(capsys, "run", "supervised", "--dataset", f"imagefolder:{empty}", *FAST)
    assert f"imagefolder {empty} has no images" in line and "one sub-folder of images per class" in line
    text = tmp_path / "text"
    text.mkdir()
    (text / "readme.txt").write_text("not an image")
    line = error_line(capsys, "run", "supervised", "--dataset", f"imagefolder:{text}", *FAST)
    assert f"imagefolder {text} has no image" in line and "1 file that is not an image (.txt): readme.txt" in line
    assert "one sub-folder of images per class" in line


def test_image_folder_says_which_files_it_skipped(capsys, tmp_path):
    root = tmp_path / "pics"
    for c, value in (("cat", 40), ("dog", 200)):
        for i in range(4):
            _png(root / c / f"{i}.png", value=value)
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / "labels.csv").write_text("not an image")
    (root / "dog" / "more.txt").write_text("not an image")
    (root / "dog" / ".DS_Store").write_text("hidden: not counted")
    code, out, err = run_cli(capsys, "run", "supervised", "--dataset", f"imagefolder:{root}",
                             "--out", str(tmp_path / "run"), "--set", "train.figures=false", *FAST)
    assert code == 0, err
    notes = [line for line in err.splitlines() if "skipped" in line]
    assert notes == [f"imagefolder:{root}: skipped 3 files that are not images (.txt, .csv): "
                     "cat/notes.txt, dog/labels.csv, dog/more.txt"]
    assert "Traceback" not in err

    from paradigms.data import load_images

    data = load_images(f"imagefolder:{root}")  # read again in this process: said once, and the images all read
    assert data.num_train + data.num_test == 8 and data.classes == ["cat", "dog"]
    assert "skipped" not in capsys.readouterr().err


def test_image_folder_note_only_on_the_main_process(capsys, tmp_path, monkeypatch):
    root = tmp_path / "pics"
    for c in ("a", "b"):
        for i in range(2):
            _png(root / c / f"{i}.png")
    (root / "a" / "x.txt").write_text("")
    from paradigms.data import load_images

    monkeypatch.setenv("RANK", "1")
    load_images(f"imagefolder:{root}")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    load_images(f"imagefolder:{root}")
    assert capsys.readouterr().err == f"imagefolder:{root}: skipped 1 file that is not an image (.txt): a/x.txt\n"


# ---------------------------------------------------------------------------------------------
# non-finite numbers


@pytest.mark.parametrize("key", ["optim.lr", "train.grad_clip", "train.checkpoint_every_s"])
@pytest.mark.parametrize("value", ["nan", ".nan", "inf", "-inf", ".inf"])
def test_non_finite_numbers_are_refused(capsys, key, value):
    line = error_line(capsys, "run", "supervised", "--set", f"{key}={value}")
    assert line.startswith(f"error: config {key} = ") and "must be a finite number" in line
    assert "should be" not in line  # not a range error: nan is no number to compare


def test_non_finite_number_in_a_list_and_in_a_config_file(capsys, tmp_path):
    line = error_line(capsys, "run", "supervised", "--set", "optim.betas=[0.9, .nan]")
    assert "config optim.betas.1 = nan" in line and "must be a finite number" in line
    (tmp_path / "c.yaml").write_text("optim:\n  lr: .inf\n")
    line = error_line(capsys, "config", "supervised", "--config", str(tmp_path / "c.yaml"))
    assert "config optim.lr = inf" in line and "must be a finite number" in line and "<= 100" in line


def test_every_recipes_defaults_and_presets_are_finite():
    """No config of a recipe uses inf or nan as a setting, so refusing them loses nothing."""
    from paradigms import config as configlib
    from paradigms.recipes import all_recipes

    for name, recipe in all_recipes().items():
        for preset in ("quick", "full", "none"):
            cfg = configlib.resolve(recipe, preset)
            configlib.validate(recipe.Config, cfg.model_dump(mode="json"))  # defaults validated too
