"""A user's robot file (MJCF, or a URDF MuJoCo's own compiler reads) made into the model adaptkit
simulates: one free-floating trunk, the robot's bodies, joints and collision geometry, nothing
that would fight the PD actuators adaptkit.sim.model adds.

What is dropped, and why: actuators (adaptkit adds one PD position actuator per joint; the file's
force limits are read first, `force_limits`), sensors and keyframes (their sizes assume the file's
actuators and joints), and geoms attached to the world itself (a floor: adaptkit adds its own).
A URDF is read with `discardvisual` and `balanceinertia` (MuJoCo refuses many published URDFs'
inertias otherwise) and given a floating base when it has none. Collision meshes become the box
MuJoCo fits to each (the written model needs no mesh files; docs/plugins.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from adaptkit.errors import AdaptkitError

URDF_SUFFIXES = (".urdf",)
# injected right after <robot ...>: MuJoCo's URDF compiler reads a <mujoco> element there
_URDF_COMPILER = '<mujoco><compiler discardvisual="true" balanceinertia="true"/></mujoco>'
_URDF_FLOATING = (
    '<link name="adaptkit_world"/><joint name="adaptkit_floating_base" type="floating">'
    '<parent link="adaptkit_world"/><child link="{root}"/></joint>'
)


@dataclass
class RobotFile:
    """The cleaned model of a robot file and what cleaning did."""

    path: Path
    kind: str  # "mjcf" or "urdf"
    spec: mujoco.MjSpec  # one free joint at the trunk; no actuators, sensors, keys, world geoms
    force_limits: dict[str, tuple[float, str]]  # joint name -> (|torque| limit, where it was read)
    notes: list[str] = field(default_factory=list)  # one line per change made to the file

    def compile(self) -> mujoco.MjModel:
        return compile_spec(self.spec, self.path)

    def xml(self) -> str:
        """The cleaned model as self-contained MJCF text (what a generated plugin ships)."""
        return self.spec.to_xml()


def compile_spec(spec: mujoco.MjSpec, path: Path | str) -> mujoco.MjModel:
    """Compile, with MuJoCo's own complaint as the one-line error."""
    try:
        return spec.compile()
    except Exception as exc:  # mujoco raises ValueError with its compiler message
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AdaptkitError(f"{path}: MuJoCo cannot compile it: {first}") from None


def _kind(path: Path) -> str:
    if path.suffix.lower() in URDF_SUFFIXES:
        return "urdf"
    head = path.read_text(errors="replace")[:4096]
    return "urdf" if re.search(r"<robot[\s>]", head) and "<mujoco" not in head else "mjcf"


def _urdf_text(path: Path, notes: list[str]) -> str:
    """The URDF with the compiler options and, when it has none, a floating base injected."""
    text = path.read_text(errors="replace")
    robot = re.search(r"<robot\b[^>]*>", text)
    if robot is None:
        raise AdaptkitError(f"{path}: not a URDF (no <robot> element)")
    inject = _URDF_COMPILER
    if not re.search(r"type\s*=\s*[\"']floating[\"']", text):
        children = set(re.findall(r"<child\s+link\s*=\s*[\"']([^\"']+)", text))
        links = re.findall(r"<link\s+name\s*=\s*[\"']([^\"']+)", text)
        roots = [name for name in links if name not in children]
        if len(roots) != 1:
            raise AdaptkitError(
                f"{path}: expected one root link (the trunk), found {len(roots)}: {roots[:4]}"
            )
        inject += _URDF_FLOATING.format(root=roots[0])
        notes.append(f"a floating base added at the root link '{roots[0]}' (the URDF had none)")
    return text[: robot.end()] + inject + text[robot.end() :]


def _load(path: Path, kind: str, notes: list[str]) -> mujoco.MjSpec:
    try:
        if kind == "urdf":
            spec = mujoco.MjSpec.from_string(_urdf_text(path, notes))
            spec.meshdir = str(path.parent)  # relative mesh file names mean beside the file
        else:
            spec = mujoco.MjSpec.from_file(str(path))
    except AdaptkitError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AdaptkitError(f"{path}: MuJoCo cannot read it as {kind.upper()}: {first}") from None
    return spec


def _force_limits(spec: mujoco.MjSpec, model: mujoco.MjModel) -> dict[str, tuple[float, str]]:
    """|torque| limit per joint from the file: an actuator's force range, a motor's control range
    × gear, else the joint's actuator force range."""
    out: dict[str, tuple[float, str]] = {}
    for i in range(model.nu):
        if int(model.actuator_trntype[i]) != int(mujoco.mjtTrn.mjTRN_JOINT):
            continue
        joint = model.joint(int(model.actuator_trnid[i, 0])).name
        name = model.actuator(i).name or f"actuator {i}"
        if model.actuator_forcelimited[i]:
            lo, hi = model.actuator_forcerange[i]
            out[joint] = (float(min(-lo, hi)), f"actuator '{name}' forcerange")
            continue
        motor = int(model.actuator_biastype[i]) == int(mujoco.mjtBias.mjBIAS_NONE)
        if motor and model.actuator_ctrllimited[i]:
            lo, hi = model.actuator_ctrlrange[i]
            gear = abs(float(model.actuator_gear[i, 0]))
            out[joint] = (float(min(-lo, hi)) * gear, f"motor '{name}' ctrlrange × gear")
    for j in range(model.njnt):
        name = model.joint(j).name
        if name not in out and model.jnt_actfrclimited[j]:
            lo, hi = model.jnt_actfrcrange[j]
            out[name] = (float(min(-lo, hi)), "joint actuatorfrcrange")
    return {k: v for k, v in out.items() if v[0] > 0}


def _root_body(spec: mujoco.MjSpec, path: Path) -> mujoco.MjsBody:
    """The one body under the world that carries joints (the robot's trunk)."""
    roots = []
    body = spec.worldbody.first_body()
    while body is not None:
        roots.append(body)
        body = spec.worldbody.next_body(body)

    def has_joints(b: mujoco.MjsBody) -> bool:
        return bool(b.find_all(mujoco.mjtObj.mjOBJ_JOINT))

    movable = [b for b in roots if has_joints(b)]
    if len(movable) != 1:
        names = [b.name or "(unnamed)" for b in movable]
        raise AdaptkitError(
            f"{path}: expected one robot under the world body, found {len(movable)} bodies with "
            f"joints {names[:4]}"
        )
    return movable[0]


def _boxes_for_meshes(spec: mujoco.MjSpec, path: Path, notes: list[str]) -> None:
    """Each collision mesh becomes the box MuJoCo fits to it (no mesh files needed)."""
    meshed = [g for g in spec.geoms if int(g.type) == int(mujoco.mjtGeom.mjGEOM_MESH)]
    if not meshed:
        return
    for i, g in enumerate(meshed):
        g.type = mujoco.mjtGeom.mjGEOM_BOX  # with meshname kept, the compiler fits the box
        g.name = g.name or f"adaptkit_mesh_box_{i}"  # to find it in the compiled model
    model = compile_spec(spec, path)
    for g in meshed:
        gid = model.geom(g.name).id
        g.size = model.geom_size[gid].copy()
        g.pos = model.geom_pos[gid].copy()
        g.quat = model.geom_quat[gid].copy()
        g.meshname = ""
    for mesh in list(spec.meshes):
        spec.delete(mesh)
    spec.meshdir = ""  # nothing left to look up
    notes.append(f"{len(meshed)} collision mesh(es) replaced by their fitted boxes")


def read_robot_file(path: str | Path) -> RobotFile:
    """Read and clean a robot file (module docstring); errors are one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise AdaptkitError(f"--mjcf {path}: no such file")
    kind = _kind(path)
    notes: list[str] = []
    spec = _load(path, kind, notes)
    model = compile_spec(spec, path)
    limits = _force_limits(spec, model)
    root = _root_body(spec, path)
    removed = []
    for what, items in (
        ("actuator", spec.actuators),
        ("sensor", spec.sensors),
        ("keyframe", spec.keys),
    ):
        items = list(items)
        for item in items:
            spec.delete(item)
        if items:
            removed.append(f"{len(items)} {what}(s)")
    world_geoms = list(spec.worldbody.geoms)
    for g in world_geoms:
        spec.delete(g)
    if world_geoms:
        removed.append(f"{len(world_geoms)} geom(s) of the world body (a floor: adaptkit adds one)")
    if removed:
        notes.append("dropped " + ", ".join(removed))
    free = [j for j in root.joints if int(j.type) == int(mujoco.mjtJoint.mjJNT_FREE)]
    if not free:
        others = root.find_all(mujoco.mjtObj.mjOBJ_JOINT)
        if any(j.parent.name == root.name for j in others):
            raise AdaptkitError(
                f"{path}: the trunk '{root.name}' has joints of its own but no free joint; "
                "expected a free-floating trunk"
            )
        root.add_freejoint()
        notes.append(f"a free joint added to the trunk '{root.name}'")
    _boxes_for_meshes(spec, path, notes)
    compile_spec(spec, path)  # the cleaned model compiles
    return RobotFile(path, kind, spec, limits, notes)


def trunk_frame(model: mujoco.MjModel, data: mujoco.MjData) -> tuple[int, np.ndarray, np.ndarray]:
    """The free joint's body, its world position and rotation (after mj_kinematics)."""
    free = [
        j for j in range(model.njnt) if int(model.jnt_type[j]) == int(mujoco.mjtJoint.mjJNT_FREE)
    ]
    if len(free) != 1:
        raise AdaptkitError(f"the model has {len(free)} free joints, expected 1 (the trunk's)")
    body = int(model.jnt_bodyid[free[0]])
    return body, data.xpos[body].copy(), data.xmat[body].reshape(3, 3).copy()
