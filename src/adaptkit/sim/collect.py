"""Learning histories by continuous noise distillation (Vintix): demonstrator + decaying noise.

Each history is one env running `steps_per_history` control steps over chained episodes (auto-reset
inside the history). At history step n the executed action is

    a = ε(n)·u + (1 − ε(n))·expert(obs),  u ~ U(−NOISE_RANGE, NOISE_RANGE) per joint, i.i.d.
    ε(n) = (1 − (n / ((1 − f)·N))^p)^(1/p) for n < (1 − f)·N, else 0

so the history starts as pure noise around the standing pose and ends as the demonstrator: the
returns rise along it, which is what an in-context learner imitates.

With `noise_cycle=C` the noise falls across C consecutive *episodes* instead, and then starts
over: episode e of a history runs at ε = episode_noise(e mod C, C), constant within the episode,
from 1 (pure noise) to 0 (the demonstrator) — with short episodes, one training window then
spans a whole cycle and shows the improvement an in-context learner is meant to learn.

The noise is centred on 0 (the default pose) and spans ±1 action unit (±0.25 rad at scale 0.25):
wide enough to make the early episodes poor, small enough that the robot mostly keeps standing
instead of thrashing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.data.config import write_dataset_config
from adaptkit.data.dataset_folder import collecting_into
from adaptkit.data.history import DEFAULT_CHUNK_SIZE, HistoryWriter, write_task_metadata
from adaptkit.defaults import Sim
from adaptkit.fileio import resolve_path
from adaptkit.robot import RobotSpec
from adaptkit.sim.backend import require_sim
from adaptkit.sim.curricula import CURRICULA, HistoryPlan
from adaptkit.sim.demonstrator import load_demonstrator
from adaptkit.sim.env import LocomotionEnv, one_episode_each
from adaptkit.sim.policy import Policy
from adaptkit.tasks import TaskVariant, get_task

NOISE_FREE_FRACTION = 0.05  # f: the last 5% of each history is the pure demonstrator
NOISE_POWER = 0.6  # p
NOISE_RANGE = 1.0  # uniform noise half-width, in action units
BUFFER_STEPS = 1000  # steps kept in memory per env before handing them to the writers
DEFAULT_CONFIG_NAME = "dataset_config.yaml"
NOISE_STREAM = 7  # sub-stream tag separating the action noise from the env's reset noise
CURRICULUM_STREAM = 8  # a curriculum's per-history draws (adaptkit.sim.curricula)
THRESHOLD_ENVS = 4  # envs × one episode measuring standing still and the demonstrator


def noise_schedule(
    n: np.ndarray | int, total: int, f: float = NOISE_FREE_FRACTION, p: float = NOISE_POWER
) -> np.ndarray:
    """ε(n) for history step(s) n of a history of `total` steps."""
    n = np.asarray(n, dtype=np.float64)
    horizon = (1.0 - f) * total
    frac = np.clip(n / horizon, 0.0, 1.0)
    return np.where(n < horizon, (1.0 - frac**p) ** (1.0 / p), 0.0)


def episode_noise(j: np.ndarray | int, cycle: int, p: float = 1.0) -> np.ndarray:
    """ε of episode j (0-based) of a noise cycle of `cycle` episodes: 1 at j = 0, falling to 0
    at j = cycle − 1 as (1 − (j / (cycle − 1))^p)^(1/p) (p = 1: by equal steps)."""
    frac = np.clip(np.asarray(j, dtype=np.float64) / max(cycle - 1, 1), 0.0, 1.0)
    return (1.0 - frac**p) ** (1.0 / p)


def _trial_threshold(
    spec: RobotSpec,
    expert: str | Path | None,
    episode_length: int,
    sim: Sim,
    task: TaskVariant,
    seed: int,
) -> float:
    """The `trial` curriculum's bar: midway between the body's standing still and its
    demonstrator, one episode each on THRESHOLD_ENVS envs of a stream no history uses."""
    from adaptkit.sim.policy import StandPolicy

    stand, demo = (
        one_episode_each(spec, policy, THRESHOLD_ENVS, episode_length, seed + 10_007, sim, task)
        for policy in (StandPolicy(spec.action_dim), load_demonstrator(spec, expert))
    )
    return 0.5 * (stand["return"] + demo["return"])


def _history_name(i: int) -> str:
    return f"history_{i:03d}.h5"


def collect_histories(
    spec: RobotSpec,
    out_dir: Path,
    histories: int,
    steps_per_history: int,
    num_envs: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
    *,
    expert: str | Path | None = None,
    config_path: Path | None = None,
    episode_length: int = 1000,
    chunk_size: int | None = None,
    sim: Sim | str | None = None,
    task: TaskVariant | str | None = None,
    noise_cycle: int = 0,
    curriculum: str | None = None,
) -> list[Path]:
    """Write `histories` HDF5 learning histories into `out_dir` (the task folder).

    Runs min(num_envs, histories) envs at a time, one history per env. Also writes the task JSON
    `<out_dir>/<out_dir.name>.json` and this task's entry in the dataset config (default
    `<out_dir.parent>/dataset_config.yaml`, other tasks kept; `path` relative to that folder).
    `progress(k)` is called with the number of env-steps just simulated. Deterministic for the
    same arguments (and simulator: `sim`, default MuJoCo, and task variant: `task`, default
    `walk`, are recorded in the task JSON). `noise_cycle` > 0: the noise falls across that many
    episodes and starts over (module docstring); 0: SPEC.md's schedule over the whole history.
    """
    sim = require_sim(sim)
    task = get_task(task)
    if histories < 1 or steps_per_history < 1 or num_envs < 1:
        raise ValueError("histories, steps_per_history and num_envs must be >= 1")
    if noise_cycle < 0 or noise_cycle == 1:
        raise ValueError("noise_cycle must be 0 (off) or >= 2 episodes")
    if curriculum is not None and (curriculum not in CURRICULA or noise_cycle):
        raise ValueError(f"curriculum: one of {CURRICULA}, and not with noise_cycle")
    policy = load_demonstrator(spec, expert)  # a bad --expert fails before anything is written
    out_dir = Path(out_dir)
    # written whole or not at all, one collect at a time (adaptkit.data.dataset_folder)
    with collecting_into(out_dir) as tmp:
        threshold = (
            _trial_threshold(spec, expert, episode_length, sim, task, seed)
            if curriculum == "trial"
            else None
        )
        summaries = _collect_into(
            tmp, spec, histories, steps_per_history, num_envs, seed, progress, policy,
            episode_length, chunk_size, sim, task, noise_cycle, curriculum, threshold,
        )  # fmt: skip
        meta = _task_metadata(
            spec, histories, steps_per_history, seed, summaries, episode_length, expert, sim,
            task, noise_cycle, curriculum, threshold,
        )  # fmt: skip
        write_task_metadata(tmp, meta, name=out_dir.name)  # named after the final folder
    _write_dataset_config_entry(spec, out_dir, config_path)
    return [out_dir / _history_name(i) for i in range(histories)]


def _collect_into(
    out_dir: Path,
    spec: RobotSpec,
    histories: int,
    steps_per_history: int,
    num_envs: int,
    seed: int,
    progress: Callable[[int], None] | None,
    policy: Policy,
    episode_length: int,
    chunk_size: int | None,
    sim: Sim,
    task: TaskVariant,
    noise_cycle: int,
    curriculum: str | None = None,
    threshold: float | None = None,
) -> list[dict[str, Any]]:
    """Every history into `out_dir` (the temp folder `collecting_into` swaps in); returns the
    summaries the task JSON lists."""
    chunk = chunk_size or DEFAULT_CHUNK_SIZE
    summaries: list[dict[str, Any]] = []
    wave_size = min(num_envs, histories)
    for first in range(0, histories, wave_size):
        ids = list(range(first, min(first + wave_size, histories)))
        # History i uses env stream [seed, i] and noise stream [seed, NOISE_STREAM, i]: its
        # content does not depend on num_envs or on which wave it ran in.
        env = LocomotionEnv(
            spec,
            len(ids),
            seed=seed,
            episode_length=episode_length,
            env_ids=ids,
            sim=sim,
            task=task,
        )
        writers = [
            HistoryWriter(out_dir / _history_name(i), spec.obs_dim, spec.action_dim, chunk)
            for i in ids
        ]
        plans = None
        if curriculum is not None:
            plans = [
                HistoryPlan(
                    curriculum,
                    np.random.default_rng([seed, CURRICULUM_STREAM, i]),
                    spec.action_dim,
                    signs=float(spec.joint_signs[1]),
                    threshold=threshold or 0.0,
                )
                for i in ids
            ]
        try:
            returns = _run_wave(
                env,
                policy,
                writers,
                steps_per_history,
                [np.random.default_rng([seed, NOISE_STREAM, i]) for i in ids],
                progress,
                noise_cycle,
                plans,
            )
            for w in writers:
                w.close()
        except BaseException:
            for w in writers:
                w.abort()
            raise
        finally:
            env.close()
        for i, r in zip(ids, returns, strict=True):
            k = max(1, len(r) // 10)
            summaries.append(
                {
                    "file": _history_name(i),
                    "episodes": len(r),
                    "return_first": float(np.mean(r[:k])) if r else None,
                    "return_last": float(np.mean(r[-k:])) if r else None,
                    **({"plan": plans[ids.index(i)].describe()} if plans else {}),
                }
            )
    return summaries


def _run_wave(
    env: LocomotionEnv,
    policy: Policy,
    writers: list[Any],
    steps: int,
    rngs: list[np.random.Generator],
    progress: Callable[[int], None] | None,
    noise_cycle: int = 0,
    plans: list[HistoryPlan] | None = None,
) -> list[list[float]]:
    """Step all envs of a wave in lockstep; buffer transitions, append per env in blocks.
    `plans`: each env's curriculum (adaptkit.sim.curricula) decides every episode's noise and
    wiring at its start; else the noise schedule (or `noise_cycle`) does."""
    n = env.num_envs
    low, high = env.action_low, env.action_high
    eps = noise_schedule(np.arange(steps), steps)
    cycle_eps = episode_noise(np.arange(noise_cycle), noise_cycle) if noise_cycle else None
    episodes = np.zeros(n, dtype=np.int64)  # finished episodes per env
    buf_obs = np.empty((BUFFER_STEPS, n, env.obs_dim), np.float32)
    buf_act = np.empty((BUFFER_STEPS, n, env.action_dim), np.float32)
    buf_rew = np.empty((BUFFER_STEPS, n), np.float32)
    buf_step = np.empty((BUFFER_STEPS, n), np.int32)
    returns: list[list[float]] = [[] for _ in range(n)]
    obs = env.reset()
    policy.reset(n)
    plan_eps = np.zeros((n, 1))
    plan_mask = np.ones((n, env.action_dim), np.float32)

    def begin(j: int) -> None:  # env j starts its next episode
        plan_eps[j, 0], plan_mask[j] = plans[j].episode(int(episodes[j]), returns[j])

    if plans is not None:
        for j in range(n):
            begin(j)
    fill = 0
    for t in range(steps):
        expert = policy.act(obs, env)
        noise = np.stack([r.uniform(-NOISE_RANGE, NOISE_RANGE, env.action_dim) for r in rngs])
        if plans is not None:
            e, expert = plan_eps, expert * plan_mask
        else:
            e = eps[t] if cycle_eps is None else cycle_eps[episodes % noise_cycle][:, None]
        action = np.clip(e * noise + (1.0 - e) * expert, low, high)
        buf_obs[fill], buf_act[fill], buf_step[fill] = obs, action, env.step_num
        obs, reward, done, info = env.step(action)
        buf_rew[fill] = reward
        fill += 1
        policy.observe(action, reward, done)
        if done.any():
            episodes += done
            for j in np.flatnonzero(done):
                returns[j].append(float(info["episode_return"][j]))
                if plans is not None:
                    begin(j)
        if fill == BUFFER_STEPS or t == steps - 1:
            for j, w in enumerate(writers):
                w.append(
                    buf_obs[:fill, j], buf_act[:fill, j], buf_rew[:fill, j], buf_step[:fill, j]
                )
            fill = 0
        if progress is not None:
            progress(n)
    return returns


def _write_dataset_config_entry(spec: RobotSpec, out_dir: Path, config_path: Path | None) -> None:
    """This task's entry in the dataset config (other tasks kept; `path` relative to it)."""
    config_path = Path(config_path) if config_path else out_dir.parent / DEFAULT_CONFIG_NAME
    entry = spec.dataset_entry()
    entry[spec.task]["path"] = os.path.relpath(
        resolve_path(out_dir), resolve_path(config_path.parent)
    )
    write_dataset_config(config_path, entry)


def _task_metadata(
    spec: RobotSpec,
    histories: int,
    steps: int,
    seed: int,
    summaries: list[dict[str, Any]],
    episode_length: int,
    expert: str | Path | None,
    sim: Sim,
    task: TaskVariant,
    noise_cycle: int = 0,
    curriculum: str | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """The task JSON: what was collected, how, and exactly which files."""
    return {
        "task": spec.task,
        "robot": spec.name,
        "group": spec.group,
        "observation_shape": {"proprio": [spec.obs_dim]},
        "action_dim": spec.action_dim,
        "action_type": "continuous",
        "reward_scale": spec.reward_scale,
        "obs_layout": spec.obs_layout or "custom",
        "obs_names": list(spec.obs_names),
        "collector": {
            "method": "continuous_noise_distillation",
            "expert": str(expert) if expert else "trot",
            "noise_free_fraction": NOISE_FREE_FRACTION,
            "noise_power": NOISE_POWER,
            "noise_range": [-NOISE_RANGE, NOISE_RANGE],
            **({"noise_cycle_episodes": noise_cycle} if noise_cycle else {}),
            **({"curriculum": curriculum} if curriculum else {}),
            **({"trial_threshold": threshold} if threshold is not None else {}),
            "histories": histories,
            "steps_per_history": steps,
            "episode_length": episode_length,
            "seed": seed,
            "sim": sim.value,
            "task": task.name,
            "task_variant": task.describe(),
        },
        "histories": summaries,
    }
