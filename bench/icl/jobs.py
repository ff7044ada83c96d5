"""Job functions of the in-context research driver (worker processes import this module)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from adaptkit.evaluate.controls import CONTROLS, record_tokens, run_control
from adaptkit.evaluate.score import score_against
from adaptkit.loader import load_checkpoint
from adaptkit.plugins import worker_registry
from adaptkit.study.embodiments import EmbodimentPlan, EmbodimentStudy
from adaptkit.study.run import write_json

PREFIX = 2


def study(out: str, plan: EmbodimentPlan, plugin_files: list[str]) -> EmbodimentStudy:
    return EmbodimentStudy(plan, Path(out), worker_registry(plugin_files), executor="inline")


def probe_controls(
    out: str,
    plan: EmbodimentPlan,
    base: str,
    body: str,
    foreign: str,
    plugin_files: list[str],
    done: str,
) -> None:
    """Every control of adaptkit.evaluate.controls for one base on one body."""
    s = study(out, plan, plugin_files)
    reg = s.registry
    spec, fspec = reg.robot(body), reg.robot(foreign)
    refs = s.refs(spec)
    settings = plan.probe_settings(s.robot_data)
    t0 = time.perf_counter()
    ckpt = load_checkpoint(base)
    L = plan.episode_length
    tokens = record_tokens(ckpt, fspec, settings, steps=PREFIX * L + 1)
    curves: dict[str, Any] = {}
    for name, control in CONTROLS.items():
        run = run_control(ckpt, spec, settings, control, PREFIX, tokens)
        curves[name] = {
            "per_episode_return": run.per_episode_return,
            "per_episode_normalised": [score_against(r, refs) for r in run.per_episode_return],
            "per_episode_falls": run.per_episode_falls,
        }
    write_json(
        Path(done),
        {
            "base": Path(base).name,
            "body": body,
            "foreign": foreign,
            "prefix_episodes": PREFIX,
            "curves": curves,
            "refs": {k: refs[k]["mean_return"] for k in ("demonstrator", "stand")},
            "seconds": round(time.perf_counter() - t0, 2),
        },
    )


def load_probes(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*/*.json"))]
