"""One way to open, train and close a training run, shared by `pretrain` and `finetune`.

`run_session` opens the run: the process group (under torchrun), the metrics logger, the run
folder and its lock, held for the whole run; then it calls the kind's body with a `Session`,
and closes all of it again whatever happens. The body does what differs between the kinds
(where training starts, the surgery, the run state, the checks after training) and uses the
session for what does not: the run folder's recovery, the settings a resumed run keeps, the
training windows, the Trainer with its saver, and the RunResult.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from torch.utils.data import DataLoader

from adaptkit.data.config import DatasetEntry
from adaptkit.data.history import History
from adaptkit.data.windows import WindowDataset, make_loader
from adaptkit.errors import Interrupted, signal_name, signal_of
from adaptkit.meta import CheckpointMeta, Stats
from adaptkit.progress import SILENT, NoteCollector, Reporter
from adaptkit.train import distributed as dd
from adaptkit.train.config import RunResult, TrainConfig
from adaptkit.train.early_stop import EarlyStop
from adaptkit.train.loop import LoopResult, Trainer, window_loader
from adaptkit.train.metrics import MetricsLogger, check_installed
from adaptkit.train.run_dir import RunDir, WriteFn


@dataclass
class Session:
    """A run held open by `run_session`: its folder, process, notes and metrics."""

    run: RunDir
    info: dd.DistInfo
    reporter: NoteCollector  # rank 0's notes (the other ranks' are silent)
    metrics: MetricsLogger
    started: float = field(default_factory=time.perf_counter)

    def prepare(self, resume: bool) -> Path | None:
        """The run folder made ready (an interrupted save recovered, a fresh run's folder
        emptied of stale epochs); the newest checkpoint to resume from, or None."""
        return self.run.prepare(resume, self.info.is_main)

    def resumed(self, cfg: TrainConfig, saved: Mapping[str, Any]) -> TrainConfig:
        """The settings a resumed run continues with: its own (TrainConfig.resumed), with a note
        naming the given ones that were ignored."""
        cfg, ignored = cfg.resumed(saved.get("train_config", {}))
        if ignored:
            self.reporter.note(
                "resuming with the run's own settings; ignored " + ", ".join(ignored)
            )
        return cfg

    def windows(
        self,
        entries: Sequence[DatasetEntry],
        stats: Mapping[str, Stats],
        context_len: int,
        cfg: TrainConfig,
        histories: dict[str, list[History]],
    ) -> tuple[WindowDataset, DataLoader]:
        """The training windows of the pre-flight's histories and this rank's loader; the raw
        arrays are freed (the windows hold their own normalised copy)."""
        dataset, loader = window_loader(entries, stats, context_len, cfg, self.info, histories)
        histories.clear()
        return dataset, loader

    def held_out_windows(
        self,
        entries: Sequence[DatasetEntry],
        stats: Mapping[str, Stats],
        context_len: int,
        cfg: TrainConfig,
        histories: dict[str, list[History]],
    ) -> DataLoader:
        """Every window of the held-out histories, in order (each rank measures all of them:
        the same number on every rank), for the validation loss."""
        dataset = WindowDataset(
            list(entries), stats, context_len, cfg.stride(context_len), histories=histories
        )
        histories.clear()
        return make_loader(dataset, cfg.batch_size, shuffle=False, drop_last=False)

    def fit(
        self,
        model: nn.Module,
        loader: DataLoader,
        cfg: TrainConfig,
        context_len: int,
        meta: CheckpointMeta,
        config_json: Mapping[str, Any],
        run_state: Mapping[str, Any],
        *,
        groups: Sequence[str],
        tasks: Sequence[str],
        saved: dict[str, Any] | None,
        write_epoch: WriteFn | None = None,
        logged_config: Mapping[str, Any] | None = None,
        val_loader: DataLoader | None = None,
        early_stop: EarlyStop | None = None,
    ) -> LoopResult:
        """Train: the metrics opened on rank 0 (a resumed run drops what was logged after its
        step), then the Trainer over `loader`, saving every epoch through the run folder
        (`write_epoch`: how, else a full checkpoint). `saved`: the trainer state to resume
        from (None: a fresh run). `logged_config`: what the metrics record as the run's
        config (default `config_json`). `val_loader` + `early_stop`: stop early on the held-out
        windows' loss (adaptkit.train.early_stop)."""
        if self.info.is_main:
            self.metrics.open(
                self.run.path,
                resume_step=saved.get("global_step") if saved is not None else None,
                config=config_json if logged_config is None else logged_config,
            )
        trainer = Trainer(
            model,
            loader,
            cfg,
            self.info,
            self.run,
            self.run.saver(meta, config_json, run_state, write_epoch),
            context_len,
            find_unused=dd.needs_find_unused(model, list(groups)),
            reporter=self.reporter,
            metrics=self.metrics,
            tasks=list(tasks),
            val_loader=val_loader,
            early_stop=early_stop,
        )
        return trainer.run(saved)

    def result(self, loop: LoopResult, resumed_from: Path | None, **extra: Any) -> RunResult:
        """What the run did (RunResult), announced as the `done` event."""
        result = RunResult.from_loop(
            self.run.path,
            loop,
            time.perf_counter() - self.started,
            resumed_from,
            notes=self.reporter.notes,
            **extra,
        )
        self.reporter.event("done", {"result": result})
        return result


def run_session(
    save_dir: Path | str,
    name: str,
    body: Callable[[Session], RunResult],
    *,
    keep: int | None = None,
    device: str | None = None,
    reporter: Reporter = SILENT,
    log: str | Sequence[str] | None = None,
    metrics: MetricsLogger | None = None,
) -> RunResult:
    """Open the run `save_dir/name`, run `body` in it, close it.

    A bad metrics destination fails before anything starts; the run folder is locked for the
    whole body (one run per folder; a failed pre-flight leaves no trace). `metrics`: a logger
    the caller opened and closes (to log after training); else one for `log`, closed here."""
    own = metrics is None
    metrics = MetricsLogger(log) if metrics is None else metrics
    info = dd.setup(device)
    try:
        run = RunDir(save_dir, name, keep=keep)
        with run.hold(info.is_main):
            session = Session(
                run, info, NoteCollector(reporter if info.is_main else SILENT), metrics
            )
            check_installed(metrics.destinations)
            try:
                return body(session)
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM through the CLI's handler
                signum = signal_of(exc)
                raise Interrupted(
                    f"{run.path}: interrupted by {signal_name(signum)}; {run.recovery()}",
                    signum,
                    resume=run.resumable(),
                ) from None
    finally:
        if own:
            metrics.close()
        dd.teardown(info)
