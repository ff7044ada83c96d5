"""The one rollout loop: every env advances together, one policy call and one env step per tick.

Demonstrator, standing still, zero-shot and fine-tuned models all run through `rollout`, so their
returns, falls and forward speeds are measured the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.sim.policy import Policy


@dataclass(frozen=True)
class EpisodeRecord:
    env: int
    episode: int  # index of the episode within its env's stream (0 = first, empty context)
    ret: float
    length: int
    fell: bool
    speed: float  # mean forward (x) base velocity over the episode, m/s
    partial: bool = False  # cut by the step budget before it ended (see rollout)


@dataclass
class RolloutResult:
    episodes: list[EpisodeRecord]
    num_envs: int
    steps: int  # control steps (ticks); env-steps = steps × num_envs
    wall_s: float
    policy_s: float
    sim_s: float
    actions: np.ndarray | None = None  # [steps, N, da] when recorded
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def env_steps(self) -> int:
        return self.steps * self.num_envs

    @property
    def steps_per_s(self) -> float:
        return self.env_steps / self.wall_s if self.wall_s > 0 else float("nan")

    def timing(self) -> dict[str, float]:
        per = max(self.steps, 1)
        return {
            "env_steps": self.env_steps,
            "wall_s": round(self.wall_s, 3),
            "steps_per_s": round(self.steps_per_s, 1),
            "policy_ms_per_step": round(1e3 * self.policy_s / per, 3),
            "sim_ms_per_step": round(1e3 * self.sim_s / per, 3),
        }


def _per_env(value: Any, done: np.ndarray, n: int) -> np.ndarray | None:
    """An info entry for finished envs: accepts a full [N] array or one value per done env."""
    if value is None:
        return None
    arr = np.asarray(value)
    if arr.shape[:1] == (n,):
        return arr[done]
    if arr.shape[:1] == (int(done.sum()),):
        return arr
    return None


class _EpisodeBook:
    """Per-env running return / length / speed; one EpisodeRecord per finished episode."""

    def __init__(self, n: int, episodes: int | None) -> None:
        self.limit = episodes
        self.count = np.zeros(n, np.int64)
        self.ret = np.zeros(n, np.float64)
        self.len = np.zeros(n, np.int64)
        self.speed = np.zeros(n, np.float64)
        self.records: list[EpisodeRecord] = []

    def step(self, reward: np.ndarray, vx: np.ndarray | None) -> None:
        self.ret += reward
        self.len += 1
        if vx is not None:
            self.speed += vx

    def finish(self, done: np.ndarray, fell: np.ndarray | None) -> None:
        for j, i in enumerate(np.flatnonzero(done)):
            if self.limit is None or self.count[i] < self.limit:
                self.records.append(
                    EpisodeRecord(
                        env=int(i),
                        episode=int(self.count[i]),
                        ret=float(self.ret[i]),
                        length=int(self.len[i]),
                        fell=bool(fell[j]) if fell is not None else False,
                        speed=float(self.speed[i] / self.len[i]),
                    )
                )
        self.count[done] += 1
        for arr in (self.ret, self.len, self.speed):
            arr[done] = 0

    def partials(self) -> list[EpisodeRecord]:
        """Every env's running episode so far, marked partial."""
        return [
            EpisodeRecord(int(i), int(self.count[i]), float(self.ret[i]), int(self.len[i]),
                          False, float(self.speed[i] / self.len[i]), partial=True)
            for i in np.flatnonzero(self.len > 0)
        ]  # fmt: skip

    def complete(self) -> bool:
        return self.limit is not None and bool((self.count >= self.limit).all())


def rollout(
    policy: Policy,
    env: Any,
    episodes: int | None,
    max_steps: int | None,
    progress: Callable[[int, int], None] | None = None,
    record_actions: bool = False,
    on_step: Callable[[Any, int], None] | None = None,
) -> RolloutResult:
    """Run `policy` on all envs of `env` together until every env finished `episodes` episodes
    (or `max_steps` control steps). Partial episodes at the end are not recorded, unless no
    episode ended at all: then every env's running one is, with `partial=True`.

    `max_steps=None` means `episodes × env.episode_length`. Only the first `episodes` episodes of
    each env are recorded; envs that finish early keep stepping (the batch stays whole).
    `on_step(env, step)` (e.g. a video recorder) sees the env after the reset (step 0) and after
    every step; its time counts in neither the policy's nor the simulator's.
    """
    if episodes is None and max_steps is None:
        raise AdaptkitError("rollout: give episodes or max_steps")
    if episodes is not None and episodes < 1:
        raise AdaptkitError(f"--episodes: must be >= 1, got {episodes}")
    if max_steps is None:
        max_steps = int(episodes) * int(getattr(env, "episode_length", 1000))
    if max_steps < 1:
        raise AdaptkitError(f"--max-steps: must be >= 1, got {max_steps}")
    n = int(env.num_envs)
    book = _EpisodeBook(n, episodes)
    recorded: list[np.ndarray] = []
    policy_s = sim_s = 0.0
    t_setup = time.perf_counter()
    obs = env.reset()
    policy.reset(n)
    if on_step is not None:
        on_step(env, 0)
    start = time.perf_counter()  # steps/s counts the stepping loop, not env/cache set-up
    steps = 0
    try:
        for steps in range(1, max_steps + 1):
            t0 = time.perf_counter()
            actions = policy.act(obs, env)
            t1 = time.perf_counter()
            # speed of the state the action is taken in: never a new episode's post-reset state
            vel = getattr(env, "base_lin_vel", None)
            vx = None if vel is None else np.asarray(vel)[:, 0].copy()
            if record_actions:
                recorded.append(np.array(actions, copy=True))
            obs, reward, done, info = env.step(actions)
            t2 = time.perf_counter()
            done = np.asarray(done, dtype=bool)
            policy.observe(actions, reward, done)
            policy_s += (t1 - t0) + (time.perf_counter() - t2)
            sim_s += t2 - t1
            book.step(reward, vx)
            if done.any():
                info_fell = info.get("fell") if isinstance(info, dict) else None
                book.finish(done, _per_env(info_fell, done, n))
            if on_step is not None:
                on_step(env, steps)
            if progress is not None:
                progress(steps, max_steps)
            if book.complete():
                break
    finally:
        close = getattr(policy, "close", None)
        if close is not None:
            close()
    wall = time.perf_counter() - start
    # A budget shorter than one episode (e.g. --max-steps 500 of 1000 for a video) would leave
    # nothing to score: then each env's episode so far is scored, marked partial, never NaN.
    records = book.records or book.partials()
    records = sorted(records, key=lambda r: (r.episode, r.env))
    return RolloutResult(
        episodes=records,
        num_envs=n,
        steps=steps,
        wall_s=wall,
        policy_s=policy_s,
        sim_s=sim_s,
        actions=np.stack(recorded) if recorded else None,
        extra={"setup_s": start - t_setup},
    )
