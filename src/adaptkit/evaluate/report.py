"""evaluate(): roll out a checkpoint or any policy on seeded envs; write CSV, JSON and PNG."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.ckpt.checkpoint import Checkpoint
from adaptkit.evaluate.plan import preflight
from adaptkit.evaluate.plot import plot_curves
from adaptkit.evaluate.policies import ModelPolicy
from adaptkit.evaluate.rollout import EpisodeRecord, RolloutResult, rollout
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.evaluate.video import Recorder, VideoSettings, gif_from_video, open_rollout_renderer
from adaptkit.fileio import atomic_file, file_set, write_json
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.sim.demonstrator import load_demonstrator
from adaptkit.sim.env import LocomotionEnv
from adaptkit.sim.policy import Policy, StandPolicy

EPISODE_FIELDS = ("episode", "env", "return", "length", "fell", "speed")


@dataclass
class EvalReport:
    label: str
    robot: str
    summary: dict[str, Any]
    episodes: list[EpisodeRecord]
    files: dict[str, Path] = field(default_factory=dict)
    result: RolloutResult | None = None


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
        # no episode ended within the step budget: these are the episodes' first steps only
        "partial": any(e.partial for e in episodes),
    }


def _episode_row(e: EpisodeRecord) -> tuple[Any, ...]:
    return (e.episode, e.env, f"{e.ret:.6f}", e.length, int(e.fell), f"{e.speed:.6f}")


# what one `eval --out` writes besides videos, as one set (adaptkit.fileio.file_set)
EVAL_FILES = ("episodes.csv", "summary.json", "curve.png")


def write_episodes_csv(path: Path, runs: dict[str, Sequence[EpisodeRecord]]) -> Path:
    """One row per (env, episode); a leading `label` column when there are several runs."""
    labelled = len(runs) > 1
    with atomic_file(path, "w", "episodes CSV", newline="") as fh:
        w = csv.writer(fh)
        w.writerow((("label",) if labelled else ()) + EPISODE_FIELDS)
        for label, episodes in runs.items():
            for e in episodes:
                w.writerow(((label,) if labelled else ()) + _episode_row(e))
    return path


def evaluate_policy(
    policy: Policy,
    robot: RobotSpec,
    settings: EvalSettings = EvalSettings(),
    out_dir: str | Path | None = None,
    label: str | None = None,
    reporter: Reporter = SILENT,
    env: Any = None,
    record_actions: bool = False,
    recorder: Recorder | None = None,
) -> EvalReport:
    """Roll out a policy on `settings.num_envs` seeded envs (or `env`); with `out_dir`, write
    episodes.csv, summary.json and curve.png there. A `recorder` films the rollout (its MP4 is
    finished here, or removed if the rollout fails)."""
    label = label or policy.name
    own_env = env is None
    if own_env:
        length = settings.episode_length
        kwargs = {} if length is None else {"episode_length": length}
        env = LocomotionEnv(
            robot,
            settings.num_envs,
            seed=settings.seed,
            sim=settings.sim,
            task=settings.task,
            **kwargs,
        )
    try:
        result = rollout(
            policy,
            env,
            settings.episodes,
            settings.max_steps,
            progress=reporter.rolling_out(label),
            record_actions=record_actions,
            on_step=recorder,
        )
        video = recorder.close() if recorder is not None else None
    except BaseException:
        if recorder is not None:
            recorder.abort()
        raise
    finally:
        if own_env:
            env.close()  # frees MuJoCo's rollout thread pool now, not at garbage collection
    summary = {
        "label": label,
        "robot": robot.name,
        **policy.describe(),
        **summarize(result.episodes),
        **result.timing(),
        "num_envs": result.num_envs,
        "episodes_requested": settings.episodes,
        "max_steps": settings.max_steps,
        "control_steps": result.steps,
        "episode_length": int(getattr(env, "episode_length", 0)) or None,
        "seed": settings.seed,
        "sim": str(getattr(env, "sim", settings.sim)),
        "task": getattr(getattr(env, "task", None), "name", settings.task),
    }
    if summary["partial"]:
        summary["note"] = (
            f"no episode ended within {result.steps} control steps (an episode lasts "
            f"{summary['episode_length']}): scored on each env's first {result.steps} steps, "
            "a partial episode"
        )
    if recorder is not None:
        summary["video"] = {
            "file": str(video),
            "frames": recorder.writer.frames,
            "envs": recorder.envs,
            "render_s": round(recorder.seconds_rendering, 2),
        }
    report = EvalReport(label, robot.name, summary, result.episodes, result=result)
    if video is not None:
        report.files["video_mp4"] = video
    if out_dir is not None:
        out = Path(out_dir)
        with file_set(out, "evaluation", replaces=EVAL_FILES) as tmp:  # one set, or the old
            write_episodes_csv(tmp / "episodes.csv", {label: result.episodes})
            write_json(tmp / "summary.json", summary)
            plot_curves(
                {label: summary["per_episode"]},
                tmp / "curve.png",
                f"{robot.name}: {label} (seed {settings.seed}, {result.num_envs} envs)",
            )
        keys = ("episodes_csv", "summary_json", "curve_png")
        report.files = {
            **{k: out / name for k, name in zip(keys, EVAL_FILES, strict=True)},
            **report.files,
        }
    return report


def reference_rows(
    spec: RobotSpec, settings: EvalSettings, expert: str | Path | None = None
) -> dict[str, Any]:
    """The robot's demonstrator (`expert`: another one's file) and standing still under
    `settings`: the two ends of the normalised score (adaptkit.evaluate.score)."""
    return {
        label: evaluate_policy(policy, spec, settings, label=label).summary
        for label, policy in (
            ("demonstrator", load_demonstrator(spec, expert)),
            ("stand", StandPolicy(spec.action_dim)),
        )
    }


def evaluate(
    checkpoint: Checkpoint | str | Path,
    robot: RobotSpec,
    settings: EvalSettings = EvalSettings(),
    out_dir: str | Path | None = None,
    label: str = "model",
    reporter: Reporter = SILENT,
    record_actions: bool = False,
    video: VideoSettings | None = None,
    robots: Sequence[RobotSpec] = (),
) -> EvalReport:
    """In-context evaluation of a checkpoint (path or loaded Checkpoint) on a robot, in the
    observation layout the checkpoint's group takes. Its KV cache is planned first, from
    config.json alone (adaptkit.evaluate.plan). `robots` (e.g. the registry's): their data in
    `settings.data_dir` may settle an unrecorded token order (adaptkit.ckpt.token_order).

    `video` films the first envs into OUT/video.mp4 (and OUT/video.gif): needs `out_dir`.
    """
    preflight(checkpoint, settings)
    recorder = None
    if video is not None:
        renderer = open_rollout_renderer(robot, video, settings, out_dir)
        recorder = Recorder(renderer, video, Path(out_dir) / "video.mp4", label, settings.num_envs)
    policy = ModelPolicy.from_checkpoint(
        checkpoint, robot, settings, name=label, robots=robots, reporter=reporter
    )
    report = evaluate_policy(
        policy,
        policy.robot or robot,
        settings,
        out_dir=out_dir,
        label=label,
        reporter=reporter,
        record_actions=record_actions,
        recorder=recorder,
    )
    if video is not None and video.gif:
        mp4 = report.files["video_mp4"]
        report.files["video_gif"] = gif_from_video(mp4, mp4.with_suffix(".gif"), video)
    return report
