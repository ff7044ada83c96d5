"""Task variants (adaptkit.tasks): `walk` unchanged, `varied` commands re-drawn within episodes
and shown in the observation, per-episode mass and friction in the physics, the demonstrator
following the speed command, and the task carried from collection to evaluation and studies."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from adaptkit.bootstrap.data import ensure_robot_data
from adaptkit.bootstrap.recipe import Recipe
from adaptkit.cli import app
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import EvalSettings
from adaptkit.plugins import load_registry
from adaptkit.sim.demonstrator import TrotDemonstrator
from adaptkit.sim.env import COMMAND_SCALE, RESET_JOINT_NOISE, LocomotionEnv, feature_columns
from adaptkit.study.plan import StudyPlan
from adaptkit.tasks import TASKS, TaskVariant, get_task


@pytest.fixture(scope="module")
def specs():
    return load_registry().robots


def _roll(env, steps, seed=0):
    rng = np.random.default_rng(seed)
    obs = [env.reset()]
    for _ in range(steps):
        action = rng.uniform(-0.5, 0.5, 12)  # the same for every env: envs differ by their draws
        obs.append(env.step(np.tile(action, (env.num_envs, 1)))[0])
    return np.stack(obs)


def test_walk_is_the_default_and_draws_nothing_more(specs):
    a = LocomotionEnv(specs["go1"], 2, seed=3, episode_length=30)
    b = LocomotionEnv(specs["go1"], 2, seed=3, episode_length=30, task="walk")
    np.testing.assert_array_equal(_roll(a, 70), _roll(b, 70))  # through two resets
    assert (a.commands == [0.5, 0.0, 0.0]).all() and (a.mass_scale == 1.0).all()
    a.close(), b.close()
    # each reset takes exactly 18 numbers of the env's stream [seed, id], as before task
    # variants existed: the second episode starts where the stream's second 18 say
    env = LocomotionEnv(specs["go1"], 1, seed=3, episode_length=5, env_ids=[1])
    stream = np.random.default_rng([3, 1])
    for _ in range(2):
        u = stream.uniform(-1.0, 1.0, 18)
        if _ == 0:
            env.reset()
        else:
            [env.step(np.zeros((1, 12))) for _ in range(5)]
        np.testing.assert_allclose(env.dof_pos[0], env.default_dof_pos + RESET_JOINT_NOISE * u[:12])
    env.close()
    with pytest.raises(AdaptkitError, match="--task: expected one of walk, varied"):
        get_task("run")


def test_varied_commands_redrawn_within_episode_and_observed(specs):
    task = TASKS["varied"]
    spec = specs["minicheetah"]
    env = LocomotionEnv(spec, 3, seed=1, episode_length=250, task=task)
    env.reset()
    cols = feature_columns(spec.joint_names)
    vx_col = spec.obs_names.index("command_vx")
    assert cols["command_vx"] == 6
    seen, stand = [env.commands.copy()], np.zeros((3, 12))
    for step in range(1, 2 * task.resample_steps + 1):
        obs, _, done, _ = env.step(stand)
        assert not done.any()
        if step % task.resample_steps:  # held between re-draws
            np.testing.assert_array_equal(env.commands, seen[-1])
        else:
            assert (env.commands[:, 0] != seen[-1][:, 0]).all()
            seen.append(env.commands.copy())
        np.testing.assert_allclose(obs[:, vx_col], env.commands[:, 0] * COMMAND_SCALE[0])
    vx = np.concatenate([c[:, 0] for c in seen])
    assert ((vx >= 0.2) & (vx <= 0.8)).all() and len(set(vx.round(6))) == len(vx)
    assert (np.concatenate([c[:, 1:] for c in seen]) == 0).all()  # vy, yaw stay 0
    env.close()


def test_varied_streams_do_not_depend_on_the_batch(specs):
    spec = specs["a1"]
    batch = LocomotionEnv(spec, 3, seed=2, episode_length=40, task="varied")
    alone = LocomotionEnv(spec, 1, seed=2, episode_length=40, task="varied", env_ids=[2])
    ob, oa = _roll(batch, 90), _roll(alone, 90)
    np.testing.assert_allclose(ob[:, 2], oa[:, 0], atol=1e-5)
    batch.close(), alone.close()


def test_mass_and_friction_drawn_per_episode_reach_the_physics(specs):
    spec = specs["go2"]
    env = LocomotionEnv(spec, 4, seed=0, episode_length=20, task="varied")
    backend, base = env.backend, env.backend.model
    body, floor = backend._base_body, backend._floor
    for _ in range(2):  # after the first reset and after the auto-reset
        env.reset() if _ == 0 else [env.step(np.zeros((4, 12))) for _ in range(20)]
        assert ((env.mass_scale >= 0.8) & (env.mass_scale <= 1.25)).all()
        assert ((env.friction >= 0.4) & (env.friction <= 1.2)).all()
        for i in range(4):
            m = backend._models[i]
            assert m.body_mass[body] == pytest.approx(base.body_mass[body] * env.mass_scale[i])
            assert m.geom_friction[floor, 0] == pytest.approx(env.friction[i])
        first = env.mass_scale.copy()
    assert base.body_mass[body] == pytest.approx(
        LocomotionEnv(spec, 1).backend.model.body_mass[body]
    )  # the shared model itself is never changed
    assert len(set(first.round(6))) == 4
    env.close()


def test_heavier_base_sinks_lower_under_the_same_pd(specs):
    spec = specs["go1"]
    light = TaskVariant("light", "", mass_scale=(0.8, 0.8))
    heavy = TaskVariant("heavy", "", mass_scale=(1.25, 1.25))
    heights = []
    for task in (light, heavy):
        env = LocomotionEnv(spec, 1, seed=0, task=task)
        env.reset()
        for _ in range(100):
            env.step(np.zeros((1, 12)))
        heights.append(env.base_pos[0, 2])
        env.close()
    assert heights[1] < heights[0] - 1e-3


def test_demonstrator_follows_the_speed_command(specs):
    spec = specs["minicheetah"]
    env = LocomotionEnv(spec, 8, seed=4, episode_length=300, task="varied")
    demo = TrotDemonstrator(spec)
    obs, cmd, vx, falls = env.reset(), [], [], 0
    demo.reset(8)
    for step in range(300):
        obs, r, done, info = env.step(demo.act(obs, env))
        demo.observe(None, r, done)
        falls += int(info["fell"].sum())
        if step % 100 >= 50:  # settled on this command
            cmd.append(env.commands[:, 0].copy()), vx.append(env.base_lin_vel[:, 0].copy())
    env.close()
    cmd, vx = np.concatenate(cmd), np.concatenate(vx)
    assert falls == 0
    assert np.polyfit(cmd, vx, 1)[0] > 0.5  # faster when asked to be faster
    assert np.mean(np.abs(vx - cmd)) < 0.2


def test_task_travels_from_collection_to_evaluation_and_studies(specs, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["collect", "go1", "--histories", "1", "--steps-per-history", "120", "--num-envs", "1",
         "--data-dir", str(tmp_path), "--task", "varied"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "go1_trajectories" / "go1_trajectories.json").read_text())
    assert meta["collector"]["task"] == "varied"
    assert meta["collector"]["task_variant"]["vx"] == [0.2, 0.8]
    # cached data of another task are refused, not silently reused
    assert not ensure_robot_data(specs["go1"], tmp_path, Recipe(task="varied"))
    with pytest.raises(AdaptkitError, match="holds histories of task 'varied'.*needs task 'walk'"):
        ensure_robot_data(specs["go1"], tmp_path, Recipe())
    result = runner.invoke(
        app, ["collect", "go1", "--data-dir", str(tmp_path / "x"), "--task", "jog"]
    )
    assert result.exit_code != 0 and "--task: expected one of walk, varied" in result.output
    assert not (tmp_path / "x").exists()  # refused before anything was written
    args = ["demonstrator", "a1", "--num-envs", "2", "--task", "varied", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["task"] == "varied"
    assert EvalSettings(task="varied").task == "varied"
    with pytest.raises(AdaptkitError, match="--task"):
        EvalSettings(task="sprint")
    varied = StudyPlan.preset_named("varied")
    assert varied.recipe.task == "varied" and varied.data_key()["task"] == "varied"
    assert varied.eval_settings().task == "varied"
    assert StudyPlan().data_key()["task"] == "walk"
