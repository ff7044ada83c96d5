"""evaluate(): roll out a checkpoint or any policy on seeded envs; write CSV, JSON and PNG."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.plot import plot_curves
from adaptkit.evaluate.policies import ModelPolicy, Policy
from adaptkit.evaluate.rollout import EpisodeRecord, RolloutResult, rollout
from adaptkit.robot import RobotSpec

EPISODE_FIELDS = ("episode", "env", "return", "length", "fell", "speed")
Progress = Callable[[int, int], None]


@dataclass
class EvalReport:
    label: str
    robot: str
    summary: dict[str, Any]
    episodes: list[EpisodeRecord]
    files: dict[str, Path] = field(default_factory=dict)
    result: RolloutResult | None = None


def robot_spec(robot: str | RobotSpec) -> RobotSpec:
    if isinstance(robot, RobotSpec):
        return robot
    from adaptkit.plugins import get_registry

    return get_registry().robot(robot)


def _stat(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    arr = np.asarray(values, np.float64)
    return float(arr.mean()), float(arr.std())


def summarize(episodes: Sequence[EpisodeRecord]) -> dict[str, Any]:
    """Mean ± std return per episode index across envs, and the overall figures."""
    per_episode = []
    for k in sorted({e.episode for e in episodes}):
        eps = [e for e in episodes if e.episode == k]
        mean, std = _stat([e.ret for e in eps])
        per_episode.append(
            {
                "episode": k,
                "n": len(eps),
                "mean": mean,
                "std": std,
                "speed": _stat([e.speed for e in eps])[0],
                "falls": sum(e.fell for e in eps),
            }
        )
    mean, std = _stat([e.ret for e in episodes])
    falls = sum(e.fell for e in episodes)
    return {
        "per_episode": per_episode,
        "num_episodes": len(episodes),
        "mean_return": mean,
        "std_return": std,
        "mean_length": _stat([e.length for e in episodes])[0],
        "mean_speed": _stat([e.speed for e in episodes])[0],
        "falls": falls,
        "fall_rate": falls / len(episodes) if episodes else float("nan"),
    }


def _episode_row(e: EpisodeRecord) -> tuple[Any, ...]:
    return (e.episode, e.env, f"{e.ret:.6f}", e.length, int(e.fell), f"{e.speed:.6f}")


def write_episodes_csv(path: Path, runs: dict[str, Sequence[EpisodeRecord]]) -> Path:
    """One row per (env, episode); a leading `label` column when there are several runs."""
    labelled = len(runs) > 1
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow((("label",) if labelled else ()) + EPISODE_FIELDS)
        for label, episodes in runs.items():
            for e in episodes:
                w.writerow(((label,) if labelled else ()) + _episode_row(e))
    return path


def write_json(path: Path, data: Any) -> Path:
    # NaN is not JSON: write null instead (e.g. a policy that finished no episode)
    def clean(x: Any) -> Any:
        if isinstance(x, float) and not np.isfinite(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        return x

    path.write_text(json.dumps(clean(data), indent=2, default=str) + "\n")
    return path


def _make_env(spec: RobotSpec, num_envs: int, seed: int, episode_length: int | None) -> Any:
    from adaptkit.sim.env import LocomotionEnv

    if num_envs < 1:
        raise AdaptkitError(f"--num-envs: must be >= 1, got {num_envs}")
    kwargs = {} if episode_length is None else {"episode_length": int(episode_length)}
    return LocomotionEnv(spec, num_envs, seed=seed, **kwargs)


def evaluate_policy(
    policy: Policy,
    robot: str | RobotSpec,
    num_envs: int = 16,
    episodes: int | None = 3,
    max_steps: int | None = None,
    seed: int = 0,
    episode_length: int | None = None,
    out_dir: str | Path | None = None,
    label: str | None = None,
    progress: Progress | None = None,
    env: Any = None,
    record_actions: bool = False,
) -> EvalReport:
    """Roll out a policy on `num_envs` seeded envs; write episodes.csv, summary.json, curve.png."""
    spec = robot_spec(robot)
    own_env = env is None
    env = _make_env(spec, num_envs, seed, episode_length) if own_env else env
    try:
        result = rollout(
            policy, env, episodes, max_steps, progress=progress, record_actions=record_actions
        )
    finally:
        if own_env:
            env.close()  # frees MuJoCo's rollout thread pool now, not at garbage collection
    label = label or policy.name
    summary = {
        "label": label,
        "robot": spec.name,
        **policy.describe(),
        **summarize(result.episodes),
        **result.timing(),
        "num_envs": result.num_envs,
        "episodes_requested": episodes,
        "max_steps": max_steps,
        "control_steps": result.steps,
        "episode_length": int(getattr(env, "episode_length", 0)) or None,
        "seed": seed,
    }
    report = EvalReport(label, spec.name, summary, result.episodes, result=result)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        report.files = {
            "episodes_csv": write_episodes_csv(out / "episodes.csv", {label: result.episodes}),
            "summary_json": write_json(out / "summary.json", summary),
            "curve_png": plot_curves(
                {label: summary["per_episode"]},
                out / "curve.png",
                f"{spec.name}: {label} (seed {seed}, {result.num_envs} envs)",
            ),
        }
    return report


def evaluate(
    checkpoint: Any,
    robot: str | RobotSpec,
    num_envs: int = 16,
    episodes: int | None = 3,
    max_steps: int | None = None,
    context_len: int | None = None,
    seed: int = 0,
    group: str | None = None,
    out_dir: str | Path | None = None,
    data_dir: str | Path | None = None,
    episode_length: int | None = None,
    label: str = "model",
    progress: Progress | None = None,
    record_actions: bool = False,
    threads: int | None = 1,
) -> EvalReport:
    """In-context evaluation of a checkpoint (path or loaded Checkpoint) on a robot.

    `threads`: torch threads while stepping on CPU (None: unchanged); see ModelPolicy."""
    spec = robot_spec(robot)
    policy = ModelPolicy.from_checkpoint(
        checkpoint,
        spec,
        group=group,
        context_len=context_len,
        data_dir=data_dir,
        name=label,
        threads=threads,
    )
    return evaluate_policy(
        policy,
        spec,
        num_envs=num_envs,
        episodes=episodes,
        max_steps=max_steps,
        seed=seed,
        episode_length=episode_length,
        out_dir=out_dir,
        label=label,
        progress=progress,
        record_actions=record_actions,
    )
