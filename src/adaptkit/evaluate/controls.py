"""Controls for in-context figures: what a gain along the context is owed to.

A model's return can rise from episode to episode of one chained context for three reasons
that look the same from outside: it reads the *rewards* it earned (reward-driven learning), it
reads its own observation–action history and so identifies the body (history-driven), or it
merely sits later in its window, where its training data were cleaner (position-driven). Each
control changes one of those and keeps the rest:

| control | context | removes |
| --- | --- | --- |
| `chained` | the env's episodes in one growing context | nothing (the run) |
| `reset` | a fresh context at every episode start | position + history |
| `rewards-zeroed` | chained, every reward token 0 | the rewards |
| `rewards-shuffled` | chained, each env reads another env's rewards | reward ↔ behaviour |
| `blank` | the first episodes' tokens all zero (observation, action, reward) | what they show |
| `neutral` | the first episodes stand still (teacher-forced) | all but what standing shows |
| `foreign` | the first episodes' tokens from another body (standing) | which body it is |

`blank`, `neutral` and `foreign` replace the first `prefix_episodes` episodes' context: the env
runs them with the joints held (so every later episode starts from the same states as in the
other controls) and they are not scored. `blank` feeds zeros (the window position and nothing
else); `neutral` what the model really saw while its body stood; `foreign` the tokens another
body produced over as many steps, recorded first (`record_tokens`: standing, its demonstrator,
or the model's own run there). Telescoping at the first scored episode:

    chained − reset = (blank − reset)        position
                    + (neutral − blank)      what the body shows standing (identification)
                    + (zeroed − neutral)     what its own earlier episodes show
                    + (chained − zeroed)     the rewards

and `neutral − foreign` (the same standing, another body) is identification on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.policies import ModelPolicy
from adaptkit.sim.policy import Policy, StandPolicy

REWARD_MODES = ("keep", "zero", "shuffle")
PREFIXES = ("stand", "blank", "foreign")
SHUFFLE_SEED = 12345  # the fixed derangement of envs the shuffled rewards come from


@dataclass(frozen=True)
class Control:
    """One way of running the same model on the same envs."""

    name: str
    help: str
    reset_context: bool = False  # forget the context at every episode start
    rewards: str = "keep"  # keep | zero | shuffle (the reward tokens the model reads)
    prefix: str | None = None  # None | stand | blank | foreign: the first episodes' context

    def __post_init__(self) -> None:
        if self.rewards not in REWARD_MODES:
            raise AdaptkitError(f"control {self.name!r}: rewards must be one of {REWARD_MODES}")
        if self.prefix is not None and self.prefix not in PREFIXES:
            raise AdaptkitError(f"control {self.name!r}: prefix must be one of {PREFIXES}")


CONTROLS: dict[str, Control] = {
    c.name: c
    for c in (
        Control("chained", "the episodes in one growing context (the in-context run)"),
        Control("reset", "a fresh context at every episode start", reset_context=True),
        Control("rewards-zeroed", "chained, every reward token set to 0", rewards="zero"),
        Control(
            "rewards-shuffled", "chained, each env reads another env's rewards", rewards="shuffle"
        ),
        Control("blank", "the first episodes' tokens all zero: position alone", prefix="blank"),
        Control("neutral", "the first episodes stand still, teacher-forced", prefix="stand"),
        Control("foreign", "the first episodes' context from another body", prefix="foreign"),
    )
}


def get_control(name: str) -> Control:
    if name not in CONTROLS:
        raise AdaptkitError(f"--controls: {name!r} is not one of {', '.join(CONTROLS)}")
    return CONTROLS[name]


def derangement(n: int, seed: int = SHUFFLE_SEED) -> np.ndarray:
    """A permutation of range(n) that moves every index (identity for n = 1)."""
    if n < 2:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    while True:
        p = rng.permutation(n)
        if not (p == np.arange(n)).any():
            return p


@dataclass
class Tokens:
    """A recorded context, per env and step: what the model read (obs already normalised by
    the recording task's stats, previous action in the model's units, scaled previous reward,
    episode-local step)."""

    obs: torch.Tensor  # [N, T, do]
    prev_act: torch.Tensor  # [N, T, da]
    prev_rew: torch.Tensor  # [N, T]
    step_num: torch.Tensor  # [N, T]

    @property
    def steps(self) -> int:
        return int(self.obs.shape[1])


class ControlledPolicy:
    """A ModelPolicy run under a Control (the rollout's Policy protocol).

    `prefix_episodes` episodes of each env run with the joints held (zero action) and feed the
    context what the control says (`stand`: the real standing tokens; `foreign`: `foreign`'s
    tokens, step for step). `record`: keep every token the model reads (`tokens()`)."""

    def __init__(
        self,
        model: ModelPolicy,
        control: Control,
        prefix_episodes: int = 0,
        foreign: Tokens | None = None,
        record: bool = False,
        teacher: Policy | None = None,
    ) -> None:
        if control.prefix is not None and prefix_episodes < 1:
            raise AdaptkitError(f"control {control.name!r} needs prefix_episodes >= 1")
        if control.prefix == "foreign" and foreign is None:
            raise AdaptkitError("control 'foreign' needs the foreign body's recorded tokens")
        self.model, self.control = model, control
        self.prefix_episodes = prefix_episodes if control.prefix is not None else 0
        self.foreign = foreign
        self.record = record
        # who acts in the prefix episodes (the model reads what it executes): joints held
        self.teacher = teacher or StandPolicy(model.res.action_dim)
        self.name = model.name
        self.robot, self.group = model.robot, model.group
        model.reset_context = control.reset_context
        self._recorded: list[tuple[torch.Tensor, ...]] = []

    # -- the Policy protocol -----------------------------------------------------------------
    def reset(self, num_envs: int) -> None:
        self.model.reset(num_envs)
        self.episode = np.zeros(num_envs, np.int64)  # finished episodes per env
        self.prefix_step = np.zeros(num_envs, np.int64)  # steps taken inside the prefix
        self.perm = derangement(num_envs)
        if self.foreign is not None and self.foreign.obs.shape[0] < num_envs:
            raise AdaptkitError(
                f"foreign context: {self.foreign.obs.shape[0]} envs recorded, {num_envs} needed"
            )
        self.teacher.reset(num_envs)
        self._recorded = []

    def in_prefix(self) -> np.ndarray:
        return self.episode < self.prefix_episodes

    @torch.inference_mode()
    def act(self, obs: np.ndarray, env: Any) -> np.ndarray:
        m = self.model
        o = m.normalise(obs)
        pre = self.in_prefix()
        foreign_rows = np.flatnonzero(pre) if self.control.prefix == "foreign" else []
        if len(foreign_rows):
            f, t = self.foreign, self.prefix_step[foreign_rows]
            if (t >= f.steps).any():
                raise AdaptkitError(
                    f"foreign context: {f.steps} steps recorded, the prefix needs more"
                )
            rows = torch.as_tensor(foreign_rows, device=m.device)
            ts = torch.as_tensor(t, device=m.device)
            o[rows] = f.obs[rows, ts].to(o.dtype)
            m.prev_act[rows] = f.prev_act[rows, ts].to(m.prev_act.dtype)
            m.prev_rew[rows] = f.prev_rew[rows, ts].to(m.prev_rew.dtype)
            m.step_num[rows] = f.step_num[rows, ts].to(m.step_num.dtype)
        blank_rows = np.flatnonzero(pre) if self.control.prefix == "blank" else []
        if len(blank_rows):  # what was seen, done and earned: nothing (the step count stays)
            rows = torch.as_tensor(blank_rows, device=m.device)
            o[rows] = 0.0
            m.prev_act[rows] = 0.0
            m.prev_rew[rows] = 0.0
        if self.record:
            self._recorded.append(
                (o.clone(), m.prev_act.clone(), m.prev_rew.clone(), m.step_num.clone())
            )
        actions = m.act_normalised(o)
        if self.prefix_episodes:
            taught = np.asarray(self.teacher.act(obs, env), np.float32)
            if pre.any():
                rows = torch.as_tensor(np.flatnonzero(pre), device=m.device)
                token = m.action_token(torch.as_tensor(taught[pre]))
                m.prev_act[rows] = token.to(m.prev_act.dtype)  # what was executed
                actions = np.where(pre[:, None], taught, actions)
        return actions

    def observe(self, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray) -> None:
        rewards = np.asarray(rewards, np.float32)
        if self.control.rewards == "zero":
            rewards = np.zeros_like(rewards)
        elif self.control.rewards == "shuffle":
            rewards = rewards[self.perm]
        pre = self.in_prefix()
        if self.prefix_episodes:
            self.teacher.observe(actions, rewards, done)
        self.model.observe(actions, rewards, done)
        self.prefix_step[pre] += 1
        self.episode[np.asarray(done, bool)] += 1

    def close(self) -> None:
        self.model.close()
        self.teacher.close()

    def describe(self) -> dict[str, Any]:
        return {
            **self.model.describe(),
            "control": self.control.name,
            "prefix_episodes": self.prefix_episodes,
        }

    def tokens(self) -> Tokens:
        """Every token read so far, stacked per env along time."""
        if not self._recorded:
            raise AdaptkitError("no tokens recorded (record=True, then roll out)")
        obs, act, rew, step = (torch.stack(x, dim=1) for x in zip(*self._recorded, strict=True))
        return Tokens(obs, act, rew, step)
