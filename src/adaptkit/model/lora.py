"""Group-conditional LoRA: a low-rank update of the shared trunk that only one group's tokens see.

A library such as PEFT wraps a Linear layer so that every input goes through its low-rank
update. Here the trunk is shared by all groups, and the update must apply only to the rows of a
batch that belong to the adapted group: the old robots' tokens must pass through the very same
arithmetic as before, so they act bit-identically. So the update is a forward hook on each
target Linear (attention in/out projections, MLP fc/proj) that adds `B(A(x)) · alpha/rank` to
the rows of the groups the current forward marked (`Vintix` marks them from its `group`
argument); rows of other groups are not touched at all.

The LoRA weights are owned by the group: `lora.<group>.layers.b<i>_<layer>.{lora_A,lora_B}` in
the state dict (inside `Vintix.group_prefixes(group)`), so freezing, adapters and merging treat
them like the group's encoders. The rank and alpha are recorded in the group's task metadata
(`"lora": {"rank", "alpha"}`), so a checkpoint re-creates the modules before its weights load.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from adaptkit.errors import AdaptkitError

# the trunk's Linear layers LoRA adapts, per block (names under transformer.blocks.<i>.)
TARGETS = ("attention.in_proj", "attention.out_proj", "mlp.fc", "mlp.proj")
META_KEY = "lora"  # the task-metadata key holding {"rank", "alpha"}


def _key(block: int, target: str) -> str:
    return f"b{block}_{target.replace('.', '_')}"


class LoRALinear(nn.Module):
    """x → B(A(x)) · scale. B starts at zero, so a new update changes nothing until trained."""

    def __init__(self, in_dim: int, out_dim: int, rank: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.lora_A = nn.Parameter(torch.empty(rank, in_dim))
        self.lora_B = nn.Parameter(torch.zeros(out_dim, rank))
        if not self.lora_A.is_meta:
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.lora_A.t().to(x.dtype)) @ self.lora_B.t().to(x.dtype) * self.scale


class GroupLoRA(nn.Module):
    """One group's low-rank updates of every target Linear of the trunk."""

    def __init__(self, trunk: nn.Module, rank: int, alpha: float) -> None:
        super().__init__()
        self.rank, self.alpha = int(rank), float(alpha)
        self.layers = nn.ModuleDict()
        for i, block in enumerate(trunk.blocks):
            for target in TARGETS:
                lin = block.get_submodule(target)
                self.layers[_key(i, target)] = LoRALinear(
                    lin.in_features, lin.out_features, self.rank, self.alpha / self.rank
                )


@dataclass(frozen=True)
class LoRASpec:
    rank: int
    alpha: float
    targets: tuple[str, ...]

    def as_meta(self) -> dict[str, Any]:
        return {"rank": self.rank, "alpha": self.alpha}


def parse_spec(raw: Any, where: str) -> LoRASpec:
    """The metadata entry {"rank": r, "alpha": a}, checked."""
    ok = isinstance(raw, Mapping) and isinstance(raw.get("rank"), int) and raw["rank"] >= 1
    alpha = raw.get("alpha") if isinstance(raw, Mapping) else None
    if not ok or isinstance(raw["rank"], bool) or not isinstance(alpha, int | float):
        raise AdaptkitError(
            f'{where}: \'{META_KEY}\' must be {{"rank": int >= 1, "alpha": number}}'
        )
    return LoRASpec(int(raw["rank"]), float(alpha), TARGETS)


def attach_hooks(model: nn.Module) -> None:
    """Register the forward hooks on the trunk's target Linears (once per model)."""
    if getattr(model, "_lora_hooked", False):
        return
    ref = weakref.ref(model)
    for i, block in enumerate(model.transformer.blocks):
        for target in TARGETS:
            block.get_submodule(target).register_forward_hook(_hook(ref, _key(i, target)))
    model._lora_hooked = True


def _hook(ref: weakref.ref, key: str):
    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor):
        model = ref()
        active = getattr(model, "_lora_active", None) if model is not None else None
        if not active:
            return None  # no LoRA group in this forward: the output is the trunk's own
        x = inputs[0]
        for group, rows in active:
            delta = model.lora[group].layers[key]
            if rows is None:
                out = out + delta(x).to(out.dtype)
            else:  # a mixed batch: only that group's rows change
                out = out.index_add(0, rows, delta(x.index_select(0, rows)).to(out.dtype))
        return out

    return hook


def lora_groups(meta: Any) -> dict[str, LoRASpec]:
    """group → LoRASpec for every group whose task metadata records LoRA."""
    out: dict[str, LoRASpec] = {}
    for t in meta.tasks.values():
        raw = t.extra.get(META_KEY)
        if raw is not None:
            out[t.group] = parse_spec(raw, f"metadata: task {t.task!r}")
    return out
