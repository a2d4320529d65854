"""BENCHMARKS.md is made of sections, one per benchmark script, each between its own markers."""

from __future__ import annotations

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
