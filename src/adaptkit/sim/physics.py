"""The contract between the locomotion task and a physics backend: timing, the state columns a
backend reads out, and the backend protocol. Simulator-free (numpy only), so a Genesis run never
imports MuJoCo and the task never imports a simulator."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from adaptkit.defaults import Sim

CONTROL_DT = 0.02  # 50 Hz policy, as the reference task
PHYSICS_DT = 0.005
SUBSTEPS = round(CONTROL_DT / PHYSICS_DT)

# Columns of `read()`: base position (3, world), orientation (4, w x y z), linear velocity (3,
# world), angular velocity (3, body frame), joint angles (12) and joint velocities (12), joints
# in the robot's canonical order.
STATE_COLUMNS = {
    "base_pos": slice(0, 3),
    "base_quat": slice(3, 7),
    "base_lin_vel_world": slice(7, 10),
    "base_ang_vel_body": slice(10, 13),
    "dof_pos": slice(13, 25),
    "dof_vel": slice(25, 37),
}
STATE_WIDTH = 37


class PhysicsBackend(Protocol):
    sim: Sim
    num_envs: int

    def reset(
        self,
        idx: np.ndarray,
        base_pos: np.ndarray,
        base_quat: np.ndarray,
        joint_pos: np.ndarray,
        base_lin_vel: np.ndarray,
    ) -> None: ...

    def step(self, targets: np.ndarray) -> None: ...

    def read(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray: ...

    def enable_dynamics(self) -> None: ...

    def set_dynamics(
        self, idx: np.ndarray, mass_scale: np.ndarray, friction: np.ndarray
    ) -> None: ...

    def close(self) -> None: ...
