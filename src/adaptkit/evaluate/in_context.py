"""Every in-context control (adaptkit.evaluate.controls) of one model on one body, and what
the gain at the first scored episode is owed to: the figures `adaptkit eval --in-context`, the
embodiment study's probes and the README's in-context line are made of."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptkit.ckpt.checkpoint import Checkpoint
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.controls import (
    CONTROLS,
    Control,
    ControlledPolicy,
    Tokens,
    get_control,
)
from adaptkit.evaluate.policies import ModelPolicy
from adaptkit.evaluate.score import score_against
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.fileio import file_set, write_json
from adaptkit.robot import RobotSpec
from adaptkit.sim.policy import Policy, StandPolicy


@dataclass
class ControlRun:
    """One control's per-episode figures (prefix episodes dropped: None)."""

    control: str
    per_episode_return: list[float | None]
    per_episode_falls: list[int | None]
    episodes_scored: int
    group: str  # the model's group the body ran through
    stats_source: str  # where the observation/action normalisation came from

    def curve(self, refs: Mapping[str, Any]) -> dict[str, Any]:
        """The per-episode return, its normalised score against `refs` (the body's demonstrator
        and standing still) and falls: one control's entry of a controls result."""
        return {
            "per_episode_return": self.per_episode_return,
            "per_episode_normalised": [score_against(r, refs) for r in self.per_episode_return],
            "per_episode_falls": self.per_episode_falls,
        }


def _policy(checkpoint: Any, spec: RobotSpec, settings: EvalSettings, label: str) -> ModelPolicy:
    return ModelPolicy.from_checkpoint(checkpoint, spec, settings, name=label)


def record_tokens(
    checkpoint: Any,
    spec: RobotSpec,
    settings: EvalSettings,
    steps: int,
    teacher: Policy | None = None,
) -> Tokens:
    """The tokens the model reads over the first `steps` steps of a run on `spec`: its own
    chained run, or — `teacher` — every step executed by that policy (standing still, the
    body's demonstrator, ...)."""
    from adaptkit.evaluate.report import evaluate_policy

    model = _policy(checkpoint, spec, settings, "foreign")
    if teacher is None:
        policy = ControlledPolicy(model, CONTROLS["chained"], record=True)
    else:  # the whole run is a prefix the teacher plays
        policy = ControlledPolicy(model, CONTROLS["neutral"], steps + 1, record=True,
                                  teacher=teacher)  # fmt: skip
    run = dataclasses.replace(settings, episodes=None, max_steps=steps, reset_context=False)
    evaluate_policy(policy, model.robot or spec, run, label="foreign")
    return policy.tokens()


def run_control(
    checkpoint: Any,
    spec: RobotSpec,
    settings: EvalSettings,
    control: Control,
    prefix_episodes: int = 2,
    foreign: Tokens | None = None,
) -> ControlRun:
    """`settings.episodes` episodes of every env under `control` (its prefix episodes among
    them, not scored)."""
    from adaptkit.evaluate.report import evaluate_policy

    if settings.episodes is None:
        raise AdaptkitError("controls: give a number of episodes (--episodes)")
    model = _policy(checkpoint, spec, settings, control.name)
    policy = ControlledPolicy(model, control, prefix_episodes, foreign)
    s = evaluate_policy(policy, model.robot or spec, settings, label=control.name).summary
    n = settings.episodes
    rets: list[float | None] = [None] * n
    falls: list[int | None] = [None] * n
    for row in s["per_episode"]:
        k = row["episode"]
        if policy.prefix_episodes <= k < n:
            rets[k], falls[k] = row["mean"], row["falls"]
    return ControlRun(control.name, rets, falls, sum(r is not None for r in rets), model.group,
                      model.res.stats_source)  # fmt: skip


def foreign_body(spec: RobotSpec, candidates: Sequence[RobotSpec]) -> RobotSpec:
    """The body whose context the `foreign` control reads: the first candidate of the other
    joint-axis convention (what a body shows standing tells the two apart), else the first
    other one."""
    others = [c for c in candidates if c.name != spec.name and c.action_dim == spec.action_dim]
    if not others:
        raise AdaptkitError(f"control 'foreign': no other robot for {spec.name!r} to read")
    sign = _thigh_sign(spec)
    return next((c for c in others if _thigh_sign(c) != sign), others[0])


def _thigh_sign(spec: RobotSpec) -> float:
    signs = spec.joint_signs
    return float(signs[1]) if len(signs) > 1 else 1.0


def run_controls(
    checkpoint: Any,
    spec: RobotSpec,
    settings: EvalSettings,
    refs: Mapping[str, Any],
    foreign: RobotSpec,
    prefix_episodes: int = 2,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every control (or `names`) of one model on one body under the same settings; per
    control the per-episode return, falls and normalised score (against `refs`: the body's
    demonstrator and standing still), and the decomposition of the first scored episode.
    `foreign`: the body whose standing the `foreign` control reads."""

    if settings.episodes is None or settings.episodes <= prefix_episodes:
        raise AdaptkitError(
            f"controls: {prefix_episodes} prefix episodes need --episodes above {prefix_episodes}"
        )
    chosen = [get_control(n) for n in names] if names is not None else list(CONTROLS.values())
    tokens = None
    if any(c.prefix == "foreign" for c in chosen):
        steps = prefix_episodes * int(settings.episode_length or 1000) + 1
        tokens = record_tokens(
            checkpoint, foreign, settings, steps, StandPolicy(foreign.action_dim)
        )
    curves: dict[str, Any] = {}
    group = stats = None
    for control in chosen:
        run = run_control(checkpoint, spec, settings, control, prefix_episodes, tokens)
        group, stats = run.group, run.stats_source
        curves[control.name] = run.curve(refs)
    return {
        "body": spec.name,
        "group": group,
        # zero-shot reads the body with its own data's stats; without data, its group's
        # average, under which a base may not move at all (docs/in_context.md)
        "stats_source": stats,
        "foreign": foreign.name,
        "prefix_episodes": prefix_episodes,
        "curves": curves,
        "decomposition": decompose(curves, prefix_episodes),
    }


def _at(curves: Mapping[str, Any], control: str, k: int) -> float | None:
    c = curves.get(control)
    if c is None:
        return None
    v = c["per_episode_normalised"]
    return v[k] if k < len(v) else None


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def decompose(curves: Mapping[str, Any], prefix_episodes: int = 2) -> dict[str, float | None]:
    """What the gain at the first scored episode (index `prefix_episodes`) is owed to, in
    normalised-score units (module docstring): the four telescoping parts, identification
    against another body, and the reward-driven share of the gain over episode 1."""
    k = prefix_episodes
    at = lambda c, i=k: _at(curves, c, i)  # noqa: E731
    gain = lambda c: _minus(at(c), at(c, 0))  # noqa: E731
    return {
        "context": _minus(at("chained"), at("reset")),
        "position": _minus(at("blank"), at("reset")),
        "standing": _minus(at("neutral"), at("blank")),
        "own_history": _minus(at("rewards-zeroed"), at("neutral")),
        "rewards": _minus(at("chained"), at("rewards-zeroed")),
        "identification": _minus(at("neutral"), at("foreign")),
        "gain_chained": gain("chained"),
        "gain_reward_driven": _minus(gain("chained"), gain("rewards-zeroed")),
        "gain_reward_driven_shuffled": _minus(gain("chained"), gain("rewards-shuffled")),
    }


def evaluate_controls(
    checkpoint: Any,
    spec: RobotSpec,
    settings: EvalSettings,
    robots: Sequence[RobotSpec],
    out_dir: Path | None = None,
    prefix_episodes: int = 2,
) -> dict[str, Any]:
    """`run_controls` against the body's own demonstrator and standing still under the same
    settings (the normalised score's two ends); `robots` are the candidates for the foreign
    body. With `out_dir`: controls.json and controls.png there, as one set."""
    from adaptkit.ckpt.load import load_checkpoint
    from adaptkit.evaluate.report import reference_rows

    if not isinstance(checkpoint, Checkpoint):
        checkpoint = load_checkpoint(checkpoint, base=settings.base, device=settings.torch_device())
    refs = reference_rows(spec, dataclasses.replace(settings, reset_context=False), settings.expert)
    result = run_controls(
        checkpoint, spec, settings, refs, foreign_body(spec, robots), prefix_episodes
    )
    result["refs"] = {k: v["mean_return"] for k, v in refs.items()}
    result["settings"] = settings.as_dict()
    if out_dir is not None:
        out = Path(out_dir)
        with file_set(out, "controls", replaces=CONTROL_FILES) as tmp:
            write_json(tmp / CONTROL_FILES[0], result, "controls")
            plot_controls(result, tmp / CONTROL_FILES[1], f"{spec.name}: in-context controls")
        result["files"] = [str(out / f) for f in CONTROL_FILES]
    return result


CONTROL_FILES = ("controls.json", "controls.png")


def plot_controls(result: Mapping[str, Any], path: Path, title: str) -> None:
    """The per-episode normalised score of every control, one line each."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for i, (name, c) in enumerate(result["curves"].items()):
        pts = [(k + 1, v) for k, v in enumerate(c["per_episode_normalised"]) if v is not None]
        if pts:
            x, y = zip(*pts, strict=True)
            ax.plot(x, y, "o-" if len(pts) > 1 else "o", color=f"C{i}", label=name, ms=4)
    ax.axhline(0, color="grey", lw=0.5)
    ax.axhline(1, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("episode (chained in one context)")
    ax.set_ylabel("normalised score (stand 0, demonstrator 1)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
