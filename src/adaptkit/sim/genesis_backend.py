"""Genesis physics for the locomotion env (the reference env's simulator), from the same plugin
MJCF files as MuJoCo: a plane, the robot, PD position control at the robot's kp/kd and torque
limits, CONTROL_DT split into SUBSTEPS physics steps of 5 ms (as the MuJoCo backend).

Genesis costs a process ~10-30 s to initialise and each built scene ~10 s (minutes on a cold
kernel cache), so both are paid once: `gs.init` once per process, and a closed backend's built
scene is kept and handed to the next backend of the same robot and env count (collect's waves,
compare's policies and a command's repeated evaluations reuse one scene).

Differences from MuJoCo that stay: Genesis's own contact model and solver (Newton), and its
default contact parameters; robot links collide with the floor only, as in MuJoCo.
"""

from __future__ import annotations

import os
import time
from typing import Any

import genesis as gs
import numpy as np
import torch

from adaptkit.defaults import Sim
from adaptkit.errors import AdaptkitError
from adaptkit.robot import RobotSpec
from adaptkit.sim.physics import CONTROL_DT, SUBSTEPS
from adaptkit.sim.rotations import quat_to_matrix

# Built scenes not in use, by (robot file, gains, limits, env count).
_POOL: dict[tuple[Any, ...], list[tuple[Any, Any]]] = {}


def init_genesis() -> float:
    """Initialise Genesis on the CPU once per process; returns the seconds it took (0 if done)."""
    if gs._initialized:
        return 0.0
    t0 = time.perf_counter()
    # precision 64: the task's numpy side is float64, and the MuJoCo backend steps in float64.
    # Logging at "error": Genesis warns about every plugin MJCF's inertias on each build (GS_LOG
    # sets another level).
    gs.init(backend=gs.cpu, precision="64", logging_level=os.environ.get("GS_LOG", "error"))
    return time.perf_counter() - t0


def _key(spec: RobotSpec, num_envs: int) -> tuple[Any, ...]:
    return (str(spec.mjcf), spec.mjcf_joints, spec.kp, spec.kd, spec.torque_limits, num_envs)


def _build(spec: RobotSpec, num_envs: int) -> tuple[Any, Any]:
    """A built scene of `num_envs` copies of the robot, and the robot entity."""
    if spec.mjcf is None or spec.mjcf_joints is None:
        raise AdaptkitError(
            f"robot {spec.name!r} has no simulator model (mjcf / mjcf_joints unset)"
        )
    init_genesis()
    scene = gs.Scene(
        sim_options=gs.options.SimOptions(dt=CONTROL_DT, substeps=SUBSTEPS),
        rigid_options=gs.options.RigidOptions(
            constraint_solver=gs.constraint_solver.Newton,
            enable_collision=True,
            enable_joint_limit=True,
            enable_self_collision=False,
        ),
        show_viewer=False,
    )
    scene.add_entity(gs.morphs.Plane())
    robot = scene.add_entity(
        gs.morphs.MJCF(file=str(spec.mjcf), pos=(0.0, 0.0, spec.base_init_height))
    )
    scene.build(n_envs=num_envs)
    return scene, robot


class GenesisBackend:
    sim = Sim.GENESIS

    def __init__(self, spec: RobotSpec, num_envs: int) -> None:
        self.num_envs = num_envs
        self._key = _key(spec, num_envs)
        pool = _POOL.get(self._key)
        self.scene, self.robot = pool.pop() if pool else _build(spec, num_envs)
        robot = self.robot
        try:
            self._dofs = [robot.get_joint(j).dofs_idx_local[0] for j in spec.mjcf_joints]
        except Exception as exc:
            raise AdaptkitError(f"robot {spec.name!r}: joints of {spec.mjcf}: {exc}") from None
        dofs = self._dofs
        robot.set_dofs_kp(np.full(12, spec.kp), dofs)
        robot.set_dofs_kv(np.full(12, spec.kd), dofs)
        tau = np.asarray(spec.torque_limits or (1e6,) * 12, dtype=np.float64)
        robot.set_dofs_force_range(-tau, tau, dofs)
        self._base_lin = [0, 1, 2]  # the free joint's translational dofs (world frame)
        self._out = np.zeros((num_envs, 37))

    @staticmethod
    def _np(t: torch.Tensor) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float64, copy=False)

    def reset(
        self,
        idx: np.ndarray,
        base_pos: np.ndarray,
        base_quat: np.ndarray,
        joint_pos: np.ndarray,
        base_lin_vel: np.ndarray,
    ) -> None:
        if len(idx) == 0:
            return
        r, envs = self.robot, torch.as_tensor(np.asarray(idx), dtype=gs.tc_int)
        r.set_pos(torch.as_tensor(base_pos, dtype=gs.tc_float), envs, zero_velocity=True)
        r.set_quat(torch.as_tensor(base_quat, dtype=gs.tc_float), envs, zero_velocity=True)
        r.set_dofs_position(
            torch.as_tensor(joint_pos, dtype=gs.tc_float), self._dofs, envs, zero_velocity=True
        )
        r.set_dofs_velocity(torch.as_tensor(base_lin_vel, dtype=gs.tc_float), self._base_lin, envs)

    def step(self, targets: np.ndarray) -> None:
        self.robot.control_dofs_position(torch.as_tensor(targets, dtype=gs.tc_float), self._dofs)
        self.scene.step()

    def read(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        r, out = self.robot, self._out
        out[:, 0:3] = self._np(r.get_pos())
        quat = self._np(r.get_quat())
        out[:, 3:7] = quat
        out[:, 7:10] = self._np(r.get_vel())
        # Genesis reports the base's angular velocity in the world frame; the task (and MuJoCo's
        # free joint) use the body frame: w_body = R^T w_world.
        w_world = self._np(r.get_ang())
        out[:, 10:13] = np.matmul(w_world[:, None, :], quat_to_matrix(quat))[:, 0]
        out[:, 13:25] = self._np(r.get_dofs_position(self._dofs))
        out[:, 25:37] = self._np(r.get_dofs_velocity(self._dofs))
        return out[idx].copy()

    def enable_dynamics(self) -> None:
        raise AdaptkitError(
            "--sim genesis: adaptkit's Genesis backend does not randomise mass and friction "
            "(task 'varied'); use --sim mujoco, or --task walk"
        )

    def set_dynamics(self, idx: np.ndarray, mass_scale: np.ndarray, friction: np.ndarray) -> None:
        self.enable_dynamics()

    def close(self) -> None:
        # keep the built scene for the next backend of this robot and size (see the docstring)
        if self.scene is not None:
            _POOL.setdefault(self._key, []).append((self.scene, self.robot))
            self.scene = self.robot = None
