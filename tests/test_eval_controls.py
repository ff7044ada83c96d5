"""The in-context controls (adaptkit.evaluate.controls): each changes what the model reads, and
only that."""

import numpy as np
import pytest
import torch
from helpers_eval import FakeEnv, resolution, tiny_model

from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.controls import (
    CONTROLS,
    Control,
    ControlledPolicy,
    derangement,
    get_control,
)
from adaptkit.evaluate.policies import ModelPolicy
from adaptkit.evaluate.rollout import rollout

N, EPISODES = 4, 4


def _policy(control: str, prefix: int = 2, foreign=None, record=True) -> ControlledPolicy:
    model = ModelPolicy(tiny_model(context_len=64), resolution(reward_scale=1.0), 64)
    return ControlledPolicy(model, CONTROLS[control], prefix, foreign, record=record)


def _run(policy: ControlledPolicy, seed: int = 0):
    return rollout(policy, FakeEnv(N, seed=seed), EPISODES, None, record_actions=True)


def test_the_table_and_its_checks():
    assert set(CONTROLS) == {
        "chained", "reset", "rewards-zeroed", "rewards-shuffled", "blank", "neutral", "foreign",
    }  # fmt: skip
    with pytest.raises(AdaptkitError, match="rewards must be one of"):
        Control("bad", "x", rewards="double")
    with pytest.raises(AdaptkitError, match="not one of"):
        get_control("chaind")
    with pytest.raises(AdaptkitError, match="needs the foreign body's recorded tokens"):
        _policy("foreign")


def test_derangement_moves_every_env():
    for n in (2, 3, 8, 17):
        p = derangement(n)
        assert sorted(p) == list(range(n)) and not (p == np.arange(n)).any()
    assert list(derangement(1)) == [0]


def test_rewards_zeroed_and_shuffled_change_only_the_reward_tokens():
    runs = {c: _policy(c) for c in ("chained", "rewards-zeroed", "rewards-shuffled")}
    out = {c: _run(p) for c, p in runs.items()}
    tok = {c: p.tokens() for c, p in runs.items()}
    # the first step's tokens are the same everywhere (nothing earned yet)
    for c in ("rewards-zeroed", "rewards-shuffled"):
        assert torch.equal(tok[c].obs[:, 0], tok["chained"].obs[:, 0])
    assert torch.count_nonzero(tok["rewards-zeroed"].prev_rew) == 0
    assert torch.count_nonzero(tok["chained"].prev_rew) > 0
    # what the model reads differs, so (with these weights) what it does differs
    assert not np.allclose(out["chained"].actions, out["rewards-zeroed"].actions)
    assert not np.allclose(out["chained"].actions, out["rewards-shuffled"].actions)


def test_shuffled_rewards_are_another_envs_of_the_same_step():
    pol = _policy("rewards-shuffled")
    seen: list[np.ndarray] = []
    inner = pol.model.observe

    def spy(actions, rewards, done):
        seen.append(np.asarray(rewards).copy())
        inner(actions, rewards, done)

    pol.model.observe = spy
    env = FakeEnv(N)
    obs = env.reset()
    pol.reset(N)
    a = pol.act(obs, env)
    _, r, d, _ = env.step(a)
    pol.observe(a, r, d)
    np.testing.assert_array_equal(seen[0], r[derangement(N)])


def test_neutral_holds_the_joints_and_feeds_what_was_executed():
    pol = _policy("neutral", prefix=2)
    res = _run(pol)
    tok = pol.tokens()
    steps = tok.step_num.numpy()  # [N, T]: 0 at every episode start
    episode = np.cumsum(steps == 0, axis=1) - 1  # the episode each step belongs to
    for j in range(N):
        held = np.flatnonzero(episode[j] < 2)
        assert len(held) and (episode[j] >= 2).any()
        np.testing.assert_array_equal(res.actions[held, j], 0.0)
        after = held[held + 1 < tok.steps]
        after = after[steps[j, after + 1] > 0]  # the next step is of the same episode
        assert torch.count_nonzero(tok.prev_act[j, after + 1]) == 0
        own = np.flatnonzero(episode[j] >= 2)
        assert np.abs(res.actions[own, j]).sum() > 0  # the model acts from episode 3 on


def test_foreign_feeds_the_recorded_tokens_step_for_step():
    donor = _policy("chained")
    rollout(donor, FakeEnv(N, seed=5), None, 40)
    recorded = donor.tokens()
    pol = _policy("foreign", prefix=1, foreign=recorded)
    res = _run(pol, seed=0)
    tok = pol.tokens()
    first_len = [FakeEnv(N)._length(j) for j in range(N)]  # each env's first episode
    for j in range(N):
        n = first_len[j]
        assert torch.equal(tok.obs[j, :n], recorded.obs[j, :n])
        assert torch.equal(tok.prev_rew[j, :n], recorded.prev_rew[j, :n])
        assert torch.equal(tok.step_num[j, :n], recorded.step_num[j, :n])
        # then the env's own episode starts: a fresh step count, the env's own observation
        assert int(tok.step_num[j, n]) == 0
        assert not torch.equal(tok.obs[j, n], recorded.obs[j, n])
    assert res.actions.shape[1] == N


def test_blank_feeds_nothing_but_the_step_count():
    pol = _policy("blank", prefix=1)
    _run(pol)
    tok = pol.tokens()
    first = [FakeEnv(N)._length(j) for j in range(N)]
    for j in range(N):
        n = first[j]
        assert torch.count_nonzero(tok.obs[j, :n]) == 0
        assert torch.count_nonzero(tok.prev_act[j, :n]) == 0
        assert torch.count_nonzero(tok.prev_rew[j, :n]) == 0
        assert tok.step_num[j, :n].tolist() == list(range(n))
        assert torch.count_nonzero(tok.obs[j, n]) > 0  # the env's own episode


def test_a_short_foreign_recording_is_refused_in_one_line():
    donor = _policy("chained")
    rollout(donor, FakeEnv(N, seed=5), None, 2)
    pol = _policy("foreign", prefix=2, foreign=donor.tokens())
    with pytest.raises(AdaptkitError, match="steps recorded, the prefix needs more"):
        _run(pol)


def test_chained_under_the_wrapper_is_the_plain_model():
    plain = ModelPolicy(tiny_model(context_len=64), resolution(reward_scale=1.0), 64)
    a = rollout(plain, FakeEnv(N), EPISODES, None, record_actions=True).actions
    b = _run(_policy("chained")).actions
    np.testing.assert_array_equal(a, b)
