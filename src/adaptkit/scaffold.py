"""`adaptkit new-robot NAME [--mjcf FILE]`: write an installable robot-plugin package.

The package works as written: a pyproject with the `adaptkit` entry point, the plugin module, a
model in the MJCF slot, a test, and a README with the next steps. After `pip install -e DIR` the
robot shows in `adaptkit robots` and simulates like the built-in ones.

Without `--mjcf` the model is a starter (a 12-joint primitive-geometry quadruped that stands and
trots, to be replaced). With it, every value a user would otherwise guess is derived from the
robot's file (adaptkit.sim.robot_derive) and written with a one-line note of how it was found;
`derivation.json` beside the plugin keeps every test and search, and `adaptkit tune-robot NAME`
derives an existing plugin again. The package is written whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from adaptkit.errors import AdaptkitError
from adaptkit.robot import GaitParams, RobotSpec
from adaptkit.sim.family_gait import SearchBudget
from adaptkit.sim.robot_derive import ROBOT_BUDGET, Derivation, Progress, derive_robot
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


def package_root(name: str, out: str | Path | None = None) -> Path:
    """Where the package goes (default ./adaptkit-NAME), checked before anything is derived:
    a valid name, and a folder that is absent or empty."""
    if not _NAME_RE.match(name):
        raise AdaptkitError(
            f"robot name {name!r}: must be lower-case letters, digits and '_' (a letter first)"
        )
    root = Path(out) if out is not None else Path(_dist(name))
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise AdaptkitError(f"{root}: already exists and is not empty; choose another --out")
    return root


def write_plugin_package(
    name: str, out: str | Path | None = None, derivation: Derivation | None = None
) -> tuple[Path, list[Path]]:
    """Write the package into `out` (default ./adaptkit-NAME); refuses an existing folder.
    With `derivation`, the derived plugin (module docstring), else the starter one. Written
    into a temporary folder beside `out` and renamed into place: whole or not at all."""
    root = package_root(name, out)
    layout = derived_layout(derivation) if derivation is not None else package_layout(name)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=root.parent))
    try:
        for rel, text in layout.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        if root.exists():
            root.rmdir()  # empty (package_root checked): the rename needs it gone
        os.replace(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root, [root / rel for rel in layout]


def derive_plugin_package(
    name: str,
    mjcf: str | Path,
    out: str | Path | None = None,
    *,
    joints: Sequence[str] | None = None,
    kp: float | None = None,
    budget: SearchBudget = ROBOT_BUDGET,
    allow_rejected: bool = False,
    progress: Progress | None = None,
) -> tuple[Path | None, list[Path], Derivation]:
    """`new-robot NAME --mjcf FILE`: derive the robot's values from its file, then write the
    package — unless its demonstrator was rejected (it fell, or did not beat standing still by
    the margin), which writes nothing (root None) unless `allow_rejected`, and then says so in
    the plugin and its README."""
    root = package_root(name, out)  # before a minute of deriving
    with tempfile.TemporaryDirectory(prefix="adaptkit-derive-") as work:
        derivation = derive_robot(
            mjcf, name, Path(work), joints=joints, kp=kp, budget=budget, progress=progress
        )
    if not derivation.accepted and not allow_rejected:
        return None, [], derivation
    root, files = write_plugin_package(name, root, derivation)
    return root, files, derivation


def rederive(
    spec: RobotSpec,
    *,
    keep_pose: bool = False,
    kp: float | None = None,
    budget: SearchBudget = ROBOT_BUDGET,
    progress: Progress | None = None,
) -> tuple[Derivation, str]:
    """`tune-robot NAME`: derive a registered robot again from its MJCF, keeping its plugin's
    joint mapping (and, with `keep_pose`, its standing pose); and a note on whether the tree
    rule finds the same mapping."""
    if spec.mjcf is None or spec.mjcf_joints is None:
        raise AdaptkitError(
            f"robot {spec.name!r}: no simulator model (mjcf / mjcf_joints) to derive from"
        )
    from adaptkit.sim.joint_map import AmbiguousJoints, map_joints
    from adaptkit.sim.robot_file import read_robot_file

    try:
        found = map_joints(read_robot_file(spec.mjcf).compile(), where=str(spec.mjcf)).names
        agree = (
            "the kinematic-tree rule finds the plugin's joint mapping"
            if tuple(found) == tuple(spec.mjcf_joints)
            else f"the kinematic-tree rule finds {list(found)}, not the plugin's mapping: check it"
        )
    except AmbiguousJoints as exc:
        agree = f"the kinematic-tree rule cannot map this file ({exc}); the plugin's mapping kept"
    with tempfile.TemporaryDirectory(prefix="adaptkit-derive-") as work:
        derivation = derive_robot(
            spec.mjcf,
            spec.name,
            Path(work),
            joints=spec.mjcf_joints,
            kp=kp,
            pose=spec.default_joint_angles if keep_pose else None,
            budget=budget,
            progress=progress,
        )
    return derivation, agree


def generated_package(spec: RobotSpec) -> Path | None:
    """The folder of a plugin this module wrote (derivation.json beside its model), or None."""
    if spec.mjcf is None:
        return None
    record = spec.mjcf.parent / DERIVATION_FILE
    return spec.mjcf.parent if record.is_file() else None


def rewrite_derived_plugin(spec: RobotSpec, derivation: Derivation) -> list[Path]:
    """Write a generated plugin's plugin.py, model and derivation.json again from
    `derivation` — refused when plugin.py was edited since it was written (its hash in
    derivation.json), so nobody's edits are lost; each file replaced atomically."""
    folder = generated_package(spec)
    if folder is None:
        raise AdaptkitError(
            f"robot {spec.name!r}: its plugin was not written by `adaptkit new-robot --mjcf` "
            "(no derivation.json beside its model); paste the printed lines instead"
        )
    plugin = folder / "plugin.py"
    try:
        recorded = json.loads((folder / DERIVATION_FILE).read_text()).get("plugin_sha256")
    except (OSError, json.JSONDecodeError, AttributeError):
        recorded = None
    if not plugin.is_file() or recorded != _sha256(plugin.read_text()):
        raise AdaptkitError(
            f"{plugin}: edited since adaptkit wrote it (or its derivation.json is damaged); "
            "nothing rewritten — paste the printed lines instead"
        )
    files = _derived_module_files(derivation, spec.mjcf.name)
    written = []
    for rel, text in files.items():
        path = folder / rel
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        written.append(path)
    return written


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
{module} = ["*.xml", "*.json"]
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


# -- the derived package (new-robot --mjcf) -------------------------------------------------------
DERIVATION_FILE = "derivation.json"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _comment(text: str, indent: int) -> str:
    pad = " " * indent
    return "\n".join(
        textwrap.wrap(text, 99, initial_indent=pad + "# ", subsequent_indent=pad + "#   ")
    )


def _per_leg(items: Sequence[str], indent: int) -> str:
    """A tuple written one leg (three items) a line, in canonical order."""
    pad = " " * (indent + 4)
    rows = [
        f"{pad}{', '.join(items[3 * i : 3 * i + 3])},  # {leg}"
        for i, leg in enumerate(("FR", "FL", "RR", "RL"))
    ]
    return "(\n" + "\n".join(rows) + "\n" + " " * indent + ")"


def _floats(values: Sequence[float], digits: int, indent: int) -> str:
    return _per_leg([f"{float(v):.{digits}f}" for v in values], indent)


def gait_line(gait: GaitParams) -> str:
    return "GaitParams(" + ", ".join(f"{getattr(gait, f.name):.3f}" for f in fields(gait)) + ")"


def spec_lines(derivation: Derivation, mjcf: str, indent: int = 12) -> str:
    """The RobotSpec keyword lines of the derived values, each under its note."""
    v = derivation.values
    name = derivation.name
    pad = " " * indent

    def field_(key: str, text: str, note: str | None = None) -> list[str]:
        how = note if note is not None else v[key].how
        return [_comment(how, indent), f"{pad}{key}={text},"]

    lines = [
        f'{pad}name="{name}",',
        f'{pad}task="{name}_walking_ad",',
        f'{pad}group="{name}_locomotion",  # a new group: never share one by accident',
        f"{pad}obs_names=LOCOMOTION_OBS_NAMES,  # the 45-dim locomotion observation",
        f"{pad}joint_names=CANONICAL_JOINTS,  # FR, FL, RR, RL x hip, thigh, calf",
        *field_(
            "default_joint_angles",
            _floats(v["default_joint_angles"].value, 4, indent),
            v["default_joint_angles"].how
            + "; axis signs "
            + v["joint_signs"].how.split(":", 1)[-1].strip(),
        ),
        *field_("kp", f"{float(v['kp'].value):g}"),
        *field_("kd", f"{float(v['kd'].value):g}"),
        *field_("base_init_height", f"{float(v['base_init_height'].value):g}"),
        *field_("base_height_target", f"{float(v['base_height_target'].value):g}"),
        *field_("mass_kg", f"{float(v['mass_kg'].value):g}"),
        *field_("torque_limits", _floats(v["torque_limits"].value, 2, indent)),
        _comment(
            f"the model: {derivation.source.name} cleaned ({_file_notes(derivation)})", indent
        ),
        f'{pad}mjcf="{mjcf}",',
        *field_("mjcf_joints", _per_leg([f'"{j}"' for j in v["mjcf_joints"].value], indent)),
        *field_("gait", gait_line(v["gait"].value)),
        f'{pad}data_path="{name}_trajectories",  # its learning histories, under --data-dir',
        f'{pad}description="{name} (derived from {derivation.source.name} by adaptkit new-robot)",',
    ]
    return "\n".join(lines)


def _file_notes(derivation: Derivation) -> str:
    return "; ".join(derivation.file_notes) or "nothing to change"


def _derived_module_files(derivation: Derivation, mjcf: str) -> dict[str, str]:
    """plugin.py, the model and derivation.json (relative to the plugin module's folder)."""
    name = derivation.name
    report = derivation.report()
    status = (
        "accepted"
        if derivation.accepted
        else f"REJECTED: {report.get('reason')} — written anyway (--allow-rejected)"
    )
    plugin = _DERIVED_PLUGIN.format(
        name=name,
        source=derivation.source.name,
        status=status,
        lines=spec_lines(derivation, mjcf),
    )
    record = {**derivation.as_dict(), "plugin_sha256": _sha256(plugin)}
    return {
        "plugin.py": plugin,
        mjcf: derivation.mjcf_xml,
        DERIVATION_FILE: json.dumps(record, indent=1, default=str) + "\n",
    }


def derived_layout(derivation: Derivation) -> dict[str, str]:
    """Relative path -> file text of the derived package (module docstring)."""
    name = derivation.name
    module = f"adaptkit_{name}"
    mjcf = f"{name}.xml"
    out = {
        "pyproject.toml": _PYPROJECT.format(
            name=name, dist=_dist(name), module=module, version=_major_minor()
        ),
        "README.md": derived_readme(derivation, module),
        f"src/{module}/__init__.py": f'"""The {name} robot for adaptkit (plugin package)."""\n',
        f"tests/test_{name}.py": _DERIVED_TEST.format(name=name),
    }
    for rel, text in _derived_module_files(derivation, mjcf).items():
        out[f"src/{module}/{rel}"] = text
    return out


def report_rows(derivation: Derivation) -> list[tuple[str, str, str]]:
    """(field, value, how) of every derived value, for the README and the CLI's table."""
    rows = []
    for key, value in derivation.values.items():
        v = value.value
        if isinstance(v, GaitParams):
            text = gait_line(v)
        elif isinstance(v, list | tuple):
            text = ", ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
        else:
            text = f"{v:g}" if isinstance(v, float) else str(v)
        rows.append((key, text, value.how))
    return rows


def derived_readme(derivation: Derivation, module: str) -> str:
    name = derivation.name
    r = derivation.report()
    verdict = (
        "accepted"
        if derivation.accepted
        else f"**rejected** ({r.get('reason')}); this package was written with --allow-rejected"
    )
    table = "\n".join(
        f"| `{k}` | {text if len(text) < 60 else text[:57] + '...'} | {how} |"
        for k, text, how in report_rows(derivation)
    )
    return _DERIVED_README.format(
        name=name,
        dist=_dist(name),
        module=module,
        source=derivation.source.name,
        verdict=verdict,
        ret=r.get("return_demo", float("nan")),
        stand=r.get("return_stand", float("nan")),
        speed=r.get("speed", float("nan")),
        falls=r.get("falls"),
        episodes=r.get("episodes"),
        episode_s=r.get("episode_s", 0),
        seconds=r["seconds"],
        table=table,
    )


_DERIVED_PLUGIN = '''"""The {name} robot, derived from {source} by `adaptkit new-robot --mjcf`.

Every value below was derived from the file, its note says how; derivation.json beside this file
keeps every test and search. Demonstrator: {status}. Derive it again: `adaptkit tune-robot {name}`
(`--write` rewrites this file while it is unedited).
"""

from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, GaitParams, RobotSpec, hookimpl


@hookimpl
def register_robots(register):
    register(
        RobotSpec(
{lines}
        )
    )
'''

_DERIVED_TEST = '''"""Installed (entry point); the robot stands and its demonstrator walks."""

import numpy as np

from adaptkit.plugins import load_registry
from adaptkit.sim import LocomotionEnv, StandPolicy, TrotDemonstrator


def test_registered_through_the_entry_point():
    registry = load_registry()
    spec = registry.robot("{name}")
    assert registry.plugins[registry.owner("{name}")].origin == "entry point"
    assert spec.mjcf.is_file()  # resolved beside plugin.py, whatever the working directory


def _falls(policy, seconds):
    spec = load_registry().robot("{name}")
    env = LocomotionEnv(spec, 2, seed=0)
    obs = env.reset()
    policy = policy(spec)
    policy.reset(2)
    fell = np.zeros(2, bool)
    for _ in range(int(seconds / 0.02)):
        obs, _, _, info = env.step(policy.act(obs, env))
        fell |= info["fell"]
    env.close()
    return fell.any()


def test_stands_still_without_falling():
    assert not _falls(lambda spec: StandPolicy(spec.action_dim), 2.0)


def test_demonstrator_walks_without_falling():
    assert not _falls(TrotDemonstrator, 4.0)
'''

_DERIVED_README = """# {dist}: the {name} robot for adaptkit

Written by `adaptkit new-robot {name} --mjcf {source}`: every value in
`src/{module}/plugin.py` was derived from the robot's file (the table below says how) and
`src/{module}/derivation.json` keeps every test and search.

**Demonstrator** ({verdict}): return {ret:.2f} per {episode_s:g} s episode (standing still:
{stand:.2f}), {speed:.2f} m/s, {falls} of {episodes} fresh-seed episodes fell; derived in
{seconds:.0f} s.

```bash
pip install -e .            # registers the `adaptkit` entry point
adaptkit robots             # lists {name}
python -m pytest tests      # the plugin's own checks
adaptkit finetune {name}    # adapt the shipped base to it (collects its histories first)
adaptkit export models/{name}_finetune   # a standalone policy for the robot's control loop
```

| field | value | how it was found |
| --- | --- | --- |
{table}

`adaptkit tune-robot {name}` derives it again (after the model changed; `--keep-pose` keeps an
edited `default_joint_angles`, `--write` rewrites the plugin while it is unedited).
"""
