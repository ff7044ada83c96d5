"""Genesis, the reference env's simulator, behind the same env contract: a few envs, a few hundred
steps, the demonstrator walks, collection and one eval call of a fork-layout checkpoint.

Needs `pip install 'adaptkit[genesis]'` (skipped without it) and is marked `genesis`:
`python -m pytest -m genesis -q`. All tests share one env count, so the process builds one
Genesis scene (the backend keeps built scenes for reuse); the first build on a machine compiles
Genesis's kernels (about 2 minutes on 2 cores), later ones take seconds."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("genesis")

from helpers_fork import FORK_GROUP, write_fork_checkpoint

from adaptkit.cli import app
from adaptkit.data.history import read_history, read_task_metadata
from adaptkit.evaluate import EvalSettings, evaluate_policy
from adaptkit.plugins import load_registry
from adaptkit.sim import load_demonstrator
from adaptkit.sim.collect import collect_histories
from adaptkit.sim.env import LocomotionEnv

pytestmark = pytest.mark.genesis
N = 4  # one env count for every test: one scene build per process


@pytest.fixture(scope="module")
def specs():
    return load_registry().robots


def test_env_steps_resets_and_layouts(specs):
    """A few hundred steps of random actions: shapes, finite values, falls reset only the fallen."""
    for layout, dim in (("locomotion45", 45), ("fork33", 33)):
        env = LocomotionEnv(specs["go2"].for_layout(layout), N, seed=3, sim="genesis")
        rng = np.random.default_rng(0)
        obs = env.reset()
        assert obs.shape == (N, dim) and obs.dtype == np.float32
        dones = 0
        for _ in range(150):
            obs, rew, done, _ = env.step(rng.uniform(-2, 2, (N, 12)))
            assert np.isfinite(obs).all() and np.isfinite(rew).all()
            dones += int(done.sum())
            assert (env.step_num[done] == 0).all()
        assert dones > 0  # strong random actions tip robots over within 3 s
        env.close()


@pytest.mark.parametrize("name", ["minicheetah", "go2"])
def test_demonstrator_walks_in_genesis(specs, name):
    settings = EvalSettings(num_envs=N, episodes=1, episode_length=300, seed=77, sim="genesis")
    s = evaluate_policy(load_demonstrator(specs[name]), specs[name], settings).summary
    assert s["sim"] == "genesis"
    assert s["fall_rate"] == 0.0
    assert s["mean_speed"] >= 0.35
    assert s["mean_return"] / 300 > 0.012


def test_collect_records_the_simulator(specs, tmp_path):
    spec = specs["minicheetah"]
    paths = collect_histories(spec, tmp_path / "mc", N, 60, N, seed=0, sim="genesis")
    assert len(paths) == N and len(read_history(paths[0]).obs) == 60
    assert read_task_metadata(tmp_path / "mc")["collector"]["sim"] == "genesis"


def test_eval_fork_checkpoint_in_genesis(tmp_path):
    """The quadruped fork's checkpoint (33-dim, act,rew,obs tokens) judged in Genesis."""
    ckpt = write_fork_checkpoint(tmp_path / "fork" / "0015_epoch")
    out = tmp_path / "eval"
    args = f"eval --vintix_path {ckpt} --robot_type go1 --sim genesis --num_envs {N} "
    args += f"--max_steps 120 --token-order act,rew,obs --out {out} --json"
    res = CliRunner().invoke(app, args.split())
    assert res.exit_code == 0, res.output
    s = json.loads((out / "summary.json").read_text())
    assert (s["sim"], s["group"], s["obs_layout"]) == ("genesis", FORK_GROUP, "fork33")
    assert s["control_steps"] == 120
