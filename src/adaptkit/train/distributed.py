"""torchrun awareness: process group set-up, DDP wrapping, rank-0-only side effects."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from adaptkit.data.moments import RunningMoments
from adaptkit.machine import check_device


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


# Set inside `solo()`: training started there is a one-process job even under torchrun.
_SOLO: ContextVar[bool] = ContextVar("adaptkit_solo", default=False)


def launch_rank() -> tuple[int, int]:
    """(rank, world size) as torchrun announced them, without joining any process group."""
    if _SOLO.get():
        return 0, 1
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


@contextmanager
def solo() -> Iterator[None]:
    """Run the body as a single-process job whatever torchrun set: what rank 0 builds alone
    (e.g. a missing base model) while the other ranks wait for it."""
    token = _SOLO.set(True)
    try:
        yield
    finally:
        _SOLO.reset(token)


def setup(device: str | None = None) -> DistInfo:
    """Read torchrun's WORLD_SIZE/RANK/LOCAL_RANK and join the process group if > 1 process.

    nccl on CUDA, gloo on CPU. Without torchrun (or inside `solo()`) this is a no-op
    single-process run.
    """
    rank, world = launch_rank()
    local_rank = int(os.environ.get("LOCAL_RANK", "0")) if world > 1 else 0
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(check_device(device))
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def teardown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def wrap(model: nn.Module, info: DistInfo, find_unused: bool) -> nn.Module:
    """DDP over the trainable parameters only: DDP skips params with requires_grad=False.

    `find_unused` is needed when a step may leave trainable params without a gradient, e.g.
    several groups trainable but single-group batches (pretraining, full fine-tuning).
    """
    if not info.enabled:
        return model
    ids = [info.device.index] if info.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        model, device_ids=ids, find_unused_parameters=find_unused, broadcast_buffers=False
    )


def needs_find_unused(model: nn.Module, data_groups: Sequence[str]) -> bool:
    """DDP must look for unused params when a single-group batch can leave trainable ones idle."""
    trainable_groups = {
        g
        for g in model.groups
        if any(p.requires_grad for m in model.group_modules(g) for p in m.parameters())
    }
    return len(trainable_groups) > 1 or not trainable_groups <= set(data_groups)


def no_sync(model: nn.Module, sync: bool):
    """Skip the gradient all-reduce on micro-batches that are not the last of a step."""
    if sync or not isinstance(model, nn.parallel.DistributedDataParallel):
        return nullcontext()
    return model.no_sync()


def mean_over_ranks(values: Sequence[float], info: DistInfo) -> list[float]:
    """Average a few scalars over all processes (for logging; one small all-reduce)."""
    if not info.enabled:
        return list(values)
    t = torch.tensor(list(values), dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return (t / info.world_size).tolist()


def min_over_ranks(value: int, info: DistInfo) -> int:
    """The smallest of one integer over all processes."""
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return int(t.item())


def merge_moments_over_ranks(
    moments: Mapping[str, tuple[RunningMoments, RunningMoments]], info: DistInfo
) -> dict[str, tuple[RunningMoments, RunningMoments]]:
    """Each task's (obs, action) moments merged over every process's shard of the data, in
    rank order: the stats of all the data, although each process read only its part."""
    if not info.enabled:
        return dict(moments)
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, dict(moments))
    merged: dict[str, tuple[RunningMoments, RunningMoments]] = {}
    for part in gathered:
        for task, (obs, act) in part.items():
            if task in merged:
                merged[task][0].merge(obs)
                merged[task][1].merge(act)
            else:
                merged[task] = (obs, act)
    return merged
