"""A light batched env and tiny models for the evaluation tests (no MuJoCo needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptkit.ckpt.checkpoint import Checkpoint
from adaptkit.evaluate.resolve import Resolution
from adaptkit.meta import CheckpointMeta, Stats
from adaptkit.model import GroupDims, ModelConfig, Vintix

OBS, ACT = 45, 12


class FakeEnv:
    """N independent envs whose dynamics and episode lengths depend only on (seed, env id), so
    env i behaves the same inside a batch as alone (`env_ids=[i]`). Episodes end after 3-9 steps,
    differently per env and per episode; odd envs 'fall'."""

    episode_length = 9

    def __init__(self, num_envs: int = 4, seed: int = 0, env_ids: list[int] | None = None) -> None:
        self.ids = list(range(num_envs)) if env_ids is None else list(env_ids)
        self.num_envs = len(self.ids)
        self.rngs = [np.random.default_rng([seed, i]) for i in self.ids]
        self.obs = np.zeros((self.num_envs, OBS), np.float32)
        self.step_num = np.zeros(self.num_envs, np.int64)
        self.episode = np.zeros(self.num_envs, np.int64)
        self.base_lin_vel = np.zeros((self.num_envs, 3))

    def _length(self, j: int) -> int:
        return 3 + (3 * self.ids[j] + 5 * int(self.episode[j])) % 7

    def _reset_one(self, j: int) -> None:
        self.obs[j] = self.rngs[j].normal(size=OBS)
        self.step_num[j] = 0
        self.base_lin_vel[j] = 0.0

    def reset(self) -> np.ndarray:
        for j in range(self.num_envs):
            self._reset_one(j)
        return self.obs.copy()

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        a = np.asarray(actions, np.float64)
        drive = np.tanh(a).mean(axis=1, keepdims=True)
        noise = np.stack([r.normal(size=OBS) for r in self.rngs])
        self.obs = (0.8 * self.obs + 0.5 * drive + 0.1 * noise).astype(np.float32)
        self.base_lin_vel[:, 0] = drive[:, 0]
        reward = (0.1 * self.obs[:, 0] - 0.01 * (a**2).mean(axis=1)).astype(np.float32)
        self.step_num += 1
        done = np.array([self.step_num[j] >= self._length(j) for j in range(self.num_envs)])
        fell = done & (np.asarray(self.ids) % 2 == 1)
        info = {"fell": fell, "episode_length": self.step_num.copy()}
        for j in np.flatnonzero(done):
            self.episode[j] += 1
            self._reset_one(j)
        return self.obs.copy(), reward, done, info


def tiny_model(groups: dict[str, GroupDims] | None = None, context_len: int = 6, seed: int = 0):
    """Two layers, so a rolling window differs from a plain truncation of the history."""
    torch.manual_seed(seed)
    cfg = ModelConfig(
        observation_emb_dim=8,
        action_emb_dim=4,
        reward_emb_dim=4,
        transformer_depth=2,
        transformer_heads=2,
        intermediate_size=16,
        context_len=context_len,
    )
    model = Vintix(cfg, groups or {"quadruped_locomotion": GroupDims(OBS, ACT)})
    return model.eval()


def stats(seed: int = 1) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    return {
        "obs_mean": rng.normal(size=OBS).round(3).tolist(),
        "obs_std": (0.5 + rng.random(OBS)).round(3).tolist(),
        "acs_mean": [0.0] * ACT,
        "acs_std": [1.0] * ACT,
    }


def task_entry(group: str, seed: int = 1, reward_scale: float = 1.0) -> dict[str, Any]:
    return {
        "group_name": group,
        "observation_shape": {"proprio": [OBS]},
        "action_dim": ACT,
        "action_type": "continuous",
        "reward_scale": reward_scale,
        **stats(seed),
    }


def resolution(reward_scale: float = 2.0, group: str = "quadruped_locomotion") -> Resolution:
    return Resolution(
        group=group,
        task="test_task",
        mode="native",
        stats_source="test",
        stats=Stats.parse(stats(), "test"),
        reward_scale=reward_scale,
        action_dim=ACT,
    )


def meta(entries: dict[str, dict[str, Any]]) -> CheckpointMeta:
    return CheckpointMeta.parse(entries)


def in_memory_checkpoint(model: Vintix, entries: dict[str, dict[str, Any]]) -> Checkpoint:
    """A Checkpoint that was never written: a model and its metadata."""
    return Checkpoint(model, meta(entries), model.config, Path("in-memory"), {}, "")
