"""Training hyper-parameters and the result of a run."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adaptkit.errors import AdaptkitError

PRECISIONS = ("fp32", "bf16")


@dataclass
class TrainConfig:
    """Optimiser, schedule and data-window settings shared by pretrain and finetune.

    `batch_size` is the micro-batch of one process; one optimiser step sees
    batch_size × grad_accum × world_size windows (the global batch).
    """

    epochs: int = 10
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.1  # applied to nn.Linear weights only
    warmup_ratio: float = 0.05  # share of all optimiser steps spent warming up linearly
    min_lr_ratio: float = 0.0  # cosine floor, as a fraction of lr
    batch_size: int = 32
    grad_accum: int = 1
    context_len: int | None = None  # None: the model's context_len
    trajectory_sparsity: int | None = None  # window start stride; None: context_len // 4
    precision: str = "fp32"
    grad_clip: float | None = 1.0
    seed: int = 0
    save_every: int = 1  # epochs between checkpoints (the last epoch is always saved)
    save_initial: bool = True  # write 0000_epoch (the untrained model) before training
    num_workers: int = 0
    max_steps_per_epoch: int | None = None  # cap optimiser steps per epoch (quick runs, benches)
    shuffle: bool = True

    def __post_init__(self) -> None:
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        self.validate()

    @classmethod
    def for_finetune(cls, freeze_mode: str = "transformer", **overrides: Any) -> TrainConfig:
        """Fine-tune defaults: 10 epochs; lr 1e-3 when only the new group trains, else 1e-4.

        The seed's 1e-4 suits nudging pretrained weights (`none`). With the trunk frozen only a
        freshly initialised group trains, and 1e-4 leaves it undertrained on small budgets:
        Mini Cheetah, one learning history × 10 epochs: 1e-4 → 52 % of the demonstrator's
        return, 3e-4 → 92 %, 1e-3 → 101 % (with all eight histories every lr reaches ≈100 %).
        """
        lr = 1e-3 if freeze_mode in ("transformer", "new-group-only") else 1e-4
        return cls(**{"lr": lr, "epochs": 10, **overrides})

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def validate(self) -> None:
        def bad(name: str, expected: str) -> AdaptkitError:
            return AdaptkitError(
                f"training option '{name}' must be {expected}, got {getattr(self, name)!r}"
            )

        for name in ("epochs", "batch_size", "grad_accum", "save_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise bad(name, "an integer >= 1")
        for name in ("context_len", "trajectory_sparsity", "max_steps_per_epoch"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise bad(name, "an integer >= 1 (or unset)")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise bad("lr", "a finite number > 0")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise bad("betas", "two numbers in [0, 1)")
        if not self.weight_decay >= 0:
            raise bad("weight_decay", ">= 0")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise bad("warmup_ratio", "in [0, 1)")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise bad("min_lr_ratio", "in [0, 1]")
        if self.precision not in PRECISIONS:
            raise bad("precision", f"one of {', '.join(PRECISIONS)}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise bad("grad_clip", "> 0 (or unset to disable)")
        if self.num_workers < 0:
            raise bad("num_workers", ">= 0")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def reference_keys(self, context_len: int, stride: int) -> dict[str, Any]:
        """The training keys of config.json, spelled as the reference writes them."""
        return {
            "context_len": context_len,
            "trajectory_sparsity": stride,
            "lr": self.lr,
            "betas": list(self.betas),
            "weight_decay": self.weight_decay,
            "precision": self.precision,
            "grad_accum_steps": self.grad_accum,
            "warmup_ratio": self.warmup_ratio,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "save_every": self.save_every,
            "seed": self.seed,
            "clip_grad": self.grad_clip,
        }


@dataclass
class RunResult:
    """What a training run did: where it wrote, how the loss went, what was verified."""

    run_dir: Path
    checkpoints: list[Path]
    final_loss: float | None
    epoch_losses: list[float]  # mean training loss of every epoch (all epochs, also resumed ones)
    steps: int  # optimiser steps done in total
    tokens: int  # timesteps trained on in this invocation
    seconds: float
    tokens_per_s: float
    resumed_from: Path | None = None
    trainable: dict[str, Any] = field(default_factory=dict)  # surgery's parameter report
    frozen_verified: bool | None = None  # None: nothing frozen to check
    frozen_report: str = ""
    adapter: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def last_checkpoint(self) -> Path | None:
        return self.checkpoints[-1] if self.checkpoints else None
