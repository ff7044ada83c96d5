"""The `Recipe`: the sizes of everything the defaults build (data, base, evaluation), the tiny
model CI runs on, and which of its fields a built base depends on.

Light (no torch): the studies' presets, which the CLI's --help lists, are made of recipes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from adaptkit import defaults
from adaptkit.errors import AdaptkitError
from adaptkit.tasks import DEFAULT_TASK

if TYPE_CHECKING:
    from adaptkit.evaluate import EvalSettings

# a model small enough for seconds-long pipeline runs (CI; the study's `ci` preset)
TINY_MODEL: dict[str, Any] = {
    "observation_emb_dim": 16,
    "action_emb_dim": 8,
    "reward_emb_dim": 8,
    "hidden_dim": 32,
    "transformer_depth": 1,
    "transformer_heads": 2,
    "intermediate_size": 64,
    "context_len": 32,
}


@dataclass(frozen=True)
class Recipe:
    """Sizes of everything the defaults build; fits a 2-core CPU in minutes."""

    base_robots: tuple[str, ...] = ("go1", "go2", "a1")
    histories: int = 8  # learning histories per robot
    steps_per_history: int = 15_000  # 15 episodes of 1000 steps, noise decaying over them
    collect_envs: int = 8
    collect_seed: int = 0
    pretrain_epochs: int = 3
    pretrain_lr: float = 3e-4
    batch_size: int = 32
    precision: str = "auto"  # bf16 where the device computes it natively, else fp32
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig overrides ({}: default)
    finetune_epochs: int = defaults.FINETUNE_EPOCHS
    eval_envs: int = defaults.NUM_ENVS
    eval_episodes: int = defaults.EPISODES
    eval_seed: int = defaults.HELD_OUT_SEED  # never used to collect training data
    episode_length: int = 1000
    # 0: SPEC's schedule (noise falls over a whole history); C: it falls over each C episodes
    # (adaptkit.sim.collect), so one window of a short-episode history shows improvement
    noise_cycle: int = 0
    # a curriculum instead (adaptkit.sim.curricula): each history noise_cycle episodes long
    curriculum: str | None = None
    task: str = (
        DEFAULT_TASK  # the task variant the data are collected and evaluated on (adaptkit.tasks)
    )

    @classmethod
    def tiny(cls) -> Recipe:
        """Seconds instead of minutes: the same pipeline at toy sizes, for CI."""
        return cls(
            base_robots=("go1",),
            histories=2,
            steps_per_history=300,
            collect_envs=2,
            pretrain_epochs=1,
            batch_size=8,
            precision="fp32",
            model=dict(TINY_MODEL),
            finetune_epochs=1,
            eval_envs=2,
            eval_episodes=2,
            episode_length=100,
        )

    @classmethod
    def named(cls, name: str) -> Recipe:
        recipes = {"default": cls, "tiny": cls.tiny}
        if name not in recipes:
            raise AdaptkitError(f"--recipe: expected one of {', '.join(recipes)}, got {name!r}")
        return recipes[name]()

    def eval_settings(self, **given: Any) -> EvalSettings:
        """The comparison after a fine-tune: held-out seed, the recipe's envs and episodes."""
        base = {
            "num_envs": self.eval_envs,
            "episodes": self.eval_episodes,
            "seed": self.eval_seed,
            "episode_length": self.episode_length,
            "task": self.task,
        }
        from adaptkit.evaluate import EvalSettings  # torch: not for the CLI's --help (module doc)

        return EvalSettings(**{**base, **{k: v for k, v in given.items() if v is not None}})


# the recipe fields a base depends on (not the fine-tune's epochs or the evaluation's settings)
BASE_FIELDS = (
    "base_robots", "histories", "steps_per_history", "collect_envs", "collect_seed",
    "pretrain_epochs", "pretrain_lr", "batch_size", "precision", "model", "episode_length",
    "noise_cycle", "task", "curriculum",
)  # fmt: skip


def recipe_matches(recorded: Any, recipe: Recipe) -> bool:
    """True when a provenance's recorded recipe builds the same base as `recipe` (fields added
    since it was recorded count as their defaults)."""
    if not isinstance(recorded, dict):
        return False
    now = json.loads(json.dumps(asdict(recipe)))
    was = {**json.loads(json.dumps(asdict(Recipe()))), **recorded}
    return all(was.get(k) == now[k] for k in BASE_FIELDS)
