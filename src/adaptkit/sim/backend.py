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

from adaptkit.defaults import Sim
from adaptkit.errors import AdaptkitError
from adaptkit.robot import RobotSpec
from adaptkit.sim.physics import PhysicsBackend

GENESIS_INSTALL = "pip install 'adaptkit[genesis]'"


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
