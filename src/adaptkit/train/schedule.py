"""AdamW parameter groups and the warm-up + cosine schedule, counted in optimiser steps."""

from __future__ import annotations

import math

import torch
from torch import nn

from adaptkit.errors import AdaptkitError


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable params split into decay (nn.Linear weights) and no-decay (the rest).

    Biases, norms and the learned paddings are not decayed: decaying them only pulls
    offsets/scales towards 0, which the reference also avoids.
    """
    decay: list[nn.Parameter] = []
    seen: set[int] = set()
    for module in model.modules():
        w = getattr(module, "weight", None)
        if isinstance(module, nn.Linear) and w.requires_grad and id(w) not in seen:
            decay.append(w)
            seen.add(id(w))
    no_decay = [p for p in model.parameters() if p.requires_grad and id(p) not in seen]
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "decay"}]
    groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay"})
    groups = [g for g in groups if g["params"]]
    if not groups:
        raise AdaptkitError("nothing to train: every parameter is frozen")
    return groups


def make_optimizer(
    model: nn.Module, lr: float, betas: tuple[float, float], weight_decay: float
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters only (frozen ones never reach the optimiser)."""
    # foreach=False: the single-tensor path gives the same bits on 1 and N processes
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=betas, foreach=False)


def warmup_cosine(total_steps: int, warmup_steps: int, min_ratio: float = 0.0):
    """lr multiplier for optimiser step s (0-based): linear ramp, then cosine to min_ratio."""
    total_steps = max(1, total_steps)
    warmup_steps = min(max(0, warmup_steps), total_steps - 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        progress = min(1.0, progress)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def make_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_ratio: float,
    min_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Stepped once per optimiser step (never per micro-batch: the reference's bug)."""
    warmup = round(warmup_ratio * total_steps)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(total_steps, warmup, min_ratio)
    )
