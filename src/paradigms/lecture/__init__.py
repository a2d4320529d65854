"""The lecture, "Overview of Deep Learning, from a learning perspective", made again from real runs.

    paradigms lecture --fast          # lecture/index.html and lecture/notebooks/NN-section.ipynb, runs in runs/lecture/

Each section of the lecture is a notebook, ``lecture/sections/NN-name.py`` in jupytext's percent format: the slide's
claim in Markdown, then code that trains (or reuses) its runs through the public API and shows what they learnt.
:mod:`.build` executes the notebooks (nbclient) and writes the document from the executed notebooks, so the two never
disagree. Inside a notebook, three helpers of this module keep every number traceable:

    run = experiment("supervised", "digits", ["train.epochs=10"], runs=RUNS)  # trained once, reused after
    say("LeNet-5 reaches {acc} on the held-out digits.", acc=claim(run, "test/acc", "{:.1%}"))
    headline("supervised", "digits from labelled examples", claim(run, "test/acc", "{:.1%}"))

:func:`experiment` keys a run's folder by its config, so a second build finds it finished (or resumes it when it was
interrupted); :func:`claim` reads a number from the run's ``metrics.jsonl`` and records where it came from (the run, the
metric, the step, the checkpoint's sha256, the paper's figure beside it); :func:`say` shows a sentence whose numbers are
claims (no number is typed into the text). The builder collects every claim into ``claims.json``.

This module is the lecture's own (floor 3, beside the command line and the lab): the library never imports it.
"""

from __future__ import annotations

import hashlib
import html
import json
import string
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import UserError

CLAIM_MIME = "application/vnd.paradigms.claim+json"
HEADLINE_MIME = "application/vnd.paradigms.headline+json"
RUN_MIME = "application/vnd.paradigms.run+json"
"""A run a notebook used (its folder, the command that trains it): the build reuses an executed notebook while none of
its runs changed."""
IGNORED = ("data_dir", "device")
"""Config keys that say where a run ran, not what it learnt: they do not change its key."""


class LectureError(UserError):
    """A section cannot be built as it stands: a run missing, stale, or without the metric asked for."""


# -- runs, keyed by their config -------------------------------------------------------------------------------------
def config_key(cfg) -> str:
    """Ten hex digits of the sha256 of the resolved config (machine-specific keys aside): the run's identity."""
    data = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in IGNORED}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


def experiment(recipe: str, dataset: str | None = None, sets: list[str] | tuple[str, ...] = (), preset: str = "quick",
               runs: str | Path = "runs/lecture", data_dir: str | None = None, seed: int = 0, **flags):
    """The run of ``recipe`` on ``dataset`` with these settings, as ``paradigms.run`` trains it, in
    ``runs/RECIPE-DATASET-KEY`` (KEY: :func:`config_key`): trained when missing, resumed when interrupted, reused as it
    is when finished. Returns a :class:`paradigms.api.RunResult`."""
    from .. import config as configlib
    from .. import recipes
    from ..api import RunResult
    from ..engine import Trainer
    from ..engine.trainer import load_config

    cfg = configlib.resolve(recipes.get(recipe), preset, None, list(sets),
                            {"dataset": dataset, "data_dir": data_dir, "seed": seed, **flags})
    cfg = recipes.get(recipe).prepare(cfg)
    key = config_key(cfg)
    out = Path(runs) / f"{recipe}-{cfg.dataset}-{key}"
    command = run_command(recipe, cfg.dataset, sets, preset, data_dir, seed, out, **flags)
    with run_lock(out):            # two sections built at once that need one run: one trains it, the other waits
        if (out / "config.yaml").is_file() and config_key(load_config(out)) != key:
            raise LectureError(f"{out} is stale: its config.yaml is not the config it is named after (was it "
                               f"edited?); delete the folder and build again")
        final = out / "final.json"
        if final.is_file():
            shown(command, out, "reused")
            return RunResult(out, json.loads(final.read_text()))
        resume = (out / "checkpoints" / "latest.json").is_file()
        trainer = Trainer(cfg, out, resume=resume, progress=False)
        metrics = trainer.fit()
        trainer.ctx.close()
    shown(command, out, "resumed" if resume else "trained now")
    return RunResult(out, metrics)


@contextmanager
def run_lock(out: Path):
    """An exclusive lock on the run folder ``out`` (a ``.NAME.lock`` file beside it), held while it trains."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "a") as f:
        try:
            import fcntl
        except ImportError:                   # not POSIX: no lock (build with --jobs 1 there)
            yield
            return
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_command(recipe: str, dataset: str, sets, preset: str, data_dir, seed: int, out: Path, **flags) -> str:
    """The ``paradigms run`` command line that trains the same run (:func:`experiment`'s arguments, spelt as options)."""
    import shlex

    words = ["paradigms", "run", recipe, "--dataset", dataset]
    words += ["--preset", preset] if preset != "quick" else []
    for item in sets:
        words += ["--set", item]
    words += ["--seed", str(seed)] if seed else []
    words += ["--data-dir", str(data_dir)] if data_dir else []
    words += ["--from", str(flags.pop("source"))] if flags.get("source") else []
    for name, value in flags.items():
        if value is not None:
            words += [f"--{name.replace('_', '-')}", str(value)]
    return shlex.join([*words, "--out", str(out)])


def shown(command: str, out: Path, how: str) -> None:
    """One line under the cell that made (or found) a run: the command that trains it again and the time it took."""
    seconds = run_seconds(out)
    took = f"{how}; its training took {seconds:.0f} s" if seconds is not None else how
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        get_ipython = None
    if get_ipython is None or get_ipython() is None:         # a script, not a notebook: the line, printed
        print(f"$ {command}  ({took})")
        return
    display({"text/plain": f"$ {command}  ({took})",
             "text/html": f'<p class="meta command"><code>$ {html.escape(command)}</code> ({html.escape(took)})</p>',
             RUN_MIME: {"run": str(out), "command": command}}, raw=True)


# -- numbers with their provenance -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """One number of the document, where it came from and what the paper says."""

    text: str
    """The number as the document shows it."""
    value: float
    run: str
    key: str
    step: int | None
    sha256: str | None
    source: str
    paper: str | None = None

    def record(self) -> dict:
        return asdict(self)

    def title(self) -> str:
        said = f"{self.key} = {self.value:.6g} in {self.run}/{self.source}"
        said += f" (step {self.step})" if self.step is not None else ""
        said += f"; checkpoint sha256 {self.sha256}" if self.sha256 else ""
        return said + (f"; the paper: {self.paper}" if self.paper else "")

    def html(self) -> str:
        return (f'<span class="claim" title="{html.escape(self.title())}" data-run="{html.escape(self.run)}" '
                f'data-key="{html.escape(self.key)}">{html.escape(self.text)}</span>')

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/plain": self.text, "text/html": self.html(), CLAIM_MIME: [self.record()]}


def checkpoint_sha256(run_dir: Path) -> str | None:
    """The sha256 of the run's latest weights, as its checkpoint pointer records it."""
    try:
        pointer = json.loads((Path(run_dir) / "checkpoints" / "latest.json").read_text())
        return pointer["sha256"][pointer["weights"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def claim(run, key: str, fmt: str = "{:.3g}", paper: str | None = None) -> Claim:
    """The last value of ``key`` in the run's ``metrics.jsonl`` (its final evaluation), formatted with ``fmt``, with
    where it came from. ``run``: a run folder or what :func:`experiment` returned."""
    from ..engine.runlog import read_metrics

    run_dir = Path(getattr(run, "run_dir", run))
    rows = [r for r in read_metrics(run_dir) if key in r]
    if not rows:
        known = sorted({k for r in read_metrics(run_dir) for k in r if "/" in k})
        raise LectureError(f"{run_dir / 'metrics.jsonl'} has no {key!r}" +
                           (f"; it has {', '.join(known[:12])}" if known else ": the run has not been evaluated"))
    row = rows[-1]
    value = float(row[key])
    return Claim(fmt.format(value), value, str(run_dir), key, row.get("step"), checkpoint_sha256(run_dir),
                 "metrics.jsonl", paper)


def measure(run, name: str, value: float, fmt: str = "{:.3g}", paper: str | None = None) -> Claim:
    """A number this notebook computed from the run's trained network (not one its training logged), recorded as a
    claim all the same: the run, what was measured, the checkpoint it was measured on."""
    run_dir = Path(getattr(run, "run_dir", run))
    return Claim(fmt.format(value), float(value), str(run_dir), name, None, checkpoint_sha256(run_dir),
                 "computed by the notebook from the checkpoint", paper)


def panel(name: str, run, runs, **state) -> None:
    """A link to the lab's panel ``name`` on this run, its inputs in the address (``paradigms lab RUNS`` serves it)."""
    from urllib.parse import urlencode

    from IPython.display import display

    run_id = Path(getattr(run, "run_dir", run)).resolve().relative_to(Path(runs).resolve()).as_posix()
    url = f"http://127.0.0.1:7860/panel/{name}?{urlencode({'run': run_id, **state})}"
    display({"text/plain": f"paradigms lab {runs}, then {url}",
             "text/html": f'<p class="meta">Poke this network yourself: <code>paradigms lab {html.escape(str(runs))}'
                          f'</code>, then <a href="{html.escape(url)}">the {html.escape(name)} panel</a>.</p>'},
            raw=True)


def say(text: str, **values) -> None:
    """Show one sentence whose ``{name}`` fields are claims (or words): in the document, each number shows where it
    came from when the pointer rests on it. No number is typed into ``text``."""
    from IPython.display import display

    names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
    missing = names - set(values)
    if missing:
        raise LectureError(f"say: no value given for {', '.join(sorted(missing))}")
    shown = {k: v.html() if isinstance(v, Claim) else html.escape(str(v)) for k, v in values.items()}
    plain = {k: v.text if isinstance(v, Claim) else str(v) for k, v in values.items()}
    claims = [v.record() for v in values.values() if isinstance(v, Claim)]
    display({"text/plain": text.format(**plain), "text/html": f"<p>{html.escape(text).format(**shown)}</p>",
             CLAIM_MIME: claims}, raw=True)


def headline(paradigm: str, learnt: str, number: Claim, time_s: float | None = None) -> None:
    """The section's line of the quick tour's table: the paradigm, what it learnt, its headline metric, the time its
    run took and its folder."""
    from IPython.display import display

    row = {"paradigm": paradigm, "learnt": learnt, "metric": number.key, "value": number.text, "run": number.run,
           "seconds": time_s if time_s is not None else run_seconds(number.run)}
    display({"text/plain": f"{paradigm}: {learnt}: {number.key} {number.text}", HEADLINE_MIME: row,
             CLAIM_MIME: [number.record()]}, raw=True)


def run_seconds(run_dir) -> float | None:
    """How long the run trained (the ``time_s`` of its last row in ``metrics.jsonl``; None when it does not say)."""
    from ..engine.runlog import read_metrics

    times = [r["time_s"] for r in read_metrics(Path(run_dir)) if isinstance(r.get("time_s"), (int, float))]
    return float(times[-1]) if times else None


__all__ = ["CLAIM_MIME", "Claim", "HEADLINE_MIME", "RUN_MIME", "LectureError", "claim", "config_key", "experiment", "headline",
           "measure", "panel", "run_command", "run_seconds", "say"]
