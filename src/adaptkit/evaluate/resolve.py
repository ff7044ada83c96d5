"""Which group, observation layout, stats and reward scale a checkpoint uses for a robot
(native or zero-shot).

The checkpoint decides the layout: natively, the layout recorded for the robot's task (else the
one its group's width selects); zero-shot, the layout that fits the chosen group. A robot with
no layout fitting any group cannot run zero-shot: `NoFittingGroup` (compare reports such a row as
not applicable; adaptkit.ckpt.fit finds the group)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from adaptkit import defaults
from adaptkit.ckpt.fit import fit_group, fit_layout
from adaptkit.data.history import list_history_files
from adaptkit.data.stats import compute_stats
from adaptkit.data.stats_file import choose_stats
from adaptkit.errors import AdaptkitError
from adaptkit.meta import CheckpointMeta, Stats
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
    robot: RobotSpec | None = None  # the robot in the layout the group takes (the env's spec)

    def describe(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "task": self.task,
            "mode": self.mode,
            "obs_layout": (self.robot.obs_layout or "custom") if self.robot else None,
            "stats_source": self.stats_source,
            "reward_scale": self.reward_scale,
        }


NO_ROBOT_DATA = "no robot data"  # in a zero-shot stats_source: the group's average was used


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
        dims=GroupDims(spec.obs_dim, spec.action_dim),
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
    """Group, layout and stats for `spec` in a checkpoint with this metadata.

    Native when the robot's task is in the checkpoint: its group, the task's layout, its stats
    and reward scale. Zero-shot otherwise: `group` or the one group a layout of the robot fits;
    the robot's own stats in that layout when it has any (`robot_stats`), else the mean of the
    chosen group's task stats. `NoFittingGroup` when no group fits.
    """
    groups = meta.groups
    own = meta.tasks.get(spec.task)
    if own is not None and group in (None, own.group):
        fitted = fit_layout(spec, own.dims, own.obs_layout)
        if fitted is None:
            raise AdaptkitError(
                f"checkpoint task '{spec.task}' has obs/act dims {own.dims.obs_dim}/"
                f"{own.dims.act_dim}, which no layout of robot '{spec.name}' fits "
                f"({', '.join(f'{n} ({d})' for n, d in spec.layouts().items())})"
            )
        return Resolution(
            group=own.group,
            task=spec.task,
            mode="native",
            stats_source=f"checkpoint task '{spec.task}'",
            stats=own.stats,
            reward_scale=own.reward_scale,
            action_dim=own.dims.act_dim,
            robot=fitted,
        )
    chosen, fitted = fit_group(meta, spec, group)
    act_dim = groups[chosen].act_dim
    if own is not None and own.dims == groups[chosen]:  # own task, another group (--group)
        return Resolution(
            group=chosen,
            task=spec.task,
            mode="zero-shot",
            stats_source=f"checkpoint task '{spec.task}'",
            stats=own.stats,
            reward_scale=own.reward_scale,
            action_dim=act_dim,
            robot=fitted,
        )
    found = robot_stats(fitted, data_dir)
    # the rewards the model reads at the scale its group was trained with (one scale for all
    # of today's built-in tasks: the same as the robot's own)
    scales = {t.reward_scale for t in meta.tasks.values() if t.group == chosen}
    scale = scales.pop() if len(scales) == 1 else float(spec.reward_scale)
    if found is not None:
        stats, source = found[0], f"robot data ({found[1]})"
    else:
        tasks = meta.group_tasks()[chosen]
        stats = meta.group_mean_stats(chosen)
        source = f"average of checkpoint tasks {', '.join(tasks)} ({NO_ROBOT_DATA})"
    return Resolution(
        group=chosen,
        task=None,
        mode="zero-shot",
        stats_source=source,
        stats=stats,
        reward_scale=scale,
        action_dim=act_dim,
        robot=fitted,
    )
