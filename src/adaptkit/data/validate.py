"""Dataset validation: every history file checked against its layout, the robot plugin (in the
observation layout the data selects) and (optionally) a checkpoint's group metadata, plus a
per-task summary of what the data holds. The quadruped fork's extra observation row per chunk
(adaptkit.data.history) is named as a warning: readable, aligned by the documented rule.

Every file is read by the one history checker (adaptkit.data.check)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from adaptkit.data.check import check_history_file, extra_rows_warning
from adaptkit.data.config import DatasetEntry
from adaptkit.data.dataset_folder import files_disagree
from adaptkit.data.history import (
    History,
    list_history_files,
)
from adaptkit.data.layout import spec_for_data
from adaptkit.data.moments import RunningMoments, stats_from_moments
from adaptkit.errors import AdaptkitError
from adaptkit.meta import CheckpointMeta, Stats
from adaptkit.plugins import Registry
from adaptkit.robot import RobotSpec


@dataclass
class TaskSummary:
    task: str
    group: str
    robot: str | None
    obs_layout: str | None = None  # the robot's layout the data is in (None: no plugin)
    obs_dim: int | None = None
    act_dim: int | None = None
    histories: int = 0
    episodes: int = 0
    steps: int = 0
    # mean return per episode over the first / last 10% of each history's episodes (at least
    # one), averaged over histories: the learning progress the data should show
    return_start: float | None = None
    return_end: float | None = None


@dataclass
class ValidationReport:
    tasks: list[TaskSummary] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # filled only when asked (training's pre-flight): task -> its histories / computed stats
    histories: dict[str, list[History]] = field(default_factory=dict)
    stats: dict[str, Stats] = field(default_factory=dict)
    moments: dict[str, tuple[RunningMoments, RunningMoments]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tasks": [asdict(t) for t in self.tasks],
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }

    def error_line(self) -> str:
        """The first error, with a count of the others: one line for the CLI."""
        more = f" (and {len(self.errors) - 1} more problem(s))" if len(self.errors) > 1 else ""
        return self.errors[0] + more

    def raise_if_errors(self) -> None:
        if self.errors:
            raise AdaptkitError(self.error_line())


def _edge_means(returns: list[np.ndarray]) -> tuple[float | None, float | None]:
    if not returns:
        return None, None
    starts, ends = [], []
    for r in returns:
        k = max(1, len(r) // 10)
        starts.append(r[:k].mean())
        ends.append(r[-k:].mean())
    return float(np.mean(starts)), float(np.mean(ends))


def validate_dataset(
    entries: Mapping[str, DatasetEntry] | Iterable[DatasetEntry],
    registry: Registry | Iterable[RobotSpec],
    checkpoint: CheckpointMeta | None = None,
    raise_on_error: bool = True,
    *,
    keep: bool = False,
    compute_stats_for: Iterable[str] = (),
) -> ValidationReport:
    """Check every history of every entry; errors name the file (and chunk/dataset/step).

    Dims come from the robot plugin declaring each task (`registry`: a Registry, or the robot
    specs to consider) and, when given, the checkpoint's group;
    tasks of one group must agree. With raise_on_error=False the problems are returned in the
    report (the CLI renders the table first, then fails).

    Training calls this as its pre-flight: `keep` holds every history's arrays in
    `report.histories` and `compute_stats_for` fills `report.stats` for those tasks, from the
    same single pass.
    """
    specs = registry.robots.values() if isinstance(registry, Registry) else registry
    by_task = {spec.task: spec for spec in specs}
    ckpt_groups = checkpoint.groups if checkpoint is not None else {}
    want_stats = set(compute_stats_for)
    report = ValidationReport()
    group_dims: dict[str, tuple[int, int, str]] = {}  # group -> (obs, act, first task)
    values = list(entries.values()) if isinstance(entries, Mapping) else list(entries)
    for entry in values:
        spec = by_task.get(entry.task)
        if spec is None and isinstance(registry, Registry):  # a family member's task
            spec = registry.robot_for_task(entry.task)
        summary = TaskSummary(entry.task, entry.group, spec.name if spec else None)
        report.tasks.append(summary)
        obs_dim = act_dim = None
        source = ""
        try:
            files = entry.shard_of(list_history_files(entry.path))
        except AdaptkitError as exc:
            report.errors.append(f"task '{entry.task}': {exc}")
            continue
        disagreement = files_disagree(entry.path, files)
        if disagreement is not None:
            report.errors.append(f"task '{entry.task}': {disagreement}")
            continue
        if spec is not None:
            try:  # the data's width selects the robot's observation layout
                spec, _why = spec_for_data(spec, entry.path, files)
            except AdaptkitError as exc:
                report.errors.append(f"task '{entry.task}': {exc}")
                continue
            summary.obs_layout = spec.obs_layout or "custom"
            obs_dim, act_dim = spec.obs_dim, spec.action_dim
            source = f"robot plugin '{spec.name}' ({summary.obs_layout})"
            if spec.group != entry.group:
                report.warnings.append(
                    f"{entry.source}: '{entry.task}.group' is '{entry.group}' but robot "
                    f"'{spec.name}' declares group '{spec.group}'"
                )
        else:
            report.warnings.append(
                f"task '{entry.task}': no robot plugin declares it; "
                "dims checked for consistency only"
            )
        if entry.group in ckpt_groups:
            c_obs, c_act = ckpt_groups[entry.group].obs_dim, ckpt_groups[entry.group].act_dim
            if obs_dim is not None and (obs_dim, act_dim) != (c_obs, c_act):
                report.errors.append(
                    f"task '{entry.task}': {source} has obs/action dims {obs_dim}/{act_dim} but "
                    f"the checkpoint's group '{entry.group}' has {c_obs}/{c_act}"
                )
                continue
            obs_dim, act_dim = c_obs, c_act
            source = source or f"checkpoint group '{entry.group}'"
        summary.obs_dim, summary.act_dim = obs_dim, act_dim
        returns = []
        histories: list[History] = []
        obs_m = act_m = None
        for path in files:
            try:
                fs = check_history_file(
                    path, obs_dim, act_dim, keep=keep, moments=entry.task in want_stats
                )
            except AdaptkitError as exc:
                report.errors.append(
                    str(exc) + (f" ({source})" if source and "dim" in str(exc) else "")
                )
                continue
            obs_dim, act_dim = fs.obs_dim, fs.act_dim  # later files must agree with the first
            if fs.extra_obs_chunks:
                report.warnings.append(extra_rows_warning(path, fs))
            summary.histories += 1
            summary.steps += fs.steps
            summary.episodes += len(fs.episode_returns)
            returns.append(fs.episode_returns)
            if fs.history is not None:
                histories.append(fs.history)
            if fs.obs_moments is not None and fs.act_moments is not None:
                obs_m = fs.obs_moments if obs_m is None else obs_m.merge(fs.obs_moments)
                act_m = fs.act_moments if act_m is None else act_m.merge(fs.act_moments)
        summary.obs_dim, summary.act_dim = obs_dim, act_dim
        summary.return_start, summary.return_end = _edge_means(returns)
        if obs_dim is not None and act_dim is not None:
            first = group_dims.setdefault(entry.group, (obs_dim, act_dim, entry.task))
            if first[:2] != (obs_dim, act_dim):
                report.errors.append(
                    f"task '{entry.task}' has obs/action dims {obs_dim}/{act_dim} but task "
                    f"'{first[2]}' of the same group '{entry.group}' has {first[0]}/{first[1]}"
                )
        if keep:
            report.histories[entry.task] = histories
        if obs_m is not None and act_m is not None:
            report.stats[entry.task] = stats_from_moments(obs_m, act_m, str(files[0]))
            report.moments[entry.task] = (obs_m, act_m)
    if raise_on_error:
        report.raise_if_errors()
    return report
