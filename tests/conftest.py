"""Shared test set-up: fast tests by default; `slow` (real-data) tests run when CI=true or
PARADIGMS_SLOW=1, and skip themselves, saying why, when ../shared/datasets is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PARADIGMS_TEST_DATA", REPO.parent / "shared" / "datasets"))

os.environ.setdefault("PARADIGMS_PROGRESS", "0")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers (pytest-xdist), a file each: one torch thread each, so that the two never fight over
    # two cores (OpenMP threads spinning against each other); the subprocesses they start inherit it
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    torch.set_num_threads(1)

FIRST = ("test_lecture.py",)
"""The longest files, started first so that the other worker takes the many short ones meanwhile."""


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: Path(str(item.fspath)).name not in FIRST)          # stable: the rest keep their order
    run_slow = os.environ.get("CI", "").lower() == "true" or os.environ.get("PARADIGMS_SLOW") == "1"
    if run_slow:
        return
    skip = pytest.mark.skip(reason="slow test: set PARADIGMS_SLOW=1 (CI=true does) to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real datasets not found at {SHARED} (put ../shared/datasets beside the repository)")
    return SHARED


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test touches the user's cache or the network."""
    monkeypatch.setenv("PARADIGMS_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("PARADIGMS_DATA", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("RANK", raising=False)
