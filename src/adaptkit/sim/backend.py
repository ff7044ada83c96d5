"""The physics behind the locomotion env, as a backend: the task (observations, actions, PD
targets, latency, rewards, termination, resets) lives in adaptkit.sim.env and never depends on
which simulator steps the robots.

A backend holds `num_envs` copies of one robot (its plugin's MJCF + a floor + PD position control
at the robot's kp/kd and torque limits) and does three things, always for a batch of envs:

- `reset(idx, base_pos, base_quat, joint_pos, base_lin_vel)`: put envs `idx` in that state (all
  other velocities zero);
- `step(targets)`: hold the PD joint targets [N,12] for one control step (CONTROL_DT);
- `read(idx)`: the state the task reads, [k, STATE_WIDTH] float64, columns STATE_COLUMNS.

Task variants that randomise the world (adaptkit.tasks) also call `enable_dynamics()` once
and `set_dynamics(idx, mass_scale, friction)` at resets; a backend that cannot raises a one-line
AdaptkitError from `enable_dynamics`.

MuJoCo (adaptkit.sim.mujoco_backend) is the default; Genesis (adaptkit.sim.genesis_backend) is
imported only when asked for, so a missing `genesis` package is a one-line error naming the extra.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from adaptkit.defaults import Sim
from adaptkit.errors import AdaptkitError
from adaptkit.robot import RobotSpec

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
GENESIS_INSTALL = "pip install 'adaptkit[genesis]'"


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


def parse_sim(sim: Sim | str | None) -> Sim:
    """A Sim from its name (None: the default), or a one-line error naming the choices."""
    return Sim.parse(sim)


def require_sim(sim: Sim | str | None) -> Sim:
    """The Sim, checked to be usable here (commands call it before any work)."""
    sim = parse_sim(sim)
    if sim is Sim.GENESIS:
        require_genesis()
    return sim


def require_genesis() -> None:
    """Fail with one line naming the extra when Genesis (or its torch) is not importable."""
    try:
        import genesis  # noqa: F401
    except ImportError as exc:
        raise AdaptkitError(
            f"--sim genesis: the Genesis simulator is not installed ({exc}); "
            f"install it with: {GENESIS_INSTALL}"
        ) from None


def make_backend(
    sim: Sim | str | None, spec: RobotSpec, num_envs: int, nthread: int | None = None
) -> PhysicsBackend:
    """The backend `sim` for `num_envs` copies of `spec`'s robot."""
    sim = parse_sim(sim)
    if sim is Sim.GENESIS:
        require_genesis()
        from adaptkit.sim.genesis_backend import GenesisBackend

        return GenesisBackend(spec, num_envs)
    from adaptkit.sim.mujoco_backend import MujocoBackend

    return MujocoBackend(spec, num_envs, nthread)
