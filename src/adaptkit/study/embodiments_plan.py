"""The embodiment-scaling study's plan: bases of K procedural bodies on two curves, the probes,
and the leave-one-out study's adaptation cells on each base (adaptkit.study.embodiments runs it),
with its presets. Light: the CLI's --help lists the presets."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptkit.adapt.modes import mode_names
from adaptkit.bootstrap.recipe import TINY_MODEL, Recipe
from adaptkit.errors import AdaptkitError
from adaptkit.study.plan import ROBOTS, SIZES, Preset, StudyPlan
from adaptkit.tasks import get_task

if TYPE_CHECKING:
    from adaptkit.evaluate import EvalSettings

CURVES = ("budget", "per_body")
# the demonstrator search per body (adaptkit.sim.family_gait.SearchBudget's settings): its
# default, or a toy one for CI-sized runs
GAIT_SEARCHES: dict[str, dict[str, Any]] = {
    "default": {},
    "quick": {"rounds": 1, "batch": 6, "seconds": 2.0, "check_envs": 2, "check_seconds": 2.0},
}


@dataclass(frozen=True)
class EmbodimentPlan:
    preset: str = "embodiments"
    family: str = "quadfam"
    ks: tuple[int, ...] = (3, 10, 30, 100)
    curves: tuple[str, ...] = CURVES
    base_seeds: tuple[int, ...] = (0, 1, 2)
    # the largest K's seeds (None: base_seeds): the in-context goal needs three there
    top_seeds: tuple[int, ...] | None = None
    held_out_bodies: int = 3  # family members after the largest K's, seen by no base
    gait_search: str = "default"  # "quick": a toy search (the ci preset), cached apart
    # -- the family's data: one noise cycle of `noise_cycle` short episodes per history, so a
    # window of the model's context holds whole episodes that improve on each other ----------
    task: str = "walk"
    episode_length: int = 86
    noise_cycle: int = 3
    # a curriculum (adaptkit.sim.curricula) plays each history's noise_cycle episodes instead
    curriculum: str | None = None
    window_stride: int | None = None  # pretraining windows start every this many steps
    # the family tasks' reward_scale (None: the plugin's, 1): per-step rewards are ≈ 0.01, so
    # at scale 1 a reward token barely moves its embedding
    reward_scale: float | None = None
    histories_per_body: int = 16  # at the largest K; the per_body curve's at every K
    collect_envs: int = 16
    # -- pretraining: the same optimiser steps at every K on the budget curve ---------------
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides ({}: default)
    pretrain_steps: int = 1000
    pretrain_batch: int = 32
    pretrain_lr: float = 3e-4
    precision: str = "auto"
    # -- probes: zero-shot and the in-context curve ------------------------------------------
    probe_envs: int = 8
    icl_episodes: int = 6
    eval_seed: int = 777  # never used to collect training data
    # -- adaptation of the built-in robots on each budget base (the leave-one-out cells) ------
    robots: tuple[str, ...] = ROBOTS
    sizes: tuple[str, ...] = ("1ep", "10ep")
    modes: tuple[str, ...] = field(default_factory=mode_names)
    seeds: tuple[int, ...] = (0, 1, 2)
    robot_episodes: int = 30  # one history of the SPEC schedule: its last episodes are the best
    budget_steps: int = 40
    batch_size: int = 16
    lr: float = 1e-3
    lora_rank: int = 4
    eval_envs: int = 8
    eval_episodes: int = 3
    threads: int = 1

    def __post_init__(self) -> None:
        for name, values, allowed in (
            ("--curves", self.curves, CURVES),
            ("--robots", self.robots, ROBOTS),
            ("--sizes", self.sizes, SIZES),
            ("--modes", self.modes, mode_names()),
        ):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise AdaptkitError(f"{name}: {bad or 'none'} not among {', '.join(allowed)}")
        if not self.ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1
                              for k in self.ks):  # fmt: skip
            raise AdaptkitError(f"--ks: give body counts >= 1, got {list(self.ks)}")
        for name in ("episode_length", "noise_cycle", "histories_per_body", "pretrain_steps",
                     "pretrain_batch", "probe_envs", "icl_episodes", "robot_episodes",
                     "budget_steps", "batch_size", "eval_envs", "eval_episodes", "threads",
                     "collect_envs"):  # fmt: skip
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise AdaptkitError(f"embodiment plan: {name} must be an integer >= 1, got {v!r}")
        if self.gait_search not in GAIT_SEARCHES:
            raise AdaptkitError(f"gait_search: expected one of {', '.join(GAIT_SEARCHES)}")
        if self.icl_episodes < 3:
            raise AdaptkitError("embodiment plan: icl_episodes must be >= 3 (episode 3 vs 1)")
        if self.history_steps <= self.context_len():
            raise AdaptkitError(
                f"embodiment plan: a history ({self.noise_cycle} × {self.episode_length} steps) "
                f"must be longer than the model's context ({self.context_len()})"
            )
        for name, values in (("--ks", self.ks), ("base_seeds", self.base_seeds),
                             ("top_seeds", self.top_seeds or self.base_seeds)):  # fmt: skip
            if not values or len(set(values)) != len(values):
                raise AdaptkitError(f"{name}: give distinct values, got {list(values)}")
        get_task(self.task)
        self.cell_plan(self.modes)  # the adaptation cells' own checks, before hours of work

    # -- presets and options -------------------------------------------------------------------
    @classmethod
    def preset_named(cls, name: str) -> EmbodimentPlan:
        """The plan of a preset of this kind (PRESETS)."""
        if name not in PRESETS:
            raise AdaptkitError(f"--preset: expected one of {', '.join(PRESETS)}, got {name!r}")
        return PRESETS[name].build()

    def with_options(self, options: Mapping[str, Any]) -> EmbodimentPlan:
        """The plan with the study command's options that were given (None: not given):
        robots, sizes, modes, seeds, budget_steps, ks, task (the in-context options are the
        leave-one-out study's: adaptkit.study.kinds refuses them)."""
        keys = ("robots", "sizes", "modes", "seeds", "budget_steps", "ks", "task")
        return self.replace(**{k: options[k] for k in keys if options.get(k) is not None})

    def replace(self, **changes: Any) -> EmbodimentPlan:
        return dataclasses.replace(self, **changes)

    # -- derived ------------------------------------------------------------------------------
    @property
    def history_steps(self) -> int:
        return self.noise_cycle * self.episode_length

    def context_len(self) -> int:
        from adaptkit.ckpt.config_file import read_model_config  # torch: not for --help

        return read_model_config(self.model).context_len

    def histories_for(self, k: int, curve: str) -> int:
        """Histories per body of base K: the same total data at every K on the budget curve."""
        if curve == "per_body":
            return self.histories_per_body
        return max(1, round(self.histories_per_body * max(self.ks) / k))

    def pretrain_steps_for(self, k: int, curve: str) -> int:
        if curve == "per_body":
            return max(1, round(self.pretrain_steps * k / max(self.ks)))
        return self.pretrain_steps

    def bases(self) -> list[tuple[int, str, int]]:
        """(K, curve, seed) of every base to build; the per_body base at the largest K is the
        budget one (same data, same steps)."""
        top = max(self.ks)
        first = self.base_seeds[0]
        every = [
            (k, c, s)
            for c in self.curves
            for k in sorted(self.ks)
            for s in (self.top_seeds or self.base_seeds if k == top else self.base_seeds)
            if not (c == "per_body" and k == top and "budget" in self.curves)
        ]
        # the first seed of every base before the others: results for each K come early
        return sorted(every, key=lambda b: (b[2] != first, CURVES.index(b[1]), b[0]))

    def family_recipe(self, histories: int) -> Recipe:
        return Recipe(
            histories=histories,
            steps_per_history=self.history_steps,
            collect_envs=self.collect_envs,
            episode_length=self.episode_length,
            noise_cycle=self.noise_cycle,
            task=self.task,
            curriculum=self.curriculum,
        )

    def robot_recipe(self) -> Recipe:
        """The built-in robots' data and the adaptation cells' evaluation."""
        return Recipe(
            histories=1,
            steps_per_history=self.robot_episodes * self.episode_length,
            collect_envs=4,
            precision=self.precision,
            model=dict(self.model),
            eval_envs=self.eval_envs,
            eval_episodes=self.eval_episodes,
            eval_seed=self.eval_seed,
            episode_length=self.episode_length,
            task=self.task,
        )

    def probe_settings(self, data_dir: Path, reset: bool = False) -> EvalSettings:
        from adaptkit.evaluate import EvalSettings  # torch: not for --help

        return EvalSettings(
            num_envs=self.probe_envs,
            episodes=self.icl_episodes,
            seed=self.eval_seed,
            episode_length=self.episode_length,
            task=self.task,
            data_dir=data_dir,
            device="cpu",
            threads=self.threads,
            reset_context=reset,
        )

    def cell_plan(self, modes: Sequence[str]) -> StudyPlan:
        return StudyPlan(
            preset=self.preset,
            targets=self.robots,
            pool=ROBOTS,
            sizes=self.sizes,
            modes=tuple(modes),
            seeds=self.seeds,
            recipe=self.robot_recipe(),
            budget_steps=self.budget_steps,
            batch_size=self.batch_size,
            lr=self.lr,
            lora_rank=self.lora_rank,
            threads=self.threads,
            icl=False,
        )

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def data_key(self) -> dict[str, Any]:
        """What the folder's data, bases and results depend on (the axes may grow)."""
        axes = ("preset", "ks", "curves", "base_seeds", "top_seeds", "robots", "sizes", "modes",
                "seeds", "threads")  # fmt: skip
        # the largest K sets every base's data (histories_for) and which bodies are held out
        # fields added later count only when set (a folder made before them stays valid)
        later = ("curriculum", "window_stride", "reward_scale")
        d = {k: v for k, v in self.as_dict().items() if k not in axes}
        d = {k: v for k, v in d.items() if not (k in later and v is None)}
        return {**d, "k_max": max(self.ks)}


def _small() -> EmbodimentPlan:
    # the smallest version that still answers the questions: every K, one base seed, the
    # goal's data size (1 episode), three adaptation seeds
    return EmbodimentPlan(preset="embodiments-small", base_seeds=(0,), top_seeds=(0, 1, 2),
                          sizes=("1ep",), histories_per_body=8, pretrain_steps=600)  # fmt: skip


def _toy() -> EmbodimentPlan:
    return EmbodimentPlan(
        preset="embodiments-ci",
        ks=(1, 2),
        base_seeds=(0,),
        held_out_bodies=1,
        gait_search="quick",
        episode_length=20,
        noise_cycle=2,
        histories_per_body=2,
        collect_envs=2,
        model=dict(TINY_MODEL),
        pretrain_steps=3,
        pretrain_batch=2,
        precision="fp32",
        probe_envs=2,
        icl_episodes=3,
        robots=("minicheetah",),
        sizes=("1ep",),
        modes=("frozen", "scratch"),
        seeds=(0,),
        robot_episodes=3,
        budget_steps=2,
        batch_size=2,
        eval_envs=2,
        eval_episodes=2,
    )


# the embodiment study's presets (adaptkit.study.presets: every kind's)
PRESETS: dict[str, Preset] = {
    "embodiments": Preset(EmbodimentPlan, "bases of K procedural bodies (docs/family.md)"),
    "embodiments-small": Preset(_small, "every K, one base seed"),
    "embodiments-ci": Preset(_toy, "toy sizes, seconds"),
}
