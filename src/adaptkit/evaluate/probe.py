"""The zero-shot probe behind `--init auto`: how the new group of a fine-tune starts.

The base runs zero-shot through every old group whose dims fit the robot (in the layout that
group takes), briefly — PROBE's few envs and one short episode, at a seed neither the robot's
histories nor the held-out comparison use — beside standing still on the same envs. The new
group is warm-started from the best of them when it earns more than standing still, else it
starts fresh. What was measured is returned for the run and the model card to record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from adaptkit.ckpt.checkpoint import Checkpoint
from adaptkit.ckpt.fit import fit_layout
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.evaluate.policies import ModelPolicy
from adaptkit.evaluate.report import evaluate_policy
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec
from adaptkit.sim.policy import StandPolicy

# 8 envs × one 250-step (5 s) episode: seconds on 2 cores; seed 555: collection seeds its
# histories from 0 up, the comparison holds out 777
PROBE = EvalSettings(num_envs=8, episodes=1, episode_length=250, seed=555)


@dataclass(frozen=True)
class ProbeResult:
    groups: dict[str, float]  # old group -> mean return per probe episode, zero-shot
    stand: float  # standing still on the same envs
    best: str | None  # the best group (None: no group fits)
    init: str  # "warm:GROUP" or "fresh"
    why: str  # one line
    seconds: float
    settings: dict[str, Any]

    def record(self) -> dict[str, Any]:
        """What config.json's adaptkit_init and the model card keep of it."""
        out = asdict(self)
        out["asked"] = "auto"
        return out


def fitting_groups(ckpt: Checkpoint, robot: RobotSpec) -> list[str]:
    """The checkpoint's groups a layout of the robot fits (its own group excluded)."""
    meta = ckpt.meta
    layouts = {g: next((t.obs_layout for t in meta.tasks.values() if t.group == g), None)
               for g in meta.groups}  # fmt: skip
    spec = robot.plugin_spec
    return [
        g
        for g, dims in meta.groups.items()
        if g != robot.group and fit_layout(spec, dims, layouts[g]) is not None
    ]


def probe_groups(
    base: Checkpoint | Path | str,
    robot: RobotSpec,
    settings: EvalSettings = PROBE,
    data_dir: Path | str | None = None,
    robots: Sequence[RobotSpec] = (),
    reporter: Reporter = SILENT,
) -> ProbeResult:
    """Zero-shot through every fitting group vs standing still (module docstring). `data_dir`:
    where the robot's histories are (its stats normalise the zero-shot observations, as in the
    comparison); `robots`: known robots, to settle an unrecorded token order."""
    t0 = time.perf_counter()
    settings = replace(settings, data_dir=Path(data_dir) if data_dir is not None else None)
    ckpt = base if isinstance(base, Checkpoint) else load_checkpoint(base)
    groups = fitting_groups(ckpt, robot)
    stand = evaluate_policy(StandPolicy(robot.action_dim), robot, settings, label="stand")
    r_stand = float(stand.summary["mean_return"])
    returns: dict[str, float] = {}
    for group in groups:
        policy = ModelPolicy.from_checkpoint(
            ckpt, robot, replace(settings, group=group), name=f"zero-shot {group}",
            robots=robots, reporter=reporter,
        )  # fmt: skip
        report = evaluate_policy(policy, policy.robot or robot, settings, label=policy.name)
        returns[group] = float(report.summary["mean_return"])
    best = max(returns, key=returns.__getitem__) if returns else None
    shown = ", ".join(f"{g} {r:.2f}" for g, r in returns.items())
    if best is None:
        init, why = "fresh", "no old group's dims fit the robot: the new group starts fresh"
    elif returns[best] > r_stand:
        init = f"warm:{best}"
        why = (
            f"zero-shot probe ({shown}) vs standing still {r_stand:.2f}: the new group starts "
            f"warm from '{best}'"
        )
    else:
        init = "fresh"
        why = (
            f"zero-shot probe ({shown}) earns no more than standing still ({r_stand:.2f}): the "
            "new group starts fresh"
        )
    return ProbeResult(
        groups=returns,
        stand=r_stand,
        best=best,
        init=init,
        why=why,
        seconds=round(time.perf_counter() - t0, 2),
        settings={
            "num_envs": settings.num_envs,
            "episodes": settings.episodes,
            "episode_length": settings.episode_length,
            "seed": settings.seed,
        },
    )
