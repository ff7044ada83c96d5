"""`adaptkit export`: the exported policy (TorchScript, ONNX) acts as adaptkit's in-simulator
policy does, over a full 1000-step MuJoCo episode, for a LoRA fine-tuned group and for a
fork-layout checkpoint; its sidecar holds what a control loop needs; `eval --exported` runs it."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from helpers_fork import write_fork_checkpoint
from helpers_train import TINY_MODEL, lora_finetune
from typer.testing import CliRunner

from adaptkit.ckpt.checkpoint import checkpoint_fingerprint
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.cli import app
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import EvalSettings, ModelPolicy, rollout
from adaptkit.export.build import export_checkpoint, export_policy
from adaptkit.export.runtime import ExportedPolicy
from adaptkit.plugins import get_registry
from adaptkit.sim.env import LocomotionEnv

EPISODE = 1000
TOL = 1e-5


class Lockstep:
    """Drives the env with adaptkit's policy and asks the exported one the same question at
    every step (same observation, reward and episode starts): the largest action difference."""

    name = "lockstep"

    def __init__(self, reference: ModelPolicy, exported: ExportedPolicy) -> None:
        self.reference, self.exported = reference, exported
        self.max_diff, self.steps = 0.0, 0

    def reset(self, num_envs: int) -> None:
        self.reference.reset(num_envs)
        self.exported.reset(num_envs)

    def act(self, obs: np.ndarray, env: Any) -> np.ndarray:
        want = self.reference.act(obs, env)
        got = self.exported.act(obs.copy(), env)
        assert got.shape == want.shape and got.dtype == np.float32
        self.max_diff = max(self.max_diff, float(np.abs(got - want).max()))
        self.steps += 1
        return want

    def observe(self, actions: np.ndarray, rewards: np.ndarray, done: np.ndarray) -> None:
        self.reference.observe(actions, rewards, done)
        self.exported.observe(actions, rewards, done)

    def close(self) -> None:
        self.reference.close()
        self.exported.close()

    def describe(self) -> dict[str, Any]:
        return {}


def _lockstep(policy: ModelPolicy, file, envs: int = 1, steps: int = EPISODE):
    """`steps` control steps in episodes of 1000 (a fall starts the next one early)."""
    twin = Lockstep(policy, ExportedPolicy(file))
    env = LocomotionEnv(policy.robot, envs, seed=0, episode_length=EPISODE)
    result = rollout(twin, env, None, steps)
    env.close()
    return twin, result


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """A base pretrained on Go1-like data and a LoRA fine-tune of a new Mini Cheetah group."""
    base, run, paths = lora_finetune(tmp_path_factory.mktemp("export"))
    return {"run": run.checkpoints[-1], "base": base.run_dir, "data": paths["data"]}


@pytest.fixture(scope="module")
def fork(tmp_path_factory):
    return write_fork_checkpoint(tmp_path_factory.mktemp("fork") / "0015_epoch")


def _policy(ckpt, robot: str, data=None) -> ModelPolicy:
    settings = EvalSettings(data_dir=data, device="cpu")
    return ModelPolicy.from_checkpoint(ckpt, get_registry().robot(robot), settings)


def test_torchscript_equals_the_in_sim_policy_over_an_episode_lora_finetune(finetuned, tmp_path):
    ckpt = load_checkpoint(finetuned["run"])
    assert ckpt.model.lora  # the group's LoRA goes into the export too
    res = export_checkpoint(
        finetuned["run"], get_registry().robot("minicheetah"), tmp_path, "torchscript",
        EvalSettings(data_dir=finetuned["data"]),
    )  # fmt: skip
    policy = _policy(finetuned["run"], "minicheetah", finetuned["data"])
    # context 8 < 1000 steps: the ring buffer wraps over and over
    assert policy.context_len == TINY_MODEL["context_len"]
    twin, result = _lockstep(policy, res.policy_file)
    assert twin.steps == EPISODE and [e.length for e in result.episodes] == [EPISODE]
    assert twin.max_diff <= TOL
    side = json.loads(res.sidecar_file.read_text())
    assert side["base_fingerprint"] == checkpoint_fingerprint(finetuned["base"])
    assert side["group"] == "minicheetah_locomotion" and side["context_len"] == 8


def test_exported_torchscript_needs_only_torch(fork, tmp_path):
    """The file alone: torch.jit.load, reset, act; episode starts and a batch of envs."""
    policy = _policy(fork, "go1")
    res = export_policy(policy, get_registry().robot("go1"), tmp_path, "torchscript")
    loaded = torch.jit.load(str(res.policy_file))
    side = res.sidecar
    assert side["obs_dim"] == 33 and side["act_dim"] == 12
    assert side["token_order"] == "act,rew,obs" and side["control_rate_hz"] == 50
    assert side["joint_order"] == list(get_registry().robot("go1").joint_names)
    assert len(side["default_pose"]) == 12
    obs = torch.randn(5, 33)
    policy.reset(1)
    loaded.reset(1)
    for t in range(5):
        want = policy.act(obs[t : t + 1].numpy(), None)[0]
        got = loaded.act(obs[t], torch.tensor(0.5))  # one robot: [obs_dim] in, [act_dim] out
        assert got.shape == (12,)
        assert np.abs(got.numpy() - want).max() <= TOL
        policy.observe(want[None], np.array([0.5], np.float32), np.array([t == 2]))
        if t == 2:
            loaded.start_episode()
    loaded.reset(3)  # batched: [B, obs_dim]
    assert loaded.act(torch.randn(3, 33), torch.zeros(3)).shape == (3, 12)


def test_fork_checkpoint_torchscript_over_an_episode(fork, tmp_path):
    policy = _policy(fork, "go1")
    res = export_policy(policy, get_registry().robot("go1"), tmp_path, "torchscript")
    # two envs of random weights fall now and then: episode starts within the context (the
    # step index restarts, the context is kept) are exact too
    twin, result = _lockstep(_policy(fork, "go1"), res.policy_file, envs=2)
    assert twin.steps == EPISODE and len(result.episodes) >= 2
    assert twin.max_diff <= TOL


def test_fork_checkpoint_onnx_over_an_episode(fork, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    policy = _policy(fork, "go1")
    res = export_policy(policy, get_registry().robot("go1"), tmp_path, "onnx")
    assert res.policy_file.name == "policy.onnx"
    twin, _ = _lockstep(_policy(fork, "go1"), res.policy_file)
    assert twin.steps == EPISODE and twin.max_diff <= TOL


def test_export_and_eval_exported_commands(fork, tmp_path):
    runner = CliRunner()
    out = tmp_path / "exp"
    res = runner.invoke(app, ["export", str(fork.parent), "--robot", "go1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "policy.pt").is_file() and (out / "policy.pt.json").is_file()
    args = ["eval", "--exported", str(out / "policy.pt"), "--robot", "go1", "--num-envs", "2"]
    args += ["--episodes", "1", "--episode-length", "20", "--out", str(tmp_path / "ev"), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["policy"] == "exported" and summary["num_episodes"] == 2
    # bad input: one line each
    res = runner.invoke(app, ["export", str(fork.parent), "--robot", "go1", "--format", "tflite"])
    assert res.exit_code == 2 and "--format" in res.output
    res = runner.invoke(app, ["export", str(fork.parent)])
    assert res.exit_code == 1 and "--robot" in res.output
    res = runner.invoke(app, [*args[:2], str(out / "policy.pt"), "--robot", "a1"])
    assert res.exit_code == 1 and "exported for 'go1'" in res.output
    (out / "policy.pt.json").unlink()
    res = runner.invoke(app, args)
    assert res.exit_code == 1 and "sidecar not found" in res.output


# -- adaptkit.load_policy --------------------------------------------------------------------
def test_load_policy_in_process_and_exported_act_alike(fork, tmp_path):
    import adaptkit

    in_process = adaptkit.load_policy(fork.parent, "go1")
    res = export_policy(_policy(fork, "go1"), get_registry().robot("go1"), tmp_path, "torchscript")
    exported = adaptkit.load_policy(res.policy_file)  # the robot comes from the sidecar
    assert in_process.obs_dim == exported.obs_dim == 33 and exported.act_dim == 12
    obs = np.random.default_rng(0).normal(size=(6, 33)).astype(np.float32)
    for t in range(6):
        if t == 3:
            in_process.start_episode()
            exported.start_episode()
        a, b = in_process.act(obs[t], reward=0.1 * t), exported.act(obs[t], reward=0.1 * t)
        assert a.shape == (12,) and np.abs(a - b).max() <= TOL
    batch = in_process.act(obs[:4])  # the batched form: a fresh context of 4 robots
    assert batch.shape == (4, 12) and in_process.batch == 4
    # each row of a batch acts as that robot alone
    alone = adaptkit.load_policy(fork.parent, "go1")
    assert np.abs(alone.act(obs[2]) - batch[2]).max() <= TOL
    with pytest.raises(AdaptkitError, match=r"obs must be \[33\]"):
        in_process.act(np.zeros(5))
    with pytest.raises(AdaptkitError, match="records no robot"):
        adaptkit.load_policy(fork.parent)


def test_import_adaptkit_stays_light():
    import subprocess
    import sys

    code = "import sys, adaptkit; assert 'torch' not in sys.modules; adaptkit.load_policy"
    subprocess.run([sys.executable, "-c", code], check=True)
