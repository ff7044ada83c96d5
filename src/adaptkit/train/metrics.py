"""Where a run's metrics go: `metrics.jsonl`, TensorBoard, Weights & Biases.

One `MetricsLogger` per run fans every record out to a backend per destination (`--log
jsonl,tensorboard,wandb`); the Trainer and the main job talk only to it. Two kinds of record:
a training step (loss, lr, tokens/s, per-task loss) and a named summary at a step (an epoch's
mean losses, the fine-tune's comparison). Only the process that opens the logger writes
(rank 0); an unopened logger drops everything, so other ranks need no `if`.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from adaptkit.errors import AdaptkitError
from adaptkit.fileio import make_dirs, os_errors, write_text_atomic

DESTINATIONS = ("jsonl", "tensorboard", "wandb")
DEFAULT_DESTINATIONS = ("jsonl",)
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
WANDB_ID_FILE = "wandb-run-id"  # a resumed run continues the same W&B run
# destination -> (module it needs, what to install)
_NEEDS = {
    "tensorboard": ("tensorboard", "adaptkit[tensorboard]"),
    "wandb": ("wandb", "adaptkit[wandb]"),
}


def parse_destinations(values: str | Iterable[str] | None) -> tuple[str, ...]:
    """`"jsonl,tensorboard"`, repeated values, or None (the default: jsonl) -> checked names;
    jsonl is always among them (metrics.jsonl is the run's own record)."""
    if values is None:
        return DEFAULT_DESTINATIONS
    items = [values] if isinstance(values, str) else list(values)
    names: list[str] = []
    for item in items:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in DESTINATIONS:
                raise AdaptkitError(
                    f"--log: unknown destination {name!r}; expected some of "
                    f"{', '.join(DESTINATIONS)} (comma-separated)"
                )
            if name not in names:
                names.append(name)
    if not names:
        raise AdaptkitError(f"--log: give at least one of {', '.join(DESTINATIONS)}")
    if "jsonl" not in names:  # every run keeps its own record, whatever else it logs to
        names.insert(0, "jsonl")
    return tuple(names)


def check_installed(destinations: Iterable[str]) -> None:
    """Fail before training starts when a destination's package is missing."""
    for name in destinations:
        if name in _NEEDS:
            module, extra = _NEEDS[name]
            if importlib.util.find_spec(module) is None:
                raise AdaptkitError(
                    f"--log {name}: the {module} package is not installed; pip install '{extra}'"
                )


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested numbers -> {"a/b": x}; strings, lists and None are left out (not scalars)."""
    out: dict[str, float] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "/"))
        elif isinstance(value, int | float):  # bool included: True -> 1.0
            out[name] = float(value)
    return out


class Backend(Protocol):
    def log_step(self, step: int, record: Mapping[str, Any]) -> None: ...

    def log_summary(self, step: int, name: str, data: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep the metric lines of steps <= last_step (a resume redoes the later ones; a fresh
    start, last_step 0, keeps none: an earlier failed attempt's lines go); a line cut short by
    a kill is dropped. Each step is then logged once."""
    if not path.exists():
        return
    keep = []
    with os_errors(path, "read the metrics"):
        lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the kill being resumed from
            continue
        if last_step > 0 and isinstance(record, dict) and record.get("step", 0) <= last_step:
            keep.append(line)
    write_text_atomic(path, "".join(line + "\n" for line in keep), "metrics")


class JsonlBackend:
    """metrics.jsonl: one line per training step; summaries carry an `event` key."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        make_dirs(path.parent, "run folder")
        # a resume keeps the lines up to its checkpoint; a fresh start none of an earlier attempt's
        truncate_metrics(path, resume_step or 0)
        with os_errors(path, "open the metrics"):
            self._fh = path.open("a", encoding="utf-8")

    def _write(self, record: Mapping[str, Any]) -> None:
        self._fh.write(json.dumps(record, default=str) + "\n")
        self._fh.flush()  # a killed run keeps every step it logged

    def log_step(self, step: int, record: Mapping[str, Any]) -> None:
        self._write(record)

    def log_summary(self, step: int, name: str, data: Mapping[str, Any]) -> None:
        self._write({"event": name, "step": step, **data})

    def close(self) -> None:
        self._fh.close()


class TensorBoardBackend:
    """Event files in RUN/tensorboard (`tensorboard --logdir RUN`): train/* per step, NAME/* per
    summary. A resumed run purges the events after its checkpoint's step."""

    def __init__(self, log_dir: Path, resume_step: int | None, config: Mapping[str, Any]) -> None:
        from torch.utils.tensorboard import SummaryWriter

        purge = None if resume_step is None else resume_step + 1
        self.writer = SummaryWriter(log_dir=str(log_dir), purge_step=purge)
        if config and resume_step is None:
            text = json.dumps(config, indent=2, default=str)
            self.writer.add_text("config", f"```\n{text}\n```", 0)

    def log_step(self, step: int, record: Mapping[str, Any]) -> None:
        skip = {"step", "epoch", "time"}
        for key, value in flatten({k: v for k, v in record.items() if k not in skip}).items():
            self.writer.add_scalar(f"train/{key}", value, step)

    def log_summary(self, step: int, name: str, data: Mapping[str, Any]) -> None:
        for key, value in flatten(data, f"{name}/").items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        self.writer.close()


class WandbBackend:
    """A Weights & Biases run named after the run folder, its files under RUN/wandb.

    Project and entity come from WANDB_PROJECT (default "adaptkit") and WANDB_ENTITY; offline
    use is WANDB_MODE=offline, as wandb documents. A resumed run continues the same W&B run.
    """

    def __init__(
        self, run_dir: Path, name: str, resume_step: int | None, config: Mapping[str, Any]
    ) -> None:
        import wandb

        id_file = run_dir / WANDB_ID_FILE
        run_id = id_file.read_text().strip() if id_file.is_file() else None
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "adaptkit"),
            name=name,
            dir=str(run_dir),
            config=dict(config),
            id=run_id,
            resume="allow" if run_id else None,
            reinit="finish_previous",
        )
        id_file.write_text(self.run.id + "\n")

    def log_step(self, step: int, record: Mapping[str, Any]) -> None:
        skip = {"step", "time"}
        data = flatten({k: v for k, v in record.items() if k not in skip}, "train/")
        self.run.log(data, step=step)

    def log_summary(self, step: int, name: str, data: Mapping[str, Any]) -> None:
        self.run.log(flatten(data, f"{name}/"), step=step)

    def close(self) -> None:
        self.run.finish()


class MetricsLogger:
    """The one object training code logs to. Open it (rank 0) with the run's folder; close it
    when the run, and anything logged about it afterwards, is done."""

    def __init__(self, destinations: str | Iterable[str] | None = None) -> None:
        self.destinations = parse_destinations(destinations)
        self.backends: list[Backend] = []
        self.opened = False

    def open(
        self,
        run_dir: str | Path,
        name: str | None = None,
        resume_step: int | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> MetricsLogger:
        """Start every backend in `run_dir`; `resume_step` (a resumed run) drops what was
        logged after that step. Opening an open logger does nothing."""
        if self.opened:
            return self
        check_installed(self.destinations)
        run_dir = Path(run_dir)
        name = name or run_dir.name
        config = dict(config or {})
        try:
            for dest in self.destinations:
                if dest == "jsonl":
                    self.backends.append(JsonlBackend(run_dir / METRICS_FILE, resume_step))
                elif dest == "tensorboard":
                    self.backends.append(
                        TensorBoardBackend(run_dir / TENSORBOARD_DIR, resume_step, config)
                    )
                elif dest == "wandb":
                    self.backends.append(WandbBackend(run_dir, name, resume_step, config))
        except Exception:
            self.close()
            raise
        self.opened = True
        return self

    def log_step(self, step: int, record: Mapping[str, Any]) -> None:
        for backend in self.backends:
            backend.log_step(step, record)

    def log_summary(self, step: int, name: str, data: Mapping[str, Any]) -> None:
        for backend in self.backends:
            backend.log_summary(step, name, data)

    def close(self) -> None:
        backends, self.backends = self.backends, []
        self.opened = False
        for backend in backends:
            backend.close()
