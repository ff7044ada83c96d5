"""The in-context controls (adaptkit.evaluate.controls): each changes what the model reads, and
only that."""

import dataclasses

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


# -- every control on a real env, and the decomposition --------------------------------------
def _curves(**per_control: list[float | None]) -> dict:
    return {c: {"per_episode_normalised": v} for c, v in per_control.items()}


def test_the_decomposition_telescopes_and_reads_the_first_scored_episode():
    curves = _curves(
        chained=[0.0, 0.4, 0.9], reset=[0.0, 0.1, 0.2], blank=[None, None, 0.25],
        neutral=[None, None, 0.6], foreign=[None, None, 0.1],
        **{"rewards-zeroed": [0.0, 0.3, 0.7], "rewards-shuffled": [0.0, 0.4, 0.8]},
    )  # fmt: skip
    from adaptkit.evaluate.in_context import decompose

    d = decompose(curves, 2)
    parts = d["position"] + d["standing"] + d["own_history"] + d["rewards"]
    assert d["context"] == pytest.approx(0.7) and parts == pytest.approx(d["context"])
    assert d["position"] == pytest.approx(0.05) and d["identification"] == pytest.approx(0.5)
    assert d["gain_reward_driven"] == pytest.approx(0.9 - 0.7)
    assert d["gain_reward_driven_shuffled"] == pytest.approx(0.9 - 0.8)
    assert decompose(_curves(chained=[0.0, 1.0]), 2)["context"] is None  # missing: None


def test_run_controls_on_mujoco_gives_every_control_and_refuses_too_few_episodes():
    from helpers_eval import in_memory_checkpoint

    from adaptkit.evaluate.in_context import foreign_body, run_controls
    from adaptkit.evaluate.settings import EvalSettings
    from adaptkit.model import GroupDims, ModelConfig, Vintix
    from adaptkit.plugins import load_registry

    reg = load_registry()
    go1 = reg.robot("go1")
    torch.manual_seed(0)
    cfg = ModelConfig(observation_emb_dim=8, action_emb_dim=4, reward_emb_dim=4,
                      transformer_depth=1, transformer_heads=2, intermediate_size=16,
                      context_len=64)  # fmt: skip
    model = Vintix(cfg, {"quadruped_locomotion": GroupDims(45, 12)}).eval()
    entry = {"group_name": "quadruped_locomotion", "observation_shape": {"proprio": [45]},
             "action_dim": 12, "action_type": "continuous", "reward_scale": 1.0,
             "obs_mean": [0.0] * 45, "obs_std": [1.0] * 45, "acs_mean": [0.0] * 12,
             "acs_std": [1.0] * 12}  # fmt: skip
    ckpt = in_memory_checkpoint(model, {"go1_walking_ad": entry})
    settings = EvalSettings(num_envs=2, episodes=3, episode_length=15, seed=777,
                            device="cpu", data_dir=None)  # fmt: skip
    foreign = foreign_body(go1, list(reg.robots.values()))
    assert foreign.joint_signs[1] == -go1.joint_signs[1]  # the other joint convention
    refs = {"demonstrator": {"mean_return": 0.3}, "stand": {"mean_return": 0.1}}
    out = run_controls(ckpt, go1, settings, refs, foreign, prefix_episodes=2)
    assert set(out["curves"]) == set(CONTROLS)
    for name, c in out["curves"].items():
        scored = [x is not None for x in c["per_episode_return"]]
        assert scored == ([False, False, True] if CONTROLS[name].prefix else [True] * 3)
    assert out["decomposition"]["context"] is not None
    with pytest.raises(AdaptkitError, match="prefix episodes need --episodes above 2"):
        run_controls(ckpt, go1, dataclasses.replace(settings, episodes=2), refs, foreign)
