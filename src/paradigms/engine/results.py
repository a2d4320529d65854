"""What the commands found about a run (``attack``, ``certify``, ``anomaly``...), kept beside it and never overwritten.

Each result is one JSON file in ``RUN_DIR/results/``, numbered in the order the results were made, its name made from
the command and its parameters (``003-attack-pgd-linf.json``), with its figures beside it
(``003-attack-pgd-linf-panel.png``). A second attack with other settings is a second result; the report lists
them all, in order, as tables.

    from paradigms.engine.report import save_result
    result = Result(command="attack", name="attack-pgd-linf", title="PGD-40 (linf) on 1,000 images",
                    parameters={"eps": "8/255", ...}, columns=["eps", "accuracy"], rows=[["0.0314", "0.0%"]],
                    summary="clean accuracy 98.3%", values={...})
    save_result(run_dir, result, figures={"panel": (fig, "Clean and attacked images with the network's predictions.")})
    read_results(run_dir)      # [Result, ...] in the order they were made
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

FOLDER = "results"


@dataclass
class Result:
    """One command's findings: what was done (``title``, ``parameters``), a table (``columns``, ``rows`` of text
    already formatted for reading), one sentence (``summary``), the raw numbers (``values``) and the figures
    (``figures``: file name and caption, filled in when it is saved by :func:`paradigms.engine.report.save_result`)."""

    command: str
    name: str
    title: str
    parameters: dict = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    summary: str = ""
    values: dict = field(default_factory=dict)
    figures: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    created: str = ""
    index: int = 0

    @property
    def stem(self) -> str:
        return f"{self.index:03d}-{self.name}"


def slug(text: str) -> str:
    """A file-name piece from any text: letters, digits, dots and dashes."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", str(text)).strip("-").lower() or "result"


def next_index(run_dir: Path) -> int:
    folder = Path(run_dir) / FOLDER
    taken = [int(m.group(1)) for p in folder.glob("*.json") if (m := re.match(r"(\d+)-", p.name))]
    return max(taken, default=0) + 1


def result_path(run_dir: Path, result: Result, suffix: str) -> Path:
    """Where a file of ``result`` goes: ``results/NNN-NAME{suffix}`` (the index must be set)."""
    return Path(run_dir) / FOLDER / f"{result.stem}{suffix}"


def read_results(run_dir: Path) -> list[Result]:
    """Every result kept in a run folder, in the order they were made (an unreadable file is skipped)."""
    out = []
    for path in sorted((Path(run_dir) / FOLDER).glob("*.json")):
        try:
            data = json.loads(path.read_text())
            out.append(Result(**{k: v for k, v in data.items() if k in Result.__dataclass_fields__}))
        except (ValueError, TypeError):
            continue
    return sorted(out, key=lambda r: r.index)


def percent(x: float | None, digits: int = 1) -> str:
    """0.9833 -> "98.3%" (None -> "-")."""
    return "-" if x is None else f"{100 * x:.{digits}f}%"


__all__ = ["FOLDER", "Result", "next_index", "percent", "read_results", "result_path", "slug"]
