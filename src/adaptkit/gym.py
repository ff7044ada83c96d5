"""Gymnasium bindings: every robot with a simulator model as `adaptkit/<Name>-v0`.

    import gymnasium, adaptkit.gym
    env = gymnasium.make("adaptkit/MiniCheetah-v0")            # one env, gymnasium.Env
    envs = gymnasium.make_vec("adaptkit/MiniCheetah-v0", 64)   # one batched LocomotionEnv

Importing this module registers the robots of the installed plugins (and ADAPTKIT_PLUGINS);
`gymnasium.make("adaptkit.gym:adaptkit/Go1-v0")` imports it for you. A plugin robot's name is
`extra["gym_name"]`, else its name in CamelCase (`spot` -> `adaptkit/Spot-v0`).

Semantics, as gymnasium defines them:
- terminated = the robot fell (|roll| or |pitch| > 10°); truncated = the episode's
  `episode_length` steps (1000, 20 s) ran out. Actions are in the dataset's units (joint offset /
  action_scale), clipped to the robot's `action_bounds` (Box(-4, 4) for the built-in robots:
  the units the datasets and the models use). `normalize_actions=True` (make's keyword) makes
  the action space Box(-1, 1), mapped linearly onto `action_bounds`, as most RL libraries expect.
- seeding: `reset(seed=s)` restarts the reset randomisation at s; a later `reset()` continues it.
  The single env seeded s starts where env 0 of `adaptkit eval --seed s` starts. A vector env
  seeded with an int s starts env i as `adaptkit eval --seed s` does; seeded with a list, env i
  is the single env seeded with seed[i].
- autoreset (vector env): NEXT_STEP (gymnasium's default), SAME_STEP or DISABLED, with exactly
  the results of `gymnasium.vector.SyncVectorEnv` over single envs (a finished env is reset by
  a fresh draw of its random stream, whichever mode).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from adaptkit.errors import AdaptkitError
from adaptkit.plugins import Registry, load_registry
from adaptkit.robot import RobotSpec
from adaptkit.sim.env import LocomotionEnv
from adaptkit.tasks import DEFAULT_TASK

NAMESPACE = "adaptkit"
VERSION = 0
EPISODE_LENGTH = 1000
RENDER_FPS = 50  # one frame per control step
_registry: Registry | None = None  # robots by name, for the entry points below
_registered: set[str] = set()  # the ids register_envs made


def env_id(spec: RobotSpec) -> str:
    """`adaptkit/<Name>-v0` for a robot."""
    name = spec.extra.get("gym_name") or "".join(p.capitalize() for p in spec.name.split("_"))
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(name)):
        raise AdaptkitError(f"robot {spec.name!r}: extra['gym_name'] {name!r} is not a valid id")
    return f"{NAMESPACE}/{name}-v{VERSION}"


def _spec(robot: str | RobotSpec) -> RobotSpec:
    return robot if isinstance(robot, RobotSpec) else _spec_registry().robot(robot)


def _spaces(
    spec: RobotSpec, obs_dim: int, normalize_actions: bool = False
) -> tuple[spaces.Box, spaces.Box]:
    low, high = (-1.0, 1.0) if normalize_actions else spec.action_bounds
    obs = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    act = spaces.Box(np.float32(low), np.float32(high), (spec.action_dim,), np.float32)
    return obs, act


def _env_actions(spec: RobotSpec, actions: Any, normalize_actions: bool) -> np.ndarray:
    """The env's actions (dataset units) from the agent's: [-1, 1] maps onto action_bounds
    when `normalize_actions` (what most RL libraries expect of a Box)."""
    a = np.asarray(actions, np.float64)
    if not np.isfinite(a).all():
        # refused, not clipped: NaN has no nearest bound, and a policy emitting it is broken;
        # passing it on would turn the physics state into NaN with no error at all
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        index = where if a.ndim > 1 else where[0]
        raise ValueError(
            f"action holds a non-finite value ({a[where]} at index {index}); adaptkit's envs "
            "take finite actions only (check the policy's output)"
        )
    if not normalize_actions:
        return a
    low, high = spec.action_bounds
    return low + (np.clip(a, -1.0, 1.0) + 1.0) * (0.5 * (high - low))


def _seed_of(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


class LocomotionGymEnv(gymnasium.Env):
    """One robot walking the 0.5 m/s command (or `task`'s, adaptkit.tasks): a gymnasium.Env over
    a one-env LocomotionEnv."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": RENDER_FPS}

    def __init__(
        self,
        robot: str | RobotSpec,
        render_mode: str | None = None,
        episode_length: int = EPISODE_LENGTH,
        width: int = 480,
        height: int = 320,
        task: str = DEFAULT_TASK,
        normalize_actions: bool = False,
    ) -> None:
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise AdaptkitError(f"render_mode: expected 'rgb_array' or None, got {render_mode!r}")
        self.robot = _spec(robot)
        self.render_mode = render_mode
        self._env = LocomotionEnv(self.robot, 1, seed=0, episode_length=episode_length, task=task)
        self.normalize_actions = normalize_actions
        self.observation_space, self.action_space = _spaces(
            self.robot, self._env.obs_dim, normalize_actions
        )
        self._size = (width, height)
        self._renderer: Any = None
        self._seeded = False

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None or not self._seeded:
            # unseeded first reset: a seed from gymnasium's entropy-seeded generator
            self._env.seed_envs([0], [seed if seed is not None else _seed_of(self.np_random)])
            self._seeded = True
        obs = self._env.reset()
        return obs[0].copy(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = _env_actions(self.robot, action, self.normalize_actions)
        obs, reward, done, info = self._env.step(a[None])
        if done[0]:  # the native env reset itself: report the state the episode ended in
            obs = info["terminal_obs"]
            vx = float(info["terminal_base_lin_vel"][0, 0])
        else:
            vx = float(self._env.base_lin_vel[0, 0])
        terms = {k: float(v[0]) for k, v in self._env.reward_terms.items()}
        extra = {"forward_speed": vx, "reward_terms": terms}
        return (
            obs[0].copy(),
            float(reward[0]),
            bool(info["fell"][0]),
            bool(info["time_out"][0]),
            extra,
        )

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn(
                "render() without a render_mode: make(..., render_mode='rgb_array')"
            )
            return None
        if self._renderer is None:
            from adaptkit.sim.render import SceneRenderer  # a GL context only when rendering

            self._renderer = SceneRenderer(self.robot, *self._size)
        return self._renderer.render_env(self._env, 0)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if self._env is not None:
            self._env.close()
            self._env = None  # type: ignore[assignment]


class LocomotionVectorEnv(VectorEnv):
    """`num_envs` copies of a robot stepped together by one batched LocomotionEnv (one native
    mujoco.rollout call per step)."""

    def __init__(
        self,
        robot: str | RobotSpec,
        num_envs: int = 1,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        episode_length: int | None = None,
        max_episode_steps: int | None = None,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 320,
        task: str = DEFAULT_TASK,
        normalize_actions: bool = False,
    ) -> None:
        self.robot = _spec(robot)
        self.normalize_actions = normalize_actions
        self.autoreset_mode = AutoresetMode(autoreset_mode)
        if render_mode not in (None, "rgb_array"):
            raise AdaptkitError(f"render_mode: expected 'rgb_array' or None, got {render_mode!r}")
        self.render_mode = render_mode
        length = episode_length or max_episode_steps or EPISODE_LENGTH
        self.num_envs = num_envs
        self._env = LocomotionEnv(self.robot, num_envs, seed=0, episode_length=length, task=task)
        self.single_observation_space, self.single_action_space = _spaces(
            self.robot, self._env.obs_dim, normalize_actions
        )
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.metadata = {
            "render_modes": ["rgb_array"],
            "render_fps": RENDER_FPS,
            "autoreset_mode": self.autoreset_mode,
        }
        self._pending = np.zeros(num_envs, bool)  # NEXT_STEP: envs to reset on the next step
        self._seeded = False
        self._size = (width, height)
        self._renderer: Any = None

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        n = self.num_envs
        mask = (options or {}).get("reset_mask")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (n,) or mask.dtype != np.bool_ or not mask.any():
                raise ValueError(
                    f"options['reset_mask'] must be a bool array of shape ({n},) with a True"
                )
        idx = np.arange(n) if mask is None else np.flatnonzero(mask)
        if isinstance(seed, int):
            super().reset(seed=seed)
            self._env.seed_envs(idx, [seed] * len(idx), idx.tolist())  # as `eval --seed`
        elif seed is not None:
            if len(seed) != n:
                raise ValueError(f"got {len(seed)} seeds for {n} envs")
            super().reset(seed=None)
            seeds = [seed[i] if seed[i] is not None else _seed_of(self.np_random) for i in idx]
            self._env.seed_envs(idx, seeds, [0] * len(idx))  # env i = single env seeded seed[i]
        elif not self._seeded:
            seeds = [_seed_of(self.np_random) for _ in idx]
            self._env.seed_envs(idx, seeds, [0] * len(idx))
        self._seeded = True
        obs = self._env.reset(None if mask is None else mask)
        self._pending[idx] = False
        return obs, {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        env = self._env
        obs, reward, done, info = env.step(
            _env_actions(self.robot, actions, self.normalize_actions)
        )
        reward = reward.astype(np.float64)
        terminated = info["fell"].copy()
        truncated = info["time_out"].copy()
        vx = env.base_lin_vel[:, 0].copy()
        if done.any():
            vx[done] = info["terminal_base_lin_vel"][done, 0]
        terms = {k: v.astype(np.float64) for k, v in env.reward_terms.items()}

        if self.autoreset_mode is AutoresetMode.NEXT_STEP:
            pending = self._pending
            if pending.any():  # their last step ended an episode: this step starts the next
                obs[pending] = env.reset(pending)[pending]
                reward[pending], terminated[pending], truncated[pending] = 0.0, False, False
            obs[done & ~pending] = info["terminal_obs"][done & ~pending]
            self._pending = done & ~pending
            infos = _infos(vx, terms, ~pending)  # a reset has no step info
        elif self.autoreset_mode is AutoresetMode.SAME_STEP:
            infos = _infos(vx, terms, ~done)
            if done.any():
                final = np.full(self.num_envs, None, dtype=object)
                for i in np.flatnonzero(done):
                    final[i] = info["terminal_obs"][i].copy()
                infos.update(
                    final_obs=final,
                    _final_obs=done.copy(),
                    final_info=_infos(vx, terms, done),
                    _final_info=done.copy(),
                )
                obs[done] = env.reset(done)[done]  # a fresh draw, as SyncVectorEnv's reset()
        else:  # DISABLED: the caller resets finished envs with options={"reset_mask": ...}
            obs[done] = info["terminal_obs"][done]
            infos = _infos(vx, terms, np.ones(self.num_envs, bool))
        return obs, reward, terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:
            return None
        if self._renderer is None:
            from adaptkit.sim.render import SceneRenderer  # a GL context only when rendering

            self._renderer = SceneRenderer(self.robot, *self._size)
        return tuple(self._renderer.render_env(self._env, i) for i in range(self.num_envs))

    def close_extras(self, **kwargs: Any) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._env.close()


def _infos(vx: np.ndarray, terms: dict[str, np.ndarray], present: np.ndarray) -> dict[str, Any]:
    """Per-env step info in gymnasium's vector layout: values (0 where absent) + `_key` masks."""
    present = present.copy()
    out: dict[str, Any] = {
        "forward_speed": np.where(present, vx, 0.0),
        "_forward_speed": present,
        "reward_terms": {},
        "_reward_terms": present.copy(),
    }
    for k, v in terms.items():
        out["reward_terms"][k] = np.where(present, v, 0.0)
        out["reward_terms"][f"_{k}"] = present.copy()
    return out


def register_envs(registry: Registry | None = None) -> list[str]:
    """Register `adaptkit/<Name>-v0` for every robot with a simulator model; returns the ids.
    Called on import with the installed plugins; call it again with a registry of your own."""
    global _registry
    if registry is not None:
        _registry = registry
    robots = _spec_registry().robots.values()
    for old in _registered:  # a new registry replaces the robots of the previous one
        gymnasium.registry.pop(old, None)
    _registered.clear()
    ids = []
    for spec in robots:
        if spec.mjcf is None or spec.mjcf_joints is None:
            continue
        eid = env_id(spec)
        gymnasium.register(
            id=eid,
            entry_point=LocomotionGymEnv,
            vector_entry_point=LocomotionVectorEnv,
            max_episode_steps=EPISODE_LENGTH,
            kwargs={"robot": spec.name},
        )
        ids.append(eid)
    _registered.update(ids)
    return ids


def _spec_registry() -> Registry:
    global _registry
    if _registry is None:
        _registry = load_registry()
    return _registry


ENV_IDS = register_envs()
