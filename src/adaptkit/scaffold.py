"""`adaptkit new-robot NAME`: write an installable robot-plugin package.

The package works as written: a pyproject with the `adaptkit` entry point, the plugin module, a
starter MJCF in the model slot (a 12-joint primitive-geometry quadruped that stands and trots,
to be replaced by the real robot's model), a test, and a README with the next steps. After
`pip install -e DIR` the robot shows in `adaptkit robots` and simulates like the built-in ones.
"""

from __future__ import annotations

import re
from pathlib import Path

from adaptkit.errors import AdaptkitError
from adaptkit.version import __version__

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
LEGS = {"FR": (1, -1), "FL": (1, 1), "RR": (-1, -1), "RL": (-1, 1)}  # (front +1, left +1)
# Tuned for the starter model by `adaptkit tune-gait NAME --rounds 6 --batch 64`.
STARTER_GAIT = "GaitParams(3.500, 0.050, 0.544, 0.085, -0.272, 0.247, 0.618, -0.908, 6.283)"


def package_layout(name: str) -> dict[str, str]:
    """Relative path -> file text of the plugin package for robot `name`."""
    module = f"adaptkit_{name}"
    return {
        "pyproject.toml": _PYPROJECT.format(
            name=name,
            dist=_dist(name),
            module=module,
            version=_major_minor(),
        ),
        "README.md": _README.format(name=name, module=module, dist=_dist(name)),
        f"src/{module}/__init__.py": f'"""The {name} robot for adaptkit (plugin package)."""\n',
        f"src/{module}/plugin.py": _PLUGIN.format(name=name, gait=STARTER_GAIT),
        f"src/{module}/{name}.xml": starter_mjcf(name),
        f"tests/test_{name}.py": _TEST.format(name=name),
    }


def write_plugin_package(name: str, out: str | Path | None = None) -> tuple[Path, list[Path]]:
    """Write the package into `out` (default ./adaptkit-NAME); refuses an existing folder."""
    if not _NAME_RE.match(name):
        raise AdaptkitError(
            f"robot name {name!r}: must be lower-case letters, digits and '_' (a letter first)"
        )
    root = Path(out) if out is not None else Path(_dist(name))
    if root.exists() and any(root.iterdir()):
        raise AdaptkitError(f"{root}: already exists and is not empty; choose another --out")
    files = []
    for rel, text in package_layout(name).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        files.append(path)
    return root, files


def _dist(name: str) -> str:
    return f"adaptkit-{name.replace('_', '-')}"


def _major_minor() -> str:
    parts = __version__.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 and parts[0].isdigit() else "0.1"


def starter_mjcf(name: str) -> str:
    """A 10 kg quadruped of boxes and capsules: legs FR, FL, RR, RL; hip (x), thigh and calf (y)
    hinges named `<LEG>_<hip|thigh|calf>_joint`; thigh and calf 0.2 m."""
    legs = []
    for leg, (front, left) in LEGS.items():
        x, y = 0.17 * front, 0.08 * left
        legs.append(_LEG.format(leg=leg, x=x, y=y, side=0.05 * left).rstrip("\n"))
    return _MJCF.format(name=name, legs="\n".join(legs))


_MJCF = """<mujoco model="{name}">
  <!-- Starter model written by `adaptkit new-robot`: replace it with your robot's MJCF and
       update mjcf_joints, default_joint_angles, heights and gains in plugin.py. -->
  <compiler angle="radian"/>
  <default>
    <joint damping="0.1" armature="0.01" frictionloss="0.1"/>
    <geom rgba="0.85 0.6 0.25 1"/>
  </default>
  <worldbody>
    <body name="base" pos="0 0 0.33">
      <freejoint name="root"/>
      <geom name="torso" type="box" size="0.2 0.08 0.05" mass="4"/>
{legs}
    </body>
  </worldbody>
</mujoco>
"""

_LEG = """      <body name="{leg}_hip" pos="{x:.3f} {y:.3f} 0">
        <joint name="{leg}_hip_joint" axis="1 0 0" range="-0.8 0.8"/>
        <geom type="cylinder" size="0.03 0.02" zaxis="0 1 0" mass="0.5"/>
        <body name="{leg}_thigh" pos="0 {side:.3f} 0">
          <joint name="{leg}_thigh_joint" axis="0 1 0" range="-1.5 3.0"/>
          <geom type="capsule" fromto="0 0 0 0 0 -0.2" size="0.02" mass="0.8"/>
          <body name="{leg}_calf" pos="0 0 -0.2">
            <joint name="{leg}_calf_joint" axis="0 1 0" range="-2.7 -0.9"/>
            <geom type="capsule" fromto="0 0 0 0 0 -0.2" size="0.015" mass="0.2"/>
            <geom name="{leg}_foot" type="sphere" pos="0 0 -0.2" size="0.02" mass="0.05"/>
          </body>
        </body>
      </body>
"""

_PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "The {name} robot for adaptkit"
requires-python = ">=3.10"
dependencies = ["adaptkit>={version}"]

# adaptkit finds robot plugins through this entry-point group.
[project.entry-points.adaptkit]
{name} = "{module}.plugin"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
{module} = ["*.xml"]
"""

_PLUGIN = '''"""The {name} robot: one RobotSpec, registered through the `adaptkit` entry point."""

from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, GaitParams, RobotSpec, hookimpl


@hookimpl
def register_robots(register):
    register(
        RobotSpec(
            name="{name}",
            task="{name}_walking_ad",
            group="{name}_locomotion",  # a new group: never share one by accident
            obs_names=LOCOMOTION_OBS_NAMES,  # the 45-dim locomotion observation
            joint_names=CANONICAL_JOINTS,  # FR, FL, RR, RL x hip, thigh, calf
            default_joint_angles=(0.0, 0.8, -1.5) * 4,
            kp=40.0,
            kd=1.0,
            base_init_height=0.33,
            base_height_target=0.30,
            mass_kg=10.2,
            # The simulator model: a path relative to this file.
            mjcf="{name}.xml",
            mjcf_joints=tuple(
                f"{{leg}}_{{kind}}_joint"
                for leg in ("FR", "FL", "RR", "RL")
                for kind in ("hip", "thigh", "calf")
            ),
            # The trot demonstrator; after changing the model run `adaptkit tune-gait {name}`
            # and paste the line it prints here.
            gait={gait},
            data_path="{name}_trajectories",  # its learning histories, under --data-dir
            description="{name} (starter model from adaptkit new-robot)",
        )
    )
'''

_TEST = '''"""The plugin is installed (entry point) and its robot simulates."""

import numpy as np

from adaptkit.plugins import load_registry
from adaptkit.sim import LocomotionEnv


def test_registered_through_the_entry_point():
    registry = load_registry()
    spec = registry.robot("{name}")
    assert registry.plugins[registry.owner("{name}")].origin == "entry point"
    assert spec.mjcf.is_file()  # resolved beside plugin.py, whatever the working directory


def test_stands_still_without_falling():
    spec = load_registry().robot("{name}")
    env = LocomotionEnv(spec, 2, seed=0)
    env.reset()
    fell = np.zeros(2, bool)
    for _ in range(100):  # two seconds of zero actions: the PD holds the default pose
        _, _, _, info = env.step(np.zeros((2, spec.action_dim)))
        fell |= info["fell"]
    env.close()
    assert not fell.any()
'''

_README = """# {dist}: the {name} robot for adaptkit

Written by `adaptkit new-robot {name}`. Install it next to adaptkit and the robot is there:

```bash
pip install -e .            # registers the `adaptkit` entry point
adaptkit robots             # lists {name}
python -m pytest tests      # the plugin's own checks
```

Then make it your robot:

1. Replace `src/{module}/{name}.xml` with your robot's MJCF (one free joint first, 12 hinge
   joints) and update `mjcf_joints`, `default_joint_angles`, the heights and the PD gains in
   `src/{module}/plugin.py`. Relative paths there resolve against `plugin.py`.
2. `adaptkit tune-gait {name}` searches a trot demonstrator in simulation; paste its line.
3. `adaptkit demonstrator {name}` shows the gait's return, speed and falls; `adaptkit collect
   {name}` writes learning histories; `adaptkit finetune {name}` adapts a base model to it.
"""
