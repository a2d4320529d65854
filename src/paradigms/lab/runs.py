"""The runs a lab shows: every run folder under its RUNS_DIR, what each is, and only paths inside RUNS_DIR.

A run folder is any folder below RUNS_DIR holding a ``config.yaml`` (nested ones too); its id is its path relative to
RUNS_DIR, written with ``/``. Every path the lab reads comes through :func:`inside`, which refuses what would leave
RUNS_DIR: ``..``, absolute paths, and links that point out of it.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import shlex
import threading
from pathlib import Path

import yaml

from ..engine.runstate import read_state
from ..errors import UserError

SKIP = {"checkpoints", "figures", "results", "notes", "tb", "certify", ".lab"}
"""Folders of a run (and the lab's own) that hold no run folder: not searched."""


class NotFound(UserError):
    """A run or a file the request names does not exist inside RUNS_DIR (or may not be read)."""


def inside(root: Path, relative: str) -> Path:
    """``root / relative``, resolved, when it stays inside ``root``; :class:`NotFound` otherwise (``..`` anywhere, an
    absolute path, a link out of ``root``, a NUL byte)."""
    root = Path(root).resolve()
    text = str(relative)
    parts = text.replace("\\", "/").split("/")
    if "\0" in text or text.startswith(("/", "\\")) or ".." in parts or (len(text) > 1 and text[1] == ":"):
        raise NotFound(f"{relative!r} is not a path inside the runs folder")
    path = (root / text).resolve()
    if path != root and root not in path.parents:
        raise NotFound(f"{relative!r} is not a path inside the runs folder")
    return path


def find_runs(root: Path, depth: int = 6) -> list[Path]:
    """Every run folder below ``root`` (a folder with config.yaml), nested ones too, up to ``depth`` levels."""
    root = Path(root)
    out: list[Path] = []

    def walk(folder: Path, level: int) -> None:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            return
        if (folder / "config.yaml").is_file() and folder != root:
            out.append(folder)
        if level >= depth:
            return
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink() and entry.name not in SKIP and not entry.name.startswith("."):
                walk(entry, level + 1)

    walk(root, 0)
    return out


def run_id(root: Path, run: Path) -> str:
    return Path(run).resolve().relative_to(Path(root).resolve()).as_posix()


_PARSED: dict[Path, tuple[tuple, dict]] = {}
_PARSED_LOCK = threading.Lock()


def _parsed(path: Path, parse) -> dict:
    """``parse(text)`` of the file at ``path``, kept while its size, time and inode stay the same; {} when it is
    missing or unreadable."""
    try:
        st = os.stat(path)
    except OSError:
        return {}
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    with _PARSED_LOCK:
        hit = _PARSED.get(path)
    if hit is not None and hit[0] == key:
        return hit[1]
    try:
        data = parse(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        data = {}
    data = data if isinstance(data, dict) else {}
    with _PARSED_LOCK:
        _PARSED[path] = (key, data)
    return data


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _config(run: Path) -> dict:
    return _parsed(run / "config.yaml", lambda text: yaml.load(text, Loader=_YAML_LOADER) or {})


def recipe_of(run: Path) -> str | None:
    """The recipe a run folder's config.yaml names."""
    return _config(run).get("recipe")


def _final(run: Path) -> dict:
    return _parsed(run / "final.json", json.loads)


class MetricsCache:
    """Each run's metrics.jsonl, parsed once: a file that grew is read from where the last read stopped.

    metrics.jsonl only grows while a run trains, one whole line at a time; a resumed run rewrites it (a new file, so a
    new inode) and a shorter file is read again from the start. Each complete line is kept both parsed and as JSON
    text for the browser (NaN and infinities, which JSON cannot carry, as null), so a page of 10,000 rows costs a
    join, not 10,000 parses and dumps. A line cut by a kill mid-write is skipped, as :func:`read_metrics` does.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._runs: dict[Path, dict] = {}

    def _entry(self, run: Path) -> dict:
        path = Path(run) / "metrics.jsonl"
        try:
            st = os.stat(path)
        except OSError:
            return {"rows": [], "texts": []}
        with self._lock:
            entry = self._runs.get(path)
            if entry is None or entry["inode"] != st.st_ino or st.st_size < entry["offset"]:
                entry = self._runs[path] = {"inode": st.st_ino, "offset": 0, "rows": [], "texts": []}
            if st.st_size > entry["offset"]:
                with open(path, "rb") as f:
                    f.seek(entry["offset"])
                    chunk = f.read(st.st_size - entry["offset"])
                end = chunk.rfind(b"\n") + 1           # whole lines only: a line being written waits for its end
                for line in chunk[:end].splitlines():
                    try:
                        row = json.loads(line)
                    except ValueError:                  # a line cut by a kill mid-write
                        continue
                    if not isinstance(row, dict):
                        continue
                    text = line.decode()
                    if any(isinstance(v, float) and not math.isfinite(v) for v in row.values()):
                        text = json.dumps({k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                                           for k, v in row.items()})
                    entry["rows"].append(row)
                    entry["texts"].append(text)
                entry["offset"] += end
            return entry

    def rows(self, run: Path) -> list[dict]:
        """The rows of ``run``'s metrics.jsonl (shared: read, never change them)."""
        return self._entry(run)["rows"]

    def json_rows(self, run: Path, since: int = 0) -> tuple[str, int]:
        """Rows ``since`` on as a JSON array, and how many rows there are."""
        texts = self._entry(run)["texts"]
        count = len(texts)                      # first: another request may append while this one joins
        return "[" + ",".join(texts[max(0, since):count]) + "]", count


METRICS = MetricsCache()
"""The lab's one cache of metrics files."""


def read_metrics(run: Path) -> list[dict]:
    """``run``'s metrics.jsonl rows, through the lab's cache."""
    return METRICS.rows(run)


def headline(final: dict, rows: list[dict]) -> tuple[str, float] | None:
    """The run's first metric: of its final evaluation, else of its last evaluation so far."""
    source = final or next((r for r in reversed(rows) if r.get("split") == "eval"), {})
    for key, value in source.items():
        if key not in ("step", "split", "epoch", "time_s") and isinstance(value, (int, float)):
            return key, float(value)
    return None


def duration(seconds: float | None) -> str:
    """How long, for people: 0.04 s, 8.7 s, 12.5 min, 3.2 h; empty when unknown."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 100:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 6000 else f"{seconds / 3600:.1f} h"


def summary(root: Path, run: Path) -> dict:
    """What the runs list shows of one run: id, recipe, dataset, preset, state, headline metric, when, how long."""
    cfg, final, state = _config(run), _final(run), read_state(run)
    rows = read_metrics(run)
    head = headline(final, rows)
    seconds = next((r.get("time_s") for r in reversed(rows) if isinstance(r.get("time_s"), (int, float))), None)
    when = state.get("started") or datetime.datetime.fromtimestamp((run / "config.yaml").stat().st_mtime).isoformat(
        timespec="seconds")
    return {"id": run_id(root, run), "recipe": cfg.get("recipe", "?"), "dataset": cfg.get("dataset", "?"),
            "preset": cfg.get("preset", "?"), "seed": cfg.get("seed"), "state": state["state"],
            "error": state.get("error"), "metric": head[0] if head else None, "value": head[1] if head else None,
            "started": when, "seconds": seconds, "duration": duration(seconds),
            "step": rows[-1].get("step") if rows else 0}


def list_runs(root: Path) -> list[dict]:
    """Every run under ``root``, newest first."""
    return sorted((summary(root, r) for r in find_runs(root)), key=lambda s: s["started"] or "", reverse=True)


def checkpoint_info(run: Path) -> dict | None:
    """The latest checkpoint's step and its files' sha256 (from its pointer, checked when it is loaded)."""
    try:
        pointer = json.loads((run / "checkpoints" / "latest.json").read_text())
        return {"step": pointer["step"], "sha256": pointer["sha256"]}
    except (OSError, ValueError, KeyError):
        return None


def flat(data: dict, prefix: str = "") -> dict:
    """A nested config as ``{"optim.lr": 0.1, ...}`` (lists as their YAML text)."""
    out = {}
    for k, v in data.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def details(root: Path, run: Path) -> dict:
    """What a run's page shows besides its curves: summary, final metrics, config (text and flat), checkpoint, the
    commands that reproduce it and continue it, its state's command line."""
    from ..engine.report import format_metric

    s = summary(root, run)
    state = read_state(run)
    cfg = _config(run)
    config_text = (run / "config.yaml").read_text() if (run / "config.yaml").is_file() else ""
    return {**s, "final": [(k, format_metric(k, v)) for k, v in _final(run).items() if k != "step"],
            "config_text": config_text, "config": flat(cfg), "checkpoint": checkpoint_info(run),
            "reproduce": f"paradigms run {cfg.get('recipe', 'RECIPE')} --config {run / 'config.yaml'} --out NEW_FOLDER",
            "resume": f"paradigms run --resume {run}", "command": shlex.join(state.get("command") or []),
            "has_report": (run / "report.html").is_file()}


__all__ = ["METRICS", "MetricsCache", "NotFound", "checkpoint_info", "details", "duration", "find_runs", "flat",
           "headline", "inside", "list_runs", "read_metrics", "recipe_of", "run_id", "summary"]
