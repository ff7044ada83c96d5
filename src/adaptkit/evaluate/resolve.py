"""Which group, stats and reward scale a checkpoint uses for a robot (native or zero-shot)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.robot import RobotSpec


@dataclass(frozen=True)
class Resolution:
    """How a robot is run through a checkpoint; `describe()` is what the reports show."""

    group: str
    task: str | None  # the checkpoint task whose stats are used (None in zero-shot)
    mode: str  # "native": the robot's own task is in the checkpoint; else "zero-shot"
    stats_source: str
    obs_mean: np.ndarray
    obs_std: np.ndarray
    acs_mean: np.ndarray | None
    acs_std: np.ndarray | None
    reward_scale: float
    action_dim: int

    def describe(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "task": self.task,
            "mode": self.mode,
            "stats_source": self.stats_source,
            "reward_scale": self.reward_scale,
        }


def _dims(meta: Mapping[str, Any], task: str) -> tuple[int, int]:
    try:
        shape = meta["observation_shape"]["proprio"]
        return int(shape[0]), int(meta["action_dim"])
    except (KeyError, TypeError, IndexError, ValueError):
        raise AdaptkitError(
            f"metadata.json: task '{task}' lacks observation_shape.proprio or action_dim"
        ) from None


def group_index(metadata: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """{group: {"tasks": [...], "obs_dim": d, "action_dim": a}} from checkpoint metadata."""
    groups: dict[str, dict[str, Any]] = {}
    for task, meta in metadata.items():
        if not isinstance(meta, Mapping) or "group_name" not in meta:
            raise AdaptkitError(f"metadata.json: task '{task}' has no 'group_name'")
        obs_dim, act_dim = _dims(meta, task)
        g = groups.setdefault(
            meta["group_name"], {"tasks": [], "obs_dim": obs_dim, "action_dim": act_dim}
        )
        g["tasks"].append(task)
    return groups


def _vec(meta: Mapping[str, Any], key: str, task: str, dim: int) -> np.ndarray:
    value = meta.get(key)
    if value is None:
        raise AdaptkitError(f"metadata.json: task '{task}' has no '{key}'")
    arr = np.asarray(value, dtype=np.float32).reshape(-1)
    if arr.shape[0] != dim:
        raise AdaptkitError(
            f"metadata.json: '{task}.{key}' has {arr.shape[0]} values, expected {dim}"
        )
    return arr


def _task_stats(meta: Mapping[str, Any], task: str) -> dict[str, np.ndarray | None]:
    obs_dim, act_dim = _dims(meta, task)
    out: dict[str, np.ndarray | None] = {
        "obs_mean": _vec(meta, "obs_mean", task, obs_dim),
        "obs_std": _vec(meta, "obs_std", task, obs_dim),
    }
    # action stats matter only for norm_acs checkpoints; tolerate their absence otherwise
    for key in ("acs_mean", "acs_std"):
        out[key] = _vec(meta, key, task, act_dim) if meta.get(key) is not None else None
    return out


def robot_data_stats(spec: RobotSpec, data_dir: str | Path | None) -> dict[str, Any] | None:
    """The robot's own stats from its learning histories (or stats.json); None without data."""
    from adaptkit.data.config import DatasetEntry
    from adaptkit.data.history import list_history_files
    from adaptkit.data.stats import load_stats, stats_for_entry

    if spec.stats_path is not None and spec.stats_path.is_file():
        loaded = load_stats(spec.stats_path)
        if spec.task in loaded:
            return {**loaded[spec.task], "_source": str(spec.stats_path)}
    if data_dir is None:
        return None
    folder = Path(data_dir) / spec.data_path
    try:
        list_history_files(folder)
    except AdaptkitError:
        return None  # no data for this robot: the caller falls back to the checkpoint's stats
    entry = DatasetEntry(
        task=spec.task,
        type="default",
        path=folder.resolve(),
        group=spec.group,
        reward_scale=spec.reward_scale,
        episode_sparsity=spec.episode_sparsity,
    )
    stats_file = Path(data_dir) / "stats.json"
    return {**stats_for_entry(entry, stats_file), "_source": str(folder)}


def _pick_group(
    groups: dict[str, dict[str, Any]], spec: RobotSpec, group: str | None, native: str | None
) -> str:
    def fits(g: str) -> bool:
        return (groups[g]["obs_dim"], groups[g]["action_dim"]) == (spec.obs_dim, spec.action_dim)

    listing = ", ".join(
        f"{g} (obs {v['obs_dim']}, act {v['action_dim']})" for g, v in groups.items()
    )
    if group is not None:
        if group not in groups:
            raise AdaptkitError(f"--group: '{group}' is not in the checkpoint; groups: {listing}")
        if not fits(group):
            raise AdaptkitError(
                f"--group: '{group}' has obs/act dims {groups[group]['obs_dim']}/"
                f"{groups[group]['action_dim']}, robot '{spec.name}' has "
                f"{spec.obs_dim}/{spec.action_dim}"
            )
        return group
    if native is not None:
        return native
    if spec.group in groups and fits(spec.group):
        return spec.group
    matches = [g for g in groups if fits(g)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise AdaptkitError(
            f"checkpoint has no group with obs/act dims {spec.obs_dim}/{spec.action_dim} "
            f"for robot '{spec.name}'; groups: {listing}"
        )
    raise AdaptkitError(
        f"robot '{spec.name}' is not in the checkpoint and several groups match its dims: "
        f"{', '.join(matches)}; pick one with --group"
    )


def resolve(
    metadata: Mapping[str, Any],
    spec: RobotSpec,
    group: str | None = None,
    data_dir: str | Path | None = None,
) -> Resolution:
    """Group and stats for `spec` in a checkpoint with this metadata.

    Native when the robot's task is in the checkpoint: its group, stats and reward scale.
    Zero-shot otherwise: `group` or the one group with matching dims; the robot's stats from its
    data when there is any, else the mean of the chosen group's task stats in the checkpoint.
    """
    if not metadata:
        raise AdaptkitError("metadata.json: the checkpoint has no tasks")
    groups = group_index(metadata)
    task_meta = metadata.get(spec.task)
    native = task_meta["group_name"] if task_meta is not None else None
    chosen = _pick_group(groups, spec, group, native)
    if task_meta is not None:
        stats = _task_stats(task_meta, spec.task)
        return Resolution(
            group=chosen,
            task=spec.task,
            mode="native" if chosen == native else "zero-shot",
            stats_source=f"checkpoint task '{spec.task}'",
            reward_scale=float(task_meta.get("reward_scale", spec.reward_scale)),
            action_dim=groups[chosen]["action_dim"],
            **stats,  # type: ignore[arg-type]
        )
    data_stats = robot_data_stats(spec, data_dir)
    if data_stats is not None:
        arr = {k: np.asarray(data_stats[k], np.float32) for k in ("obs_mean", "obs_std")}
        acs = {k: np.asarray(data_stats[k], np.float32) for k in ("acs_mean", "acs_std")}
        if arr["obs_mean"].shape[0] != spec.obs_dim:
            raise AdaptkitError(
                f"{data_stats['_source']}: stats have {arr['obs_mean'].shape[0]} obs dims, "
                f"robot '{spec.name}' has {spec.obs_dim}"
            )
        source = f"robot data ({data_stats['_source']})"
    else:
        tasks = groups[chosen]["tasks"]
        per_task = [_task_stats(metadata[t], t) for t in tasks]
        arr = {k: np.mean([s[k] for s in per_task], axis=0) for k in ("obs_mean", "obs_std")}
        have_acs = all(s["acs_mean"] is not None and s["acs_std"] is not None for s in per_task)
        acs = (
            {k: np.mean([s[k] for s in per_task], axis=0) for k in ("acs_mean", "acs_std")}
            if have_acs
            else {"acs_mean": None, "acs_std": None}
        )
        source = f"average of checkpoint tasks {', '.join(tasks)} (no robot data)"
    return Resolution(
        group=chosen,
        task=None,
        mode="zero-shot",
        stats_source=source,
        reward_scale=float(spec.reward_scale),
        action_dim=groups[chosen]["action_dim"],
        obs_mean=arr["obs_mean"].astype(np.float32),
        obs_std=arr["obs_std"].astype(np.float32),
        acs_mean=None if acs["acs_mean"] is None else np.asarray(acs["acs_mean"], np.float32),
        acs_std=None if acs["acs_std"] is None else np.asarray(acs["acs_std"], np.float32),
    )
