"""Demonstrators walk; policies load; collection writes valid, rising, deterministic histories."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from adaptkit.cli import app
from adaptkit.data.history import read_history
from adaptkit.evaluate import EvalSettings, evaluate_policy
from adaptkit.plugins import load_registry
from adaptkit.sim.collect import collect_histories, noise_schedule
from adaptkit.sim.demonstrator import TorchPolicy, TrotDemonstrator, load_demonstrator
from adaptkit.sim.env import LocomotionEnv
from adaptkit.sim.policy import Policy

ROBOTS = ("go1", "go2", "a1", "minicheetah")


@pytest.fixture(scope="module")
def specs():
    return load_registry().robots


@pytest.mark.parametrize("name", ROBOTS)
def test_demonstrator_walks(specs, name):
    """Short run (8 envs × 8 s): the walking bar is ≥ 0.35 m/s with no falls."""
    settings = EvalSettings(num_envs=8, episodes=1, episode_length=400, seed=77)
    stats = evaluate_policy(load_demonstrator(specs[name]), specs[name], settings).summary
    assert stats["fall_rate"] == 0.0
    assert stats["mean_speed"] >= 0.35
    assert stats["mean_return"] / 400 > 0.012  # well above standing still (~0.009 per step)


def test_torch_policy_loads_and_acts(specs, tmp_path):
    spec = specs["minicheetah"]
    net = torch.nn.Sequential(torch.nn.Linear(45, 12), torch.nn.Tanh())
    path = tmp_path / "policy.pt"
    torch.jit.script(net).save(str(path))
    policy = load_demonstrator(spec, path)
    assert isinstance(policy, TorchPolicy) and isinstance(policy, Policy)
    env = LocomotionEnv(spec, 3)
    obs = env.reset()
    actions = policy.act(obs, env)
    assert actions.shape == (3, 12) and np.all(np.abs(actions) <= 1)
    assert isinstance(load_demonstrator(spec, None), TrotDemonstrator)


def test_noise_schedule_shape():
    eps = noise_schedule(np.arange(1000), 1000)
    assert eps[0] == 1.0 and eps[949] < 0.05 and np.all(eps[950:] == 0)
    assert np.all(np.diff(eps) <= 0)


def test_collect_writes_valid_rising_histories(specs, registry, tmp_path):
    from adaptkit.data.config import load_dataset_config
    from adaptkit.data.validate import validate_dataset

    spec = specs["minicheetah"]
    out = tmp_path / spec.data_path
    paths = collect_histories(
        spec, out, histories=3, steps_per_history=3000, num_envs=2, seed=4, episode_length=200
    )
    assert [p.name for p in paths] == ["history_000.h5", "history_001.h5", "history_002.h5"]
    for path in paths:
        h = read_history(path)
        assert h.obs.shape == (3000, 45) and h.action.shape == (3000, 12)
        starts = h.episode_starts()
        assert len(starts) >= 15 and np.all(np.diff(starts) <= 200)
        assert np.all(h.step_num[starts] == 0)
        returns = np.add.reduceat(h.reward, starts)[:-1]  # complete episodes
        assert returns[-3:].mean() > returns[:3].mean() + 1.0  # noise -> demonstrator
        # obs[t+1] holds the action executed at t (last-action slot), except at episode starts.
        inside = np.flatnonzero(h.step_num[1:] != 0)
        np.testing.assert_allclose(h.obs[inside + 1, 33:45], h.action[inside], atol=1e-6)
    meta = json.loads((out / f"{out.name}.json").read_text())
    assert meta["task"] == spec.task and meta["collector"]["seed"] == 4
    entries = load_dataset_config(tmp_path / "dataset_config.yaml", tmp_path)
    assert entries[spec.task].group == spec.group
    report = validate_dataset(entries, registry)
    assert report.tasks[0].histories == 3

    # Deterministic, and history i does not depend on the number of envs.
    again = collect_histories(spec, tmp_path / "again", 2, 3000, 1, seed=4, episode_length=200)
    for a, b in zip(paths[:2], again, strict=True):
        first, second = read_history(a), read_history(b)
        np.testing.assert_array_equal(first.obs, second.obs)
        np.testing.assert_array_equal(first.action, second.action)
        np.testing.assert_array_equal(first.reward, second.reward)


def test_cli_collect_and_demo(tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["collect", "go1", "--histories", "1", "--steps-per-history", "300", "--num-envs", "1",
         "--data-dir", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "go1_trajectories" / "history_000.h5").is_file()
    assert (tmp_path / "dataset_config.yaml").is_file()
    result = runner.invoke(app, ["demonstrator", "a1", "--num-envs", "2", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["num_episodes"] == 2 and stats["fall_rate"] == 0.0 and stats["mean_speed"] > 0.35
    result = runner.invoke(app, ["collect", "nosuchrobot"])
    assert result.exit_code == 1
