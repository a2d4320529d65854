"""Train-or-recall for the benchmark studies: each finished run's metrics are kept in WORK/results.jsonl.

A study of many runs survives interruption: a finished run is never trained again (unless its resolved
config changed), and an interrupted one resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import time
from pathlib import Path

from paradigms import config as configlib
from paradigms import recipes
from paradigms.adversarial.training import AdversarialConfig
from paradigms.engine import Trainer
from paradigms.engine.trainer import load_config

COMMON = ["train.eval_every=0", "train.figures=false"]

# config fields added after the kept runs (dotted for nested ones), with the default that reproduces what
# those runs did
ADDED_LATER = {"val_size": None, "train.grad_clip": None, "optim.betas": [0.9, 0.999], "optim.eps": 1e-8,
               "adversarial": AdversarialConfig().model_dump(mode="json"), "optim.min_lr": 0.0, "optim_d.min_lr": 0.0,
               "optim_g.min_lr": 0.0, "virtual_batchnorm": 0, "model.patch": 4, "model.dim": 192, "model.depth": 6,
               "model.heads": 3, "model.cls_token": False, "text_slice": None}


def mean(xs) -> float:
    return statistics.mean(xs)


def std(xs) -> float:
    return statistics.pstdev(xs) if len(xs) > 1 else 0.0


def fingerprint(cfg) -> str:
    """A hash of what decides a run's result: the resolved config without its paths."""
    data = cfg.model_dump(mode="json")
    for path_field in ("data_dir", "source"):
        data.pop(path_field, None)
    for later, default in ADDED_LATER.items():  # a setting added after runs were kept, left at its default,
        *parents, key = later.split(".")         # changes nothing they did: their fingerprints stay valid
        node = data
        for p in parents:
            node = node.get(p, {})
        if node.get(key, ...) == default:
            node.pop(key)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:12]


class Runs:
    """``runs(key, recipe, sets, seed)`` trains a run (quick preset, or ``preset``, + ``sets``) or recalls its result."""

    def __init__(self, work: Path, flags: dict, keep=lambda key: False):
        self.work, self.flags, self.keep = Path(work), flags, keep
        self.work.mkdir(parents=True, exist_ok=True)
        self.log = self.work / "results.jsonl"
        self.done: dict[str, dict] = {}
        self.trained: list[dict] = []  # the rows of the runs trained (not recalled) by this process
        if self.log.is_file():
            for line in self.log.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    row.setdefault("metrics", {"test/acc": row["acc"]})  # rows written before metrics were kept
                    self.done[row["key"]] = row

    def __call__(self, key: str, recipe: str, sets: list[str], seed: int, source: Path | None = None,
                 metric: str | None = "test/acc", flags: dict | None = None, train: bool = True, preset: str = "quick"):
        """The run's ``metric`` (None: all its metrics, a dict); trained first unless already done
        (``train=False``: None if not done)."""
        key = f"{key}-s{seed}"
        flags = {**self.flags, **(flags or {}), "seed": seed, **({"source": str(source)} if source else {})}
        cls = recipes.get(recipe)
        cfg = cls.prepare(configlib.resolve(cls, preset, None, [*COMMON, *sets], flags))
        fp = fingerprint(cfg)
        row = self.done.get(key)
        if row and row.get("config", fp) == fp and (metric is None or metric in row["metrics"]):
            return row["metrics"] if metric is None else row["metrics"][metric]  # rows without a config predate it
        if not train:
            return None
        run_dir = self.dir(key)
        resume = (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir())
        if resume:
            try:
                resume = fingerprint(load_config(run_dir)) == fp
            except Exception:  # a folder the interruption left half-written: start again
                resume = False
        if not resume:
            shutil.rmtree(run_dir, ignore_errors=True)
        t = time.monotonic()
        metrics = Trainer(cfg, run_dir, resume=resume, progress=False).fit()
        metrics = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
        row = {"key": key, "config": fp, "acc": metrics.get("test/acc"), "metrics": metrics,
               "s": round(time.monotonic() - t, 1), "resumed": resume}
        self.done[key] = row
        self.trained.append(row)
        with self.log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        shown = metric or next((m for m in ("test/acc", "val/acc") if m in metrics), None)
        print(json.dumps({"run": key, **({shown: round(metrics[shown], 4)} if shown else {}), "s": row["s"],
                          "resumed": resume}), flush=True)
        if not self.keep(key):  # keep the disk small: only the runs other runs start from are kept
            shutil.rmtree(run_dir, ignore_errors=True)
        return metrics if metric is None else metrics[metric]

    def measured(self, key: str, measure) -> dict:
        """The metrics of a measurement that trains nothing (a probe of a kept run, a baseline), kept in the results
        under ``key`` as a run's are: ``measure()`` is called the first time only."""
        row = self.done.get(key)
        if row is None:
            metrics = measure()
            row = {"key": key, "acc": metrics.get("test/acc"), "metrics": metrics}
            self.done[key] = row
            with self.log.open("a") as f:
                f.write(json.dumps(row) + "\n")
        return row["metrics"]

    def seconds(self, key: str, seed: int = 0) -> float:
        """The training time of a run trained or recalled (``key`` without its seed)."""
        return self.done[f"{key}-s{seed}"]["s"]

    def dir(self, key: str, seed: int | None = None) -> Path:
        return self.work / (key if seed is None else f"{key}-s{seed}")

