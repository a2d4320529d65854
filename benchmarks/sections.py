"""BENCHMARKS.md is made of sections, one per benchmark script, each between its own markers."""

from __future__ import annotations

import json
import sys
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
    ``end``, split at their "### N." headings, each ending at its "This section took" line (what follows the last
    one is the footer); so running one part never erases the others."""
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
            if line.startswith("This section took"):  # run_sections ends a part so, then a blank line
                kept[part].append("")
                part = None
    return kept


def run_sections(parts: dict, wanted: list[str], work: Path, out: Path, begin: str, end: str, header: list[str],
                 command=lambda part: f"--sections {part}", footer: tuple[str, ...] = (),
                 script: str | None = None) -> None:
    """Run each wanted part (``parts[name]()`` returns its lines), time it, keep its lines in ``work``/sections.json
    and write the whole sectioned block into ``out`` after each part: ``header``, the kept parts in name order, the
    parts not run yet, ``footer``. ``command(part)`` gives the arguments that reproduce a part with ``script``
    (default: the one running)."""
    import time

    script = script or Path(sys.argv[0]).name
    kept_path = work / "sections.json"
    for part in wanted:
        if part not in parts:
            raise SystemExit(f"--sections: unknown section {part!r} ({', '.join(parts)})")
        t0 = time.monotonic()
        lines = parts[part]()
        minutes = (time.monotonic() - t0) / 60
        lines.append(f"This section took {minutes:.0f} minute{'s' if round(minutes) != 1 else ''} here "
                     f"(`python benchmarks/{script} {command(part)}`).")
        kept = kept_sections(kept_path, out, begin, end)
        kept[part] = lines + [""]
        work.mkdir(parents=True, exist_ok=True)
        kept_path.write_text(json.dumps(kept, indent=1))
        render_sections(kept, parts, out, begin, end, header, footer)
        print(f"wrote section {part} into {out}", flush=True)
    render_sections(kept_sections(kept_path, out, begin, end), parts, out, begin, end, header, footer)


def render_sections(kept: dict, parts, out: Path, begin: str, end: str, header: list[str], footer=()) -> None:
    lines = [begin, *header]
    for key in sorted(kept):
        lines += kept[key]
    missing = [s for s in parts if s not in kept]
    if missing:
        lines.append(f"Sections not run yet: {', '.join(missing)}.")
    lines += [*footer, end]
    write_section(out, begin, end, "\n".join(lines) + "\n")
