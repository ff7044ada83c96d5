"""The KV cache of a rollout, planned before the first step.

bytes = envs × context × layers × 2 (K and V) × hidden × bytes per element. The budget is a
share of the memory free on the device (CPU: MemAvailable, within a cgroup limit if one is set,
less the model's weights when they are mapped from a file; CUDA: the free device memory). A plan
over budget is refused, naming the largest env count and the largest context that fit.

The cache's element type: `auto` is bf16 for large models (weights ≥ LARGE_MODEL_BYTES, e.g. the
released 330M model: half the memory and half the bytes read per step) and fp32 below, where the
cache is small and fp32 keeps the cached step equal to a full forward to ~1e-6.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from adaptkit import defaults
from adaptkit.ckpt.checkpoint import Checkpoint
from adaptkit.ckpt.load import peek_checkpoint
from adaptkit.defaults import KVDtype
from adaptkit.errors import AdaptkitError
from adaptkit.machine import available_memory
from adaptkit.model import ModelConfig, Vintix

BUDGET_SHARE = 0.8  # of the free memory: the rest is for activations, the simulator, the OS
_DTYPES = {KVDtype.FP32: torch.float32, KVDtype.BF16: torch.bfloat16}


def kv_dtype(choice: KVDtype | str, model_bytes: int) -> torch.dtype:
    """The cache's dtype for a model whose weights take `model_bytes`."""
    choice = KVDtype(choice)
    if choice is KVDtype.AUTO:
        big = model_bytes >= defaults.LARGE_MODEL_BYTES
        return torch.bfloat16 if big else torch.float32
    return _DTYPES[choice]


@dataclass(frozen=True)
class KVPlan:
    """What a rollout's KV cache will take, and whether it fits."""

    num_envs: int
    context: int
    layers: int
    hidden: int
    dtype: torch.dtype
    device: str
    budget: int  # bytes the cache may take

    @property
    def element_size(self) -> int:
        return torch.empty((), dtype=self.dtype).element_size()

    @property
    def per_token(self) -> int:
        """Bytes per (env, cached token): K and V of every layer."""
        return self.layers * 2 * self.hidden * self.element_size

    @property
    def bytes(self) -> int:
        return self.num_envs * self.context * self.per_token

    @property
    def fits(self) -> bool:
        return self.bytes <= self.budget

    def largest_envs(self) -> int:
        return self.budget // (self.context * self.per_token)

    def largest_context(self) -> int:
        return self.budget // (self.num_envs * self.per_token)

    def describe(self) -> dict[str, object]:
        return {
            "kv_cache_bytes": self.bytes,
            "kv_cache_dtype": str(self.dtype).removeprefix("torch."),
            "kv_budget_bytes": self.budget,
            "device": self.device,
        }

    def check(self) -> KVPlan:
        """Raise when the cache does not fit, naming what would."""
        if self.fits:
            return self
        dt = str(self.dtype).removeprefix("torch.")
        alternatives = []
        if self.largest_envs() >= 1:
            alternatives.append(f"--num-envs {self.largest_envs()} at context {self.context}")
        if self.largest_context() >= 1:
            alternatives.append(f"--context-len {self.largest_context()} with {self.num_envs} envs")
        if self.dtype != torch.bfloat16:
            alternatives.append("--kv-dtype bf16 (half the bytes)")
        fit = "; fits: " + ", or ".join(alternatives) if alternatives else ""
        raise AdaptkitError(
            f"KV cache of {self.num_envs} envs × context {self.context} × {self.layers} layers × 2 "
            f"× hidden {self.hidden} × {self.element_size} bytes ({dt}) = {_gb(self.bytes)} does "
            f"not fit the {_gb(self.budget)} free for it on {self.device}{fit}"
        )


def _gb(n: int) -> str:
    """A byte count readable at any size (a tiny cache is not "0.00 GB")."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} bytes"


def weight_bytes(config: ModelConfig) -> int:
    """Bytes of a model's fp32 weights from its config alone (counted on the 'meta' device;
    the per-group MLPs, a few million parameters at most, are left out)."""
    with torch.device("meta"):
        model = Vintix(config, {})
    return sum(p.numel() * 4 for p in model.parameters())


def plan_kv_cache(
    config: ModelConfig,
    num_envs: int,
    context: int,
    dtype: torch.dtype,
    device: torch.device | str,
    resident_bytes: int = 0,
    budget: int | None = None,
) -> KVPlan:
    """The plan for `num_envs` × `context`; `resident_bytes` (e.g. memory-mapped weights that
    the free-memory figure still counts as reclaimable) is taken off the budget."""
    if budget is None:
        budget = int(BUDGET_SHARE * available_memory(device)) - resident_bytes
    return KVPlan(
        num_envs=num_envs,
        context=context,
        layers=config.transformer_depth,
        hidden=config.hidden_dim,
        dtype=dtype,
        device=str(torch.device(device)),
        budget=max(budget, 0),
    )


def preflight(ckpt: Any, settings: Any, label: str | None = None) -> KVPlan:
    """Plan a checkpoint's KV cache for `settings` (EvalSettings) from its config.json alone —
    no weights are read — and refuse it when it does not fit."""
    if isinstance(ckpt, Checkpoint):
        config = ckpt.config
        weights = sum(p.numel() * p.element_size() for p in ckpt.model.parameters())
    else:
        config = peek_checkpoint(ckpt, settings.base)  # bad JSON refused before any build
        weights = weight_bytes(config)
    device = settings.torch_device()
    plan = plan_kv_cache(
        config,
        settings.num_envs,
        settings.context_len or config.context_len,
        kv_dtype(settings.kv_dtype, weights),
        device,
        resident_bytes=weights if torch.device(device).type == "cpu" else 0,
    )
    try:
        return plan.check()
    except AdaptkitError as exc:
        raise AdaptkitError(f"model {label!r}: {exc}" if label else str(exc)) from None
