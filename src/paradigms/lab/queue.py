"""Runs started from the lab: ``paradigms run`` subprocesses, one at a time (two cores), the others waiting in a queue.

The queue is kept in ``RUNS_DIR/.lab/queue.json`` and each subprocess's output in ``RUNS_DIR/.lab/logs/``, so a lab
that restarts finds its queue as it left it: a run still alive is shown running (and the next one starts when it
ends); a queued one is still queued. A request becomes an argument list (``--set`` values as single arguments, never
through a shell); its config is checked by the same code as the command line's before it is queued
(:func:`check_request`).

Stopping a run sends it Ctrl-C (SIGINT): the training loop writes ``interrupted`` in its ``state.json`` and keeps its
last checkpoint; resuming queues ``paradigms run --resume RUN_DIR``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..engine.runstate import alive
from ..errors import UserError

MAX_SETS = 64
MAX_TEXT = 500


class FieldError(UserError):
    """A request the form can show beside one of its fields."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name


def check_request(recipe: str, dataset: str | None, preset: str, sets: list[str], seed: int | None) -> dict:
    """The request checked as ``paradigms run`` checks it (the recipe, the dataset's name, every ``--set``, the whole
    config); :class:`FieldError` names the field and carries the command line's own message."""
    from .. import config as configlib
    from .. import recipes
    from ..data.registry import lookup

    if not isinstance(recipe, str) or not recipe.strip():
        raise FieldError("recipe", "choose a recipe")
    if len(sets) > MAX_SETS or any(not isinstance(s, str) or len(s) > MAX_TEXT for s in sets):
        raise FieldError("sets", f"at most {MAX_SETS} settings of at most {MAX_TEXT} characters each")
    if any(s.strip().startswith("-") for s in sets):
        raise FieldError("sets", "a setting is key=value (e.g. optim.lr=0.05), not an option")
    try:
        kind = recipes.get(recipe)
    except UserError as e:
        raise FieldError("recipe", str(e)) from None
    if dataset:
        if len(dataset) > MAX_TEXT:
            raise FieldError("dataset", f"a dataset name of at most {MAX_TEXT} characters")
        try:
            lookup(dataset)
        except UserError as e:
            raise FieldError("dataset", str(e)) from None
    if preset not in ("quick", "full", "none"):
        raise FieldError("preset", f"unknown preset {preset!r}; valid: quick, full, none")
    try:
        cfg = configlib.resolve(kind, preset, None, list(sets), {"dataset": dataset or None, "seed": seed})
    except UserError as e:
        raise FieldError("sets", str(e)) from None
    return {"recipe": recipe, "dataset": cfg.dataset, "preset": preset, "sets": list(sets), "seed": seed}


@dataclass
class Job:
    """One run the lab was asked for: a new run (``recipe``...) or a resumed one (``resume``)."""

    id: int
    run: str                             # the run folder, relative to RUNS_DIR
    argv: list[str]
    state: str = "queued"                # queued | running | done | stopped | failed
    pid: int | None = None
    code: int | None = None
    queued: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    label: str = ""


class RunQueue:
    """The lab's runs: queued, one running, and those done; persisted in ``RUNS_DIR/.lab/queue.json``."""

    def __init__(self, root: Path, python: str = sys.executable, poll_s: float = 0.5):
        self.root = Path(root).resolve()
        self.home = self.root / ".lab"
        self.python, self.poll_s = python, poll_s
        self.lock = threading.RLock()
        self.jobs: list[Job] = []
        self.procs: dict[int, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._load()
        self.thread = threading.Thread(target=self._loop, name="paradigms-lab-queue", daemon=True)
        self.thread.start()

    # -- persistence ---------------------------------------------------------------------------------------------
    def _load(self) -> None:
        try:
            data = json.loads((self.home / "queue.json").read_text())
            self.jobs = [Job(**j) for j in data]
        except (OSError, ValueError, TypeError):
            self.jobs = []

    def _save(self) -> None:
        from ..engine.checkpoint import atomic_write_text

        self.home.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.home / "queue.json", json.dumps([asdict(j) for j in self.jobs], indent=1))

    # -- requests ------------------------------------------------------------------------------------------------
    def submit(self, request: dict) -> Job:
        """Queue a new run of a checked request (:func:`check_request`) in a fresh folder under RUNS_DIR."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        with self.lock:
            name = f"{request['recipe']}-{request['dataset'].replace(':', '_').replace('/', '_')}-{stamp}"
            n, run = 1, name
            taken = {j.run for j in self.jobs}
            while (self.root / run).exists() or run in taken:
                n += 1
                run = f"{name}-{n}"
            argv = ["run", request["recipe"], "--preset", request["preset"], "--out", str(self.root / run), "--quiet"]
            if request.get("dataset"):
                argv += ["--dataset", request["dataset"]]
            if request.get("seed") is not None:
                argv += ["--seed", str(int(request["seed"]))]
            for s in request["sets"]:
                argv += ["--set", s]
            return self._add(run, argv, f"{request['recipe']} on {request['dataset']}")

    def resume(self, run: str) -> Job:
        """Queue ``paradigms run --resume`` of an interrupted run (``run``: relative to RUNS_DIR, already checked)."""
        from ..engine.runstate import read_state

        with self.lock:
            if any(j.run == run and j.state in ("queued", "running") for j in self.jobs):
                raise UserError(f"{run} is already queued or running")
            state = read_state(self.root / run)["state"]
            if state not in ("interrupted", "failed"):
                raise UserError(f"{run} is {state}: only an interrupted run can be resumed")
            if not (self.root / run / "checkpoints" / "latest.json").is_file():
                raise UserError(f"{run} has no checkpoint to resume from; start it again")
            return self._add(run, ["run", "--resume", str(self.root / run), "--quiet"], f"resume {run}")

    def _add(self, run: str, argv: list[str], label: str) -> Job:
        job = Job(id=max((j.id for j in self.jobs), default=0) + 1, run=run, argv=argv, label=label)
        self.jobs.append(job)
        self._save()
        return job

    def stop(self, job_id: int) -> Job:
        """Stop a running job (Ctrl-C: its checkpoint is kept, its state says interrupted) or drop a queued one."""
        with self.lock:
            job = next((j for j in self.jobs if j.id == job_id), None)
            if job is None:
                raise UserError(f"no run {job_id} in the lab's queue")
            if job.state == "queued":
                job.state, job.ended = "stopped", time.time()
            elif job.state == "running" and job.pid:
                try:
                    os.kill(job.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
                job.state = "stopping"
            self._save()
            return job

    def snapshot(self) -> list[dict]:
        with self.lock:
            return [asdict(j) for j in self.jobs]

    def close(self) -> None:
        """Stop the queue's thread (the runs themselves go on; a restarted lab finds them)."""
        self._stop.set()
        self.thread.join(timeout=5)

    # -- the worker ----------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the queue must outlive any one bad job
                pass
            self._stop.wait(self.poll_s)

    def tick(self) -> None:
        """Notice runs that ended; start the next queued one when none runs."""
        with self.lock:
            changed = False
            for job in self.jobs:
                if job.state not in ("running", "stopping"):
                    continue
                proc = self.procs.get(job.id)
                if proc is not None:
                    code = proc.poll()
                else:   # started by a lab before a restart: not our child, so its run folder says how it ended
                    code = None if job.pid and alive(job.pid) else self._ended_with(job)
                if code is None:
                    continue
                self.procs.pop(job.id, None)
                job.code, job.ended = code, time.time()
                job.state = "stopped" if job.state == "stopping" else ("done" if code == 0 else "failed")
                changed = True
            if not any(j.state in ("running", "stopping") for j in self.jobs):
                job = next((j for j in self.jobs if j.state == "queued"), None)
                if job is not None:
                    self._start(job)
                    changed = True
            if changed:
                self._save()

    def _ended_with(self, job: Job) -> int:
        """An exit status for a run that is no child of this lab: 0 when its folder says finished."""
        from ..engine.runstate import read_state

        return 0 if read_state(self.root / job.run)["state"] == "finished" else 1

    def _start(self, job: Job) -> None:
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PARADIGMS_PROGRESS": "0", "PARADIGMS_STOPPABLE": "1"}     # stop() sends SIGINT
        with open(logs / f"{job.id}.log", "ab") as out:
            proc = subprocess.Popen([self.python, "-m", "paradigms", *job.argv], stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        self.procs[job.id] = proc
        job.pid, job.state, job.started = proc.pid, "running", time.time()

    def log_tail(self, job_id: int, lines: int = 20) -> str:
        try:
            text = (self.home / "logs" / f"{int(job_id)}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


__all__ = ["FieldError", "Job", "RunQueue", "check_request"]
