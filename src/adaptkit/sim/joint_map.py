"""Which of a robot file's hinges is which canonical joint (FR, FL, RR, RL × hip, thigh, calf),
read off the kinematic tree and the geometry — never off the names, which robots spell in every
way (`FR_thigh_joint`, `FR_upper_joint`, `abduct_fr_to_thigh_fr_j`, `j07`).

The rule, at the file's reference pose (every joint at 0):
- a leg is a chain of three hinges hanging off the trunk (the free joint's body); along the
  chain, the hinge nearest the trunk is the hip (abduction), the next the thigh, the last the
  calf (knee);
- the leg's place is where its hinges and foot sit in the trunk's frame: front where x > 0, left
  where y > 0 (MuJoCo's and ROS's convention: x forward, y left, z up);
- the hip must turn about the trunk's x axis and the thigh and calf about its y axis.
A file where any of this fails (not four such chains, two legs in one quadrant, a leg on the
centre line, an axis along neither) is refused with the table of what was found; `--joints`
names the twelve joints by hand then.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.robot import JOINT_KINDS, LEGS
from adaptkit.sim.robot_file import trunk_frame

AXIS_MIN = 0.7  # |cos| between a joint axis and the trunk axis it must turn about
CENTRE_TOL = 0.01  # m: a leg this close to the trunk's centre line has no side / end
HINGE, FREE = int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_FREE)
ROUND = (int(mujoco.mjtGeom.mjGEOM_SPHERE), int(mujoco.mjtGeom.mjGEOM_CAPSULE))
TABLE_COLUMNS = ("joint", "body", "chain", "depth", "x", "y", "z", "axis", "role")


class AmbiguousJoints(AdaptkitError):
    """The joint mapping cannot be read off the file; `table` is what was found (one dict per
    hinge, TABLE_COLUMNS), for the CLI to print above the one-line error."""

    def __init__(self, message: str, table: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.table = table


@dataclass(frozen=True)
class Leg:
    name: str  # FR, FL, RR, RL
    joints: tuple[int, int, int]  # model joint ids: hip, thigh, calf
    foot_geom: int  # the geom farthest from the knee in the calf's subtree
    foot_radius: float  # its contact radius (sphere/capsule radius, else its smallest half size)


@dataclass(frozen=True)
class JointMap:
    """The canonical joints of a compiled model."""

    legs: tuple[Leg, ...]  # in canonical order FR, FL, RR, RL
    names: tuple[str, ...]  # the 12 joint names in canonical order (RobotSpec.mjcf_joints)
    trunk: int  # the free joint's body
    how: str  # one line: how the mapping was found
    table: tuple[dict[str, str], ...]  # what was found, one row per hinge


def _depth(model: mujoco.MjModel, body: int, trunk: int) -> int | None:
    """Bodies between `body` and the trunk (the trunk's child: 1); None if not below it."""
    depth = 0
    while body != trunk:
        if body == 0:
            return None
        body = int(model.body_parentid[body])
        depth += 1
    return depth


def _chain_root(model: mujoco.MjModel, body: int, trunk: int) -> int:
    """The trunk's child body `body` hangs from."""
    while int(model.body_parentid[body]) != trunk:
        body = int(model.body_parentid[body])
    return body


def _is_ancestor(model: mujoco.MjModel, upper: int, lower: int) -> bool:
    while lower != 0:
        if lower == upper:
            return True
        lower = int(model.body_parentid[lower])
    return upper == 0


def _subtree_geoms(model: mujoco.MjModel, body: int) -> list[int]:
    return [g for g in range(model.ngeom) if _is_ancestor(model, body, int(model.geom_bodyid[g]))]


def _foot(model: mujoco.MjModel, data: mujoco.MjData, calf: int) -> tuple[int, float] | None:
    body = int(model.jnt_bodyid[calf])
    geoms = _subtree_geoms(model, body)
    if not geoms:
        return None
    anchor = data.xanchor[calf]
    far = max(geoms, key=lambda g: float(np.linalg.norm(data.geom_xpos[g] - anchor)))
    size = model.geom_size[far]
    radius = (
        float(size[0])
        if int(model.geom_type[far]) in ROUND
        else float(np.min(size[size > 0], initial=0.0))
    )
    return far, radius


def _fmt_axis(axis: np.ndarray) -> str:
    return "(" + ", ".join(f"{v:+.2f}" for v in axis) + ")"


def map_joints(
    model: mujoco.MjModel, given: Sequence[str] | None = None, where: str = "the robot file"
) -> JointMap:
    """The canonical joints of `model` (module docstring); `given`: the 12 names in canonical
    order, checked (they must be hinges), instead of the rule."""
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    trunk, t_pos, t_rot = trunk_frame(model, data)

    def local(p: np.ndarray) -> np.ndarray:
        return t_rot.T @ (p - t_pos)

    hinges = [j for j in range(model.njnt) if int(model.jnt_type[j]) == HINGE]
    other = [
        model.joint(j).name or f"joint {j}"
        for j in range(model.njnt)
        if int(model.jnt_type[j]) not in (HINGE, FREE)
    ]
    rows: dict[int, dict[str, str]] = {}
    chains: dict[int, list[int]] = {}
    for j in hinges:
        body = int(model.jnt_bodyid[j])
        depth = _depth(model, body, trunk)
        root = _chain_root(model, body, trunk) if depth else None
        x, y, z = local(data.xanchor[j])
        rows[j] = {
            "joint": model.joint(j).name or f"(joint {j})",
            "body": model.body(body).name or f"(body {body})",
            "chain": (model.body(root).name or f"(body {root})") if root is not None else "-",
            "depth": str(depth) if depth is not None else "-",
            "x": f"{x:+.3f}",
            "y": f"{y:+.3f}",
            "z": f"{z:+.3f}",
            "axis": _fmt_axis(t_rot.T @ data.xaxis[j]),
            "role": "?",
        }
        if root is not None:
            chains.setdefault(root, []).append(j)

    def table() -> list[dict[str, str]]:
        return [rows[j] for j in hinges]

    def refuse(why: str) -> AmbiguousJoints:
        return AmbiguousJoints(
            f"{where}: cannot map its joints to FR, FL, RR, RL × hip, thigh, calf: {why}; name "
            "them with --joints J1,...,J12 (FR hip, thigh, calf, then FL, RR, RL)",
            table(),
        )

    if given is not None:
        return _from_names(model, data, list(given), trunk, rows, table, where)
    if other:
        raise refuse(f"it has joints that are neither hinges nor the free joint ({other[:3]})")
    if len(hinges) != 12:
        raise refuse(f"it has {len(hinges)} hinge joints, expected 12 (4 legs × 3)")
    legs: dict[str, Leg] = {}
    for joints in chains.values():
        # along a chain: by body depth, then by order within the body (MJCF applies a body's
        # joints in order, the first nearest the parent)
        joints.sort(key=lambda j: (_depth(model, int(model.jnt_bodyid[j]), trunk), j))
        label = rows[joints[0]]["chain"]
        if len(joints) != 3:
            raise refuse(f"the chain under body '{label}' has {len(joints)} hinges, expected 3")
        bodies = [int(model.jnt_bodyid[j]) for j in joints]
        if not all(_is_ancestor(model, a, b) for a, b in itertools.pairwise(bodies)):
            raise refuse(f"the hinges under body '{label}' are not one chain (a branch)")
        foot = _foot(model, data, joints[2])
        if foot is None:
            raise refuse(f"the chain under body '{label}' has no geometry below its last hinge")
        points = [local(data.xanchor[j]) for j in joints] + [local(data.geom_xpos[foot[0]])]
        mean = np.mean(points, axis=0)
        if abs(mean[0]) < CENTRE_TOL or abs(mean[1]) < CENTRE_TOL:
            raise refuse(
                f"the leg under body '{label}' sits on the trunk's centre line "
                f"(x {mean[0]:+.3f}, y {mean[1]:+.3f} m): neither front/rear nor left/right"
            )
        name = ("F" if mean[0] > 0 else "R") + ("L" if mean[1] > 0 else "R")
        if name in legs:
            raise refuse(f"two legs sit at the {name} corner of the trunk")
        axes = [t_rot.T @ data.xaxis[j] for j in joints]
        for kind, axis, j, want in zip(JOINT_KINDS, axes, joints, (0, 1, 1), strict=True):
            if abs(axis[want]) < AXIS_MIN:
                raise refuse(
                    f"the {kind} of leg {name} ('{rows[j]['joint']}', the chain's hinge "
                    f"{JOINT_KINDS.index(kind) + 1}) turns about {_fmt_axis(axis)}, not the "
                    f"trunk's {'xyz'[want]} axis"
                )
        for kind, j in zip(JOINT_KINDS, joints, strict=True):
            rows[j]["role"] = f"{name}_{kind}"
        legs[name] = Leg(name, tuple(joints), foot[0], foot[1])  # type: ignore[arg-type]
    ordered = tuple(legs[name] for name in LEGS)
    return JointMap(
        legs=ordered,
        names=tuple(model.joint(j).name for leg in ordered for j in leg.joints),
        trunk=trunk,
        how=(
            "from the kinematic tree: 4 chains of 3 hinges off the trunk (nearest the trunk: hip, "
            "then thigh, calf), each leg's corner from where it sits (x forward, y left), axes "
            "checked (hip about x, thigh and calf about y)"
        ),
        table=tuple(table()),
    )


def _from_names(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    names: list[str],
    trunk: int,
    rows: dict[int, dict[str, str]],
    table,
    where: str,
) -> JointMap:
    """--joints: the 12 names in canonical order, each a hinge of the model, no repeats."""
    if len(names) != 12 or len(set(names)) != 12:
        raise AdaptkitError(
            f"--joints: expected 12 different joint names (FR hip, thigh, calf, then FL, RR, RL), "
            f"got {len(names)}{' with repeats' if len(set(names)) != len(names) else ''}"
        )
    ids = []
    for name in names:
        try:
            j = model.joint(name).id
        except KeyError:
            raise AdaptkitError(f"--joints: {where} has no joint {name!r}") from None
        if int(model.jnt_type[j]) != HINGE:
            raise AdaptkitError(f"--joints: joint {name!r} of {where} is not a hinge")
        ids.append(j)
    legs = []
    for i, leg in enumerate(LEGS):
        joints = tuple(ids[3 * i : 3 * i + 3])
        foot = _foot(model, data, joints[2])
        if foot is None:
            raise AdaptkitError(
                f"--joints: leg {leg}'s calf {names[3 * i + 2]!r} moves no geometry"
            )
        for kind, j in zip(JOINT_KINDS, joints, strict=True):
            rows[j]["role"] = f"{leg}_{kind}"
        legs.append(Leg(leg, joints, foot[0], foot[1]))  # type: ignore[arg-type]
    return JointMap(
        legs=tuple(legs),
        names=tuple(names),
        trunk=trunk,
        how="given with --joints (FR, FL, RR, RL × hip, thigh, calf)",
        table=tuple(table()),
    )
