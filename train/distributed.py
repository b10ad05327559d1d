"""Multi-process training on torch.distributed: who this process is, and the few collectives the loop needs.

Started by torchrun (``torchrun --nproc_per_node K -m onnxgan.train ...``), each process reads RANK,
WORLD_SIZE and LOCAL_RANK from the environment and joins a process group: NCCL on GPUs, gloo on CPUs.
Without those variables (plain ``gan-train``) the world is one process and every collective is a no-op.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from onnxgan.errors import UserError


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 writes every file; the others only compute."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Average a tensor over the ranks, in place."""
        if self.distributed:
            dist.all_reduce(tensor)
            tensor /= self.size
        return tensor

    def any(self, flag: bool, device: torch.device) -> bool:
        """True on every rank when it is true on one (e.g. one rank got SIGTERM)."""
        if not self.distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        gathered: list[Any] = [None] * self.size
        dist.all_gather_object(gathered, obj)
        return gathered


def launched_rank() -> int:
    """This process's rank as torchrun set it (0 without torchrun), known before the group is joined."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        raise UserError(f"RANK={os.environ['RANK']!r} is not a number: start multi-process runs with torchrun") from None


def join_world(device: torch.device) -> tuple[World, torch.device]:
    """Join torchrun's process group if there is one; returns the world and this rank's device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        return World(), device
    try:
        world = World(int(os.environ["RANK"]), size, int(os.environ["LOCAL_RANK"]))
    except (KeyError, ValueError):
        raise UserError("WORLD_SIZE is set but RANK/LOCAL_RANK are not: start multi-process runs with torchrun") from None
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, device


def leave_world(world: World) -> None:
    if world.distributed and dist.is_initialized():
        # DistributedDataParallel wrappers sit in reference cycles, so they outlive the trainer that made
        # them until a collection: free them (and their reducers' hold on the group) while the group is
        # alive. Left to the interpreter's exit, their gloo threads aborted the process (SIGABRT) in 4 of
        # 12 runs of tests/ddp_replicas.py on a loaded machine; 0 of 12 with this collection.
        gc.collect()
        dist.barrier()  # no rank tears the group down while another still talks to it
        dist.destroy_process_group()
