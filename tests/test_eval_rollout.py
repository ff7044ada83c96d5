"""Batched KV-cached rollout == each env alone with full recompute; per-env step_num and padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers_eval import ACT, FakeEnv, resolution, tiny_model

from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import ModelPolicy, StandPolicy, rollout

STEPS = 20  # > window (6): the cache rolls; several episode resets per env


def _alone_full_recompute(model, res, env_id: int, steps: int, window: int) -> np.ndarray:
    """The reference's way, one env at a time: rebuild the whole token history every step and run
    the full forward (attention limited to the last `window` tokens, i.e. a rolling context)."""
    env = FakeEnv(env_ids=[env_id])
    obs = env.reset()
    mean = torch.tensor(res.stats.array("obs_mean"))
    std = torch.tensor(res.stats.array("obs_std") + 1e-6)
    hist_obs, hist_act, hist_rew, hist_step = [], [], [], []
    prev_act, prev_rew, step = torch.zeros(ACT), torch.tensor(0.0), 0
    actions = []
    for _ in range(steps):
        hist_obs.append((torch.tensor(obs[0]) - mean) / std)
        hist_act.append(prev_act)
        hist_rew.append(prev_rew)
        hist_step.append(step)
        with torch.no_grad():
            out = model(
                res.group,
                torch.stack(hist_obs)[None],
                torch.stack(hist_act)[None],
                torch.stack(hist_rew)[None],
                torch.tensor(hist_step)[None],
                window=window,
            )
        a = out[0, -1]
        actions.append(a.numpy())
        obs, reward, done, _ = env.step(a.numpy()[None])
        prev_act, prev_rew = a, torch.tensor(float(reward[0]) * res.reward_scale)
        step = 0 if done[0] else step + 1
    return np.stack(actions)


def test_batched_cached_rollout_equals_each_env_alone_full_recompute():
    model, res = tiny_model(context_len=6), resolution(reward_scale=2.0)
    policy = ModelPolicy(model, res, context_len=6)
    result = rollout(policy, FakeEnv(4), episodes=None, max_steps=STEPS, record_actions=True)
    assert result.actions.shape == (STEPS, 4, ACT)
    for i in range(4):
        ref = _alone_full_recompute(model, res, i, STEPS, window=6)
        np.testing.assert_allclose(result.actions[:, i], ref, atol=1e-5, rtol=1e-4)


def test_step_num_restarts_per_env_and_padding_is_used(monkeypatch):
    model, res = tiny_model(), resolution()
    policy = ModelPolicy(model, res, context_len=6)
    env = FakeEnv(3)
    seen, expected = [], []
    real_step = model.step

    def spy(group, cache, obs, prev_act, prev_rew, step_num):
        seen.append((step_num.clone(), prev_rew.clone()))
        expected.append(env.step_num.copy())  # the env's episode-local index of the current obs
        return real_step(group, cache, obs, prev_act, prev_rew, step_num)

    monkeypatch.setattr(model, "step", spy)
    result = rollout(policy, env, episodes=2, max_steps=None)
    steps = np.stack([s.numpy() for s, _ in seen])
    np.testing.assert_array_equal(steps, np.stack(expected))
    assert (steps == 0).sum(axis=0).min() >= 2  # every env started >= 2 episodes in one stream
    # episode ends differ per env: resets are per env, not for the whole batch
    assert len({tuple(np.flatnonzero(steps[:, j] == 0)) for j in range(3)}) == 3
    # the padding really replaces prev action/reward at step 0: changing them there changes nothing
    policy.reset(1)
    obs = np.zeros((1, 45), np.float32)
    a0 = policy.act(obs, env)
    policy.reset(1)
    policy.prev_act.fill_(5.0)
    policy.prev_rew.fill_(-3.0)
    np.testing.assert_array_equal(policy.act(obs, env), a0)
    assert {r.episode for r in result.episodes} == {0, 1}


def test_rollout_records_episodes_per_env_and_stops_when_all_done():
    env = FakeEnv(4)
    result = rollout(StandPolicy(ACT), env, episodes=2, max_steps=None)
    assert len(result.episodes) == 8
    assert sorted((r.env, r.episode) for r in result.episodes) == [
        (e, k) for e in range(4) for k in range(2)
    ]
    # episode lengths of the fake env: 3 + (3 id + 5 k) % 7; odd envs fall
    for r in result.episodes:
        assert r.length == 3 + (3 * r.env + 5 * r.episode) % 7
        assert r.fell == (r.env % 2 == 1)
    per_env = [sum(r.length for r in result.episodes if r.env == e) for e in range(4)]
    assert result.steps == max(per_env)  # the slowest env's 2 episodes, then stop
    timing = result.timing()
    assert timing["env_steps"] == result.steps * 4 and timing["steps_per_s"] > 0


def test_rollout_rejects_bad_counts():
    with pytest.raises(AdaptkitError, match="--episodes"):
        rollout(StandPolicy(ACT), FakeEnv(1), episodes=0, max_steps=None)
    with pytest.raises(AdaptkitError, match="episodes or max_steps"):
        rollout(StandPolicy(ACT), FakeEnv(1), episodes=None, max_steps=None)


def test_model_policy_sets_and_restores_torch_threads():
    before = torch.get_num_threads()
    policy = ModelPolicy(tiny_model(), resolution(), context_len=6, threads=1)
    seen = []
    real_act = policy.act
    policy.act = lambda obs, env: (seen.append(torch.get_num_threads()), real_act(obs, env))[1]
    rollout(policy, FakeEnv(2), episodes=None, max_steps=3)
    assert seen == [1, 1, 1] and torch.get_num_threads() == before


def test_reset_context_makes_each_episode_start_fresh():
    """--reset-context: every episode acts as if it were the env's first (each env alone, full
    recompute from its episode start); the default chains episodes, so later ones differ."""
    model, res = tiny_model(context_len=64), resolution()
    chained = ModelPolicy(model, res, context_len=64)
    fresh = ModelPolicy(model, res, context_len=64, reset_context=True)
    assert fresh.describe()["reset_context"] is True
    a = rollout(chained, FakeEnv(3), episodes=2, max_steps=None, record_actions=True)
    b = rollout(fresh, FakeEnv(3), episodes=2, max_steps=None, record_actions=True)
    first = min(FakeEnv(3)._length(j) for j in range(3))  # every env still in episode 1
    np.testing.assert_allclose(a.actions[:first], b.actions[:first], atol=1e-6)
    assert not np.allclose(a.actions[first + 1 :], b.actions[first + 1 :], atol=1e-4)
    # what it does: the envs whose episode just ended forget their context, the others not
    obs = np.zeros((2, 45), np.float32)
    for policy, want in ((chained, [1, 1]), (fresh, [0, 1])):
        policy.reset(2)
        policy.act(obs, None)
        policy.observe(np.zeros((2, ACT)), np.zeros(2), np.array([True, False]))
        assert policy.cache.lengths().tolist() == want
