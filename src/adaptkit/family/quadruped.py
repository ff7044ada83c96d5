"""The procedural quadruped family: bodies drawn deterministically from (family seed, index).

Every member is a 12-joint quadruped in the canonical joint order (FR, FL, RR, RL × hip, thigh,
calf) with the 45-dim locomotion observation (and fork33), so all members share one group. A
member is a `QuadrupedBody`: trunk size and mass, hip offsets, thigh/calf lengths and masses,
joint ranges, default pose, PD gains, torque limits, joint damping/friction, and the joint-axis
sign convention:

- `unitree`: thigh and knee axes +y. A positive thigh angle swings the foot backwards (−x in the
  trunk frame); the default pose is (0, +thigh, −calf).
- `cheetah` (Mini Cheetah's): thigh and knee axes −y, so every thigh/knee angle flips sign: a
  positive thigh angle swings the foot forwards; the default pose is (0, −thigh, +calf).

Each continuous parameter is drawn uniformly from RANGES, which span the four built-in robots
(BUILTIN_BODIES, read off their vendored MJCFs and plugins); the convention is a fair coin.

Distances (`body_distance`) live in a normalised space: each continuous parameter is mapped to
[0, 1] by its range, the convention is one more coordinate (0 unitree, 1 cheetah), and the
distance is the root-mean-square difference over all coordinates (0: identical; a body at the
opposite corner of every range: 1).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from adaptkit.family.core import RobotFamily, write_if_changed
from adaptkit.robot import CANONICAL_JOINTS, LEGS, LOCOMOTION_OBS_NAMES, GaitParams, RobotSpec

CONVENTIONS = ("unitree", "cheetah")
FAMILY_NAME = "quadfam"
FAMILY_GROUP = "quadruped_family_locomotion"
FAMILY_SIZE = 1000

# (low, high) of each continuous parameter; lengths in m, masses in kg, angles in rad in
# 'effective' units (thigh + = foot backwards, calf flex + = knee more bent), torques in Nm.
RANGES: dict[str, tuple[float, float]] = {
    "trunk_mass": (2.8, 7.6),
    "trunk_half_length": (0.11, 0.21),
    "trunk_half_width": (0.035, 0.11),
    "trunk_half_height": (0.04, 0.065),
    "hip_x": (0.16, 0.23),  # abduction joint, forward/back from the trunk centre
    "hip_y": (0.04, 0.06),  # abduction joint, sideways from the trunk centre
    "thigh_y": (0.055, 0.105),  # thigh joint, sideways from the abduction joint
    "thigh_length": (0.18, 0.24),
    "calf_length": (0.165, 0.235),  # knee to the foot sphere's centre
    "foot_radius": (0.014, 0.026),
    "hip_mass": (0.45, 0.8),
    "thigh_mass": (0.55, 1.25),
    "calf_mass": (0.15, 0.28),
    "hip_limit": (0.75, 1.1),  # abduction range ±
    "thigh_min": (-1.65, -0.6),
    "thigh_max": (3.4, 4.6),
    "calf_flex_min": (0.55, 0.95),
    "calf_flex_max": (2.6, 2.85),
    "front_thigh_default": (0.65, 0.95),
    "rear_thigh_offset": (-0.02, 0.25),  # rear thigh default − front (built-ins: 0 or 0.2)
    "calf_flex_default": (1.35, 1.7),
    "kp": (20.0, 32.0),
    "kd": (0.4, 0.9),
    "hip_thigh_torque": (16.0, 36.0),
    "calf_torque": (24.0, 48.0),
    "joint_damping": (0.3, 2.0),
    "joint_frictionloss": (0.1, 0.2),
}
ARMATURE = 0.01
HEIGHT_TARGET_FRACTION = 0.92  # of the kinematic standing height: PD at kp 20-32 sags a little
DROP_HEIGHT = 0.06  # episodes start this far above the kinematic standing height


@dataclass(frozen=True)
class QuadrupedBody:
    """One body of the family (see RANGES for units)."""

    convention: str
    trunk_mass: float
    trunk_half_length: float
    trunk_half_width: float
    trunk_half_height: float
    hip_x: float
    hip_y: float
    thigh_y: float
    thigh_length: float
    calf_length: float
    foot_radius: float
    hip_mass: float
    thigh_mass: float
    calf_mass: float
    hip_limit: float
    thigh_min: float
    thigh_max: float
    calf_flex_min: float
    calf_flex_max: float
    front_thigh_default: float
    rear_thigh_offset: float
    calf_flex_default: float
    kp: float
    kd: float
    hip_thigh_torque: float
    calf_torque: float
    joint_damping: float
    joint_frictionloss: float

    @property
    def sign(self) -> float:
        """+1 (unitree) or −1 (cheetah): joint angle = sign × effective angle (thigh, knee)."""
        return 1.0 if self.convention == "unitree" else -1.0

    @property
    def total_mass(self) -> float:
        return self.trunk_mass + 4 * (self.hip_mass + self.thigh_mass + self.calf_mass)

    def rear_calf_flex_default(self) -> float:
        """The rear knee's default flex that puts the rear hips as high as the front ones (a
        level trunk): front and rear thigh defaults differ, the calf makes up for it."""
        l1, l2 = self.thigh_length, self.calf_length
        t_f, c_f = self.front_thigh_default, self.calf_flex_default
        t_r = t_f + self.rear_thigh_offset
        height = l1 * math.cos(t_f) + l2 * math.cos(t_f - c_f)
        cos_rel = min(1.0, max(-1.0, (height - l1 * math.cos(t_r)) / l2))
        return t_r + math.acos(cos_rel)

    def default_joint_angles(self) -> tuple[float, ...]:
        s = self.sign
        front = (0.0, s * self.front_thigh_default, -s * self.calf_flex_default)
        rear_thigh = self.front_thigh_default + self.rear_thigh_offset
        rear = (0.0, s * rear_thigh, -s * self.rear_calf_flex_default())
        return tuple(float(q) for q in front * 2 + rear * 2)

    def standing_height(self) -> float:
        """Trunk height with the feet on the floor at the default pose (rigid legs)."""
        t, c = self.front_thigh_default, self.calf_flex_default
        return (
            self.thigh_length * math.cos(t) + self.calf_length * math.cos(t - c) + self.foot_radius
        )

    def torque_limits(self) -> tuple[float, ...]:
        return (self.hip_thigh_torque, self.hip_thigh_torque, self.calf_torque) * 4

    def vector(self) -> np.ndarray:
        """The normalised coordinates (continuous parameters by RANGES, then the convention)."""
        x = [(getattr(self, k) - lo) / (hi - lo) for k, (lo, hi) in RANGES.items()]
        return np.array([*x, float(CONVENTIONS.index(self.convention))])


def sample_body(seed: int, index: int) -> QuadrupedBody:
    """Member `index` of family `seed`: the same body on every machine and numpy version that
    keeps PCG64 and `uniform` (numpy's stream-compatibility promise for Generator)."""
    rng = np.random.default_rng([int(seed), int(index)])
    u = rng.uniform(0.0, 1.0, len(RANGES) + 1)
    values = {
        k: float(round(lo + (hi - lo) * ui, 4))
        for (k, (lo, hi)), ui in zip(RANGES.items(), u[:-1], strict=True)
    }
    return QuadrupedBody(convention=CONVENTIONS[int(u[-1] < 0.5)], **values)


def body_distance(a: QuadrupedBody, b: QuadrupedBody) -> float:
    """RMS difference of the normalised coordinates (module docstring)."""
    d = a.vector() - b.vector()
    return float(np.sqrt(np.mean(d * d)))


# The four built-in robots in the same parameters, read off plugins/adaptkit_robots (the MJCF
# files and the plugins' RobotSpecs). Trunk sizes are each file's main collision box; Go1/A1
# joint damping differs per joint in the file (the thigh/calf value is given).
_BUILTIN_TABLE = """
parameter            go1       go2       a1        minicheetah
convention           unitree   unitree   unitree   cheetah
trunk_mass           5.204     6.921     4.714     3.3
trunk_half_length    0.125     0.1881    0.1335    0.128317
trunk_half_width     0.04      0.04675   0.097     0.0861765
trunk_half_height    0.057     0.057     0.057     0.0436657
hip_x                0.1881    0.1934    0.183     0.19
hip_y                0.04675   0.0465    0.047     0.049
thigh_y              0.08      0.0955    0.085     0.062
thigh_length         0.213     0.213     0.2       0.209
calf_length          0.213     0.213     0.2       0.18
foot_radius          0.023     0.022     0.02      0.015
hip_mass             0.68      0.678     0.697     0.54
thigh_mass           1.009     1.152     1.013     0.634
calf_mass            0.195862  0.241     0.226     0.214
hip_limit            0.863     1.0472    0.802851  1.0
thigh_min            -0.686    -1.5708   -1.0472   -1.6
thigh_max            4.501     3.4907    4.18879   3.5
calf_flex_min        0.888     0.83776   0.916298  0.6
calf_flex_max        2.818     2.7227    2.69653   2.7
front_thigh_default  0.8       0.8       0.8       0.8
rear_thigh_offset    0.2       0.2       0.2       0.0
calf_flex_default    1.6       1.5       1.5       1.5
kp                   25.0      30.0      25.0      25.0
kd                   0.6       0.8       0.6       0.6
hip_thigh_torque     23.7      23.7      33.5      18.0
calf_torque          35.55     45.43     33.5      26.0
joint_damping        0.6       2.0       0.5       0.3
joint_frictionloss   0.2       0.2       0.2       0.1
"""


def _parse_table(text: str) -> dict[str, QuadrupedBody]:
    rows = [line.split() for line in text.strip().splitlines()]
    names = rows[0][1:]
    columns = {name: {row[0]: row[1 + i] for row in rows[1:]} for i, name in enumerate(names)}
    return {
        name: QuadrupedBody(**{k: v if k == "convention" else float(v) for k, v in column.items()})
        for name, column in columns.items()
    }


BUILTIN_BODIES: dict[str, QuadrupedBody] = _parse_table(_BUILTIN_TABLE)


def nearest_members(
    seed: int, count: int, bodies: dict[str, QuadrupedBody] | None = None
) -> dict[str, dict[str, float]]:
    """For each body (default: the built-in robots), the nearest of the family's first `count`
    members: {name: {"index", "distance", "nearest_same_convention"}}."""
    members = [sample_body(seed, i) for i in range(count)]
    out: dict[str, dict[str, float]] = {}
    for name, body in (bodies or BUILTIN_BODIES).items():
        dist = np.array([body_distance(body, m) for m in members])
        same = [i for i, m in enumerate(members) if m.convention == body.convention]
        i = int(np.argmin(dist))
        out[name] = {
            "index": i,
            "distance": float(dist[i]),
            "nearest_same_convention": float(dist[same].min()) if same else float("nan"),
        }
    return out


# -- MJCF ------------------------------------------------------------------------------------
def _f(*values: float) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def body_mjcf(body: QuadrupedBody, model_name: str) -> str:
    """The body as MJCF text: primitive geoms (inertia from geom masses), 12 limited hinges
    named `<LEG>_<hip|thigh|calf>_joint`, no actuators (adaptkit.sim.model adds PD ones)."""
    b, s = body, body.sign
    thigh_range = sorted((s * b.thigh_min, s * b.thigh_max))
    calf_range = sorted((-s * b.calf_flex_min, -s * b.calf_flex_max))
    legs = []
    for leg in LEGS:
        fx = 1.0 if leg[0] == "F" else -1.0
        fy = 1.0 if leg[1] == "L" else -1.0
        legs.append(
            f"""
      <body name="{leg}_hip" pos="{_f(fx * b.hip_x, fy * b.hip_y, 0)}">
        <joint name="{leg}_hip_joint" axis="1 0 0" range="{_f(-b.hip_limit, b.hip_limit)}"/>
        <geom type="cylinder" size="0.04 0.02" pos="{_f(0, fy * 0.03, 0)}" quat="0.707107 0.707107 0 0" mass="{_f(b.hip_mass)}"/>
        <body name="{leg}_thigh" pos="{_f(0, fy * b.thigh_y, 0)}">
          <joint name="{leg}_thigh_joint" axis="{_f(0, s, 0)}" range="{_f(*thigh_range)}"/>
          <geom type="capsule" size="0.02" fromto="{_f(0, 0, 0, 0, 0, -b.thigh_length)}" mass="{_f(b.thigh_mass)}"/>
          <body name="{leg}_calf" pos="{_f(0, 0, -b.thigh_length)}">
            <joint name="{leg}_calf_joint" axis="{_f(0, s, 0)}" range="{_f(*calf_range)}"/>
            <geom type="capsule" size="0.012" fromto="{_f(0, 0, 0, 0, 0, -b.calf_length)}" mass="{_f(b.calf_mass - 0.02)}"/>
            <geom name="{leg}_foot" type="sphere" size="{_f(b.foot_radius)}" pos="{_f(0, 0, -b.calf_length)}" mass="0.02"/>
          </body>
        </body>
      </body>"""  # noqa: E501
        )
    return f"""<mujoco model="{model_name}">
  <compiler angle="radian" autolimits="true"/>
  <default>
    <joint armature="{_f(ARMATURE)}" damping="{_f(b.joint_damping)}" frictionloss="{_f(b.joint_frictionloss)}"/>
    <geom friction="1 0.005 0.0001"/>
  </default>
  <worldbody>
    <body name="trunk" pos="{_f(0, 0, b.standing_height() + DROP_HEIGHT)}">
      <freejoint/>
      <geom type="box" size="{_f(b.trunk_half_length, b.trunk_half_width, b.trunk_half_height)}" mass="{_f(b.trunk_mass)}"/>{"".join(legs)}
    </body>
  </worldbody>
</mujoco>
"""  # noqa: E501


# -- the demonstrator's starting point from geometry ----------------------------------------------
def prior_gait(body: QuadrupedBody) -> GaitParams:
    """A trot CPG guessed from the geometry (tuning refines it: adaptkit.sim.family_gait)."""
    return trot_prior(body.thigh_length + body.calf_length)


def trot_prior(leg_length: float) -> GaitParams:
    """A trot CPG guessed from a leg's length (thigh + calf, m).

    Step frequency scales like a pendulum of the leg's length (1/√L, Froude similarity), around
    the ≈ 3.3 Hz the built-in robots were tuned to at L ≈ 0.42 m; the thigh swing covers the
    0.5 m/s stride (v / 4fL); the other terms are the built-in gaits' rough middle."""
    freq = float(np.clip(3.3 * math.sqrt(0.42 / leg_length), 1.5, 3.5))
    thigh_amp = float(np.clip(0.5 / (4 * freq * 0.75 * leg_length), 0.08, 0.35))
    return GaitParams(freq, thigh_amp, 0.7, 0.0, -0.3, 0.5, 0.3, 0.0, 1.5)


def member_spec(seed: int, index: int, folder: Path) -> RobotSpec:
    """Member `index` of family `seed` as a RobotSpec; its MJCF is written into `folder`."""
    body = sample_body(seed, index)
    name = f"{FAMILY_NAME}_{index:04d}"
    mjcf = write_if_changed(Path(folder) / f"{name}.xml", body_mjcf(body, name))
    height = body.standing_height()
    return RobotSpec(
        name=name,
        task=f"{name}_walking_ad",
        group=FAMILY_GROUP,
        obs_names=LOCOMOTION_OBS_NAMES,
        joint_names=CANONICAL_JOINTS,
        default_joint_angles=body.default_joint_angles(),
        kp=body.kp,
        kd=body.kd,
        base_init_height=round(height + DROP_HEIGHT, 4),
        base_height_target=round(HEIGHT_TARGET_FRACTION * height, 4),
        mass_kg=round(body.total_mass, 3),
        torque_limits=body.torque_limits(),
        mjcf=mjcf,
        mjcf_joints=tuple(f"{j}_joint" for j in CANONICAL_JOINTS),
        gait=prior_gait(body),
        data_path=f"{name}_trajectories",
        description=(
            f"procedural quadruped {index} of family seed {seed} ({body.convention} axes, "
            f"{body.total_mass:.1f} kg)"
        ),
        extra={
            "family": FAMILY_NAME,
            "family_seed": seed,
            "family_index": index,
            "convention": body.convention,
            "body": asdict(body),
            "gait": "prior",
        },
    )


def quadruped_family(seed: int = 0, size: int = FAMILY_SIZE) -> RobotFamily:
    """The built-in family (the adaptkit_robots plugin registers seed 0)."""
    return RobotFamily(
        name=FAMILY_NAME,
        group=FAMILY_GROUP,
        size=size,
        build=member_spec,
        seed=seed,
        description=(
            "procedural quadrupeds spanning Go1/Go2/A1/Mini Cheetah: trunk, legs, masses, "
            "joint ranges and axis conventions (unitree/cheetah), pose, PD gains, torques"
        ),
    )


PARAMETER_NAMES = [f.name for f in fields(QuadrupedBody)]
