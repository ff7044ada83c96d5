"""What a robot file's geometry says about its legs: axis signs, a standing pose, heights, mass,
leg length and torque limits — each found by forward kinematics on the compiled model (no names,
no constants copied from another robot), with the rule written next to it.

Signs, in the demonstrator's 'effective' units (adaptkit.robot.GaitParams): a thigh's sign is
+1 when a positive angle swings the foot backwards, a calf's +1 when a positive angle swings the
foot forwards (flexes a knee that points backwards, as on every built-in robot); a hip takes its
leg's thigh sign. The standing pose puts each front foot straight below its thigh joint, the hip
to foot distance STANCE_FRACTION of the leg's reach (thigh + calf length: the built-in robots'
stance, thigh 0.8 and knee 1.6 on equal links, cos 0.8 ≈ 0.70); each rear thigh is turned
REAR_THIGH_OFFSET further and its knee solved for the same depth (a level trunk).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import mujoco
import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.robot import JOINT_KINDS
from adaptkit.sim.joint_map import JointMap, Leg
from adaptkit.sim.robot_file import trunk_frame

STANCE_FRACTION = 0.70  # hip-to-foot distance / the leg's full reach, standing
# rad (effective): the rear thighs turned this much further, feet behind their hips at the same
# depth — the Unitree robots' stance, which stands where feet straight below the hips tip the
# trunk nose-up at kp 25 (Go1, A1: docs/plugins.md)
REAR_THIGH_OFFSET = 0.2
PROBE = 0.05  # rad: the small turn that tells a joint's sign
MIN_FLEX = 0.5  # rad: a knee whose range allows less flexion than this bends the wrong way
GRAVITY = 9.81
# Torque limits when the file states none: these fractions of m·g·L (total mass, leg length) —
# the medians of the built-in robots' (hip/thigh 0.37–0.69, knee 0.67–0.77; docs/plugins.md).
TORQUE_RULE = {"hip": 0.5, "thigh": 0.5, "calf": 0.7}


@dataclass(frozen=True)
class LegGeometry:
    leg: str
    thigh_sign: float
    calf_sign: float
    thigh_length: float  # thigh joint to knee joint (m)
    calf_length: float  # knee joint to the foot's centre (m)
    pose: tuple[float, float, float]  # standing joint angles (hip, thigh, calf), in the file's axes
    height: float  # trunk origin above the floor with this leg's foot on it, standing (m)


@dataclass(frozen=True)
class Geometry:
    legs: tuple[LegGeometry, ...]  # canonical order
    mass: float  # kg, the whole robot
    leg_length: float  # mean thigh + calf (m)
    standing_height: float  # trunk origin above the floor at the standing pose, legs rigid (m)

    @property
    def default_joint_angles(self) -> tuple[float, ...]:
        return tuple(float(q) for leg in self.legs for q in leg.pose)

    @property
    def signs(self) -> tuple[float, ...]:
        return tuple(
            s for leg in self.legs for s in (leg.thigh_sign, leg.thigh_sign, leg.calf_sign)
        )


class _Kinematics:
    """Foot and joint positions in the trunk frame for given angles of one leg's joints."""

    def __init__(self, model: mujoco.MjModel, legs: tuple[Leg, ...]) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.legs = legs
        mujoco.mj_kinematics(model, self.data)
        _, self.t_pos, self.t_rot = trunk_frame(model, self.data)

    def set(self, leg: Leg, angles: tuple[float, float, float]) -> None:
        for j, q in zip(leg.joints, angles, strict=True):
            self.data.qpos[self.model.jnt_qposadr[j]] = q

    def run(self) -> None:
        mujoco.mj_kinematics(self.model, self.data)

    def local(self, p: np.ndarray) -> np.ndarray:
        return self.t_rot.T @ (p - self.t_pos)

    def foot(self, leg: Leg) -> np.ndarray:
        return self.local(self.data.geom_xpos[leg.foot_geom])

    def anchor(self, joint: int) -> np.ndarray:
        return self.local(self.data.xanchor[joint])


def _sign(kin: _Kinematics, leg: Leg, which: int, forwards: bool) -> float:
    """+1 when a positive turn of the leg's joint `which` moves the foot forwards (`forwards`)
    or backwards (not `forwards`) at the reference pose."""
    kin.set(leg, (0.0, 0.0, 0.0))
    kin.run()
    x0 = kin.foot(leg)[0]
    probe = [0.0, 0.0, 0.0]
    probe[which] = PROBE
    kin.set(leg, tuple(probe))  # type: ignore[arg-type]
    kin.run()
    dx = kin.foot(leg)[0] - x0
    kin.set(leg, (0.0, 0.0, 0.0))
    if abs(dx) < 1e-6:
        raise AdaptkitError(
            f"leg {leg.name}: turning its {JOINT_KINDS[which]} does not move the foot fore or aft"
        )
    return 1.0 if (dx > 0) == forwards else -1.0


def _ranges(model: mujoco.MjModel, joint: int) -> tuple[float, float]:
    if model.jnt_limited[joint]:
        lo, hi = model.jnt_range[joint]
        return float(lo), float(hi)
    return -math.pi, math.pi


def _stance(
    kin: _Kinematics, leg: Leg, thigh_sign: float, calf_sign: float, where: str
) -> tuple[tuple[float, float, float], float, float, float]:
    """The standing angles (file axes), the trunk height over this foot, and the link lengths."""
    model = kin.model
    hip, thigh, calf = leg.joints
    hip_q = float(np.clip(0.0, *_ranges(model, hip)))
    kin.set(leg, (hip_q, 0.0, 0.0))
    kin.run()
    a_thigh, a_knee, foot0 = kin.anchor(thigh), kin.anchor(calf), kin.foot(leg)
    l1 = float(np.linalg.norm(a_knee - a_thigh))
    l2 = float(np.linalg.norm(foot0 - a_knee))
    # effective flexion the knee's range allows
    lo, hi = (calf_sign * v for v in _ranges(model, calf))
    flex_lo, flex_hi = min(lo, hi), max(lo, hi)
    if flex_hi < MIN_FLEX:
        raise AdaptkitError(
            f"{where}: leg {leg.name}'s knee ('{model.joint(calf).name}') can flex at most "
            f"{flex_hi:.2f} rad backwards-pointing; adaptkit's trot drives legs whose knees "
            "point backwards (name the joints with --joints if the mapping is wrong)"
        )
    t_lo, t_hi = sorted(thigh_sign * v for v in _ranges(model, thigh))

    def place(t: float, c: float) -> tuple[float, float]:
        """(fore-aft offset of the foot from the thigh joint, its depth below it)."""
        kin.set(leg, (hip_q, thigh_sign * t, calf_sign * c))
        kin.run()
        f, a = kin.foot(leg), kin.anchor(thigh)
        return float(f[0] - a[0]), float(a[2] - f[2])

    reach = l1 + l2  # the leg's full reach (thigh + calf), whatever its knee's range
    want = STANCE_FRACTION * reach

    span_t, span_c = (t_lo, t_hi), (max(flex_lo, 0.0), flex_hi)

    def solve(cost, fixed_t: float | None = None) -> tuple[float, float, float]:
        """Minimise cost(t, c) on a coarse grid, then two finer ones around the best point
        (forward kinematics only); with `fixed_t`, over c alone."""
        best = (math.inf, 0.0, 0.0)
        centre = width = None
        for steps in (25, 11, 11):
            if centre is None:
                ts = np.linspace(max(span_t[0], -1.5), min(span_t[1], 2.5), steps)
                cs = np.linspace(span_c[0], min(span_c[1], 3.0), steps)
            else:
                ts = np.clip(
                    np.linspace(centre[0] - width[0], centre[0] + width[0], steps), *span_t
                )
                cs = np.clip(
                    np.linspace(centre[1] - width[1], centre[1] + width[1], steps), *span_c
                )
            if fixed_t is not None:
                ts = np.array([fixed_t])
            for t in ts:
                for c in cs:
                    value = cost(float(t), float(c))
                    if value < best[0]:
                        best = (value, float(t), float(c))
            step_t = abs(ts[1] - ts[0]) if len(ts) > 1 else 0.0
            centre, width = (best[1], best[2]), (1.5 * step_t, 1.5 * abs(cs[1] - cs[0]))
        return best

    def under(t: float, c: float) -> float:  # the foot below the thigh joint, `want` deep
        dx, dz = place(t, c)
        return dx * dx + (dz - want) ** 2

    best = solve(under)
    if leg.name.startswith("R"):  # rear feet a little behind their hips, at the same depth
        t_rear = float(np.clip(best[1] + REAR_THIGH_OFFSET, *span_t))
        best = solve(lambda t, c: (place(t, c)[1] - want) ** 2, fixed_t=t_rear)
    _, t, c = best
    dx, dz = place(t, c)
    if abs(dz - want) > 0.1 * reach or (not leg.name.startswith("R") and abs(dx) > 0.1 * reach):
        raise AdaptkitError(
            f"{where}: leg {leg.name} cannot stand with its foot below its thigh joint within its "
            f"joint ranges (closest: {dx:+.3f} m fore-aft, {dz:.3f} m deep, wanted {want:.3f} m)"
        )
    pose = (hip_q, thigh_sign * t, calf_sign * c)
    return pose, _pose_height(kin, leg, pose), l1, l2


def _pose_height(kin: _Kinematics, leg: Leg, pose: tuple[float, float, float]) -> float:
    kin.set(leg, pose)
    kin.run()
    height = -float(kin.foot(leg)[2]) + leg.foot_radius
    kin.set(leg, (0.0, 0.0, 0.0))
    return height


def leg_geometry(
    model: mujoco.MjModel,
    jmap: JointMap,
    where: str = "the robot file",
    pose: tuple[float, ...] | None = None,
) -> Geometry:
    """Signs, standing pose, heights, mass and leg length (module docstring). `pose`: the 12
    standing angles to use instead of the rule (a plugin's own); their thigh and knee signs must
    agree with the axes' (the demonstrator reads the signs off the pose)."""
    kin = _Kinematics(model, jmap.legs)
    legs = []
    for i, leg in enumerate(jmap.legs):
        thigh_sign = _sign(kin, leg, 1, forwards=False)
        calf_sign = _sign(kin, leg, 2, forwards=True)
        pose_q, height, l1, l2 = _stance(kin, leg, thigh_sign, calf_sign, where)
        if pose is not None:
            pose_q = tuple(float(q) for q in pose[3 * i : 3 * i + 3])
            for kind, q, sign in zip(("thigh", "knee"), pose_q[1:], (thigh_sign, calf_sign),
                                     strict=True):  # fmt: skip
                if q == 0.0 or math.copysign(1.0, q) != sign:
                    raise AdaptkitError(
                        f"{where}: leg {leg.name}'s {kind} angle in the pose ({q:+.3f}) must have "
                        f"the sign {sign:+.0f} of the file's axis (the demonstrator reads the "
                        "signs off the pose)"
                    )
            height = _pose_height(kin, leg, pose_q)  # type: ignore[arg-type]
        legs.append(LegGeometry(leg.name, thigh_sign, calf_sign, l1, l2, pose_q, height))
    heights = [g.height for g in legs]
    return Geometry(
        legs=tuple(legs),
        mass=float(model.body_subtreemass[jmap.trunk]),
        leg_length=float(np.mean([g.thigh_length + g.calf_length for g in legs])),
        standing_height=float(np.mean(heights)),
    )


def torque_limits(
    jmap: JointMap, geometry: Geometry, from_file: Mapping[str, tuple[float, str]]
) -> tuple[tuple[float, ...], str]:
    """Per canonical joint: the file's limit where it states one, else TORQUE_RULE × m·g·L;
    and one line saying which."""
    mgl = geometry.mass * GRAVITY * geometry.leg_length
    out, used_file = [], []
    for i, name in enumerate(jmap.names):
        kind = JOINT_KINDS[i % 3]
        if name in from_file:
            out.append(round(from_file[name][0], 3))
            used_file.append(from_file[name][1])
        else:
            out.append(round(TORQUE_RULE[kind] * mgl, 2))
    rule = (
        f"{TORQUE_RULE['thigh']:g}·m·g·L hip/thigh, {TORQUE_RULE['calf']:g}·m·g·L knee "
        f"(m {geometry.mass:.2f} kg, L {geometry.leg_length:.3f} m: the built-in robots' median "
        "ratios)"
    )
    if len(used_file) == len(out):
        how = f"from the file ({', '.join(sorted(set(used_file)))})"
    elif used_file:
        how = (
            f"{len(used_file)} from the file ({', '.join(sorted(set(used_file)))}), the others "
            f"by the rule {rule}"
        )
    else:
        how = f"the file states none: {rule}"
    return tuple(out), how
