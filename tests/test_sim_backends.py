"""One env contract, any backend: the task reads only what a backend reports, every backend
honours reset/step/read the same way, and a missing Genesis is a one-line error naming the extra.

The contract tests run for every backend importable here (Genesis only with `adaptkit[genesis]`;
its heavier tests live in test_sim_genesis.py behind the `genesis` marker)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from adaptkit.cli import app
from adaptkit.defaults import Sim
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import EvalSettings
from adaptkit.plugins import load_registry
from adaptkit.sim import backend as backend_mod
from adaptkit.sim.backend import make_backend
from adaptkit.sim.env import LocomotionEnv
from adaptkit.sim.physics import STATE_WIDTH
from adaptkit.sim.rotations import quat_from_rpy

HAS_GENESIS = importlib.util.find_spec("genesis") is not None
SIMS = [
    Sim.MUJOCO,
    pytest.param(
        Sim.GENESIS,
        marks=[
            pytest.mark.genesis,
            pytest.mark.skipif(not HAS_GENESIS, reason="pip install 'adaptkit[genesis]'"),
        ],
    ),
]


@pytest.fixture(scope="module")
def spec():
    return load_registry().robot("minicheetah")


class ScriptedBackend:
    """A backend whose state is whatever the test writes: the task must read only this."""

    sim = Sim.MUJOCO

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.state = np.zeros((num_envs, STATE_WIDTH))
        self.state[:, 3] = 1.0  # upright
        self.targets: list[np.ndarray] = []
        self.resets: list[np.ndarray] = []

    def reset(self, idx, base_pos, base_quat, joint_pos, base_lin_vel) -> None:
        self.resets.append(np.asarray(idx))
        self.state[idx, 0:3], self.state[idx, 3:7] = base_pos, base_quat
        self.state[idx, 7:10], self.state[idx, 13:25] = base_lin_vel, joint_pos

    def step(self, targets: np.ndarray) -> None:
        self.targets.append(targets.copy())

    def read(self, idx=slice(None)) -> np.ndarray:
        return self.state[idx].copy()

    def close(self) -> None:
        pass


def test_task_is_backend_independent(spec, monkeypatch):
    """Observations, PD targets with latency, termination and masked resets come from the
    backend's reported state alone."""
    fake = ScriptedBackend(2)
    monkeypatch.setattr("adaptkit.sim.env.make_backend", lambda *a, **k: fake)
    env = LocomotionEnv(spec, 2, seed=0)
    obs = env.reset()
    assert [list(i) for i in fake.resets] == [[0, 1]]
    default = np.asarray(spec.default_joint_angles)
    # the reset pose reached the backend: the observed joint offsets are the reset noise
    np.testing.assert_allclose(obs[:, 9:21], fake.state[:, 13:25] - default, atol=1e-6)
    assert np.all(np.abs(obs[:, 9:21]) <= 0.05 + 1e-6)
    fake.state[:, 10:13] = [0.4, -0.8, 1.2]  # body angular velocity
    fake.state[1, 3:7] = quat_from_rpy(np.array([0.5]), np.array([0.0]), np.array([0.0]))[0]
    obs, _, done, info = env.step(np.ones((2, 12)))
    np.testing.assert_allclose(fake.targets[0], np.tile(default, (2, 1)))  # latency: a_{-1} = 0
    np.testing.assert_allclose(info["terminal_obs"][0, 0:3], [0.1, -0.2, 0.3], atol=1e-6)
    assert list(done) == [False, True] and bool(info["fell"][1])  # rolled 0.5 rad > 10°
    assert [list(i) for i in fake.resets[1:]] == [[1]]  # only the fallen env was reset
    env.step(np.ones((2, 12)))
    np.testing.assert_allclose(fake.targets[1][0], default + spec.action_scale)


@pytest.mark.parametrize("sim", SIMS)
def test_backend_contract(spec, sim):
    """reset puts envs exactly where asked (others untouched); standing PD holds the pose."""
    n = 3
    be = make_backend(sim, spec, n)
    try:
        default = np.asarray(spec.default_joint_angles)
        pos = np.tile([0.0, 0.0, spec.base_init_height], (n, 1))
        quat = quat_from_rpy(np.zeros(n), np.zeros(n), np.array([0.0, 0.1, -0.1]))
        joints = default + np.linspace(-0.05, 0.05, 12)
        be.reset(np.arange(n), pos, quat, np.tile(joints, (n, 1)), np.zeros((n, 3)))
        s = be.read()
        assert s.shape == (n, STATE_WIDTH) and s.dtype == np.float64
        np.testing.assert_allclose(s[:, 0:3], pos, atol=1e-6)
        np.testing.assert_allclose(s[:, 3:7], quat, atol=1e-6)
        np.testing.assert_allclose(s[:, 13:25], np.tile(joints, (n, 1)), atol=1e-6)
        np.testing.assert_allclose(s[:, 7:13], 0.0, atol=1e-6)
        for _ in range(100):  # 2 s of standing: the robot lands and stands on its feet
            be.step(np.tile(default, (n, 1)))
        s = be.read()
        assert np.all(s[:, 2] > 0.15) and np.all(s[:, 3] > 0.98)  # up, and still upright
        np.testing.assert_allclose(s[:, 13:25], np.tile(default, (n, 1)), atol=0.15)
        # a masked reset moves only env 1, and sets its base velocity (world frame)
        before = be.read([0, 2])
        be.reset(np.array([1]), pos[1:2], quat[1:2], joints[None], np.array([[0.3, 0.0, 0.0]]))
        np.testing.assert_allclose(be.read([0, 2]), before)
        np.testing.assert_allclose(be.read([1])[0, 7:10], [0.3, 0.0, 0.0], atol=1e-6)
        np.testing.assert_allclose(be.read([1])[0, 0:3], pos[1], atol=1e-6)
    finally:
        be.close()


def _without_genesis(monkeypatch):
    monkeypatch.setitem(sys.modules, "genesis", None)  # `import genesis` raises ImportError


def test_missing_genesis_is_one_line_error(spec, monkeypatch):
    _without_genesis(monkeypatch)
    with pytest.raises(AdaptkitError, match=r"pip install 'adaptkit\[genesis\]'"):
        LocomotionEnv(spec, 1, sim="genesis")
    with pytest.raises(AdaptkitError, match="--sim: expected one of mujoco, genesis"):
        LocomotionEnv(spec, 1, sim="bullet")
    assert EvalSettings(sim="genesis").sim is Sim.GENESIS


@pytest.mark.parametrize(
    "args",
    [
        "demonstrator minicheetah --sim genesis --num-envs 1",
        "collect minicheetah --sim genesis --histories 1 --steps-per-history 5 --data-dir {d}",
        "eval some/ckpt --robot minicheetah --sim genesis --out {d}/e",
        "compare --robot minicheetah --sim genesis --out {d}/c",
    ],
)
def test_cli_sim_genesis_without_genesis(args, monkeypatch, tmp_path):
    """Every simulating command: exit 1, one line naming the extra, nothing written."""
    _without_genesis(monkeypatch)
    res = CliRunner().invoke(app, args.format(d=tmp_path).split())
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and "pip install 'adaptkit[genesis]'" in lines[0], res.output
    assert "Traceback" not in res.output and list(tmp_path.iterdir()) == []


def test_video_refused_outside_mujoco(spec):
    from adaptkit.evaluate.settings import check_video_sim

    with pytest.raises(AdaptkitError, match="--video: films MuJoCo rollouts only"):
        check_video_sim(EvalSettings(sim="genesis"))
    check_video_sim(EvalSettings())


def test_backend_choice_names_the_module():
    assert backend_mod.parse_sim(None) is Sim.MUJOCO
    assert backend_mod.parse_sim("GENESIS") is Sim.GENESIS
