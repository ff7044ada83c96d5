"""RobotSpec: everything adaptkit needs to know about one robot, declared by a plugin."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from adaptkit.errors import AdaptkitError

# Canonical joint order for every robot in the project: legs FR, FL, RR, RL; each hip, thigh, calf.
LEGS = ("FR", "FL", "RR", "RL")
JOINT_KINDS = ("hip", "thigh", "calf")
CANONICAL_JOINTS = tuple(f"{leg}_{kind}" for leg in LEGS for kind in JOINT_KINDS)


# Observation terms of the locomotion env (SPEC.md), each a named group of columns; a robot's
# observation is a list of `<term>_<component>` names and the env builds exactly those columns.
# Scaling is part of the term (the reference's): what each column means never depends on the robot.
OBS_TERMS: dict[str, str] = {
    "base_ang_vel": "base angular velocity in the body frame × 0.25 (x, y, z)",
    "projected_gravity": "gravity direction in the body frame (x, y, z)",
    "command": "velocity command × (2, 2, 0.25) (vx, vy, yaw)",
    "dof_pos": "joint angle − default angle, per joint",
    "dof_vel": "joint velocity × 0.05, per joint",
    "last_action": "the previous action, per joint",
}
JOINT_TERMS = ("dof_pos", "dof_vel", "last_action")  # one column per joint; the others have 3
TERM_AXES = {
    "base_ang_vel": ("x", "y", "z"),
    "projected_gravity": ("x", "y", "z"),
    "command": ("vx", "vy", "yaw"),
}


def compose_obs(*terms: str, joints: tuple[str, ...] = CANONICAL_JOINTS) -> tuple[str, ...]:
    """The column names of `terms`, in order: compose an observation from the named terms."""
    out: list[str] = []
    for term in terms:
        if term not in OBS_TERMS:
            raise AdaptkitError(
                f"observation term {term!r}: expected one of {', '.join(OBS_TERMS)}"
            )
        parts = joints if term in JOINT_TERMS else TERM_AXES[term]
        out += [f"{term}_{p}" for p in parts]
    return tuple(out)


@dataclass(frozen=True)
class ObsLayout:
    """A named observation layout: a sequence of terms (names follow from a robot's joints)."""

    name: str
    terms: tuple[str, ...]
    description: str

    def names(self, joints: tuple[str, ...] = CANONICAL_JOINTS) -> tuple[str, ...]:
        return compose_obs(*self.terms, joints=joints)


# The built-in layouts. `locomotion45` is the reference env's observation; `fork33` is the
# quadruped fork's, the same without the last action (its checkpoints and histories are 33-dim).
OBS_LAYOUTS: dict[str, ObsLayout] = {
    layout.name: layout
    for layout in (
        ObsLayout(
            "locomotion45",
            ("base_ang_vel", "projected_gravity", "command", "dof_pos", "dof_vel", "last_action"),
            "the reference locomotion observation (45 dims for 12 joints)",
        ),
        ObsLayout(
            "fork33",
            ("base_ang_vel", "projected_gravity", "command", "dof_pos", "dof_vel"),
            "the quadruped fork's observation: locomotion45 without the last action (33 dims)",
        ),
    )
}
LOCOMOTION_OBS_NAMES: tuple[str, ...] = OBS_LAYOUTS["locomotion45"].names()
FORK_OBS_NAMES: tuple[str, ...] = OBS_LAYOUTS["fork33"].names()

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# Sizes far above any robot (the built-in ones: 45 observations, 12 joints), refused before
# anything else is checked: a plugin declaring 10^7 observations is a bug, and every command
# would spend half a minute loading it.
MAX_OBS_DIMS = 1 << 16
MAX_JOINTS = 1024

# While a plugin is imported and its hook runs, the folder of its file: relative asset paths in
# the RobotSpecs it creates (mjcf="spot.xml") mean files beside the plugin, not in the cwd.
_PLUGIN_DIR: ContextVar[Path | None] = ContextVar("adaptkit_plugin_dir", default=None)
_NAMED_EXPERTS = ("", "trot", "demonstrator")


@contextmanager
def paths_relative_to(folder: Path | None) -> Iterator[None]:
    """RobotSpecs created inside resolve relative mjcf / stats_path / extra['expert'] against
    `folder` (the plugins loader wraps each plugin in this)."""
    token = _PLUGIN_DIR.set(Path(folder) if folder is not None else None)
    try:
        yield
    finally:
        _PLUGIN_DIR.reset(token)


def _beside_plugin(path: Path) -> Path:
    folder = _PLUGIN_DIR.get()
    return folder / path if folder is not None and not path.is_absolute() else path


@dataclass(frozen=True)
class GaitParams:
    """Parameters of the trotting CPG demonstrator, in 'effective' units.

    Thigh + means foot backwards, calf + means more flexed; multiply by the sign of the robot's
    joint axes (RobotSpec.joint_signs) to get joint angles.
    """

    frequency: float  # Hz
    thigh_amplitude: float
    calf_amplitude: float
    thigh_offset: float
    calf_offset: float
    speed_gain: float  # stride grows by speed_gain * (v_cmd - v_measured)
    pitch_gain: float
    roll_gain: float
    phase_lead: float  # rad, thigh leads the calf lift


def _finite_number(x: Any) -> bool:
    """A real, finite number (not a bool, not a string that float() would read)."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class RobotSpec:
    """A robot as adaptkit sees it. Validated on creation; immutable afterwards."""

    name: str
    task: str
    group: str
    obs_names: tuple[str, ...]
    joint_names: tuple[str, ...]
    default_joint_angles: tuple[float, ...]
    action_scale: float = 0.25
    action_bounds: tuple[float, float] = (-4.0, 4.0)  # clip in action units (joint offset / scale)
    kp: float = 20.0
    kd: float = 0.5
    base_init_height: float = 0.42
    base_height_target: float = 0.30
    mass_kg: float | None = None
    reward_scale: float = 1.0
    episode_sparsity: int = 1
    # Where the robot's learning histories live, relative to --data_dir (the dataset-config `path`).
    data_path: str = ""
    stats_path: Path | None = None  # optional stats.json; else stats are computed from the data
    # Simulator description: an MJCF file and, per canonical joint, the joint's name in that file.
    mjcf: Path | None = None
    mjcf_joints: tuple[str, ...] | None = None
    torque_limits: tuple[float, ...] | None = None
    gait: GaitParams | None = None
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Set by `for_layout`: the plugin's own spec this one was derived from (None: it is that one).
    derived_from: RobotSpec | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        for attr in ("obs_names", "joint_names", "default_joint_angles"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        for attr, cap in (("obs_names", MAX_OBS_DIMS), ("joint_names", MAX_JOINTS)):
            n = len(getattr(self, attr))
            if n > cap:
                self._fail(attr, f"has {n:,} names, more than the {cap:,} adaptkit takes")
        for attr in ("mjcf_joints", "torque_limits"):
            if getattr(self, attr) is not None:
                object.__setattr__(self, attr, tuple(getattr(self, attr)))
        for attr in ("stats_path", "mjcf"):
            if getattr(self, attr) is not None:
                object.__setattr__(self, attr, _beside_plugin(Path(getattr(self, attr))))
        object.__setattr__(self, "action_bounds", tuple(self.action_bounds))
        extra = dict(self.extra)
        expert = extra.get("expert")
        if isinstance(expert, str | Path) and str(expert) not in _NAMED_EXPERTS:
            extra["expert"] = str(_beside_plugin(Path(expert)))
        object.__setattr__(self, "extra", MappingProxyType(extra))
        self._validate()

    # -- derived ---------------------------------------------------------------------------
    @property
    def obs_dim(self) -> int:
        return len(self.obs_names)

    @property
    def action_dim(self) -> int:
        return len(self.joint_names)

    @property
    def joint_signs(self) -> tuple[float, ...]:
        """+1/-1 per joint: the sign that maps 'effective' gait units to this robot's joint axes."""
        signs = []
        for i, q in enumerate(self.default_joint_angles):
            if q != 0.0:
                signs.append(math.copysign(1.0, q))
            else:  # hips default to 0: take the sign of the leg's thigh (Unitree +, Mini Cheetah -)
                thigh = self.default_joint_angles[i - i % 3 + 1]
                signs.append(math.copysign(1.0, thigh) if thigh else 1.0)
        return tuple(signs)

    # -- observation layouts -----------------------------------------------------------------
    @property
    def obs_layout(self) -> str | None:
        """The built-in layout (OBS_LAYOUTS) this robot's observation is, or None (custom)."""
        for layout in OBS_LAYOUTS.values():
            if self.obs_names == layout.names(self.joint_names):
                return layout.name
        return None

    @property
    def plugin_spec(self) -> RobotSpec:
        """The spec the plugin registered (this one, unless derived for another layout)."""
        return self.derived_from or self

    def layouts(self) -> dict[str, int]:
        """Layout name → obs dim of every layout this robot can run in: the plugin's own first
        ('custom' when it is no built-in one), then the built-in ones."""
        own = self.plugin_spec
        out = {own.obs_layout or "custom": own.obs_dim}
        for layout in OBS_LAYOUTS.values():
            out.setdefault(layout.name, len(layout.names(own.joint_names)))
        return out

    def for_layout(self, layout: str | None) -> RobotSpec:
        """This robot with another observation layout (None: the plugin's own).

        Derived from the plugin's spec, so the plugin stays the single source of truth: same
        robot, task and group; its learning histories live in `<data_path>_<layout>` (the
        plugin's own folder holds the plugin's own layout), and the plugin's stats file, which
        describes its own layout, is not used."""
        own = self.plugin_spec
        if layout is None or layout == (own.obs_layout or "custom"):
            return own
        if layout not in OBS_LAYOUTS:
            raise AdaptkitError(
                f"robot {self.name!r}: observation layout {layout!r} is not one of "
                f"{', '.join(self.layouts())}"
            )
        return replace(
            own,
            obs_names=OBS_LAYOUTS[layout].names(own.joint_names),
            data_path=f"{own.data_path}_{layout}",
            stats_path=None,
            derived_from=own,
        )

    def for_obs_dim(self, obs_dim: int, where: str = "") -> RobotSpec:
        """This robot in the layout with `obs_dim` dims (the plugin's own layout wins a tie);
        what data or a checkpoint group of that width holds. `where` names it in the error."""
        for name, dim in self.layouts().items():
            if dim == obs_dim:
                return self.for_layout(name)
        options = ", ".join(f"{n} ({d} dims)" for n, d in self.layouts().items())
        at = f"{where}: " if where else ""
        raise AdaptkitError(
            f"{at}observations of {obs_dim} dims fit no observation layout of robot "
            f"{self.name!r} (layouts: {options})"
        )

    def dataset_entry(self, type_: str = "default") -> dict[str, dict[str, Any]]:
        """This robot's entry of a dataset-config YAML, exactly as the Vintix seed writes one."""
        return {
            self.task: {
                "type": type_,
                "path": self.data_path,
                "group": self.group,
                "reward_scale": self.reward_scale,
                "episode_sparsity": self.episode_sparsity,
            }
        }

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description, used by `adaptkit robots --json`."""
        return {
            "robot": self.name,
            "task": self.task,
            "group": self.group,
            "obs_dim": self.obs_dim,
            "obs_layout": self.obs_layout or "custom",
            "layouts": self.layouts(),
            "action_dim": self.action_dim,
            "reward_scale": self.reward_scale,
            "episode_sparsity": self.episode_sparsity,
            "data_path": self.data_path,
            "simulator": str(self.mjcf) if self.mjcf else None,
            "kp": self.kp,
            "kd": self.kd,
            "mass_kg": self.mass_kg,
        }

    # -- validation ------------------------------------------------------------------------
    def _fail(self, field_name: str, expected: str) -> None:
        raise AdaptkitError(f"robot {self.name!r}: field '{field_name}' {expected}")

    def _validate(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise AdaptkitError(
                f"robot {self.name!r}: field 'name' must be lower-case letters, digits and '_'"
            )
        for attr in ("task", "group"):
            value = getattr(self, attr)
            if not isinstance(value, str) or not _NAME_RE.match(value):
                self._fail(attr, f"must be lower-case letters, digits and '_', got {value!r}")
        for attr in ("obs_names", "joint_names"):
            if not all(isinstance(n, str) for n in getattr(self, attr)):
                self._fail(attr, "must be strings (names)")
        if self.obs_dim == 0:
            self._fail("obs_names", "must name at least one observation dimension")
        if len(set(self.obs_names)) != self.obs_dim:
            self._fail("obs_names", "has duplicate names")
        if self.action_dim == 0:
            self._fail("joint_names", "must name at least one joint")
        if len(set(self.joint_names)) != self.action_dim:
            self._fail("joint_names", "has duplicate names")
        if len(self.default_joint_angles) != self.action_dim:
            self._fail(
                "default_joint_angles",
                f"has {len(self.default_joint_angles)} values, expected {self.action_dim} "
                "(one per joint)",
            )
        if not all(_finite_number(q) for q in self.default_joint_angles):
            self._fail("default_joint_angles", "must be finite numbers")
        if self.mjcf_joints is not None and len(self.mjcf_joints) != self.action_dim:
            self._fail(
                "mjcf_joints", f"has {len(self.mjcf_joints)} names, expected {self.action_dim}"
            )
        if self.torque_limits is not None:
            if len(self.torque_limits) != self.action_dim:
                self._fail(
                    "torque_limits",
                    f"has {len(self.torque_limits)} values, expected {self.action_dim}",
                )
            if any(t <= 0 for t in self.torque_limits):
                self._fail("torque_limits", "must be positive")
        positive = ("action_scale", "kp", "reward_scale", "base_init_height", "base_height_target")
        for attr in positive:  # finite too: an inf gain or scale turns the physics into NaN
            value = getattr(self, attr)
            if not (_finite_number(value) and value > 0):
                self._fail(attr, f"must be a finite number > 0, got {value!r}")
        if not (_finite_number(self.kd) and self.kd >= 0):
            self._fail("kd", f"must be a finite number >= 0, got {self.kd!r}")
        bounds_ok = len(self.action_bounds) == 2 and all(map(_finite_number, self.action_bounds))
        if not bounds_ok or not self.action_bounds[0] < self.action_bounds[1]:
            self._fail(
                "action_bounds",
                f"must be finite (low, high) with low < high, got {self.action_bounds}",
            )
        if not isinstance(self.episode_sparsity, int) or self.episode_sparsity < 1:
            self._fail(
                "episode_sparsity", f"must be an integer >= 1, got {self.episode_sparsity!r}"
            )
        if self.mass_kg is not None and self.mass_kg <= 0:
            self._fail("mass_kg", "must be > 0")
        if not self.data_path:
            object.__setattr__(self, "data_path", f"{self.name}_trajectories")
        data = Path(self.data_path)  # collect writes DATA_DIR/data_path: it stays inside
        if data.is_absolute() or ".." in data.parts:
            self._fail(
                "data_path",
                f"must be a relative path inside --data-dir (no '..'), got {self.data_path!r}",
            )
        if self.mjcf is not None and not self.mjcf.is_file():
            self._fail("mjcf", f"points to a missing file: {self.mjcf}")
