"""Build a MuJoCo model for a robot: its vendored MJCF + floor + PD position actuators + options."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.robot import RobotSpec
from adaptkit.sim.physics import PHYSICS_DT

FLOOR_FRICTION = 1.0

# Robot geoms touch only the floor (no self-collision): fewer contact pairs, and legs of a
# trotting gait never meaningfully hit each other. Collision rule: (ct1 & ca2) or (ct2 & ca1).
_ROBOT_CONTYPE, _ROBOT_CONAFFINITY = 0, 1
_FLOOR_CONTYPE, _FLOOR_CONAFFINITY = 1, 0


@dataclass(frozen=True)
class ModelInfo:
    """Index maps from canonical joint order into the compiled model's qpos/qvel."""

    qpos_idx: np.ndarray  # [12] qpos address of each canonical joint
    qvel_idx: np.ndarray  # [12] qvel address of each canonical joint
    default_qpos: np.ndarray  # [nq] standing pose at base_init_height


def build_spec(spec: RobotSpec) -> mujoco.MjSpec:
    """The editable MjSpec: robot file, floor, one position actuator per canonical joint."""
    if spec.mjcf is None or spec.mjcf_joints is None:
        raise AdaptkitError(
            f"robot {spec.name!r} has no simulator model (mjcf / mjcf_joints unset)"
        )
    ms = mujoco.MjSpec.from_file(str(spec.mjcf))
    ms.option.timestep = PHYSICS_DT
    # implicitfast integrates the actuators' kd term implicitly: stable PD at 5 ms.
    ms.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    # Pyramidal cones and impratio 1 (MuJoCo defaults): ~3x cheaper trot steps than Menagerie's
    # elliptic/impratio 100, and the floor's friction decides every contact (priority below).
    ms.option.cone = mujoco.mjtCone.mjCONE_PYRAMIDAL
    ms.option.impratio = 1.0
    for g in ms.geoms:
        g.contype, g.conaffinity = _ROBOT_CONTYPE, _ROBOT_CONAFFINITY
    ms.worldbody.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0, 0, 0.05],
        friction=[FLOOR_FRICTION, 0.005, 0.0001],
        condim=3,
        priority=10,
        contype=_FLOOR_CONTYPE,
        conaffinity=_FLOOR_CONAFFINITY,
    )
    torque = spec.torque_limits or (1e6,) * spec.action_dim
    for canon, joint, tau in zip(spec.joint_names, spec.mjcf_joints, torque, strict=True):
        if ms.joint(joint) is None:
            raise AdaptkitError(f"robot {spec.name!r}: joint {joint!r} not in {spec.mjcf.name}")
        act = ms.add_actuator(name=canon, target=joint, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=spec.kp, kv=spec.kd)
        act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        act.forcerange = [-tau, tau]
    return ms


def build_model(spec: RobotSpec) -> tuple[mujoco.MjModel, ModelInfo]:
    """Compile the robot's model and the canonical-order index maps."""
    model = build_spec(spec).compile()
    qpos_idx = np.array([model.joint(j).qposadr[0] for j in spec.mjcf_joints])
    qvel_idx = np.array([model.joint(j).dofadr[0] for j in spec.mjcf_joints])
    free = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_FREE]
    if len(free) != 1 or model.jnt_qposadr[free[0]] != 0:
        raise AdaptkitError(f"robot {spec.name!r}: model must have one free joint first")
    default_qpos = model.qpos0.copy()
    default_qpos[:3] = (0.0, 0.0, spec.base_init_height)
    default_qpos[3:7] = (1.0, 0.0, 0.0, 0.0)
    default_qpos[qpos_idx] = spec.default_joint_angles
    return model, ModelInfo(qpos_idx, qvel_idx, default_qpos)
