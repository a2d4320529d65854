"""``paradigms lecture``: execute each section's notebook against the runs, then write the document from them.

    build(out="lecture", runs="runs/lecture", fast=True)     # what paradigms lecture --fast does

For each section (``sections/NN-name.py``, jupytext's percent format, in the lecture's order): the notebook is read,
the build's settings are put in a cell after its ``parameters`` cell (as papermill does: FAST, RUNS, DATA_DIR), and
nbclient executes it in a Python kernel of this interpreter; the executed notebook goes to
``OUT/notebooks/NN-name.ipynb``. The document ``OUT/index.html`` is rendered from the executed notebooks alone (the
Markdown cells, the code folded, the outputs: pictures written beside it in ``OUT/figures/``, the claims' numbers with
their provenance), so the two never disagree; ``OUT/claims.json`` lists every number with where it came from. A section
that fails (a run missing, a dataset absent, an error) is shown as such, with the reason, and the others still build.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import UserError, make_folder
from . import CLAIM_MIME, HEADLINE_MIME, RUN_MIME

SECTIONS = Path(__file__).parent / "sections"
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


@dataclass
class Section:
    number: int
    slug: str
    title: str
    path: Path

    @property
    def name(self) -> str:
        return f"{self.number:02d}-{self.slug}"


@dataclass
class Built:
    """One section after its build: the executed notebook, its claims, its headline, and how it went."""

    section: Section
    notebook: object = None
    error: str | None = None
    seconds: float = 0.0
    reused: bool = False
    claims: list[dict] = field(default_factory=list)
    headlines: list[dict] = field(default_factory=list)
    cells: list[dict] = field(default_factory=list)


def sections() -> list[Section]:
    """Every section of the lecture, in its order (the number in each notebook's file name)."""
    out = []
    for path in sorted(SECTIONS.glob("[0-9][0-9]-*.py")):
        number, slug = path.stem.split("-", 1)
        first = next((line for line in path.read_text().splitlines() if line.startswith("# # ")), f"# # {slug}")
        out.append(Section(int(number), slug, first[4:].strip(), path))
    return out


def select(only: str | None) -> list[Section]:
    """The sections ``--only`` names (numbers or names, separated by commas); all of them when None."""
    every = sections()
    if not only:
        return every
    chosen = []
    for item in (s.strip() for s in only.split(",") if s.strip()):
        match = [s for s in every if item in (str(s.number), f"{s.number:02d}", s.slug, s.name)]
        if not match:
            raise UserError(f"--only: no section {item!r}; the sections are "
                            f"{', '.join(f'{s.number} ({s.slug})' for s in every)}")
        chosen += [s for s in match if s not in chosen]
    return sorted(chosen, key=lambda s: s.number)


# -- executing a section ---------------------------------------------------------------------------------------------
def settings_cell(fast: bool, runs: Path, data_dir: str | None) -> str:
    return (f"# the build's settings (paradigms lecture{' --fast' if fast else ''})\n"
            f"FAST = {fast!r}\nRUNS = {str(runs)!r}\nDATA_DIR = {data_dir!r}")


async def execute(section: Section, fast: bool, runs: Path, data_dir: str | None, echo: Callable[[str], None],
                  where: str) -> Built:
    """Run the section's notebook top to bottom with the build's settings; an error stops it and is kept. A notebook
    executed before, with the same source and settings, by the same code, on runs that have not changed since (see
    :func:`fingerprint`), is reused as it is."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    built = Built(section)
    source, settings = section.path.read_text(), settings_cell(fast, runs, data_dir)
    t0 = time.monotonic()
    again = reusable(section, source, settings, runs)
    if again is not None:
        built.notebook, built.reused = again, True
        built.seconds = time.monotonic() - t0
        return built
    nb = jupytext.reads(source, fmt="py:percent")
    at = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), -1)
    injected = nbformat.v4.new_code_cell(settings)
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(at + 1, injected)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    code = [c for c in nb.cells if c.cell_type == "code"]

    def progress(cell, cell_index, **_):
        if cell.cell_type == "code":
            done = code.index(cell) + 1 if cell in code else 0
            echo(f"{where} {section.title}: cell {done} of {len(code)} done ({time.monotonic() - t0:.0f} s)")

    client = NotebookClient(nb, timeout=None, kernel_name="python3", allow_errors=False,
                            resources={"metadata": {"path": str(Path.cwd())}}, on_cell_executed=progress)
    # the kernel's: no progress bars in the cells, figures shown in them (the command line's Agg is not inherited)
    env = {**os.environ, "PARADIGMS_PROGRESS": "0", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    if fast:   # --fast's networks are tiny: a second thread gains them nothing and loses much when the machine is shared
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, "1")
    try:
        await client.async_execute(env=env, stderr=subprocess.DEVNULL)   # errors come as the cells' outputs
    except CellExecutionError as e:
        built.error = error_line(e)
    except Exception as e:                       # the kernel died, could not start, ...
        built.error = f"{type(e).__name__}: {e}"
    built.seconds = time.monotonic() - t0
    built.notebook = nb
    if built.error is None:
        keep(section, nb, source, settings, runs)
    return built


# -- reusing an executed notebook ------------------------------------------------------------------------------------
CACHE = ".lecture"
"""Under ``--runs``: each section's last executed notebook, with the fingerprint of what it read."""
RUN_FILES = ("config.yaml", "metrics.jsonl", "final.json", "checkpoints/latest.json")


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """The sha256 of the package's Python sources but this file (which only renders what the notebooks computed): a
    notebook executed by other code is executed again."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        if path.is_file() and "__pycache__" not in path.parts and path != Path(__file__).resolve():
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def used_runs(nb) -> list[str]:
    """The run folders an executed notebook used: those :func:`experiment` gave it and those its claims cite."""
    found = set()
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = out.get("data", {})
            if RUN_MIME in data:
                found.add(data[RUN_MIME]["run"])
            found.update(c["run"] for c in data.get(CLAIM_MIME, []))
    return sorted(found)


def fingerprint(source: str, settings: str, runs: list[str]) -> str | None:
    """What a section's notebook read: its source, the build's settings, the code, and each run's config, metrics,
    final metrics and checkpoint pointer (whose sha256 names the weights). None when a run folder is gone."""
    h = hashlib.sha256("\0".join([source, settings, code_digest()]).encode())
    for run in runs:
        if not Path(run).is_dir():
            return None
        for name in RUN_FILES:
            path = Path(run) / name
            h.update(f"\0{run}/{name}\0".encode() + (path.read_bytes() if path.is_file() else b"-"))
    return h.hexdigest()


def keep(section: Section, nb, source: str, settings: str, runs: Path) -> None:
    import nbformat

    from ..engine.checkpoint import atomic_write_text

    used = used_runs(nb)
    nb.metadata["paradigms"] = {"fingerprint": fingerprint(source, settings, used), "runs": used}
    (runs / CACHE).mkdir(exist_ok=True)
    atomic_write_text(runs / CACHE / f"{section.name}.ipynb", nbformat.writes(nb))


def reusable(section: Section, source: str, settings: str, runs: Path):
    """The section's notebook as last executed on these runs, when nothing it read has changed; else None."""
    import nbformat

    path = runs / CACHE / f"{section.name}.ipynb"
    try:
        nb = nbformat.read(path, as_version=4)
        meta = nb.metadata["paradigms"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    fp = fingerprint(source, settings, list(meta.get("runs", [])))
    return nb if fp is not None and fp == meta.get("fingerprint") else None


def error_line(e: Exception) -> str:
    """What a failed cell said, in one or two lines (the exception's, without the traceback's colours)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", line)]
    return errors[-1] if errors else (lines[-1] if lines else type(e).__name__)


# -- the document ----------------------------------------------------------------------------------------------------
def markdown(text: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def outputs(cell, built: Built, figures: Path, counter: list[int]) -> list[dict]:
    """A code cell's outputs as the document shows them; pictures written to ``figures``, claims collected."""
    shown = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") == "stdout" and out.get("text", "").strip():
                shown.append({"kind": "text", "text": out["text"]})
            continue
        if kind == "error":
            shown.append({"kind": "error", "text": f"{out.get('ename')}: {out.get('evalue')}"})
            continue
        data = out.get("data", {})
        built.claims += [dict(c) for c in data.get(CLAIM_MIME, [])]
        if HEADLINE_MIME in data:
            built.headlines.append(dict(data[HEADLINE_MIME]))
            continue
        if "image/png" in data:
            counter[0] += 1
            name = f"{built.section.name}-{counter[0]}.png"
            (figures / name).write_bytes(base64.b64decode(data["image/png"]))
            shown.append({"kind": "image", "src": f"figures/{name}", "alt": data.get("text/plain", "a figure")})
        elif "text/html" in data:
            shown.append({"kind": "html", "html": data["text/html"], "run": RUN_MIME in data})
        elif "text/plain" in data:
            shown.append({"kind": "text", "text": data["text/plain"]})
    return folded(shown)


def folded(shown: list[dict], most: int = 3) -> list[dict]:
    """A cell's outputs with its runs' command lines folded into one <details> when there are more than ``most``."""
    runs = [o for o in shown if o.get("run")]
    if len(runs) <= most:
        return shown
    lines = "".join(o["html"] for o in runs)
    block = {"kind": "html", "html": f"<details><summary class=\"meta\">The {len(runs)} runs of this cell: the command "
                                     f"that trains each again, and its training time</summary>{lines}</details>"}
    first = shown.index(runs[0])
    rest = [o for o in shown if not o.get("run")]
    return [*rest[:first], block, *rest[first:]]


def document_cells(built: Built, figures: Path) -> None:
    counter = [0]
    for cell in built.notebook.cells if built.notebook is not None else []:
        if cell.cell_type == "markdown":
            built.cells.append({"kind": "markdown", "html": markdown(cell.source)})
        elif cell.cell_type == "code":
            tags = cell.get("metadata", {}).get("tags", [])
            built.cells.append({"kind": "code", "code": cell.source, "outputs": outputs(cell, built, figures, counter),
                                "settings": "parameters" in tags or "injected-parameters" in tags})


def write_document(out: Path, built: list[Built], fast: bool, data_dir: str | None, total_s: float) -> Path:
    from ..engine.checkpoint import atomic_write_text
    from ..engine.report import templates

    mode = ("--fast: the embedded and small datasets (the digits, the Olivetti faces, a short text)" if fast else
            "the quick presets on the real datasets" + (f" ({data_dir})" if data_dir else ""))
    page = templates().get_template("lecture.html").render(
        sections=built, mode=mode, seconds=total_s, made=time.strftime("%Y-%m-%d %H:%M"),
        tour=[h for b in built for h in b.headlines], command="paradigms lecture" + (" --fast" if fast else ""))
    path = out / "index.html"
    atomic_write_text(path, page)
    return path


def write_claims(out: Path, built: list[Built]) -> Path:
    from ..engine.checkpoint import atomic_write_text

    claims = [{"section": b.section.name, **c} for b in built for c in b.claims]
    path = out / "claims.json"
    atomic_write_text(path, json.dumps(claims, indent=1) + "\n")
    return path


def print_pdf(index: Path, echo: Callable[[str], None]) -> Path | None:
    """``index.html`` printed to ``lecture.pdf`` by headless Chromium, when one is installed."""
    browser = next((shutil.which(b) for b in CHROMIUM if shutil.which(b)), None)
    if browser is None:
        echo("--pdf: no Chromium found to print with; install one (Debian: apt-get install chromium) and build again")
        return None
    pdf = index.with_name("lecture.pdf")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--print-to-pdf={pdf}",
                    "--no-pdf-header-footer", index.resolve().as_uri()], check=True, capture_output=True, timeout=300)
    return pdf


async def execute_all(chosen: list[Section], fast: bool, runs: Path, data_dir: str | None,
                      echo: Callable[[str], None], jobs: int) -> list[Built]:
    """Every chosen section, ``jobs`` at a time, in the lecture's order; their results in that order."""
    gate = asyncio.Semaphore(jobs)

    async def one(k: int, section: Section) -> Built:
        where = f"[{k}/{len(chosen)}]"
        async with gate:
            echo(f"{where} {section.title} ...")
            b = await execute(section, fast, runs, data_dir, echo, where)
        how = ("FAILED: " + b.error if b.error else
               "reused (nothing it reads has changed)" if b.reused else "built")
        echo(f"{where} {section.title}: {how} in {b.seconds:.0f} s")
        return b

    return list(await asyncio.gather(*(one(k, s) for k, s in enumerate(chosen, 1))))


def run_async(work):
    """``asyncio.run(work)``, or in a thread of its own when this thread already runs an event loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def shorter(path: str) -> str:
    """``path`` from the current folder when it lies under it (runs/lecture/...), else as it is."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path


def tour_table(built: list[Built]) -> list[str]:
    """The quick tour: one line per paradigm, what it learnt, its headline metric, time, run folder."""
    rows = [(h["paradigm"], h["learnt"], f"{h['metric']} {h['value']}",
             f"{h['seconds']:.0f} s" if h.get("seconds") is not None else "-", shorter(h["run"]))
            for b in built for h in b.headlines]
    head = ("paradigm", "what it learnt", "headline metric", "time", "run folder")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:{w}}}" for w in widths)
    return [fmt.format(*head), fmt.format(*("-" * w for w in widths)), *(fmt.format(*r) for r in rows)]


def build(out: str | Path = "lecture", runs: str | Path = "runs/lecture", fast: bool = False, only: str | None = None,
          pdf: bool = False, data_dir: str | None = None, echo: Callable[[str], None] = print,
          jobs: int | None = None) -> dict:
    """Build the lecture (or the sections ``only`` names); returns what was written and which sections failed.
    ``jobs``: sections executed at once, each in its own kernel (default: two with ``fast``, whose kernels use one
    thread each, and one otherwise); two that need one run take turns (:func:`paradigms.lecture.run_lock`)."""
    chosen = select(only)
    out, runs = Path(out).resolve(), Path(runs).resolve()
    make_folder(out, "--out")
    make_folder(runs, "--runs")
    for sub in ("notebooks", "figures"):
        (out / sub).mkdir(exist_ok=True)
    for old in (out / "figures").glob("*.png"):
        if any(old.name.startswith(s.name + "-") for s in chosen):
            old.unlink()
    t0 = time.monotonic()
    jobs = jobs or (min(2, os.cpu_count() or 1) if fast else 1)
    built = run_async(execute_all(chosen, fast, runs, data_dir, echo, jobs))
    import nbformat

    for b in built:
        nbformat.write(b.notebook, out / "notebooks" / f"{b.section.name}.ipynb")
        document_cells(b, out / "figures")
    total = time.monotonic() - t0
    index = write_document(out, built, fast, data_dir, total)
    claims = write_claims(out, built)
    failed = [b.section.name for b in built if b.error]
    for line in tour_table(built):
        echo(line)
    echo(f"{index} ({len(built) - len(failed)} of {len(built)} sections built in {total:.0f} s; "
         f"{sum(len(b.claims) for b in built)} numbers traced in {claims.name})")
    pdf_path = print_pdf(index, echo) if pdf else None
    return {"index": index, "claims": claims, "pdf": pdf_path, "failed": failed, "seconds": total,
            "sections": [b.section.name for b in built]}


__all__ = ["Section", "build", "sections", "select"]
