"""Gymnasium: `adaptkit/<Robot>-v0` passes gymnasium's env checker; `make_vec` is the batched
native env and gives exactly what SyncVectorEnv over single envs gives, in every autoreset mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

from gymnasium.utils.env_checker import check_env  # noqa: E402
from gymnasium.vector import AutoresetMode, SyncVectorEnv  # noqa: E402

import adaptkit.gym as ag  # noqa: E402
from adaptkit.errors import AdaptkitError  # noqa: E402
from adaptkit.plugins import load_registry  # noqa: E402
from adaptkit.sim import LocomotionEnv  # noqa: E402

MC = "adaptkit/MiniCheetah-v0"


def _can_render() -> bool:
    from adaptkit.sim.render import SceneRenderer

    try:
        SceneRenderer(load_registry().robot("go1"), 32, 32).close()
        return True
    except AdaptkitError:
        if os.environ.get("CI"):
            raise  # CI installs a GL library: rendering must work there
        return False


def test_builtin_robots_are_registered():
    assert set(ag.ENV_IDS) >= {MC, "adaptkit/Go1-v0", "adaptkit/Go2-v0", "adaptkit/A1-v0"}
    for env_id in ag.ENV_IDS:
        env = gymnasium.make(env_id)
        obs, _ = env.reset(seed=0)
        assert obs.shape == env.observation_space.shape == (env.unwrapped._env.obs_dim,)
        assert env.action_space.shape == (12,) and env.spec.max_episode_steps == 1000
        env.close()


def test_env_checker_passes():
    env = gymnasium.make(MC)
    check_env(env.unwrapped, skip_render_check=not _can_render())
    env.close()


def test_single_env_steps_like_the_native_env_and_reports_falls():
    env = gymnasium.make(MC, episode_length=40)
    native = LocomotionEnv(load_registry().robot("minicheetah"), 1, seed=11, episode_length=40)
    obs, _ = env.reset(seed=11)
    np.testing.assert_array_equal(obs, native.reset()[0])  # seed s = env 0 of `eval --seed s`
    rng = np.random.default_rng(0)
    ended = []
    for _ in range(80):
        a = rng.uniform(-4, 4, 12).astype(np.float32)
        obs, r, term, trunc, info = env.step(a)
        n_obs, n_r, _, n_info = native.step(a[None].astype(np.float64))
        assert r == pytest.approx(float(n_r[0])) and isinstance(r, float)
        assert (term, trunc) == (bool(n_info["fell"][0]), bool(n_info["time_out"][0]))
        assert {"forward_speed", "reward_terms"} <= set(info)
        if term or trunc:
            np.testing.assert_array_equal(obs, n_info["terminal_obs"][0])  # the last state
            ended.append("fell" if term else "time")
            break
        np.testing.assert_array_equal(obs, n_obs[0])
    assert ended  # random joint targets of ±1 rad topple it (or time runs out) within 40 steps
    env.close()
    native.close()


def _run(envs, steps: int, seed, mode) -> list:
    rng = np.random.default_rng(5)
    out = []
    obs, _ = envs.reset(seed=seed)
    out.append(obs.copy())
    # env 0 thrashes (falls), the others barely move (their episodes time out)
    scale = np.array([4.0] + [0.2] * (envs.num_envs - 1))[:, None]
    for _ in range(steps):
        a = (scale * rng.uniform(-1, 1, (envs.num_envs, 12))).astype(np.float32)
        obs, r, term, trunc, info = envs.step(a)
        final = info.get("final_obs")
        final = [None if f is None else f.copy() for f in final] if final is not None else None
        out.append((obs.copy(), r.copy(), term.copy(), trunc.copy(), final))
        if mode is AutoresetMode.DISABLED and (term | trunc).any():
            obs, _ = envs.reset(options={"reset_mask": term | trunc})
            out.append(obs.copy())
    return out


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_vector_env_equals_sync_vector_env(mode):
    n, length, steps = 3, 25, 70
    ours = gymnasium.make_vec(MC, num_envs=n, autoreset_mode=mode, episode_length=length)
    assert isinstance(ours.unwrapped, ag.LocomotionVectorEnv)
    assert ours.metadata["autoreset_mode"] is mode
    ref = SyncVectorEnv(
        [lambda: gymnasium.make(MC, episode_length=length) for _ in range(n)],
        autoreset_mode=mode,
    )
    seeds = [3, 4, 5]  # a list: env i is the single env seeded seeds[i]
    a, b = _run(ours, steps, seeds, mode), _run(ref, steps, seeds, mode)
    assert len(a) == len(b)
    ends = np.zeros(2, int)
    for x, y in zip(a, b, strict=True):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
            continue
        for u, v in zip(x[:4], y[:4], strict=True):
            np.testing.assert_array_equal(u, v)
        ends += (x[2].sum(), x[3].sum())
        if mode is AutoresetMode.SAME_STEP:
            assert (x[4] is None) == (y[4] is None)
            for u, v in zip(x[4] or [], y[4] or [], strict=True):
                assert (u is None and v is None) or np.array_equal(u, v)
    assert ends[0] > 0 and ends[1] > 0  # the run saw falls and time-outs
    ours.close()
    ref.close()


def test_vector_seed_int_matches_eval_streams():
    envs = gymnasium.make_vec("adaptkit/Go1-v0", num_envs=4)
    obs, _ = envs.reset(seed=7)
    native = LocomotionEnv(load_registry().robot("go1"), 4, seed=7)
    np.testing.assert_array_equal(obs, native.reset())
    assert envs.observation_space.shape == (4, native.obs_dim)
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(options={"reset_mask": np.zeros(4, bool)})
    envs.close()
    native.close()


def test_render_rgb_array():
    if not _can_render():
        pytest.skip("no offscreen GL here")
    env = gymnasium.make("adaptkit/A1-v0", render_mode="rgb_array", width=96, height=64)
    env.reset(seed=1)
    frame = env.render()
    assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8 and frame.std() > 5
    env.close()
    envs = gymnasium.make_vec("adaptkit/A1-v0", num_envs=2, render_mode="rgb_array", width=32,
                              height=32)  # fmt: skip
    envs.reset(seed=0)
    assert [f.shape for f in envs.render()] == [(32, 32, 3)] * 2
    envs.close()


def test_plugin_robots_register_too(tmp_path):
    from adaptkit.scaffold import write_plugin_package

    root, _ = write_plugin_package("my_dog", tmp_path / "pkg")
    registry = load_registry(plugin_files=[root / "src" / "adaptkit_my_dog" / "plugin.py"])
    try:
        assert "adaptkit/MyDog-v0" in ag.register_envs(registry)
        env = gymnasium.make("adaptkit/MyDog-v0")
        assert env.unwrapped.robot.name == "my_dog"
        check_env(env.unwrapped, skip_render_check=True)
        env.close()
    finally:
        ag.register_envs(load_registry())  # back to the installed robots
    assert "adaptkit/MyDog-v0" not in gymnasium.registry


def test_make_with_module_prefix_in_a_fresh_interpreter():
    code = textwrap.dedent(
        """
        import gymnasium
        env = gymnasium.make("adaptkit.gym:adaptkit/Go2-v0")
        obs, info = env.reset(seed=3)
        print(env.spec.id, obs.shape)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "adaptkit/Go2-v0 (45,)" in proc.stdout


def test_task_variant_reaches_single_and_vector_envs():
    env = gymnasium.make(MC, task="varied")
    obs, _ = env.reset(seed=3)
    assert env.unwrapped._env.task.name == "varied"
    assert 0.4 <= obs[6] <= 1.6 and obs[6] != 1.0  # command_vx × 2, drawn in 0.2–0.8 m/s
    env.close()
    vec = gymnasium.make_vec(MC, num_envs=2, task="varied")
    obs, _ = vec.reset(seed=3)
    assert obs[0, 6] != obs[1, 6]
    vec.close()


def test_normalized_actions_map_onto_the_action_bounds():
    """normalize_actions: Box(-1, 1), the same steps as the raw env given low + (a+1)/2·span."""
    raw = gymnasium.make(MC, episode_length=30)
    norm = gymnasium.make(MC, episode_length=30, normalize_actions=True)
    assert gymnasium.make(MC).action_space.high[0] == 4.0  # the default is unchanged
    assert norm.action_space.low.tolist() == [-1.0] * 12 and norm.action_space.high[0] == 1.0
    check_env(norm.unwrapped, skip_render_check=True)
    a, b = raw.reset(seed=3)[0], norm.reset(seed=3)[0]
    rng = np.random.default_rng(1)
    for _ in range(10):
        act = rng.uniform(-1, 1, 12).astype(np.float32)
        a, ra, *_ = raw.step(act * 4.0)
        b, rb, *_ = norm.step(act)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        assert ra == pytest.approx(rb, abs=1e-9)
    vec = gymnasium.make_vec(MC, 2, normalize_actions=True)
    assert vec.single_action_space.high[0] == 1.0
    vec.reset(seed=0)
    vec.step(np.ones((2, 12), np.float32))
    vec.close()
