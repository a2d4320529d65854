"""The command line: every kind of bad input gets one clear line and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from paradigms.cli import main

TINY = ["--quiet", "--set", "train.epochs=1", "--set", "train_size=256", "--set", "model.width=1"]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def error_line(capsys, *args) -> str:
    code, _, err = run_cli(capsys, *args)
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_list_shows_every_recipe(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    assert "supervised" in out and "backprop" in out and "digits" in out


def test_unknown_recipe(capsys):
    assert "did you mean 'supervised'" in error_line(capsys, "run", "supervsied")


def test_unknown_dataset(capsys, tmp_path):
    line = error_line(capsys, "run", "supervised", "--dataset", "mnsit", "--out", str(tmp_path / "r"))
    assert "unknown dataset 'mnsit'" in line and "mnist" in line


def test_unknown_config_key(capsys):
    assert "did you mean 'optim.lr'" in error_line(capsys, "run", "supervised", "--set", "optim.lrr=0.1")


def test_value_out_of_range(capsys):
    line = error_line(capsys, "run", "supervised", "--set", "train.batch_size=0")
    assert "train.batch_size" in line and ">= 1" in line


def test_unknown_preset_and_missing_recipe(capsys):
    assert "preset" in error_line(capsys, "run", "supervised", "--preset", "huge")
    assert "name a recipe" in error_line(capsys, "run")


def test_missing_data_file_names_it_and_its_checksum(capsys, tmp_path):
    line = error_line(capsys, "run", "supervised", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"))
    assert "train-images-idx3-ubyte.gz" in line
    assert "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609" in line


def test_corrupt_data_file_names_expected_checksum(capsys, tmp_path):
    d = tmp_path / "data" / "tinyshakespeare"
    d.mkdir(parents=True)
    (d / "input.txt").write_text("not shakespeare")
    from paradigms.data import load_text
    from paradigms.errors import DataError

    with pytest.raises(DataError, match="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"):
        load_text("tinyshakespeare", tmp_path / "data")


def test_corrupt_and_mismatched_checkpoints(capsys, tmp_path):
    run = tmp_path / "r"
    code, out, err = run_cli(capsys, "run", "supervised", "--out", str(run), *TINY)
    assert code == 0, err
    code, out, _ = run_cli(capsys, "eval", str(run))
    assert code == 0 and json.loads(out)["test/acc"] == json.loads((run / "final.json").read_text())["test/acc"]
    # a run folder is not reused by accident
    assert "already holds a run" in error_line(capsys, "run", "supervised", "--out", str(run), *TINY)
    # mismatched: the config now asks for another network than the checkpoint holds
    cfg = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(cfg.replace("width: 1", "width: 3"))
    assert "does not match" in error_line(capsys, "eval", str(run))
    (run / "config.yaml").write_text(cfg)
    # corrupt: a truncated weights file
    pointer = json.loads((run / "checkpoints" / "latest.json").read_text())
    w = run / "checkpoints" / pointer["weights"]
    w.write_bytes(w.read_bytes()[: len(w.read_bytes()) // 2])
    line = error_line(capsys, "eval", str(run))
    assert "corrupt" in line and pointer["weights"] in line
    assert "not a run folder" in error_line(capsys, "eval", str(tmp_path / "nowhere"))


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(capsys, tmp_path):
    run = tmp_path / "nan"
    line = error_line(capsys, "run", "supervised", "--out", str(run), "--quiet", "--set", "model.name=mlp",
                      "--set", "optim.lr=100", "--set", "optim.schedule=constant", "--set", "train.log_every=1",
                      "--set", "train.epochs=3")
    assert "non-finite loss" in line and "at step" in line
    assert not (run / "final.json").exists()


def test_report_redraws_figures(capsys, tmp_path):
    run = tmp_path / "r"
    assert run_cli(capsys, "run", "backprop", "--out", str(run), "--quiet", "--set", "train.epochs=2")[0] == 0
    (run / "report.html").unlink()
    code, out, _ = run_cli(capsys, "report", str(run))
    assert code == 0 and (run / "report.html").is_file()
    assert (run / "figures" / "efficient_backprop.png").is_file()


def test_console_script_exit_status(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "paradigms", "run", "nope"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown recipe 'nope'")


@pytest.mark.parametrize("args,words", [
    (["run", "supervised", "--sed", "1"], ["No such option: --sed", "--seed"]),            # unknown option
    (["run", "supervised", "--seed", "abc"], ["'--seed'", "integer"]),                      # wrong type
    (["eval"], ["Missing argument", "run_dir"]),                                            # missing argument
    (["augment", "--dataset", "digits", "--set", "x=1"], ["No such option: --set"]),        # another command's option
    (["trian"], ["No such command 'trian'"]),                                               # unknown sub-command
    (["run", "supervised", "--device", "tpu"], ["'tpu' is not one of 'auto', 'cpu', 'cuda'"]),  # a choice
    (["run", "supervised", "--preset", "huge"], ["'huge' is not one of 'quick', 'full', 'none'"]),
    (["config", "supervised", "--set", "optim.lrr=1"], ["did you mean 'optim.lr'"]),
])
def test_every_usage_error_is_one_line_and_exit_2(capsys, args, words):
    line = error_line(capsys, *args)
    assert all(w in line for w in words), line


def test_a_usage_error_from_the_installed_command_shows_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "paradigms", "run", "supervised", "--seed", "abc"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: Invalid value for '--seed'") and len(proc.stderr.splitlines()) == 1


def test_help_shows_choices_and_the_policy_example(capsys):
    code, out, _ = run_cli(capsys, "run", "--help")
    assert code == 0 and "<quick|full|none>" in out and "<auto|cpu|cuda>" in out
    code, out, _ = run_cli(capsys, "augment", "--help")
    assert code == 0 and "'[rotate, {cutout: {size: 8}}]'" in out  # no longer eaten as markup
    code, out, _ = run_cli(capsys)  # no command: the help, and no error
    assert code == 0 and "Commands" in out and "config" in out


def test_config_prints_the_resolved_yaml_with_each_fields_description(capsys, tmp_path):
    import yaml

    from paradigms import config as configlib
    from paradigms import recipes

    code, out, _ = run_cli(capsys, "config", "supervised", "--dataset", "mnist", "--set", "optim.lr=0.05")
    assert code == 0
    assert "# peak learning rate\n  lr: 0.05" in out and "# passes over the training set\n  epochs: 4" in out
    cfg = configlib.validate(recipes.get("supervised").Config, yaml.safe_load(out))
    assert cfg.optim.lr == 0.05 and cfg.model.width == 4  # the mnist quick preset, resolved
    # what it prints is a config file: run with it, the same config comes back
    (tmp_path / "c.yaml").write_text(out)
    code, again, _ = run_cli(capsys, "config", "supervised", "--config", str(tmp_path / "c.yaml"))
    assert code == 0 and again == out


def test_datasets_lists_every_dataset(capsys):
    code, out, _ = run_cli(capsys, "datasets")
    assert code == 0
    for name in ("digits", "mnist", "fashion-mnist", "cifar10", "olivetti-faces", "imagefolder:PATH", "stdlib",
                 "tinyshakespeare", "textfile:PATH"):
        assert name in out


def test_datasets_says_where_each_comes_from_its_licence_and_where_its_files_go(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "datasets", "--data-dir", str(tmp_path))
    assert code == 0
    block = out.split("\nmnist  (image)")[1].split("\nfashion-mnist")[0]
    assert "from: Y. LeCun" in block and "licence: CC BY-SA 3.0" in block
    assert f"files: {tmp_path / 'mnist'}/  (4 of 4 missing: run a recipe with --dataset mnist to download" in block
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_text("To be")
    code, out, _ = run_cli(capsys, "datasets", "--data-dir", str(tmp_path))
    assert f"files: {tmp_path / 'tinyshakespeare'}/  (all there)" in out
    assert "licence: Python Software Foundation License" in out          # stdlib, embedded: no files
