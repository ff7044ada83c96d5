"""Policies sharing one interface for the batched rollout: model (KV-cached), stand, demonstrator.

Interface: `reset(num_envs)` before the first step; `act(obs [N, do], env) -> actions [N, da]` for
the observation just returned by the env; `observe(actions, rewards [N], done [N])` after the env
step (done envs have auto-reset, so their next obs starts a new episode).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.resolve import Resolution, resolve
from adaptkit.robot import RobotSpec

STD_EPS = 1e-6  # the reference's (obs - mean) / (std + 1e-6)


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


class DemonstratorPolicy:
    """The robot's demonstrator (anything with `reset(mask)` and `act(obs, env)`)."""

    def __init__(self, demonstrator: Any, name: str = "demonstrator") -> None:
        self.name = name
        self.demo = demonstrator

    @classmethod
    def for_robot(cls, spec: RobotSpec, expert: str | Path | None = None) -> DemonstratorPolicy:
        """The robot's trot demonstrator, or `expert` (a policy file the sim module can load)."""
        from adaptkit.sim.demonstrator import load_policy

        return cls(load_policy(spec, expert))

    def reset(self, num_envs: int) -> None:
        self.demo.reset(np.ones(num_envs, dtype=bool))

    def act(self, obs: np.ndarray, env: Any) -> np.ndarray:
        return self.demo.act(obs, env)

    def observe(self, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray) -> None:
        if done.any():
            self.demo.reset(done)

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"policy": "demonstrator", "class": type(self.demo).__name__}


class ModelPolicy:
    """A Vintix model acting for N envs at once: one batched `model.step` per control step.

    Per env it keeps the previous action, previous reward (× reward_scale) and the episode-local
    step number. The KV cache holds the context across episodes (that is what in-context RL reads);
    at an env's episode start step_num is 0, so the model uses its padding embeddings there.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        resolution: Resolution,
        context_len: int,
        norm_obs: bool = True,
        norm_acs: bool = False,
        name: str = "model",
        info: dict[str, Any] | None = None,
        threads: int | None = 1,
    ) -> None:
        self.name = name
        # torch threads while stepping (CPU). One is the default: the batched step is small and
        # memory-bound, and extra OpenMP threads fight the simulator's threads. Measured on 2 busy
        # cores, 16 envs x context 256: 4 ms/step at 1 thread, 28-124 ms at 2. None: leave as is.
        self.threads = threads
        self._saved_threads: int | None = None
        self.model = model.eval()
        self.res = resolution
        self.group = resolution.group
        self.context_len = int(context_len)
        self.info = dict(info or {})
        p = next(model.parameters())
        self.device, self.dtype = p.device, p.dtype

        def t(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(x, dtype=self.dtype, device=self.device)

        if norm_obs:
            self._obs_shift, self._obs_div = t(resolution.obs_mean), t(resolution.obs_std + STD_EPS)
        else:
            self._obs_shift = self._obs_div = None
        self._acs: tuple[torch.Tensor, torch.Tensor] | None = None
        if norm_acs:  # the model reads and writes normalised actions
            if resolution.acs_mean is None or resolution.acs_std is None:
                raise AdaptkitError("config.json: norm_acs is true but the stats lack acs_mean/std")
            self._acs = (t(resolution.acs_mean), t(resolution.acs_std + STD_EPS))
        self.cache: Any = None

    @classmethod
    def from_checkpoint(
        cls,
        checkpoint: Any,
        spec: RobotSpec,
        group: str | None = None,
        context_len: int | None = None,
        data_dir: str | Path | None = None,
        name: str = "model",
        threads: int | None = 1,
    ) -> ModelPolicy:
        """From a loaded Checkpoint (or a path to one) for robot `spec`."""
        if not hasattr(checkpoint, "model"):
            from adaptkit.checkpoint import load_checkpoint

            checkpoint = load_checkpoint(checkpoint)
        res = resolve(checkpoint.metadata, spec, group=group, data_dir=data_dir)
        cfg = checkpoint.config
        ctx = int(context_len or getattr(cfg, "context_len", 0) or 1024)
        return cls(
            checkpoint.model,
            res,
            ctx,
            norm_obs=bool(getattr(cfg, "norm_obs", True)),
            norm_acs=bool(getattr(cfg, "norm_acs", False)),
            name=name,
            info={"checkpoint": str(getattr(checkpoint, "path", ""))},
            threads=threads,
        )

    # -- rollout interface -----------------------------------------------------------------
    def reset(self, num_envs: int) -> None:
        if self.threads and self.device.type == "cpu" and self._saved_threads is None:
            self._saved_threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        n, da = num_envs, self.res.action_dim
        self.cache = self.model.new_cache(n, self.context_len)
        # preallocated per-env state, updated in place every step
        self.prev_act = torch.zeros(n, da, dtype=self.dtype, device=self.device)
        self.prev_rew = torch.zeros(n, dtype=self.dtype, device=self.device)
        self.step_num = torch.zeros(n, dtype=torch.long, device=self.device)
        self._done = torch.zeros(n, dtype=torch.bool, device=self.device)

    @torch.inference_mode()
    def act(self, obs: np.ndarray, env: Any) -> np.ndarray:
        o = torch.as_tensor(obs, device=self.device).to(self.dtype)
        if self._obs_shift is not None:
            o = (o - self._obs_shift) / self._obs_div
        a = self.model.step(self.group, self.cache, o, self.prev_act, self.prev_rew, self.step_num)
        self.prev_act.copy_(a)  # the token of the next step carries the action the model chose
        if self._acs is not None:
            a = a * self._acs[1] + self._acs[0]
        return a.float().cpu().numpy()

    @torch.inference_mode()
    def observe(self, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray) -> None:
        self.prev_rew.copy_(torch.as_tensor(rewards, device=self.device)).mul_(
            self.res.reward_scale
        )
        self._done.copy_(torch.as_tensor(done, device=self.device))
        # episode-local step: +1, and 0 where the env just reset (selects the padding embeddings)
        self.step_num.add_(1).masked_fill_(self._done, 0)

    def close(self) -> None:
        """Restore the torch thread count changed by reset()."""
        if self._saved_threads is not None:
            torch.set_num_threads(self._saved_threads)
            self._saved_threads = None

    def describe(self) -> dict[str, Any]:
        return {
            "policy": "model",
            **self.info,
            **self.res.describe(),
            "context_len": self.context_len,
            "torch_threads": self.threads,
        }
