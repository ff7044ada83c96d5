"""Which group, stats and reward scale a checkpoint uses for a robot (native or zero-shot)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from adaptkit import defaults
from adaptkit.data.history import list_history_files
from adaptkit.data.stats import compute_stats
from adaptkit.errors import AdaptkitError
from adaptkit.meta import CheckpointMeta, Stats, choose_stats
from adaptkit.model import GroupDims
from adaptkit.robot import RobotSpec


@dataclass(frozen=True)
class Resolution:
    """How a robot is run through a checkpoint; `describe()` is what the reports show."""

    group: str
    task: str | None  # the checkpoint task whose stats are used (None in zero-shot)
    mode: str  # "native": the robot's own task is in the checkpoint; else "zero-shot"
    stats_source: str
    stats: Stats
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


def _pick_group(
    groups: dict[str, GroupDims], spec: RobotSpec, group: str | None, native: str | None
) -> str:
    want = GroupDims(spec.obs_dim, spec.action_dim)
    listing = ", ".join(f"{g} (obs {d.obs_dim}, act {d.act_dim})" for g, d in groups.items())
    if group is not None:
        if group not in groups:
            raise AdaptkitError(f"--group: '{group}' is not in the checkpoint; groups: {listing}")
        if groups[group] != want:
            d = groups[group]
            raise AdaptkitError(
                f"--group: '{group}' has obs/act dims {d.obs_dim}/{d.act_dim}, robot "
                f"'{spec.name}' has {spec.obs_dim}/{spec.action_dim}"
            )
        return group
    if native is not None:
        return native
    if groups.get(spec.group) == want:
        return spec.group
    matches = [g for g, d in groups.items() if d == want]
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


def robot_stats(spec: RobotSpec, data_dir: str | Path | None) -> tuple[Stats, str] | None:
    """The robot's own stats (plugin file, data_dir/stats.json, or computed from its histories
    in data_dir), in adaptkit.meta's order; None when there are none."""
    folder = Path(data_dir) / spec.data_path if data_dir is not None else None
    compute = None
    if folder is not None and folder.is_dir():
        try:
            files = list_history_files(folder)
            compute = partial(compute_stats, files)
        except AdaptkitError:
            pass  # no histories: fall back to the checkpoint's stats
    chosen = choose_stats(
        spec.task,
        plugin_file=spec.stats_path,
        data_file=Path(data_dir) / defaults.STATS_FILE if data_dir is not None else None,
        compute=compute,
    )
    if chosen is None:
        return None
    stats, source = chosen
    if stats.obs_dim != spec.obs_dim:
        raise AdaptkitError(
            f"{source}: stats have {stats.obs_dim} obs dims, robot '{spec.name}' has {spec.obs_dim}"
        )
    where = f"{folder}: {source}" if source.startswith("computed") else source
    return stats, where


def resolve(
    meta: CheckpointMeta,
    spec: RobotSpec,
    group: str | None = None,
    data_dir: str | Path | None = None,
) -> Resolution:
    """Group and stats for `spec` in a checkpoint with this metadata.

    Native when the robot's task is in the checkpoint: its group, stats and reward scale.
    Zero-shot otherwise: `group` or the one group with matching dims; the robot's own stats when
    it has any (`robot_stats`), else the mean of the chosen group's task stats.
    """
    groups = meta.groups
    own = meta.tasks.get(spec.task)
    chosen = _pick_group(groups, spec, group, own.group if own else None)
    act_dim = groups[chosen].act_dim
    if own is not None:
        return Resolution(
            group=chosen,
            task=spec.task,
            mode="native" if chosen == own.group else "zero-shot",
            stats_source=f"checkpoint task '{spec.task}'",
            stats=own.stats,
            reward_scale=own.reward_scale,
            action_dim=act_dim,
        )
    found = robot_stats(spec, data_dir)
    if found is not None:
        stats, source = found[0], f"robot data ({found[1]})"
    else:
        tasks = meta.group_tasks()[chosen]
        stats = meta.group_mean_stats(chosen)
        source = f"average of checkpoint tasks {', '.join(tasks)} (no robot data)"
    return Resolution(
        group=chosen,
        task=None,
        mode="zero-shot",
        stats_source=source,
        stats=stats,
        reward_scale=float(spec.reward_scale),
        action_dim=act_dim,
    )
