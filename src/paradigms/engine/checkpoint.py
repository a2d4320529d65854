"""Checkpoints that survive SIGKILL at any moment.

A checkpoint is two files, ``step-N.safetensors`` (every network's weights, keys
``<module>.<param>``) and ``step-N.state.pt`` (optimisers, RNG states, counters; read back with
``torch.load(weights_only=True)``), plus the pointer ``latest.json`` naming them with their
sha256. Each file is written to a temporary name, flushed to disk and renamed into place; the
pointer is renamed last. A kill leaves either the old checkpoint or the new one, never half of
one, and a damaged file is caught by its checksum before anything is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import CheckpointError

POINTER = "latest.json"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, write) -> None:
    """``write(tmp_path)`` then fsync and rename onto ``path``."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: Path(p).write_text(text))


# -- random-number state: plain tensors and ints, so weights_only loading accepts it ----------------
def rng_state() -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "gauss": float(gauss)}}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- weights ------------------------------------------------------------------------------------
def flat_weights(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    out = {}
    for name, m in modules.items():
        for k, v in m.state_dict().items():
            out[f"{name}.{k}"] = v.detach().to("cpu").contiguous()
    return out


def load_weights(modules: dict[str, nn.Module], tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load ``<module>.<key>`` tensors into ``modules``; any mismatch is a one-line CheckpointError."""
    problems = []
    for name, m in modules.items():
        own = m.state_dict()
        theirs = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        missing = sorted(set(own) - set(theirs))
        extra = sorted(set(theirs) - set(own))
        shapes = [f"{name}.{k} {tuple(theirs[k].shape)} vs {tuple(own[k].shape)}"
                  for k in own if k in theirs and theirs[k].shape != own[k].shape]
        if missing:
            problems.append(f"missing {', '.join(name + '.' + k for k in missing[:5])}")
        if extra:
            problems.append(f"unexpected {', '.join(name + '.' + k for k in extra[:5])}")
        if shapes:
            problems.append("shape mismatch " + "; ".join(shapes[:5]))
        if not (missing or extra or shapes):
            m.load_state_dict(theirs)
    if problems:
        raise CheckpointError(f"checkpoint {source} does not match this run's networks "
                              f"(was the config changed?): {' | '.join(problems)}")


# -- the checkpoint itself ------------------------------------------------------------------------
def save(ckpt_dir: Path, step: int, weights: dict[str, torch.Tensor], state: dict, keep: int = 2,
         protect: int | None = None) -> Path:
    """Write the checkpoint of ``step`` atomically and point ``latest.json`` at it; keep the ``keep`` newest, and
    also the newest one at or before step ``protect`` (a recipe suspecting trouble since then)."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    stem = f"step-{step:08d}"
    wpath, spath = ckpt_dir / f"{stem}.safetensors", ckpt_dir / f"{stem}.state.pt"
    atomic_write(wpath, lambda p: save_file(weights, str(p)))
    atomic_write(spath, lambda p: torch.save(state, p))
    pointer = {"step": step, "weights": wpath.name, "state": spath.name,
               "sha256": {wpath.name: sha256(wpath), spath.name: sha256(spath)}}
    atomic_write_text(ckpt_dir / POINTER, json.dumps(pointer, indent=1))
    stems = sorted({p.name.split(".")[0] for p in ckpt_dir.glob("step-*")})
    before = [s for s in stems if protect is not None and int(s.split("-")[1]) <= protect]
    for old in stems[:-keep]:
        if before and old == before[-1]:
            continue
        for p in ckpt_dir.glob(f"{old}.*"):
            p.unlink(missing_ok=True)
    return wpath


def rollback(ckpt_dir: Path, step: int) -> int | None:
    """Make the newest checkpoint at or before ``step`` the latest and delete the later ones (a run that went wrong
    after ``step``); its step, or None when none that old is left (the later ones are then kept as they are)."""
    stems = sorted({p.name.split(".")[0] for p in ckpt_dir.glob("step-*")})
    good = [s for s in stems if int(s.split("-")[1]) <= step]
    if not good:
        return None
    keep = good[-1]
    wpath, spath = ckpt_dir / f"{keep}.safetensors", ckpt_dir / f"{keep}.state.pt"
    pointer = {"step": int(keep.split("-")[1]), "weights": wpath.name, "state": spath.name,
               "sha256": {wpath.name: sha256(wpath), spath.name: sha256(spath)}}
    atomic_write_text(ckpt_dir / POINTER, json.dumps(pointer, indent=1))
    for later in stems[stems.index(keep) + 1:]:
        for p in ckpt_dir.glob(f"{later}.*"):
            p.unlink(missing_ok=True)
    return pointer["step"]


def read_pointer(ckpt_dir: Path) -> dict:
    ptr = ckpt_dir / POINTER
    if not ptr.is_file():
        raise CheckpointError(f"no checkpoint in {ckpt_dir} (expected {ptr}); nothing to resume or evaluate")
    try:
        pointer = json.loads(ptr.read_text())
        pointer["weights"], pointer["state"], pointer["sha256"], pointer["step"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"checkpoint pointer {ptr} is corrupt; delete the run folder's checkpoints "
                              "or restore it") from None
    return pointer


def verified(ckpt_dir: Path, name: str, pointer: dict) -> Path:
    path = ckpt_dir / name
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} is missing (named in {ckpt_dir / POINTER})")
    want, got = pointer["sha256"].get(name), sha256(path)
    if want != got:
        raise CheckpointError(f"checkpoint file {path} is corrupt: sha256 {got[:16]}..., expected {str(want)[:16]}...")
    return path


def load(ckpt_dir: Path, weights_only: bool = False) -> tuple[dict, dict | None, int]:
    """(weights, state or None, step) of the latest checkpoint, after checking both checksums."""
    pointer = read_pointer(ckpt_dir)
    wpath = verified(ckpt_dir, pointer["weights"], pointer)
    try:
        weights = load_file(str(wpath))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"checkpoint file {wpath} cannot be read: {e}") from None
    if weights_only:
        return weights, None, pointer["step"]
    spath = verified(ckpt_dir, pointer["state"], pointer)
    try:
        state = torch.load(spath, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"checkpoint file {spath} cannot be read: {e}") from None
    return weights, state, pointer["step"]


def module_weights(ckpt_dir: Path, module: str) -> dict[str, torch.Tensor]:
    """One network's tensors of the latest checkpoint, keys without the ``<module>.`` prefix (its state dict)."""
    weights, _, _ = load(ckpt_dir, weights_only=True)
    prefix = module + "."
    return {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
