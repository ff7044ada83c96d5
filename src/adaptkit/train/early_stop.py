"""Early stopping on a held-out validation loss: which histories are held out, the loss on them,
and when to stop.

A fine-tune holds out the last `val_share` of a task's histories (at least one, and only when it
has two or more; a single history gives up its last `val_share` of steps instead) and, after
every epoch, measures the action loss on every window of them. An epoch is kept (its checkpoint
written) only when that loss beats the best so far by a relative `min_delta`; after `patience`
epochs without such an improvement training stops. The newest checkpoint is then the best one on
the held-out data, and the run records where and why it stopped. Runs of fewer than
MIN_EPOCHS epochs hold nothing out (nothing to stop early).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from adaptkit.data.history import History
from adaptkit.data.windows import split_batch
from adaptkit.model import action_loss

MIN_EPOCHS = 3


def split_histories(
    histories: Sequence[History], share: float, context_len: int
) -> tuple[list[History], list[History], str]:
    """(train, held out, how): the last `share` of the histories held out (at least one), or of
    the one history's steps; nothing when `share` is 0 or a part would hold no window."""
    items = list(histories)
    if share <= 0 or not items:
        return items, [], "no validation split"
    if len(items) >= 2:
        k = min(len(items) - 1, max(1, round(len(items) * share)))
        if not any(len(h) > context_len for h in items[-k:]):
            return items, [], "held-out histories too short for a window: no validation split"
        return items[:-k], items[-k:], f"the last {k} of {len(items)} histories held out"
    h = items[0]
    cut = len(h) - max(context_len + 1, round(len(h) * share))
    if cut < context_len + 1:
        return items, [], "one history too short to split: no validation split"
    return (
        [h.select(slice(0, cut))],
        [h.select(slice(cut, len(h)))],
        f"the last {len(h) - cut} of the one history's {len(h)} steps held out",
    )


@torch.no_grad()
def validation_loss(
    model: nn.Module,
    loader: DataLoader,
    device: torch.device,
    autocast: Any,
    micro_batch: int | None = None,
) -> float:
    """Mean action loss over every window of `loader` (eval mode, no gradients; the model's
    mode is restored). `micro_batch`: at most this many windows per forward (the training
    memory plan's split, adaptkit.train.memory); None: each loaded batch in one pass."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for loaded in loader:
            pieces = [loaded] if micro_batch is None else split_batch(loaded, micro_batch)
            for batch in pieces:
                with autocast:
                    pred = model(
                        batch["group"],
                        batch["obs"].to(device),
                        batch["prev_action"].to(device),
                        batch["prev_reward"].to(device),
                        batch["step_num"].to(device),
                    )
                n = int(batch["obs"].shape[0])
                total += float(action_loss(pred, batch["target"].to(device))) * n
                count += n
    finally:
        model.train(was_training)
    return total / count if count else math.nan


@dataclass
class EarlyStop:
    """When to stop (module docstring); its state travels in the checkpoint (resume)."""

    patience: int
    min_delta: float  # relative improvement that counts
    best: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    losses: list[float] = field(default_factory=list)
    stopped_at: int | None = None

    def update(self, epoch: int, loss: float) -> tuple[bool, bool]:
        """Record epoch `epoch`'s validation loss: (improved, stop now)."""
        self.losses.append(float(loss))
        improved = math.isfinite(loss) and loss < self.best * (1.0 - self.min_delta)
        if improved:
            self.best, self.best_epoch, self.bad_epochs = float(loss), epoch, 0
        else:
            self.bad_epochs += 1
        stop = self.bad_epochs >= self.patience
        return improved, stop

    def stopped(self, epoch: int) -> None:
        self.stopped_at = epoch

    def reason(self, epochs: int) -> str:
        """Where and why training ended, in one line."""
        best = f"best {self.best:.4f} at epoch {self.best_epoch}"
        if self.stopped_at is not None:
            return (
                f"stopped after epoch {self.stopped_at} of {epochs}: the validation loss did not "
                f"improve by {self.min_delta:.0%} for {self.patience} epoch(s) ({best}; kept)"
            )
        return f"ran all {epochs} epochs; validation loss {best} (kept)"

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, list(value) if key == "losses" else value)

    def summary(self, epochs: int) -> dict[str, Any]:
        return {
            "val_losses": list(self.losses),
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best,
            "stopped_at": self.stopped_at,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "reason": self.reason(epochs),
        }
