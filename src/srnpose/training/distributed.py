"""Distributed data-parallel plumbing for torchrun: process group, rank info, reductions.

``torchrun --standalone --nproc_per_node=N -m srnpose train ...`` sets ``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`setup` reads them and joins the group
(gloo on CPU, nccl on CUDA). Without them everything runs as a single process (rank 0 of 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from srnpose.errors import UserError

__all__ = ["DistInfo", "setup", "teardown", "all_reduce_sum", "barrier", "env_world_size"]


@dataclass(frozen=True)
class DistInfo:
    rank: int  # global rank, 0..world_size-1
    world_size: int
    local_rank: int  # rank on this machine: the CUDA device index
    device: str  # "cpu" or "cuda:<local_rank>"
    backend: str | None  # "gloo", "nccl" or None when not distributed

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def setup(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (if any) and pick this rank's device.

    ``device``: "cpu", "cuda" or "auto" (CUDA when available).
    """
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device: expected cpu, cuda or auto, got {device!r}")
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available")
    world_size = env_world_size()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = f"cuda:{local_rank}" if use_cuda else "cpu"
    backend = None
    if world_size > 1:
        import torch.distributed as dist

        backend = "nccl" if use_cuda else "gloo"
        if use_cuda:
            torch.cuda.set_device(local_rank)
        if not dist.is_initialized():
            # Keys of each elastic restart under their own prefix: after torchrun --max-restarts restarts
            # the group, a rank must not read the killed group's addresses from the same store.
            store, _, _ = next(dist.rendezvous("env://", rank=rank, world_size=world_size))
            attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
            dist.init_process_group(backend=backend, store=dist.PrefixStore(f"srnpose/attempt_{attempt}/", store),
                                    rank=rank, world_size=world_size)
    elif use_cuda:
        torch.cuda.set_device(local_rank)
    return DistInfo(rank, world_size, local_rank, dev, backend)


def teardown(info: DistInfo) -> None:
    if info.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Sum a list of numbers over all ranks (a no-op for one process)."""
    if not info.distributed:
        return [float(v) for v in values]
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.cpu().tolist()]


def barrier(info: DistInfo) -> None:
    if info.distributed:
        import torch.distributed as dist

        dist.barrier()
