"""Is a run training, finished, interrupted or failed? ``RUN_DIR/state.json``, kept by the run's main process.

    {"state": "running", "pid": 4242, "host": "lab-1", "started": "2026-12-07T16:50:00", "command": ["paradigms", ...]}

The training loop writes ``running`` when it starts and ``finished``, ``interrupted`` (Ctrl-C, a stop from the lab) or
``failed`` (with the error's one line) when it ends. A run killed outright (SIGKILL, a power cut) cannot say so:
:func:`read_state` then finds a ``running`` state whose process is gone on this machine and reports it
``interrupted``, as it is: its last checkpoint is kept and ``paradigms run --resume RUN_DIR`` continues it. Run folders
made before this file existed are judged by what they hold (``final.json``: finished; checkpoints: interrupted).
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import sys
from pathlib import Path

FILE = "state.json"
STATES = ("running", "finished", "interrupted", "failed")


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


def _write(run_dir: Path, data: dict) -> None:
    from .checkpoint import atomic_write_text

    atomic_write_text(Path(run_dir) / FILE, json.dumps(data, indent=1))


def started(run_dir: Path, resumed: bool = False) -> None:
    """The run has started in this process (``resumed``: continued from its checkpoint, keeping its start time)."""
    old = _read(run_dir)
    _write(run_dir, {"state": "running", "pid": os.getpid(), "host": socket.gethostname(),
                     "started": old.get("started") if resumed and old.get("started") else _now(), "resumed": resumed,
                     "command": _command()})


def _command() -> list[str] | None:
    """The ``paradigms`` command line of this process (``python -m paradigms`` counts), None when it is another."""
    program = Path(sys.argv[0])
    if program.name == "paradigms" or (program.name == "__main__.py" and program.parent.name == "paradigms"):
        return ["paradigms", *sys.argv[1:]]
    return None     # a Trainer called from Python: its config.yaml says how to make it again


def ended(run_dir: Path, state: str, error: str | None = None) -> None:
    """The run has ended in ``state`` (``finished``, ``interrupted`` or ``failed``, with its error)."""
    data = {**_read(run_dir), "state": state, "ended": _now()}
    if error:
        data["error"] = " ".join(str(error).split())
    _write(run_dir, data)


def _read(run_dir: Path) -> dict:
    try:
        data = json.loads((Path(run_dir) / FILE).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (a zombie child counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    try:                     # a finished child not yet reaped is no longer running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_state(run_dir: Path) -> dict:
    """The run's state as it is now (see the module docstring): ``{"state", ...}`` with whatever ``state.json`` holds
    (pid, host, started, ended, command, error)."""
    run_dir = Path(run_dir)
    data = _read(run_dir)
    state = data.get("state")
    if state == "running" and data.get("host") == socket.gethostname() and not alive(int(data.get("pid", -1))):
        data = {**data, "state": "interrupted", "killed": True}
    elif state not in STATES:   # a run folder from before state.json
        if (run_dir / "final.json").is_file():
            state = "finished"
        elif (run_dir / "checkpoints" / "latest.json").is_file():
            state = "interrupted"
        else:
            state = "failed"
        data = {**data, "state": state}
    return data


__all__ = ["FILE", "STATES", "alive", "ended", "read_state", "started"]
