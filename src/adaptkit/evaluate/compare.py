"""compare(): models, the demonstrator and standing still on the same seeded envs; one table.

A model with no group a layout of the robot fits (a zero-shot row that cannot exist, e.g. a
45-dim Mini Cheetah against a 33-dim base) is a row marked not applicable, with the reason; the
comparison of the others goes on."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.ckpt.checkpoint import Checkpoint
from adaptkit.ckpt.fit import NoFittingGroup
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.plan import preflight
from adaptkit.evaluate.plot import plot_curves
from adaptkit.evaluate.policies import ModelPolicy
from adaptkit.evaluate.report import EvalReport, evaluate_policy, write_episodes_csv
from adaptkit.evaluate.score import normalised_score
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.evaluate.video import (
    Recorder,
    VideoSettings,
    file_label,
    gif_from_video,
    open_rollout_renderer,
    side_by_side,
)
from adaptkit.fileio import atomic_file, file_set, write_json
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.sim.demonstrator import load_demonstrator
from adaptkit.sim.policy import Policy, StandPolicy


@dataclass
class CompareReport:
    robot: str
    rows: list[dict[str, Any]]  # one per policy: the table
    reports: dict[str, EvalReport]  # the policies that ran
    files: dict[str, Path] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)  # label -> why it did not run


def _table_row(
    label: str, s: dict[str, Any], demo: float | None, stand: float | None
) -> dict[str, Any]:
    r = s["mean_return"]
    ok = r is not None and np.isfinite(r)
    pct = 100.0 * r / demo if ok and demo else None
    return {
        "label": label,
        "mean_return": r,
        "std_return": s.get("std_return"),
        "pct_demonstrator": pct,
        "normalised_score": normalised_score(r, demo, stand),
        "mean_speed": s.get("mean_speed"),
        "falls": s.get("falls"),
        "num_episodes": s.get("num_episodes"),
        "fall_rate": s.get("fall_rate"),
        "per_episode_mean": [p["mean"] for p in s["per_episode"]],
        "steps_per_s": s.get("steps_per_s"),
        "mode": s.get("mode"),
        "stats_source": s.get("stats_source"),
        "group": s.get("group"),
        "obs_layout": s.get("obs_layout"),
        "token_order": s.get("token_order"),
        "note": None,
    }


def _not_applicable_row(label: str, reason: str) -> dict[str, Any]:
    row = _table_row(label, {"mean_return": None, "per_episode": []}, None, None)
    row.update(mode="not applicable", note=reason, per_episode_mean=[])
    return row


def compare(
    robot: RobotSpec,
    models: Sequence[tuple[str, Checkpoint | str | Path]],
    settings: EvalSettings = EvalSettings(),
    out_dir: str | Path | None = None,
    demonstrator: bool = True,
    stand: bool = True,
    reporter: Reporter = SILENT,
    video: VideoSettings | None = None,
    robots: Sequence[RobotSpec] = (),
) -> CompareReport:
    """Models (label, checkpoint), the demonstrator and stand-still on the same seeded envs.

    Each model runs in the observation layout its group takes (the physics, seeds and returns
    are the same in every layout). A model no group of which fits the robot is a row marked
    not applicable (reported as a note). Writes compare.json, compare.csv, episodes.csv (all
    policies) and compare.png with every curve when `out_dir` is given. A checkpoint is loaded
    only when its turn comes. `robots`: see `evaluate`. `video` films every policy but standing
    still (videos/LABEL.mp4) and puts them side by side, models first, then the demonstrator
    (compare.mp4, and compare.gif).
    """
    labels = [label for label, _ in models]
    baselines = ["demonstrator"] * demonstrator + ["stand"] * stand
    if len(set(labels + baselines)) != len(labels) + len(baselines):
        raise AdaptkitError(
            f"--labels: must be unique and differ from the baselines {baselines}, got {labels}"
        )
    renderer = None
    if video is not None:
        renderer = open_rollout_renderer(robot, video, settings, out_dir)
    for label, ckpt in models:  # a KV cache that cannot fit is refused before any rollout
        preflight(ckpt, settings, label)
    policies: list[tuple[str, Callable[[], tuple[Policy, RobotSpec]]]] = []
    if demonstrator:
        policies.append(
            ("demonstrator", lambda: (load_demonstrator(robot, settings.expert), robot))
        )
    if stand:
        policies.append(("stand", lambda: (StandPolicy(robot.action_dim), robot)))

    def model(label: str, ckpt: Checkpoint | str | Path) -> tuple[Policy, RobotSpec]:
        policy = ModelPolicy.from_checkpoint(
            ckpt, robot, settings, name=label, robots=robots, reporter=reporter
        )
        return policy, policy.robot or robot

    for label, ckpt in models:
        policies.append((label, lambda ckpt=ckpt, label=label: model(label, ckpt)))
    reports: dict[str, EvalReport] = {}
    skipped: dict[str, str] = {}
    for label, make in policies:
        try:
            policy, spec = make()
        except NoFittingGroup as exc:
            skipped[label] = f"zero-shot not applicable: {exc}"
            reporter.note(f"{label}: {skipped[label]}")
            continue
        recorder = None
        if renderer is not None and video is not None and label != "stand":
            path = Path(out_dir) / "videos" / f"{file_label(label)}.mp4"  # type: ignore[arg-type]
            recorder = Recorder(renderer, video, path, label, settings.num_envs)
        # a fresh env with the same seed per policy: identical initial states and resets
        reports[label] = evaluate_policy(
            policy, spec, settings, label=label, reporter=reporter, recorder=recorder
        )
    demo_r = reports["demonstrator"].summary["mean_return"] if demonstrator else None
    stand_r = reports["stand"].summary["mean_return"] if stand else None
    rows = [
        _not_applicable_row(label, skipped[label])
        if label in skipped
        else _table_row(label, reports[label].summary, demo_r, stand_r)
        for label, _ in policies
    ]
    out = CompareReport(robot.name, rows, reports, not_applicable=skipped)
    if out_dir is not None:
        d = Path(out_dir)
        payload = {
            "robot": robot.name,
            "seed": settings.seed,
            "num_envs": settings.num_envs,
            "episodes_requested": settings.episodes,
            "max_steps": settings.max_steps,
            "table": rows,
            "runs": {lbl: rep.summary for lbl, rep in reports.items()},
            "not_applicable": skipped,
        }
        with file_set(d, "comparison", replaces=COMPARE_FILES) as tmp:  # one set, or the old
            write_json(tmp / "compare.json", payload)
            _write_table_csv(tmp / "compare.csv", rows)
            write_episodes_csv(
                tmp / "episodes.csv", {lbl: rep.episodes for lbl, rep in reports.items()}
            )
            plot_curves(
                {lbl: rep.summary["per_episode"] for lbl, rep in reports.items()},
                tmp / "compare.png",
                f"{robot.name}: in-context return (seed {settings.seed}, {settings.num_envs} envs)",
            )
        for key, name in zip(("compare_json", "compare_csv", "episodes_csv", "compare_png"),
                             COMPARE_FILES, strict=True):  # fmt: skip
            out.files[key] = d / name
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


# what one `compare --out` writes besides videos, as one set (adaptkit.fileio.file_set)
COMPARE_FILES = ("compare.json", "compare.csv", "episodes.csv", "compare.png")


def _write_table_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    cols = [k for k in rows[0] if k != "per_episode_mean"] if rows else []
    with atomic_file(path, "w", "comparison CSV", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            w.writerow(["" if r[c] is None else r[c] for c in cols])
    return path
