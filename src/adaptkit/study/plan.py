"""What a study runs: the axes (robots left out, data sizes, adaptation modes, seeds), the data
and base recipe, the training budget per cell and the held-out evaluation, with presets.

A cell is one (robot, size, mode, seed): a base pretrained without the robot (every mode but
`scratch` starts from it), adapted on a subset of the robot's learning histories for the same
number of optimiser steps, then evaluated on the same held-out env seed as every other cell.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from adaptkit.adapt.modes import mode_names
from adaptkit.bootstrap.recipe import TINY_MODEL, Recipe
from adaptkit.errors import AdaptkitError
from adaptkit.tasks import get_task

if TYPE_CHECKING:
    from adaptkit.evaluate import EvalSettings

# data sizes: subsets of the robot's learning histories, from the low-noise end of history 0
SIZES = ("1ep", "10ep", "1hist", "all")
ROBOTS = ("go1", "go2", "a1", "minicheetah")
# The readme preset's data, bases and evaluation: 4 histories × 10k steps per robot of short
# (250-step) episodes, so a 256-step context sees about one; bases pretrained 2 epochs at
# batch 32; 16 envs × 3 episodes at env seed 777, which no training data used.
STUDY_RECIPE = Recipe(
    histories=4,
    steps_per_history=10_000,
    episode_length=250,
    collect_envs=4,
    collect_seed=0,
    pretrain_epochs=2,
    pretrain_lr=3e-4,
    batch_size=32,
    precision="auto",
    eval_envs=16,
    eval_episodes=3,
    eval_seed=777,
)


@dataclass(frozen=True)
class Cell:
    robot: str
    size: str
    mode: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.robot}-{self.size}-{self.mode}-s{self.seed}"


@dataclass(frozen=True)
class StudyPlan:
    """Every setting of a study. `targets` are the robots adapted to (each left out of its
    base); `pool` the robots that exist (a target's base is the pool without it)."""

    preset: str = "readme"
    targets: tuple[str, ...] = ROBOTS
    pool: tuple[str, ...] = ROBOTS
    sizes: tuple[str, ...] = ("10ep", "1hist")
    # adaptation modes (adaptkit.adapt.modes; default: every mode of the table)
    modes: tuple[str, ...] = field(default_factory=mode_names)
    seeds: tuple[int, ...] = (0, 1)
    # -- data, bases and evaluation: the bootstrap recipe (its base_robots is set per target, the
    # pool without it; its eval_* fields and episode_length are the held-out evaluation's) -------
    recipe: Recipe = field(default_factory=lambda: STUDY_RECIPE)
    # -- adaptation: the same optimiser steps, batch and lr for every mode ---------------------
    budget_steps: int = 40
    batch_size: int = 16
    lr: float = 1e-3
    lora_rank: int = 4
    threads: int = 1  # torch threads (1: on a busy 2-core machine two fight; measured 7× slower)
    # -- in-context learning: a base whose context spans several episodes ----------------------
    icl: bool = True
    icl_robot: str | None = None  # None: the first target
    icl_context: int = 768  # ≥ 3 episodes of episode_length
    icl_size: str = "1hist"  # the data the in-context stage adapts on
    icl_episodes: int = 6

    def __post_init__(self) -> None:
        for name, values, allowed in (
            ("--robots", self.targets, self.pool),
            ("--sizes", self.sizes, SIZES),
            ("--modes", self.modes, mode_names()),
        ):
            if not values:
                raise AdaptkitError(f"{name}: give at least one")
            bad = [v for v in values if v not in allowed]
            if bad:
                raise AdaptkitError(f"{name}: {bad} not among {', '.join(allowed)}")
            if len(set(values)) != len(values):
                raise AdaptkitError(f"{name}: repeated values in {list(values)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise AdaptkitError(f"--seeds: give distinct integers, got {list(self.seeds)}")
        if any(not 0 <= s <= 2**32 - 1 for s in self.seeds):
            raise AdaptkitError(f"--seeds: each must be in 0..{2**32 - 1}, got {list(self.seeds)}")
        if len(self.pool) < 2:
            raise AdaptkitError("a study needs at least two robots in its pool")
        r = self.recipe
        for name, v in (
            ("histories", r.histories), ("steps_per_history", r.steps_per_history),
            ("episode_length", r.episode_length), ("budget_steps", self.budget_steps),
            ("batch_size", self.batch_size), ("eval_envs", r.eval_envs),
            ("eval_episodes", r.eval_episodes), ("icl_context", self.icl_context),
            ("icl_episodes", self.icl_episodes), ("pretrain_epochs", r.pretrain_epochs),
            ("threads", self.threads),
        ):  # fmt: skip
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise AdaptkitError(f"study plan: {name} must be an integer >= 1, got {v!r}")
        get_task(r.task)
        if self.icl_size not in SIZES:
            raise AdaptkitError(f"--icl-size: expected one of {', '.join(SIZES)}")
        if self.icl_robot is not None and self.icl_robot not in self.targets:
            raise AdaptkitError(f"--icl-robot: {self.icl_robot!r} is not among --robots")

    # -- presets and options -------------------------------------------------------------------
    @classmethod
    def preset_named(cls, name: str) -> StudyPlan:
        """The plan of a preset of this kind (PRESETS)."""
        if name not in PRESETS:
            raise AdaptkitError(f"--preset: expected one of {', '.join(PRESETS)}, got {name!r}")
        return PRESETS[name].build()

    def with_options(self, options: Mapping[str, Any]) -> StudyPlan:
        """The plan with the study command's options that were given (None: not given):
        robots (the targets), sizes, modes, seeds, budget_steps, task, icl, icl_robot,
        icl_size; `ks` is the embodiment study's and not read here."""
        given = {k: v for k, v in options.items() if v is not None}
        changes = {k: given[k] for k in ("sizes", "modes", "seeds", "budget_steps", "icl",
                                          "icl_robot", "icl_size") if k in given}  # fmt: skip
        if "robots" in given:
            changes["targets"] = given["robots"]
        if "task" in given:
            changes["recipe"] = dataclasses.replace(self.recipe, task=given["task"])
        return self.replace(**changes)

    def replace(self, **changes: Any) -> StudyPlan:
        return dataclasses.replace(self, **changes)

    # -- derived ------------------------------------------------------------------------------
    def cells(self) -> list[Cell]:
        """Every cell, robot-major (one base at a time), the cheap sizes first."""
        return [
            Cell(r, s, m, seed)
            for r in self.targets
            for s in self.sizes
            for seed in self.seeds
            for m in self.modes
        ]

    def base_robots(self, target: str) -> tuple[str, ...]:
        return tuple(r for r in self.pool if r != target)

    @property
    def icl_target(self) -> str:
        return self.icl_robot or self.targets[0]

    def model_with(self, context: int | None = None) -> dict[str, Any]:
        """The plan's model config, with another context length when one is given (the
        in-context stage's long-context base and its cells)."""
        model = self.recipe.model
        return {**model, **({"context_len": context} if context is not None else {})}

    def context_len(self) -> int:
        from adaptkit.ckpt.config_file import read_model_config  # torch: not for --help

        return read_model_config(self.recipe.model).context_len

    def base_recipe(self, target: str, context: int | None = None) -> Recipe:
        """The recipe of `target`'s base: the pool without it, at `context` when given."""
        return dataclasses.replace(
            self.recipe, base_robots=self.base_robots(target), model=self.model_with(context)
        )

    def eval_settings(self, **changes: Any) -> EvalSettings:
        """The held-out evaluation every cell shares (the recipe's), on the plan's threads."""
        return self.recipe.eval_settings(threads=self.threads, **changes)

    def data_key(self) -> dict[str, Any]:
        """The settings the results folder's data, bases and cells depend on: a rerun into the
        same folder must agree on them (the axes may grow: new cells are simply run)."""
        keep = (
            "task", "pool", "histories", "steps_per_history", "episode_length", "collect_envs",
            "collect_seed", "model", "pretrain_epochs", "pretrain_lr", "pretrain_batch",
            "budget_steps", "batch_size", "lr", "lora_rank", "precision", "eval_envs",
            "eval_episodes", "eval_seed", "icl_context", "icl_episodes",
        )  # fmt: skip
        d = self.as_dict()
        return {k: d[k] for k in keep}

    def as_dict(self) -> dict[str, Any]:
        """plan.json's flat form: the plan's own fields and the recipe's (its batch_size as
        `pretrain_batch`; base_robots, which differ per target, and the fine-tune's epochs, which
        the study's budget replaces, are left out)."""
        d = dataclasses.asdict(self)
        r = d.pop("recipe")
        r["pretrain_batch"] = r.pop("batch_size")
        for k in ("base_robots", "finetune_epochs"):
            r.pop(k)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in {**d, **r}.items()}


@dataclass(frozen=True)
class Preset:
    """A named plan: how to build it, and a few words for --help."""

    build: Callable[[], Any]
    note: str = ""


def _full() -> StudyPlan:
    return StudyPlan(
        preset="full",
        sizes=SIZES,
        seeds=(0, 1, 2),
        recipe=dataclasses.replace(
            STUDY_RECIPE, histories=8, steps_per_history=15_000, pretrain_epochs=3
        ),
        budget_steps=150,
    )


def _varied() -> StudyPlan:
    # the harder task (adaptkit.tasks): speed commands re-drawn within episodes, random mass
    # and friction; the readme preset's sizes and budget otherwise, three seeds, two targets:
    # the new robot and the one with the closest kin in the pool (Go2)
    return StudyPlan(
        preset="varied",
        recipe=dataclasses.replace(STUDY_RECIPE, task="varied"),
        targets=("minicheetah", "go1"),
        seeds=(0, 1, 2),
        icl=False,
    )


def _ci() -> StudyPlan:
    return StudyPlan(
        preset="ci",
        targets=("minicheetah",),
        pool=("go1", "minicheetah"),
        sizes=("1hist",),
        seeds=(0,),
        recipe=dataclasses.replace(
            STUDY_RECIPE,
            histories=1,
            steps_per_history=300,
            episode_length=100,
            collect_envs=1,
            model=dict(TINY_MODEL),
            pretrain_epochs=1,
            batch_size=8,
            precision="fp32",
            eval_envs=2,
            eval_episodes=2,
        ),
        budget_steps=3,
        batch_size=4,
        icl_context=64,
        icl_episodes=3,
    )


# the leave-one-out study's presets, in --help's order (adaptkit.study.presets: every kind's)
PRESETS: dict[str, Preset] = {
    "ci": Preset(_ci, "tiny, seconds"),
    "readme": Preset(StudyPlan, "≈ 40 min on 2 cores"),
    "full": Preset(_full),
    "varied": Preset(_varied, "the harder task: speed commands, random mass and friction; ≈ 1 h"),
}


def parse_list(option: str, text: str | None, cast: type = str) -> tuple[Any, ...] | None:
    """A comma-separated option value ("go1,a1"); None when not given."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise AdaptkitError(f"{option}: empty list")
    try:
        return tuple(cast(p) for p in parts)
    except ValueError:
        raise AdaptkitError(
            f"{option}: expected comma-separated {cast.__name__}s, got {text!r}"
        ) from None
