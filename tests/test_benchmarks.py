"""The benchmark studies' run cache (benchmarks/runs.py): a finished run is recalled, an interrupted one resumes."""

import json
import sys
from pathlib import Path

import pytest

from paradigms import config as configlib
from paradigms import recipes
from paradigms.engine import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import runs as runcache  # noqa: E402

SETS = ["train.epochs=2", "train_size=200"]


def test_a_finished_run_is_recalled_not_retrained(tmp_path, monkeypatch):
    acc = runcache.Runs(tmp_path, {"dataset": "digits"})("a", "supervised", SETS, 0)
    assert not (tmp_path / "a-s0").exists()  # not kept unless asked
    assert 0 < acc <= 1

    def no_training(*a, **k):
        raise AssertionError("a cached run was trained again")

    monkeypatch.setattr(runcache, "Trainer", no_training)
    again = runcache.Runs(tmp_path, {"dataset": "digits"})
    assert again("a", "supervised", SETS, 0) == acc
    assert again("a", "supervised", SETS, 0, metric=None)["test/acc"] == acc  # None: the run's metrics, all of them
    # another config under the same key is not the same run: without training there is no result
    assert again("a", "supervised", ["train.epochs=3", "train_size=200"], 0, train=False) is None
    assert again("a", "supervised", SETS, 1, train=False) is None  # another seed neither


def test_a_validation_run_is_kept_and_recalled(tmp_path, capsys):
    runs = runcache.Runs(tmp_path, {"dataset": "digits"})
    metrics = runs("v", "supervised", [*SETS, "val_size=100"], 0, metric=None)
    assert set(metrics) >= {"val/acc", "val/loss"} and "test/acc" not in metrics
    assert '"val/acc"' in capsys.readouterr().out  # the progress line shows the metric the run has
    assert runcache.Runs(tmp_path, {"dataset": "digits"})("v", "supervised", [*SETS, "val_size=100"], 0,
                                                          metric="val/acc", train=False) == metrics["val/acc"]


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    runs = runcache.Runs(tmp_path, {"dataset": "digits"}, keep=lambda key: True)
    # the run as a killed benchmark leaves it: a folder with checkpoints and no line in results.jsonl
    cls = recipes.get("supervised")
    cfg = configlib.resolve(cls, "quick", None, [*runcache.COMMON, *SETS], {"dataset": "digits", "seed": 0})
    expected = Trainer(cfg, tmp_path / "b-s0", progress=False).fit()["test/acc"]
    assert runs("b", "supervised", SETS, 0) == pytest.approx(expected)
    row = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[-1])
    assert row["key"] == "b-s0" and row["resumed"] is True
    # a folder from another config is not resumed: it is trained again from the start
    other = runs("b", "supervised", ["train.epochs=1", "train_size=200"], 0)
    row = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[-1])
    assert row["resumed"] is False and 0 < other <= 1


def test_augment_table_shows_loss_only_when_every_run_kept_it():
    import bench_augment

    res = {"standard": [0.80, 0.81], "standard + cutout": [0.80, 0.812]}
    full = bench_augment.table(res, {"standard": [0.9, 0.8], "standard + cutout": [0.7, 0.7]})
    assert full[0].endswith("test loss, mean |") and full[2].endswith(" 0.850 |") and full[3].endswith(" 0.700 |")
    part = bench_augment.table(res, {"standard": [0.9, 0.8], "standard + cutout": [0.7]})  # a run from a printed log
    assert "loss" not in part[0] and part[3].count("|") == part[0].count("|")
    # a gain counts when over 0.1 point and twice its paired standard error; the rest is seed noise
    assert "cutout vs standard +0.10% over 1 seed(s): within seed noise" in bench_augment.verdict(
        {"standard": [0.80], "standard + cutout": [0.801]})
    noisy = {"standard": [0.80, 0.81, 0.80], "standard + cutout": [0.81, 0.80, 0.815]}  # +1, -1, +1.5 points
    assert "cutout vs standard +0.50% ± 0.76% (paired se) over 3 seed(s): within seed noise" in bench_augment.verdict(noisy)
    steady = {"standard": [0.80, 0.81, 0.80], "standard + cutout": [0.81, 0.821, 0.809]}
    assert "(paired se) over 3 seed(s): adds" in bench_augment.verdict(steady)
    worse = {"none": [0.80, 0.81], "standard": [0.70, 0.711], "standard + mixup": [0.69, 0.70]}
    assert "standard vs none -9.95% ± 0.05% (paired se) over 2 seed(s): NOT the expected direction" in \
        bench_augment.verdict(worse)
    assert "mixup vs standard -1.05% ± 0.05% (paired se) over 2 seed(s): does not add" in bench_augment.verdict(worse)


def test_a_setting_added_later_at_its_default_keeps_the_kept_runs_fingerprints():
    import hashlib

    cfg = configlib.resolve(recipes.get("supervised"), "quick", None, SETS, {"dataset": "digits"})
    data = cfg.model_dump(mode="json")
    for field in ("data_dir", "source", *runcache.ADDED_LATER):  # the config as it was when the runs were kept
        *parents, key = field.split(".")
        node = data
        for p in parents:
            node = node.get(p, {})                                  # a section this recipe has not (a GAN's optim_d)
        node.pop(key, None)
    before = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]
    assert runcache.fingerprint(cfg) == before
    held = configlib.resolve(recipes.get("supervised"), "quick", None, [*SETS, "val_size=100"], {"dataset": "digits"})
    assert runcache.fingerprint(held) != before  # set, it is another run


def test_cutout_size_is_chosen_on_held_out_images_then_tested_against_standard():
    import bench_augment

    calls = []

    def fake_runs(key, recipe, sets, seed, metric=None, flags=None, train=True):
        calls.append((key, sets, seed))
        if "val_size=1000" in sets:  # the choice: validation metrics only; size 12 does best
            return {"val/acc": 0.85 if "cutout" not in key else
                    {"8": 0.80, "12": 0.83, "16": 0.82}[key.split("cutout")[1].split("-")[0] or "16"]}
        return {"test/acc": 0.81 if "cutout12" in key else 0.80, "test/loss": 0.7}

    lines = bench_augment.chosen_lines(fake_runs, 200, 2, run=True)
    val_keys = [k for k, sets, _ in calls if "val_size=1000" in sets]
    assert val_keys == ["cifar10-standard+cutout8-n5000-val1000-e200", "cifar10-standard+cutout12-n5000-val1000-e200",
                        "cifar10-standard+cutout-n5000-val1000-e200", "cifar10-standard-n5000-val1000-e200"]
    assert "Chosen: 12x12." in "\n".join(lines)  # the reference (standard alone, 85%) is not a candidate
    assert "| none (the standard policy alone, for reference) | 85.00% |" in lines
    test_keys = [(k, seed) for k, sets, seed in calls if "val_size=1000" not in sets]
    assert test_keys == [("cifar10-standard-n5000-e200", 0), ("cifar10-standard+cutout12-n5000-e200", 0),
                         ("cifar10-standard-n5000-e200", 1), ("cifar10-standard+cutout12-n5000-e200", 1)]
    assert any('"size": 12' in s for k, sets, _ in calls if "cutout12-n5000-e200" in k for s in sets)
    assert "cutout vs standard +1.00%" in lines[-2]
    # the size at the study's default keeps the key of the runs already kept
    assert bench_augment.run_key("cifar10", "standard + cutout", 200, 16) == "cifar10-standard+cutout-n5000-e200"


def test_a_sectioned_benchmark_on_a_fresh_checkout_keeps_the_parts_already_written(tmp_path):
    from sections import kept_sections, write_section

    begin, end = "<!-- bench:x:begin -->", "<!-- bench:x:end -->"
    out = tmp_path / "BENCHMARKS.md"
    parts = {"1": ["### 1. First", "", "| a |", "", "This section took 1 minute here.", ""],
             "3b": ["### 3b. Third, b", "", "text", ""]}
    body = [begin, "## X", "", "Command: c", ""] + parts["1"] + parts["3b"] + ["Sections not run yet: 2.", end]
    write_section(out, begin, end, "\n".join(body) + "\n")
    assert kept_sections(tmp_path / "missing.json", out, begin, end) == parts  # no work folder: from the file
    kept = tmp_path / "sections.json"
    kept.write_text(json.dumps({"2": ["### 2. Second", ""]}))
    assert kept_sections(kept, out, begin, end) == {"2": ["### 2. Second", ""]}  # the work folder's, when it has one
    assert kept_sections(tmp_path / "missing.json", tmp_path / "none.md", begin, end) == {}


def test_every_benchmark_script_imports():
    """A script that no longer imports (a helper it used was renamed) fails here, not months later in `make bench-*`."""
    import subprocess

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    names = sorted(p.stem for p in folder.glob("*.py") if p.stem.startswith(("bench_", "attack_speed")))
    assert "bench_autoattack" in names and "bench_robustness" in names
    done = subprocess.run([sys.executable, "-c", "; ".join(f"import {n}" for n in names)], cwd=folder,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
