"""Drive a policy in the batched env and summarise it (return, forward speed, falls)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from adaptkit.robot import RobotSpec
from adaptkit.sim.demonstrator import Policy, load_policy
from adaptkit.sim.env import LocomotionEnv


@dataclass
class PolicyStats:
    robot: str
    episodes: int
    mean_return: float
    std_return: float
    mean_speed: float  # m/s, forward (yaw-frame) base velocity averaged over all steps
    fall_rate: float  # fraction of episodes ended by the roll/pitch limit
    mean_length: float
    steps_per_s: float

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def run_episodes(
    env: LocomotionEnv,
    policy: Policy,
    episodes_per_env: int = 1,
    progress: Callable[[int], None] | None = None,
) -> PolicyStats:
    """Run until every env has finished `episodes_per_env` episodes; only those count."""
    import time

    n = env.num_envs
    obs = env.reset()
    policy.reset(None)
    finished = np.zeros(n, dtype=np.int64)
    returns, lengths, falls = [], [], []
    speed_sum, speed_count = 0.0, 0
    t0, steps = time.perf_counter(), 0
    while finished.min() < episodes_per_env:
        active = finished < episodes_per_env
        obs, _, done, info = env.step(policy.act(obs, env))
        steps += n
        # Speed over the steps just taken (read before the reset of finished envs).
        vx = (info["terminal_base_lin_vel"] if done.any() else env.base_lin_vel)[:, 0]
        speed_sum += float(vx[active].sum())
        speed_count += int(active.sum())
        if done.any():
            counted = done & active
            returns += info["episode_return"][counted].tolist()
            lengths += info["episode_length"][counted].tolist()
            falls += info["fell"][counted].tolist()
            finished += done
            policy.reset(done)
        if progress is not None:
            progress(n)
    wall = time.perf_counter() - t0
    r = np.asarray(returns)
    return PolicyStats(
        robot=env.spec.name,
        episodes=len(r),
        mean_return=float(r.mean()),
        std_return=float(r.std()),
        mean_speed=speed_sum / max(speed_count, 1),
        fall_rate=float(np.mean(falls)),
        mean_length=float(np.mean(lengths)),
        steps_per_s=steps / wall,
    )


def evaluate_demonstrator(
    spec: RobotSpec,
    num_envs: int = 16,
    episodes_per_env: int = 1,
    seed: int = 0,
    policy: str | None = None,
    episode_length: int = 1000,
) -> PolicyStats:
    """The robot's expert (trot CPG unless `policy` names a file) over fresh seeded episodes."""
    env = LocomotionEnv(spec, num_envs, seed=seed, episode_length=episode_length)
    try:
        return run_episodes(env, load_policy(spec, policy), episodes_per_env)
    finally:
        env.close()
