"""The memory plan of a training run: micro-batch, accumulation and activation checkpointing
chosen from a memory budget, with the global batch (and so the result) unchanged.

What a step keeps is measured, not guessed: `probe_activations` runs the model's own forward
(train mode, the run's precision, the real context) on one and two windows through no block and
through one block, with and without checkpointing, and sums the bytes of every tensor autograd
saves for the backward (each storage once, parameters excluded). Blocks are alike, so depth ×
one block plus the rest is what a micro-batch keeps; the slope between one and two windows is
what each window adds, the remainder what does not grow with the batch (e.g. bf16 copies of the
weights under autocast). The probe's random draws (dropout) are undone, so a planned run draws
what an unplanned one does.

`plan_memory` then takes the largest micro-batch that divides the per-process batch and fits
without checkpointing; failing that, the largest that fits with it. A step's peak is planned as
  resident now (weights, data, interpreter) + 12 bytes per trainable parameter (fp32 gradient
  and AdamW's two moments) + what the micro-batch keeps + one block's working set again (the
  backward of a block holds its gradients beside its activations; a checkpointed block is
  recomputed there too: twice).
The budget is `--max-memory`, else BUDGET_SHARE of what is free now on top of what the process
already holds. Micro-batches of equal size average to the global-batch mean, so the weights
equal an unplanned run's up to floating-point summation order; with dropout, each micro-batch
draws its own masks (a different draw of the same distribution).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from adaptkit.errors import AdaptkitError, short_repr
from adaptkit.machine import available_memory

BUDGET_SHARE = 0.6  # default budget: what the process holds + this share of what is free
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*$", re.IGNORECASE)


def parse_memory(text: str | int | float | None) -> int | None:
    """'4G', '4 GB', '4GiB', '512M', '2.5g', or bytes → bytes (binary units); None → None."""
    if text is None:
        return None
    if isinstance(text, bool):
        raise AdaptkitError(f"--max-memory: expected a size like 4G or 512M, got {text!r}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _SIZE.match(str(text))
        if m is None:
            raise AdaptkitError(
                f"--max-memory: expected a size like 4G, 512M or 4GiB, got {short_repr(text)}"
            )
        value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if not math.isfinite(value) or value < 2**20:
        raise AdaptkitError(f"--max-memory: expected at least 1M, got {short_repr(text)}")
    return int(value)


def format_bytes(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def resident_bytes(device: torch.device) -> int:
    """What this process holds now on `device`: CPU resident set (VmRSS), CUDA allocations."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource  # not Linux: the peak so far is the best bound at hand

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if peak > 2**32 else peak * 1024)  # macOS: bytes; elsewhere KiB


# -- what the model keeps -------------------------------------------------------------------
@dataclass(frozen=True)
class Activations:
    """Bytes a micro-batch keeps for the backward, from `probe_activations`."""

    per_window_block: int  # one block, one window, no checkpointing
    per_window_block_checkpointed: int  # one block, one window, checkpointed (its input)
    per_window_rest: int  # encoders, head and loss, one window
    fixed_block: int  # one block, whatever the batch (e.g. bf16 weight copies)
    fixed_rest: int
    depth: int

    def kept(self, micro_batch: int, checkpointing: bool) -> int:
        block = self.per_window_block_checkpointed if checkpointing else self.per_window_block
        per_window = self.depth * block + self.per_window_rest
        return micro_batch * per_window + self.depth * self.fixed_block + self.fixed_rest

    def working(self, micro_batch: int, checkpointing: bool) -> int:
        """The backward's working set beyond what is kept: one block's activations again
        (twice when the block is recomputed)."""
        return (2 if checkpointing else 1) * micro_batch * self.per_window_block


@contextlib.contextmanager
def _saved_bytes(exclude: set[int]) -> Iterator[list[int]]:
    """Sum the storages autograd saves inside the block (each once; `exclude`: data pointers
    not to count, the parameters)."""
    seen: set[int] = set()
    total = [0]

    def pack(t: torch.Tensor) -> torch.Tensor:
        try:
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
        except (RuntimeError, NotImplementedError):  # a tensor without storage
            return t
        if ptr and ptr not in seen and ptr not in exclude:
            seen.add(ptr)
            total[0] += storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield total


@contextlib.contextmanager
def _only_blocks(transformer: nn.Module, n: int) -> Iterator[None]:
    blocks = transformer.blocks
    transformer.blocks = nn.ModuleList(list(blocks)[:n])
    try:
        yield
    finally:
        transformer.blocks = blocks


def probe_activations(
    model: nn.Module,
    batch: Callable[[int], Mapping[str, Any]],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    device: torch.device,
    autocast: Callable[[], Any],
) -> Activations:
    """Measure what one block and the rest keep per window (see the module docstring).
    `batch(m)`: m windows as the loader collates them."""
    transformer = model.transformer
    exclude = {p.untyped_storage().data_ptr() for p in model.parameters()}
    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    was_training, was_ckpt = model.training, transformer.checkpointing
    model.train()
    measured: dict[tuple[int, bool, int], int] = {}
    try:
        for blocks, ckpt in ((0, False), (1, False), (1, True)):
            transformer.checkpointing = ckpt
            with _only_blocks(transformer, blocks):
                for m in (1, 2):
                    b = batch(m)
                    with _saved_bytes(exclude) as total, autocast():
                        pred = model(
                            b["group"],
                            b["obs"].to(device),
                            b["prev_action"].to(device),
                            b["prev_reward"].to(device),
                            b["step_num"].to(device),
                        )
                        loss_fn(pred, b["target"].to(device))
                    measured[(blocks, ckpt, m)] = total[0]
                    del pred
    finally:
        transformer.checkpointing = was_ckpt
        model.train(was_training)
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)

    def slope(key: tuple[int, bool]) -> int:
        return max(measured[(*key, 2)] - measured[(*key, 1)], 0)

    rest = slope((0, False))
    block = max(slope((1, False)) - rest, 0)
    block_ckpt = max(slope((1, True)) - rest, 0)
    fixed_rest = max(measured[(0, False, 1)] - rest, 0)
    fixed_block = max(measured[(1, False, 1)] - rest - block - fixed_rest, 0)
    return Activations(block, block_ckpt, rest, fixed_block, fixed_rest, len(transformer.blocks))


# -- the plan -------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryPlan:
    """How one process runs each of its batches: `micro_batch` windows at a time,
    `batch // micro_batch` of them per loaded batch, checkpointing on or off."""

    batch: int  # windows per loaded batch (TrainConfig.batch_size), unchanged
    micro_batch: int
    checkpointing: bool
    peak: int  # planned peak bytes of the process on its device
    budget: int
    budget_source: str  # how the budget was set, for the line
    fits: bool
    forced: str = ""  # what the user fixed (checkpointing), for the line

    @property
    def chunks(self) -> int:
        return self.batch // self.micro_batch

    def line(self, grad_accum: int, world_size: int) -> str:
        """The plan in one line."""
        steps = self.chunks * grad_accum
        global_batch = self.batch * grad_accum * world_size
        split = (
            f"micro-batch {self.micro_batch} × {steps} accumulation step(s)"
            if steps > 1
            else f"batch {self.micro_batch} in one pass"
        )
        ckpt = "on" if self.checkpointing else "off"
        fit = "" if self.fits else " — does not fit even so; expect swapping or an OOM kill"
        return (
            f"memory plan: {split} (global batch {global_batch}, unchanged), activation "
            f"checkpointing {ckpt}{self.forced}; peak ≈ {format_bytes(self.peak)} of a "
            f"{format_bytes(self.budget)} budget ({self.budget_source}){fit}"
        )


def default_budget(device: torch.device, resident: int) -> tuple[int, str]:
    free = available_memory(device)
    budget = resident + int(BUDGET_SHARE * free)
    return budget, (
        f"{BUDGET_SHARE:.0%} of the {format_bytes(free)} free + {format_bytes(resident)} held; "
        "--max-memory to set it"
    )


def plan_memory(
    acts: Activations,
    batch: int,
    trainable: int,
    resident: int,
    budget: int,
    budget_source: str,
    checkpointing: bool | None = None,
) -> MemoryPlan:
    """The largest micro-batch dividing `batch` whose step fits `budget` without checkpointing,
    else with it (`checkpointing` True/False: as given); the smallest if none fits."""
    state = 12 * trainable  # fp32 gradient + AdamW exp_avg + exp_avg_sq

    def peak(m: int, ckpt: bool) -> int:
        return resident + state + acts.kept(m, ckpt) + acts.working(m, ckpt)

    divisors = [m for m in range(batch, 0, -1) if batch % m == 0]
    modes = (False, True) if checkpointing is None else (checkpointing,)
    forced = "" if checkpointing is None else " (as asked)"
    for ckpt in modes:
        for m in divisors:
            if peak(m, ckpt) <= budget:
                return MemoryPlan(
                    batch, m, ckpt, peak(m, ckpt), budget, budget_source, True, forced
                )
    ckpt = modes[-1]
    return MemoryPlan(batch, 1, ckpt, peak(1, ckpt), budget, budget_source, False, forced)
