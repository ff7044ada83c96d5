"""A training run's folder `{save_dir}/{name}/`: its NNNN_epoch checkpoints and metrics.jsonl.

Owns the rules that keep runs from trampling each other's files: a finished run is never
overwritten without --resume, half-written saves are swept, and every save is atomic.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch import nn

from adaptkit.checkpoint import STATE_FILE, epoch_dir, latest_checkpoint, save_checkpoint
from adaptkit.errors import AdaptkitError
from adaptkit.meta import CheckpointMeta
from adaptkit.train.metrics import METRICS_FILE

# save(model, epoch, trainer_state) -> the checkpoint dir written (rank 0 only)
SaveFn = Callable[[nn.Module, int, dict[str, Any]], Path]


class RunDir:
    def __init__(self, save_dir: Path | str, name: str) -> None:
        self.save_dir, self.name = Path(save_dir), name
        self.path = self.save_dir / name

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    def epoch(self, epoch: int) -> Path:
        return epoch_dir(self.save_dir, self.name, epoch)

    def latest(self) -> Path | None:
        return latest_checkpoint(self.path)

    def prepare(self, resume: bool, is_main: bool) -> Path | None:
        """The checkpoint to resume from, or None for a fresh run; never clobbers a finished run."""
        latest = self.latest()
        if latest is not None and not resume:
            raise AdaptkitError(
                f"{self.path} already holds checkpoints (newest {latest.name}); pass --resume to "
                "continue that run, or choose another --name"
            )
        if resume and latest is not None and not (latest / STATE_FILE).is_file():
            raise AdaptkitError(f"cannot resume from {latest}: it has no state.pth")
        if is_main and self.path.is_dir():
            # leftovers of a save that was killed half-way; never a complete checkpoint
            for tmp in self.path.glob(".*_epoch.tmp-*"):
                shutil.rmtree(tmp, ignore_errors=True)
        return latest if resume else None

    def saver(
        self,
        meta: CheckpointMeta,
        config_json: Mapping[str, Any],
        run_state: Mapping[str, Any],
        after_save: Callable[[nn.Module, Path], None] | None = None,
    ) -> SaveFn:
        """save(model, epoch, trainer_state) for the Trainer: one atomic NNNN_epoch dir."""

        def save(model: nn.Module, epoch: int, trainer_state: dict[str, Any]) -> Path:
            path = self.epoch(epoch)
            save_checkpoint(path, model, meta, config_json, state={**trainer_state, **run_state})
            if after_save is not None:
                after_save(model, path)
            return path

        return save
