"""Small robot files of the tests' own (not the built-ins, not adaptkit's writers): a 12-joint
toy quadruped written as MJCF or URDF text, its joints named and ordered in the file however a
test asks, its thigh/knee axes either way round."""

from __future__ import annotations

from collections.abc import Callable, Sequence

LEGS = ("FR", "FL", "RR", "RL")
KINDS = ("hip", "thigh", "calf")
CORNER = {"FR": (1, -1), "FL": (1, 1), "RR": (-1, -1), "RL": (-1, 1)}  # (front, left)
THIGH, CALF, FOOT_R = 0.18, 0.18, 0.02


def unitree_names(leg: str, kind: str) -> str:
    return f"{leg}_{kind}_joint"


def upper_lower_names(leg: str, kind: str) -> str:
    return f"{leg.lower()}_{ {'hip': 'abad', 'thigh': 'upper', 'calf': 'lower'}[kind] }"


def numbered_names(seed: int = 3) -> Callable[[str, str], str]:
    """j00..j11 handed out in a scrambled order: the name says nothing."""
    import random

    order = list(range(12))
    random.Random(seed).shuffle(order)
    table = {(leg, kind): f"j{order[3 * i + k]:02d}" for i, leg in enumerate(LEGS)
             for k, kind in enumerate(KINDS)}  # fmt: skip
    return lambda leg, kind: table[(leg, kind)]


def expected_names(names: Callable[[str, str], str]) -> tuple[str, ...]:
    return tuple(names(leg, kind) for leg in LEGS for kind in KINDS)


def toy_mjcf(
    names: Callable[[str, str], str] = unitree_names,
    order: Sequence[str] = LEGS,
    axis: int = 1,
    hip_axis: str = "1 0 0",
    drop: Sequence[tuple[str, str]] = (),
    corners: dict[str, tuple[int, int]] | None = None,
    motors: dict[str, float] | None = None,
    trunk_mass: float = 4.0,
    floor: bool = True,
) -> str:
    """The toy as MJCF: trunk 4 kg, hips at (±0.17, ±0.06), thighs 0.04 further out, thigh and
    calf 0.18 m, foot spheres. `axis` +1: thigh/knee axes +y (knees flex to negative angles),
    −1: −y. `drop`: (leg, kind) hinges left out; `corners`: where legs sit; `motors`: torque
    motors (kind -> Nm limit) in the file; `floor`: a ground plane in the file (as many have;
    adaptkit adds its own)."""
    corners = corners or CORNER
    knee_range = "-2.7 -0.9" if axis > 0 else "0.9 2.7"
    thigh_range = "-1.5 3.0" if axis > 0 else "-3.0 1.5"
    legs = []
    for leg in order:
        fx, fy = corners[leg]

        def joint(kind: str, attrs: str, leg: str = leg) -> str:
            if (leg, kind) in drop:
                return ""
            return f'<joint name="{names(leg, kind)}" {attrs}/>'

        legs.append(
            f"""
      <body name="b_{leg}_1" pos="{0.17 * fx} {0.06 * fy} 0">
        {joint("hip", f'axis="{hip_axis}" range="-0.8 0.8"')}
        <geom type="cylinder" size="0.03 0.02" zaxis="0 1 0" mass="0.4"/>
        <body name="b_{leg}_2" pos="0 {0.04 * fy} 0">
          {joint("thigh", f'axis="0 {axis} 0" range="{thigh_range}"')}
          <geom type="capsule" fromto="0 0 0 0 0 -{THIGH}" size="0.02" mass="0.6"/>
          <body name="b_{leg}_3" pos="0 0 -{THIGH}">
            {joint("calf", f'axis="0 {axis} 0" range="{knee_range}"')}
            <geom type="capsule" fromto="0 0 0 0 0 -{CALF}" size="0.012" mass="0.15"/>
            <geom type="sphere" pos="0 0 -{CALF}" size="{FOOT_R}" mass="0.05"/>
          </body>
        </body>
      </body>"""
        )
    actuators = ""
    if motors:
        rows = [
            f'<motor joint="{names(leg, kind)}" ctrlrange="-{motors[kind]} {motors[kind]}" '
            'gear="1"/>'
            for leg in LEGS
            for kind in KINDS
        ]
        actuators = "<actuator>" + "".join(rows) + "</actuator>"
    return f"""<mujoco model="toy">
  <compiler angle="radian"/>
  <default><joint damping="0.2" armature="0.01" frictionloss="0.1"/></default>
  <worldbody>
    {'<geom name="ground" type="plane" size="5 5 0.1"/>' if floor else ""}
    <body name="torso" pos="0 0 0.4">
      <freejoint/>
      <geom type="box" size="0.2 0.08 0.05" mass="{trunk_mass}"/>{"".join(legs)}
    </body>
  </worldbody>
  {actuators}
</mujoco>
"""


def toy_urdf(names: Callable[[str, str], str] = unitree_names, effort: float = 15.0) -> str:
    """The toy as URDF (fixed base, as URDFs are): revolute joints with effort limits."""

    def inertial(mass: float, z: float = 0.0) -> str:
        i = 1e-3 * mass
        return (
            f'<inertial><origin xyz="0 0 {z}"/><mass value="{mass}"/>'
            f'<inertia ixx="{i}" iyy="{i}" izz="{i}" ixy="0" ixz="0" iyz="0"/></inertial>'
        )

    parts = [
        f'<link name="torso">{inertial(4.0)}<collision><geometry>'
        '<box size="0.4 0.16 0.1"/></geometry></collision></link>'
    ]
    for leg in LEGS:
        fx, fy = CORNER[leg]
        chain = [
            ("hip", "torso", f"{0.17 * fx} {0.06 * fy} 0", "1 0 0", "-0.8", "0.8"),
            ("thigh", f"{leg}_l1", f"0 {0.04 * fy} 0", "0 1 0", "-1.5", "3.0"),
            ("calf", f"{leg}_l2", f"0 0 -{THIGH}", "0 1 0", "-2.7", "-0.9"),
        ]
        for k, (kind, parent, xyz, axis, lo, hi) in enumerate(chain, start=1):
            length = THIGH if kind == "thigh" else CALF
            geom = (
                f'<collision><origin xyz="0 0 -{length / 2}"/><geometry><cylinder radius="0.015" '
                f'length="{length}"/></geometry></collision>'
                if kind != "hip"
                else ""
            )
            parts.append(f'<link name="{leg}_l{k}">{inertial(0.4, -0.05)}{geom}</link>')
            parts.append(
                f'<joint name="{names(leg, kind)}" type="revolute"><parent link="{parent}"/>'
                f'<child link="{leg}_l{k}"/><origin xyz="{xyz}"/><axis xyz="{axis}"/>'
                f'<limit lower="{lo}" upper="{hi}" effort="{effort}" velocity="20"/></joint>'
            )
        parts.append(
            f'<link name="{leg}_foot">{inertial(0.05)}<collision><geometry>'
            f'<sphere radius="{FOOT_R}"/></geometry></collision></link>'
        )
        parts.append(
            f'<joint name="{leg}_foot_fixed" type="fixed"><parent link="{leg}_l3"/>'
            f'<child link="{leg}_foot"/><origin xyz="0 0 -{CALF}"/></joint>'
        )
    return '<?xml version="1.0"?>\n<robot name="toy">\n' + "\n".join(parts) + "\n</robot>\n"
