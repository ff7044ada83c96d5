"""Job functions of the in-context research driver (worker processes import this module)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from adaptkit.ckpt.load import load_checkpoint
from adaptkit.evaluate.controls import CONTROLS
from adaptkit.evaluate.in_context import record_tokens, run_control
from adaptkit.fileio import write_json
from adaptkit.plugins import worker_registry
from adaptkit.sim.demonstrator import load_demonstrator
from adaptkit.sim.policy import StandPolicy
from adaptkit.study.embodiments import EmbodimentStudy
from adaptkit.study.embodiments_plan import EmbodimentPlan

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
    foreign_model: str | None = None,
) -> None:
    """Every control of adaptkit.evaluate.controls for one base on one body; `foreign` reads
    `foreign_model` (a body of the other joint convention) standing. Extra foreign contexts:
    `foreign-demo` the demonstrator of `foreign` (same convention), `foreign-kin-stand` that
    body standing, `foreign-model` the model's own chained run on `foreign_model`."""
    s = study(out, plan, plugin_files)
    reg = s.registry
    spec = reg.robot(body)
    refs = s.refs(spec)
    settings = plan.probe_settings(s.robot_data)
    t0 = time.perf_counter()
    ckpt = load_checkpoint(base)
    L = plan.episode_length
    steps = PREFIX * L + 1
    other = reg.robot(foreign_model or foreign)  # a body of the other joint convention
    kin = reg.robot(foreign)  # another body of the same convention
    stand = record_tokens(ckpt, other, settings, steps, StandPolicy(other.action_dim))
    runs = [(name, c, stand) for name, c in CONTROLS.items()]
    demo = record_tokens(ckpt, kin, settings, steps, load_demonstrator(kin, None))
    runs.append(("foreign-demo", CONTROLS["foreign"], demo))
    kin_stand = record_tokens(ckpt, kin, settings, steps, StandPolicy(kin.action_dim))
    runs.append(("foreign-kin-stand", CONTROLS["foreign"], kin_stand))
    own = record_tokens(ckpt, other, settings, steps)
    runs.append(("foreign-model", CONTROLS["foreign"], own))
    curves: dict[str, Any] = {}
    for name, control, tokens in runs:
        run = run_control(ckpt, spec, settings, control, PREFIX, tokens)
        curves[name] = run.curve(refs)
    write_json(
        Path(done),
        {
            "base": Path(base).name,
            "body": body,
            "foreign": foreign,
            "foreign_model": foreign_model,
            "prefix_episodes": PREFIX,
            "curves": curves,
            "refs": {k: refs[k]["mean_return"] for k in ("demonstrator", "stand")},
            "seconds": round(time.perf_counter() - t0, 2),
        },
    )


def load_probes(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*/*.json"))]
