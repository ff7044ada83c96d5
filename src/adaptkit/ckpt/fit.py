"""Fitting a robot to a checkpoint's groups from its metadata alone: which group a robot runs
through zero-shot, and the observation layout of the robot that group takes.

Evaluation (adaptkit.evaluate.resolve) and the main job (choosing the layout to collect in)
both ask this; no weights are read."""

from __future__ import annotations

from adaptkit.errors import AdaptkitError
from adaptkit.meta import CheckpointMeta
from adaptkit.model import GroupDims
from adaptkit.robot import RobotSpec


class NoFittingGroup(AdaptkitError):
    """No group of the checkpoint has dims any observation layout of the robot can produce."""


def _listing(groups: dict[str, GroupDims]) -> str:
    return ", ".join(f"{g} (obs {d.obs_dim}, act {d.act_dim})" for g, d in groups.items())


def fit_layout(spec: RobotSpec, dims: GroupDims, recorded: str | None) -> RobotSpec | None:
    """The robot in the layout a group of `dims` takes (a recorded layout first), or None."""
    if dims.act_dim != spec.action_dim:
        return None
    if recorded is not None and recorded in spec.layouts():
        fitted = spec.for_layout(recorded)
        if fitted.obs_dim == dims.obs_dim:
            return fitted
    try:
        return spec.for_obs_dim(dims.obs_dim)
    except AdaptkitError:
        return None


def fit_group(meta: CheckpointMeta, spec: RobotSpec, group: str | None) -> tuple[str, RobotSpec]:
    """Zero-shot: `group`, else the robot's own group name, else the one group whose dims one
    of the robot's layouts fits (a layout recorded for the group's tasks first); with the robot
    in that layout. `NoFittingGroup` when none fits."""
    groups = meta.groups
    layouts = {g: next((t.obs_layout for t in meta.tasks.values() if t.group == g), None)
               for g in groups}  # fmt: skip
    fits = {g: f for g, d in groups.items() if (f := fit_layout(spec, d, layouts[g])) is not None}
    mine = ", ".join(f"{n} (obs {d}, act {spec.action_dim})" for n, d in spec.layouts().items())
    if group is not None:
        if group not in groups:
            raise AdaptkitError(
                f"--group: '{group}' is not in the checkpoint; groups: {_listing(groups)}"
            )
        if group not in fits:
            d = groups[group]
            raise AdaptkitError(
                f"--group: '{group}' has obs/act dims {d.obs_dim}/{d.act_dim}, which no layout "
                f"of robot '{spec.name}' fits ({mine})"
            )
        return group, fits[group]
    if spec.group in fits:
        return spec.group, fits[spec.group]
    if len(fits) == 1:
        return next(iter(fits.items()))
    if not fits:
        raise NoFittingGroup(
            f"checkpoint has no group whose dims fit robot '{spec.name}' (its layouts: {mine}); "
            f"groups: {_listing(groups)}"
        )
    raise AdaptkitError(
        f"robot '{spec.name}' is not in the checkpoint and several groups fit it: "
        f"{', '.join(fits)}; pick one with --group"
    )
