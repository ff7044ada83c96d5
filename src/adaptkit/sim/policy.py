"""The one policy protocol every rollout drives (demonstrator, standing, any model), and the
stand-still baseline.

A rollout calls `reset(num_envs)` once, then per control step `act(obs, env)` for the
observation the env just returned and `observe(actions, rewards, done)` after the env step
(done envs have auto-reset: their next observation starts a new episode); `close()` at the end.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Policy(Protocol):
    name: str

    def reset(self, num_envs: int) -> None: ...

    def act(self, obs: np.ndarray, env: Any) -> np.ndarray: ...

    def observe(self, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]: ...


class StandPolicy:
    """Zero action: the joints hold their default angles (the stand-still baseline)."""

    def __init__(self, action_dim: int, name: str = "stand") -> None:
        self.name = name
        self.action_dim = action_dim
        self._zeros = np.zeros((0, action_dim), np.float32)

    def reset(self, num_envs: int) -> None:
        self._zeros = np.zeros((num_envs, self.action_dim), np.float32)

    def act(self, obs: np.ndarray, env: Any) -> np.ndarray:
        return self._zeros

    def observe(self, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray) -> None:
        pass

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"policy": "stand"}
