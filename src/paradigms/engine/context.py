"""Where a run executes: device, precision, distribution (DDP), seeding.

``torchrun --nproc_per_node N -m paradigms run ...`` sets ``WORLD_SIZE``/``RANK``; the context then
joins the process group (gloo on CPU, NCCL on GPU), wraps networks in DDP, shards data by rank,
reduces metrics across ranks, and lets rank 0 alone write files.
"""

from __future__ import annotations

import contextlib
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..errors import UserError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rank_step_seed(seed: int, rank: int, step: int) -> int:
    """The seed of one rank's random draws at one step (augmentations, dropout masks) under DDP.

    Ranks must not share one stream, or every rank draws the same crops and masks for its images;
    and a run resumed at any step must draw what the uninterrupted run drew there.
    """
    return ((seed * 1_000_003 + rank) * 1_000_033 + step) % 2**63


def pick_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here; use --device cpu or auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


@dataclass
class Context:
    device: torch.device
    seed: int = 0
    precision: str = "auto"
    run_dir: Path | None = None
    data_dir: str | None = None
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    extra: dict = field(default_factory=dict)

    @classmethod
    def create(cls, device: str = "auto", seed: int = 0, precision: str = "auto", **kw) -> Context:
        """A context for this process; joins the torchrun process group when there is one."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        dev = pick_device(device)
        if world > 1:
            if dev.type == "cuda":
                torch.cuda.set_device(local_rank)
                dev = torch.device("cuda", local_rank)
            else:  # share the cores between the ranks on this machine
                local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
                torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
            if not dist.is_initialized():
                dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        return cls(device=dev, seed=seed, precision=precision, rank=rank, world=world, local_rank=local_rank, **kw)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def autocast(self):
        """bf16 autocast on GPU (precision auto or bf16); plain fp32 otherwise."""
        use = self.precision == "bf16" or (self.precision == "auto" and self.device.type == "cuda")
        if not use:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def distribute(self, module: nn.Module) -> nn.Module:
        """The module to train with: DDP-wrapped when several ranks run, else itself."""
        if not self.distributed or not any(p.requires_grad for p in module.parameters()):
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def all_reduce(self, t: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """Sum (or mean) a tensor across ranks; a no-op on one process."""
        if self.distributed:
            t = t.clone()
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            if op == "mean":
                t /= self.world
        return t

    def all_gather(self, t: torch.Tensor) -> torch.Tensor:
        """Every rank's ``t`` (the same shape on each) concatenated along dim 0 in rank order; a no-op on one
        process. Gradients flow into this rank's own part (negatives gathered for SimCLR, MoCo, CLIP)."""
        if not self.distributed:
            return t
        parts = [torch.empty_like(t) for _ in range(self.world)]
        dist.all_gather(parts, t.detach().contiguous())
        parts[self.rank] = t
        return torch.cat(parts)

    def broadcast_object(self, obj):
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()
