"""Stable-Baselines3: the batched native env as an SB3 VecEnv — SB3's reset/terminal-observation
conventions over the same steps as the gymnasium vector env, and PPO trains on it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")

from gymnasium.vector import AutoresetMode
from stable_baselines3 import PPO

from adaptkit.gym import LocomotionVectorEnv
from adaptkit.sb3 import LocomotionSB3VecEnv


def test_steps_match_the_gymnasium_vector_env_with_sb3_conventions():
    sb3 = LocomotionSB3VecEnv("minicheetah", 3, episode_length=6)
    ref = LocomotionVectorEnv(
        "minicheetah", 3, autoreset_mode=AutoresetMode.SAME_STEP, episode_length=6
    )
    sb3.seed(5)
    obs = sb3.reset()
    want, _ = ref.reset(seed=[5, 6, 7])
    np.testing.assert_array_equal(obs, want)
    rng = np.random.default_rng(0)
    ended = 0
    for _ in range(14):
        act = rng.uniform(-1, 1, (3, 12)).astype(np.float32)
        obs, reward, dones, infos = sb3.step(act)
        w_obs, w_rew, term, trunc, info = ref.step(act)
        np.testing.assert_array_equal(obs, w_obs)  # finished envs already reset
        np.testing.assert_allclose(reward, w_rew, rtol=1e-6)
        np.testing.assert_array_equal(dones, term | trunc)
        for i in np.flatnonzero(dones):
            ended += 1
            np.testing.assert_array_equal(infos[i]["terminal_observation"], info["final_obs"][i])
            assert infos[i]["TimeLimit.truncated"] == bool(trunc[i] and not term[i])
    assert ended >= 3  # every env ran out its 6-step episode at least once
    assert sb3.get_attr("num_envs") == [3, 3, 3] and sb3.env_is_wrapped(object) == [False] * 3
    sb3.close()
    ref.close()


def test_ppo_learns_a_few_steps():
    env = LocomotionSB3VecEnv("go1", 2, episode_length=20, normalize_actions=True)
    model = PPO("MlpPolicy", env, n_steps=16, batch_size=16, n_epochs=1, device="cpu", seed=0)
    model.learn(total_timesteps=32)
    action, _ = model.predict(env.reset(), deterministic=True)
    assert action.shape == (2, 12) and np.all(np.abs(action) <= 1.0)
    env.close()
