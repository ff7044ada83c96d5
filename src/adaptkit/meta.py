"""The one owner of checkpoint metadata: tasks, groups, normalisation stats, reward scale and
observation layout.

`metadata.json` (reference layout: task → {group_name, observation_shape, action_dim,
action_type, reward_scale, obs_mean, obs_std, acs_mean, acs_std, ...}) is parsed and validated
here and nowhere else (config.json: adaptkit.ckpt.config_file; stats.json and which stats a task
uses: adaptkit.data.stats_file); everything else in adaptkit works with the typed objects below.

Rules, written once:
- a task entry is complete (every reference field present), dims are positive integers, the
  stats are lists of finite numbers of the right lengths, and every std is >= 0 (a zero std is
  legal: the reference divides by std + 1e-6; stats adaptkit computes are floored at 1e-3);
- all tasks of a group have the same obs/action dims (the group's dims are its first task's);
- unknown keys of a task entry pass through unchanged.

A task adaptkit writes records its robot's observation layout (`obs_layout`, an extra key) so
evaluation picks the layout without guessing from dims.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.fileio import read_json
from adaptkit.model.config import GroupDims

STATS_KEYS = ("obs_mean", "obs_std", "acs_mean", "acs_std")
REFERENCE_FIELDS = (
    "group_name",
    "observation_shape",
    "action_dim",
    "action_type",
    "reward_scale",
    *STATS_KEYS,
)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


# -- stats ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stats:
    """Per-task normalisation stats: observation and action mean / std (float tuples)."""

    obs_mean: tuple[float, ...]
    obs_std: tuple[float, ...]
    acs_mean: tuple[float, ...]
    acs_std: tuple[float, ...]

    @property
    def obs_dim(self) -> int:
        return len(self.obs_mean)

    @property
    def act_dim(self) -> int:
        return len(self.acs_mean)

    @classmethod
    def parse(cls, raw: Any, where: str, dims: GroupDims | None = None) -> Stats:
        """From a mapping with the four STATS_KEYS (lists of finite numbers, std >= 0), of the
        lengths `dims` gives (else: each mean as long as its std)."""
        if not isinstance(raw, Mapping):
            raise AdaptkitError(f"{where} must map {', '.join(STATS_KEYS)} to lists")
        values: dict[str, tuple[float, ...]] = {}
        for key in STATS_KEYS:
            v = raw.get(key)
            if hasattr(v, "tolist"):
                v = v.tolist()
            if not isinstance(v, list | tuple) or not v or not all(_is_number(x) for x in v):
                raise AdaptkitError(f"{where}: '{key}' must be a non-empty list of finite numbers")
            values[key] = tuple(float(x) for x in v)
        if dims is not None:
            cls(**values).check_dims(dims, where)
        for prefix in ("obs", "acs"):
            if len(values[f"{prefix}_mean"]) != len(values[f"{prefix}_std"]):
                raise AdaptkitError(f"{where}: {prefix}_mean and {prefix}_std differ in length")
            if min(values[f"{prefix}_std"]) < 0:
                raise AdaptkitError(f"{where}: '{prefix}_std' must be >= 0")
        return cls(**values)

    def check_dims(self, dims: GroupDims, where: str) -> Stats:
        for key in STATS_KEYS:
            n, want = len(getattr(self, key)), dims.obs_dim if key[:3] == "obs" else dims.act_dim
            if n != want:
                raise AdaptkitError(f"{where}: '{key}' has {n} values, expected {want}")
        return self

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(getattr(self, k)) for k in STATS_KEYS}

    def array(self, key: str) -> np.ndarray:
        return np.asarray(getattr(self, key), np.float32)

    @classmethod
    def mean_of(cls, stats: Iterable[Stats]) -> Stats:
        items = list(stats)
        return cls(
            **{
                k: tuple(np.mean([getattr(s, k) for s in items], axis=0).tolist())
                for k in STATS_KEYS
            }
        )


# -- task and checkpoint metadata ------------------------------------------------------------------
@dataclass(frozen=True)
class TaskMeta:
    """One task of a checkpoint: its group, dims, reward scale and stats (+ pass-through keys)."""

    task: str
    group: str
    dims: GroupDims
    reward_scale: float
    stats: Stats
    extra: Mapping[str, Any] = field(default_factory=dict)  # episode_sparsity, robot, others

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @classmethod
    def new(
        cls,
        task: str,
        group: str,
        dims: GroupDims,
        stats: Stats,
        reward_scale: float = 1.0,
        episode_sparsity: int = 1,
        robot: str | None = None,
        obs_layout: str | None = None,
    ) -> TaskMeta:
        """A complete entry for a task adaptkit trains; the stats must fit the dims."""
        stats.check_dims(dims, f"stats for task {task!r}")
        if not _is_number(reward_scale):
            raise AdaptkitError(f"task {task!r}: reward_scale must be a finite number")
        extra: dict[str, Any] = {"episode_sparsity": int(episode_sparsity)}
        if robot:
            extra["robot"] = robot
        if obs_layout:
            extra["obs_layout"] = obs_layout
        return cls(task, group, dims, float(reward_scale), stats, extra)

    @classmethod
    def parse(cls, task: str, entry: Any, where: str) -> TaskMeta:
        """One metadata.json entry, checked complete and self-consistent."""
        at = f"{where}: task {task!r}"
        if not isinstance(entry, dict):
            raise AdaptkitError(f"{at} must be an object, got {type(entry).__name__}")
        missing = [f for f in REFERENCE_FIELDS if f not in entry]
        if missing:
            raise AdaptkitError(
                f"{at} is incomplete, missing {', '.join(missing)} (the reference add_task writes "
                "such entries; add the robot with adaptkit to get a complete one)"
            )
        group = entry["group_name"]
        if not isinstance(group, str) or not group:
            raise AdaptkitError(f"{at} field 'group_name' must be a non-empty string")
        shape = entry["observation_shape"]
        proprio = shape.get("proprio") if isinstance(shape, dict) else None
        if (
            not isinstance(proprio, list | tuple)
            or len(proprio) != 1
            or not isinstance(proprio[0], int)
            or isinstance(proprio[0], bool)
            or proprio[0] < 1
        ):
            raise AdaptkitError(
                f"{at} field 'observation_shape' must be {{\"proprio\": [d]}}, got {shape!r}"
            )
        act_dim = entry["action_dim"]
        if not isinstance(act_dim, int) or isinstance(act_dim, bool) or act_dim < 1:
            raise AdaptkitError(f"{at} field 'action_dim' must be a positive integer")
        if entry["action_type"] != "continuous":
            raise AdaptkitError(
                f"{at} field 'action_type' must be 'continuous', got {entry['action_type']!r}"
            )
        if not _is_number(entry["reward_scale"]):
            raise AdaptkitError(f"{at} field 'reward_scale' must be a finite number")
        dims = GroupDims(int(proprio[0]), int(act_dim))
        stats = Stats.parse(entry, at, dims)
        extra = {k: v for k, v in entry.items() if k not in REFERENCE_FIELDS}
        return cls(task, group, dims, float(entry["reward_scale"]), stats, extra)

    @property
    def robot(self) -> str | None:
        return self.extra.get("robot")

    @property
    def obs_layout(self) -> str | None:
        """The observation layout recorded for the task (None: not recorded, e.g. the fork's)."""
        layout = self.extra.get("obs_layout")
        return layout if isinstance(layout, str) else None

    def to_json(self) -> dict[str, Any]:
        """The reference entry (extra keys after the reference fields)."""
        return {
            "group_name": self.group,
            "observation_shape": {"proprio": [self.dims.obs_dim]},
            "action_dim": self.dims.act_dim,
            "action_type": "continuous",
            "reward_scale": self.reward_scale,
            **self.stats.to_dict(),
            **self.extra,
        }


class CheckpointMeta:
    """All tasks of a checkpoint (metadata.json), with the groups derived from them."""

    def __init__(self, tasks: Iterable[TaskMeta] = ()) -> None:
        self.tasks: dict[str, TaskMeta] = {}
        for t in tasks:
            self.add(t)

    @classmethod
    def parse(cls, raw: Any, where: str = "metadata.json") -> CheckpointMeta:
        if not isinstance(raw, dict) or not raw:
            raise AdaptkitError(
                f"{where}: expected an object of task → metadata with at least one task"
            )
        return cls(TaskMeta.parse(task, entry, where) for task, entry in raw.items())

    @classmethod
    def read(cls, path: Path) -> CheckpointMeta:
        return cls.parse(read_json(path), str(path))

    def add(self, task: TaskMeta, where: str = "metadata") -> None:
        """Add (or replace) a task; its dims must agree with its group's other tasks."""
        for other in self.tasks.values():
            if other.group == task.group and other.task != task.task and other.dims != task.dims:
                raise AdaptkitError(
                    f"{where}: task {task.task!r} has obs/act dims {task.dims.obs_dim}/"
                    f"{task.dims.act_dim} but group {task.group!r} (from task {other.task!r}) "
                    f"has {other.dims.obs_dim}/{other.dims.act_dim}"
                )
        self.tasks[task.task] = task

    def copy(self) -> CheckpointMeta:
        return CheckpointMeta(self.tasks.values())

    def __contains__(self, task: object) -> bool:
        return task in self.tasks

    def __getitem__(self, task: str) -> TaskMeta:
        return self.tasks[task]

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def groups(self) -> dict[str, GroupDims]:
        """group → dims, in the order groups first appear."""
        out: dict[str, GroupDims] = {}
        for t in self.tasks.values():
            out.setdefault(t.group, t.dims)
        return out

    @property
    def task2group(self) -> dict[str, str]:
        return {t.task: t.group for t in self.tasks.values()}

    def group_tasks(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for t in self.tasks.values():
            out.setdefault(t.group, []).append(t.task)
        return out

    def group_mean_stats(self, group: str) -> Stats:
        return Stats.mean_of(t.stats for t in self.tasks.values() if t.group == group)

    def subset(self, group: str) -> CheckpointMeta:
        return CheckpointMeta(t for t in self.tasks.values() if t.group == group)

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {name: t.to_json() for name, t in self.tasks.items()}

    def check_model_groups(self, model_groups: Mapping[str, GroupDims], where: str) -> None:
        """Every group with tasks has modules of the same dims, and every module group has tasks."""
        groups = self.groups
        for g, dims in groups.items():
            if g not in model_groups:
                raise AdaptkitError(
                    f"{where}: group {g!r} has tasks but the model has no such group"
                )
            if model_groups[g] != dims:
                m = model_groups[g]
                raise AdaptkitError(
                    f"{where}: group {g!r} declares obs/act {dims.obs_dim}/{dims.act_dim}, "
                    f"the model's modules have {m.obs_dim}/{m.act_dim}"
                )
        orphans = [g for g in model_groups if g not in groups]
        if orphans:
            raise AdaptkitError(
                f"{where}: model groups {orphans} have no task entry (a new group needs a "
                "complete metadata entry — use adaptkit.adapt.surgery.add_group)"
            )
