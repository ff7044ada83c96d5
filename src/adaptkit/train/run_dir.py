"""A training run's folder `{save_dir}/{name}/`: its NNNN_epoch checkpoints, metrics.jsonl and lock.

Owns the rules that keep runs from trampling each other's files:
- one live run per folder: `hold()` takes an exclusive `flock` on `.lock` (the holder's pid, host
  and command written inside) for the whole run; the kernel releases it on any exit, kill -9
  included, so a dead run never blocks the next one;
- a run with a trained epoch is never overwritten without --resume; a folder holding only the
  untrained `0000_epoch` of an attempt that failed may simply be run again;
- half-written saves are swept (a checkpoint being replaced when the save was killed is put
  back), every save is atomic, and after a resume metrics.jsonl holds each step once;
- `keep` prunes all but the newest N epochs after each save.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch import nn

from adaptkit import lockfile
from adaptkit.ckpt.checkpoint import save_checkpoint
from adaptkit.ckpt.layout import STATE_FILE, epoch_dir, epoch_dirs, latest_checkpoint
from adaptkit.errors import AdaptkitError
from adaptkit.fileio import check_folder_name, make_dirs, os_errors, sweep_temps
from adaptkit.meta import CheckpointMeta
from adaptkit.train.metrics import METRICS_FILE

LOCK_FILE = ".lock"
# save(model, epoch, trainer_state) -> the checkpoint dir written (rank 0 only)
SaveFn = Callable[[nn.Module, int, dict[str, Any]], Path]


# write(path, model, trainer_state): one epoch's files (a full checkpoint, or an adapter)
WriteFn = Callable[[Path, nn.Module, dict[str, Any]], Path]


def _epoch_of(path: Path | None) -> int:
    return int(path.name.split("_")[0]) if path is not None else -1


class RunDir:
    def __init__(self, save_dir: Path | str, name: str, keep: int | None = None) -> None:
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise AdaptkitError(f"--keep: must be an integer >= 1, got {keep!r}")
        check_folder_name(name, "run name")  # SAVE_DIR/NAME stays inside SAVE_DIR
        self.save_dir, self.name, self.keep = Path(save_dir), name, keep
        self.path = self.save_dir / name

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    def epoch(self, epoch: int) -> Path:
        return epoch_dir(self.save_dir, self.name, epoch)

    def latest(self) -> Path | None:
        return latest_checkpoint(self.path)

    # -- one run at a time -------------------------------------------------------------------
    @contextmanager
    def hold(self, is_main: bool = True) -> Iterator[None]:
        """Hold the run's lock for the block (rank 0 only; other ranks follow rank 0).

        Refused with a one-line error naming the holder when another live process holds it.
        Creating the folder is undone on the way out if the run wrote nothing into it (a
        failed pre-flight leaves no trace)."""
        if not is_main or lockfile.fcntl is None:
            yield
            return
        created = [p for p in (self.path, *self.path.parents) if not p.exists()]
        make_dirs(self.path, "run folder")
        fd = -1
        try:
            fd = self._acquire()
            yield
        finally:
            if fd >= 0:
                lockfile.release(self.lock_file, fd)
            for p in created:  # innermost first; stops at the first non-empty one
                try:
                    p.rmdir()
                except OSError:
                    break

    def _acquire(self) -> int:
        return lockfile.acquire(
            self.lock_file,
            lambda who: (
                f"{self.path} is in use by another run ({who}); wait for it to end, or "
                "choose another --name"
            ),
            "run's lock file",
        )

    # -- what the folder holds ---------------------------------------------------------------
    def prepare(self, resume: bool, is_main: bool) -> Path | None:
        """The checkpoint to resume from, or None for a fresh run; never clobbers a trained one.

        Call it holding the lock: it sweeps the temp folders of saves killed half-way."""
        latest = self.latest()
        if latest is not None and not resume and _epoch_of(latest) > 0:
            raise AdaptkitError(
                f"{self.path} already holds checkpoints (newest {latest.name}); pass --resume to "
                "continue that run, or choose another --name"
            )
        if resume and latest is not None and not (latest / STATE_FILE).is_file():
            raise AdaptkitError(f"cannot resume from {latest}: it has no state.pth")
        if is_main and self.path.is_dir():
            self._recover_interrupted_saves()
        return latest if resume else None

    def _recover_interrupted_saves(self) -> None:
        """A save killed half-way leaves `.NNNN_epoch.tmp-*` (never complete: removed). One that
        replaced an existing checkpoint and was killed between its two renames leaves the old
        one as `.NNNN_epoch.old-*` and nothing under its name: that one is put back."""
        for old in sorted(self.path.glob(".*_epoch.old-*")):
            name = old.name[1:].split(".old-")[0]
            target = self.path / name
            if not target.exists():
                with os_errors(target, "restore the checkpoint"):
                    old.rename(target)
        sweep_temps(self.path, ".*_epoch.tmp-*")
        sweep_temps(self.path, ".*_epoch.old-*")

    def resumable(self) -> bool:
        """A trained epoch is complete: `--resume` continues after it."""
        latest = self.latest()
        return latest is not None and _epoch_of(latest) > 0

    def recovery(self) -> str:
        """What the next command may do after this run failed: resume or start over."""
        latest = self.latest()
        if self.resumable() and latest is not None:
            return (
                f"{latest.name} is complete: `--resume` continues after epoch {_epoch_of(latest)}"
            )
        return "no trained epoch was saved: running the same command again starts over"

    # -- saving ------------------------------------------------------------------------------
    def prune(self) -> list[Path]:
        """Remove all but the newest `keep` complete epochs (nothing when keep is None)."""
        if self.keep is None:
            return []
        old = [p for _, p in epoch_dirs(self.path)][: -self.keep]
        for p in old:
            shutil.rmtree(p)
        return old

    def saver(
        self,
        meta: CheckpointMeta,
        config_json: Mapping[str, Any],
        run_state: Mapping[str, Any],
        write: WriteFn | None = None,
    ) -> SaveFn:
        """save(model, epoch, trainer_state) for the Trainer: one atomic NNNN_epoch dir (a full
        checkpoint, or what `write` writes), then the pruning of older epochs."""

        def full(path: Path, model: nn.Module, state: dict[str, Any]) -> Path:
            return save_checkpoint(path, model, meta, config_json, state=state)

        def save(model: nn.Module, epoch: int, trainer_state: dict[str, Any]) -> Path:
            path = (write or full)(self.epoch(epoch), model, {**trainer_state, **run_state})
            self.prune()
            return path

        return save
