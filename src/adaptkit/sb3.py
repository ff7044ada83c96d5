"""Stable-Baselines3: the batched native env as an SB3 `VecEnv` (the `sb3` extra).

    from stable_baselines3 import PPO
    from adaptkit.sb3 import LocomotionSB3VecEnv
    env = LocomotionSB3VecEnv("minicheetah", num_envs=64, normalize_actions=True)
    PPO("MlpPolicy", env).learn(1_000_000)

SB3 does not take gymnasium's vector envs; this is `adaptkit.gym.LocomotionVectorEnv` (one native
batched step for all envs) with SB3's conventions: finished envs are reset in the same step, the
last observation of their episode is `infos[i]["terminal_observation"]`, and
`infos[i]["TimeLimit.truncated"]` marks a time-out that was no fall.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.vec_env import VecEnv

from adaptkit.gym import LocomotionVectorEnv
from adaptkit.robot import RobotSpec


class LocomotionSB3VecEnv(VecEnv):
    """`num_envs` copies of `robot`; keywords as `LocomotionVectorEnv` (episode_length, task,
    normalize_actions, render_mode, ...)."""

    def __init__(self, robot: str | RobotSpec, num_envs: int = 1, **kwargs: Any) -> None:
        self.venv = LocomotionVectorEnv(
            robot, num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs
        )
        super().__init__(
            num_envs, self.venv.single_observation_space, self.venv.single_action_space
        )
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seeds = list(self._seeds)  # set by VecEnv.seed(s): env i gets s + i
        obs, _ = self.venv.reset(seed=seeds if any(s is not None for s in seeds) else None)
        self._reset_seeds()
        self.reset_infos = [{} for _ in range(self.num_envs)]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, reward, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [
            {"forward_speed": float(info["forward_speed"][i])} for i in range(self.num_envs)
        ]
        final = info.get("final_info", {}).get("forward_speed")
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = info["final_obs"][i]
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            if final is not None:
                infos[i]["forward_speed"] = float(final[i])
        return obs, reward.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def _count(self, indices: int | Iterable[int] | None) -> int:
        return len(list(self._get_indices(indices)))

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        # one native env serves every index: its attributes are the same for all
        return [getattr(self.venv, attr_name)] * self._count(indices)

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kw: Any) -> list:
        return [getattr(self.venv, method_name)(*args, **kw)] * self._count(indices)

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * self._count(indices)

    def get_images(self) -> Sequence[np.ndarray | None]:
        frames = self.venv.render()
        return list(frames) if frames is not None else [None] * self.num_envs
