"""BENCHMARKS.md is made of sections, one per benchmark script, each between its own markers."""

from __future__ import annotations

import json
from pathlib import Path

HEADER = "# Benchmarks\n\nEvery number here was printed by the command given beside it.\n\n"


def write_section(out: Path, begin: str, end: str, section: str) -> None:
    """Replace the text between ``begin`` and ``end`` in ``out`` by ``section`` (or append it)."""
    text = out.read_text() if out.is_file() else HEADER
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = head + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    out.write_text(text)


def kept_sections(kept_path: Path, out: Path, begin: str, end: str) -> dict[str, list[str]]:
    """A sectioned benchmark's parts as their last runs printed them: ``kept_path`` (JSON, the work folder's),
    or on a fresh checkout, where the work folder is empty, the parts already in ``out`` between ``begin`` and
    ``end``, split at their "### N." headings; so running one part never erases the others."""
    if kept_path.is_file():
        return json.loads(kept_path.read_text())
    text = out.read_text() if out.is_file() else ""
    if begin not in text or end not in text:
        return {}
    kept: dict[str, list[str]] = {}
    part = None
    for line in text.split(begin, 1)[1].split(end, 1)[0].splitlines():
        if line.startswith("### "):
            part = line[4:].split(".", 1)[0]
            kept[part] = []
        if line.startswith("Sections not run yet:"):
            part = None
        if part is not None:
            kept[part].append(line)
    return kept
