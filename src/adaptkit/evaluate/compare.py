"""compare(): models, the demonstrator and standing still on the same seeded envs; one table."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.checkpoint import Checkpoint
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.plan import preflight
from adaptkit.evaluate.plot import plot_curves
from adaptkit.evaluate.policies import ModelPolicy
from adaptkit.evaluate.report import EvalReport, evaluate_policy, write_episodes_csv, write_json
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.evaluate.video import (
    Recorder,
    VideoSettings,
    file_label,
    gif_from_video,
    open_renderer,
    side_by_side,
)
from adaptkit.fileio import atomic_file
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.sim.demonstrator import load_policy
from adaptkit.sim.policy import Policy, StandPolicy


@dataclass
class CompareReport:
    robot: str
    rows: list[dict[str, Any]]  # one per policy: the table
    reports: dict[str, EvalReport]
    files: dict[str, Path] = field(default_factory=dict)


def _table_row(
    label: str, s: dict[str, Any], demo: float | None, stand: float | None
) -> dict[str, Any]:
    r = s["mean_return"]
    ok = r is not None and np.isfinite(r)
    pct = 100.0 * r / demo if ok and demo else None
    gap = demo - stand if demo is not None and stand is not None else None
    norm = (r - stand) / gap if ok and gap else None
    return {
        "label": label,
        "mean_return": r,
        "std_return": s["std_return"],
        "pct_demonstrator": pct,
        "normalised_score": norm,
        "mean_speed": s["mean_speed"],
        "falls": s["falls"],
        "num_episodes": s["num_episodes"],
        "fall_rate": s["fall_rate"],
        "per_episode_mean": [p["mean"] for p in s["per_episode"]],
        "steps_per_s": s["steps_per_s"],
        "mode": s.get("mode"),
        "stats_source": s.get("stats_source"),
        "group": s.get("group"),
    }


def compare(
    robot: RobotSpec,
    models: Sequence[tuple[str, Checkpoint | str | Path]],
    settings: EvalSettings = EvalSettings(),
    out_dir: str | Path | None = None,
    demonstrator: bool = True,
    stand: bool = True,
    reporter: Reporter = SILENT,
    video: VideoSettings | None = None,
) -> CompareReport:
    """Models (label, checkpoint), the demonstrator and stand-still on the same seeded envs.

    Writes compare.json, compare.csv, episodes.csv (all policies) and compare.png with every
    curve when `out_dir` is given. A checkpoint is loaded only when its turn comes. `video`
    films every policy but standing still (videos/LABEL.mp4) and puts them side by side,
    models first, then the demonstrator (compare.mp4, and compare.gif).
    """
    labels = [label for label, _ in models]
    baselines = ["demonstrator"] * demonstrator + ["stand"] * stand
    if len(set(labels + baselines)) != len(labels) + len(baselines):
        raise AdaptkitError(
            f"--labels: must be unique and differ from the baselines {baselines}, got {labels}"
        )
    renderer = None
    if video is not None:
        if out_dir is None:
            raise AdaptkitError("--video: needs an output folder (--out)")
        renderer = open_renderer(robot, video)  # a missing GL or encoder fails before the work
    for label, ckpt in models:  # a KV cache that cannot fit is refused before any rollout
        preflight(ckpt, settings, label)
    policies: list[tuple[str, Callable[[], Policy]]] = []
    if demonstrator:
        policies.append(("demonstrator", lambda: load_policy(robot, settings.expert)))
    if stand:
        policies.append(("stand", lambda: StandPolicy(robot.action_dim)))
    for label, ckpt in models:
        policies.append(
            (
                label,
                lambda ckpt=ckpt, label=label: ModelPolicy.from_checkpoint(
                    ckpt, robot, settings, name=label
                ),
            )
        )
    reports: dict[str, EvalReport] = {}
    for label, make in policies:
        recorder = None
        if renderer is not None and video is not None and label != "stand":
            path = Path(out_dir) / "videos" / f"{file_label(label)}.mp4"  # type: ignore[arg-type]
            recorder = Recorder(renderer, video, path, label, settings.num_envs)
        # a fresh env with the same seed per policy: identical initial states and resets
        reports[label] = evaluate_policy(
            make(), robot, settings, label=label, reporter=reporter, recorder=recorder
        )
    demo_r = reports["demonstrator"].summary["mean_return"] if demonstrator else None
    stand_r = reports["stand"].summary["mean_return"] if stand else None
    rows = [_table_row(lbl, rep.summary, demo_r, stand_r) for lbl, rep in reports.items()]
    out = CompareReport(robot.name, rows, reports)
    if out_dir is not None:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        payload = {
            "robot": robot.name,
            "seed": settings.seed,
            "num_envs": settings.num_envs,
            "episodes_requested": settings.episodes,
            "max_steps": settings.max_steps,
            "table": rows,
            "runs": {lbl: rep.summary for lbl, rep in reports.items()},
        }
        out.files["compare_json"] = write_json(d / "compare.json", payload)
        out.files["compare_csv"] = _write_table_csv(d / "compare.csv", rows)
        out.files["episodes_csv"] = write_episodes_csv(
            d / "episodes.csv", {lbl: rep.episodes for lbl, rep in reports.items()}
        )
        out.files["compare_png"] = plot_curves(
            {lbl: rep.summary["per_episode"] for lbl, rep in reports.items()},
            d / "compare.png",
            f"{robot.name}: in-context return (seed {settings.seed}, {settings.num_envs} envs)",
        )
        if video is not None:
            order = labels + ["demonstrator"] * demonstrator
            clips = [reports[lbl].files["video_mp4"] for lbl in order]
            for lbl in order:
                out.files[f"video_{file_label(lbl)}"] = reports[lbl].files["video_mp4"]
            mp4 = side_by_side(clips, d / "compare.mp4", video.fps)
            out.files["compare_mp4"] = mp4
            if video.gif:
                out.files["compare_gif"] = gif_from_video(mp4, d / "compare.gif", video)
    return out


def _write_table_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    cols = [k for k in rows[0] if k != "per_episode_mean"] if rows else []
    with atomic_file(path, "w", "comparison CSV", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if r[c] is None else r[c] for c in cols])
    return path
