"""Issue 14's probe table, row by row, through the CLI: nothing trains on unchecked input, runs
cannot trample each other, every failure is one line, and nothing written is lost.

Learning histories here are written by hand with h5py from the format's facts (SPEC.md: chunk
groups "start-end" holding proprio_observation, action, reward, step_num), not by adaptkit."""

from __future__ import annotations

import builtins
import errno
import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from helpers_model import tiny_checkpoint
from helpers_train import TINY_MODEL, make_world, tiny_train
from typer.testing import CliRunner

from adaptkit.cli import app
from adaptkit.train import pretrain

STATS = ("obs_mean", "obs_std", "acs_mean", "acs_std")
MC_TASK = {
    "minicheetah_walking_ad": {
        "type": "default",
        "path": "minicheetah_trajectories",
        "group": "minicheetah_locomotion",
        "reward_scale": 1.0,
        "episode_sparsity": 1,
    }
}


# -- fixtures ---------------------------------------------------------------------------------
def write_h5(path: Path, obs, act, rew, step, chunk: int = 50) -> Path:
    """One history file in the Vintix layout, by hand. Each array is split at the same chunk
    boundaries (a shorter one simply gives its chunks fewer rows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(obs)
    with h5py.File(path, "w") as f:
        for s in range(0, n, chunk):
            e = min(s + chunk, n)
            g = f.create_group(f"{s}-{e - 1}")
            g["proprio_observation"] = np.asarray(obs[s:e], np.float32)
            g["action"] = np.asarray(act[s:e], np.float32)
            g["reward"] = np.asarray(rew[s:e], np.float32)
            g["step_num"] = np.asarray(step[s:e], np.int32)
    return path


def good_arrays(n: int = 120, seed: int = 0, episode: int = 30):
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(n, 45)).astype(np.float32)
    act = (obs[:, :12] * 0.5).astype(np.float32)
    rew = rng.normal(size=n).astype(np.float32)
    return obs, act, rew, np.arange(n) % episode


def write_mc_data(root: Path, corrupt=None, chunk: int = 50) -> Path:
    """data/minicheetah_trajectories with two good histories and root/mc.yaml naming them;
    `corrupt(arrays)` edits the second one (a dict of obs/act/rew/step) before it is written in
    chunks of `chunk`."""
    (root / "mc.yaml").write_text(yaml.safe_dump(MC_TASK))  # named data: nothing is collected
    data = root / "data"
    folder = data / "minicheetah_trajectories"
    write_h5(folder / "history_0.h5", *good_arrays(seed=1))
    arrays = dict(zip(("obs", "act", "rew", "step"), good_arrays(seed=2), strict=True))
    if corrupt is not None:
        corrupt(arrays)
    write_h5(
        folder / "history_1.h5", arrays["obs"], arrays["act"], arrays["rew"], arrays["step"], chunk
    )
    return data


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A tiny pretrained base (Go1-like group), trained once for the module."""
    root = tmp_path_factory.mktemp("base")
    paths = make_world(root)
    pretrain(
        [paths["pretrain_config"]],
        paths["data"],
        "base",
        root / "models",
        TINY_MODEL,
        tiny_train(epochs=1),
    )
    return root / "models" / "base"


def cli(*args) -> object:
    return CliRunner().invoke(app, [str(a) for a in args])


def finetune_args(base: Path, data: Path, save_dir: Path, name: str = "run", *extra) -> list:
    return [
        "finetune",
        "minicheetah",
        "--pretrained-path",
        base,
        "--data-dir",
        data,
        "--save-dir",
        save_dir,
        "--name",
        name,
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--precision",
        "fp32",
        "--no-eval",
        "--dataset-config-paths",
        data.parent / "mc.yaml",  # written by write_mc_data
        *extra,
    ]


def one_error(result) -> str:
    """The run failed with exit 1 and exactly one line on stderr: `error: ...`."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def metric_steps(run: Path) -> list[int]:
    """The step of every training-step line (summary lines carry an `event` key)."""
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in lines if "event" not in r]


# -- a pickled expert never runs --------------------------------------------------------------
class _Payload:
    """Unpickling this writes a marker file: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


@pytest.mark.parametrize("kind", ["torch.save", "raw pickle", "whole nn.Module"])
def test_pickled_expert_is_refused_and_never_runs(tmp_path, kind):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    if kind == "torch.save":
        torch.save(_Payload(marker), evil)
    elif kind == "raw pickle":
        evil.write_bytes(pickle.dumps(_Payload(marker)))
    else:
        torch.save(torch.nn.Linear(45, 12), evil)
    line = one_error(cli("demonstrator", "minicheetah", "--expert", evil, "--num-envs", 1))
    assert "holds pickled Python objects, which adaptkit never loads" in line
    assert not marker.exists()
    out = tmp_path / "data"
    one_error(
        cli(
            "collect",
            "minicheetah",
            "--expert",
            evil,
            "--data-dir",
            out,
            "--histories",
            1,
            "--steps-per-history",
            10,
        )
    )
    assert not marker.exists() and not out.exists()


def test_state_dict_expert_needs_the_plugins_architecture(registry, tmp_path):
    from dataclasses import replace

    from adaptkit.errors import AdaptkitError
    from adaptkit.sim.demonstrator import TorchPolicy, load_demonstrator

    net = torch.nn.Sequential(torch.nn.Linear(45, 12))
    sd_file = tmp_path / "expert.pt"
    torch.save(net.state_dict(), sd_file)
    line = one_error(cli("demonstrator", "minicheetah", "--expert", sd_file, "--num-envs", 1))
    assert "a state dict, but robot 'minicheetah' declares no expert architecture" in line
    spec = replace(
        registry.robot("minicheetah"),
        extra={
            "expert": str(sd_file),
            "expert_arch": lambda: torch.nn.Sequential(torch.nn.Linear(45, 12)),
        },
    )
    policy = load_demonstrator(spec)
    assert isinstance(policy, TorchPolicy)
    assert torch.equal(policy.module[0].weight, net[0].weight)
    wrong = replace(
        spec,
        extra={**spec.extra, "expert_arch": lambda: torch.nn.Sequential(torch.nn.Linear(45, 13))},
    )
    with pytest.raises(
        AdaptkitError, match=r"0\.weight: file \[12, 45\] vs architecture \[13, 45\]"
    ):
        load_demonstrator(wrong)


def test_every_torch_load_is_weights_only():
    """An audit of the source: no torch.load anywhere without weights_only=True."""
    import ast

    root = Path(__file__).resolve().parents[1]
    offenders = []
    for folder in ("src", "plugins", "tools", "bench", "scripts"):
        for path in (root / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "torch"
                ):
                    kw = {k.arg: k.value for k in node.keywords}
                    ok = isinstance(kw.get("weights_only"), ast.Constant) and (
                        kw["weights_only"].value is True
                    )
                    if not ok:
                        offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders, offenders


# -- pre-flight: bad histories are refused before anything is written ------------------------
def _set_step(index, value):
    def fn(a):
        a["step"] = np.array(a["step"])
        a["step"][index] = value

    return fn


def _short_steps(a):  # step_num 100 rows shorter than the observations (one 120-row chunk)
    a["step"] = a["step"][:20]


def _nan_obs(a):
    a["obs"] = a["obs"].copy()
    a["obs"][77, 3] = np.nan


def _inf_reward(a):
    a["rew"] = a["rew"].copy()
    a["rew"][61] = np.inf


PREFLIGHT = {
    "step_num 5000 at row 10": (
        _set_step(10, 5000),
        50,
        "chunk '0-49': 'step_num' at step 10 is 5000, expected 0 or 10",
    ),
    "step_num all -7": (_set_step(slice(None), -7), 50, "'step_num' at step 0 is -7, expected 0"),
    "step_num 100 rows short": (
        _short_steps,
        120,
        "chunk '0-119': dataset 'step_num' has 20 rows, expected 120",
    ),
    "NaN observation": (
        _nan_obs,
        50,
        "chunk '50-99': dataset 'proprio_observation' has NaN/inf at step 77 (dim 3)",
    ),
    "inf reward": (_inf_reward, 50, "chunk '50-99': dataset 'reward' has NaN/inf at step 61"),
}


@pytest.mark.parametrize(("corrupt", "chunk", "message"), PREFLIGHT.values(), ids=PREFLIGHT.keys())
def test_finetune_refuses_bad_histories_before_writing(base, tmp_path, corrupt, chunk, message):
    data = write_mc_data(tmp_path, corrupt, chunk)
    extra = []
    if corrupt is _nan_obs:  # given stats skip the stats pass: the data is still checked
        stats = {
            "minicheetah_walking_ad": {
                "obs_mean": [0.0] * 45,
                "obs_std": [1.0] * 45,
                "acs_mean": [0.0] * 12,
                "acs_std": [1.0] * 12,
            }
        }
        (tmp_path / "stats.json").write_text(json.dumps(stats))
        extra = ["--stats", tmp_path / "stats.json"]
    line = one_error(cli(*finetune_args(base, data, tmp_path / "models", "run", *extra)))
    assert "history_1.h5" in line and message in line, line
    assert not (tmp_path / "models").exists()  # not even the run folder or its lock


def test_pretrain_refuses_bad_histories_before_writing(tmp_path):
    data = write_mc_data(tmp_path, _set_step(10, 5000))
    cfg = tmp_path / "mc.yaml"  # written by write_mc_data
    model = tmp_path / "tiny.yaml"
    model.write_text(yaml.safe_dump(TINY_MODEL))
    line = one_error(
        cli(
            "pretrain",
            cfg,
            "--data-dir",
            data,
            "--save-dir",
            tmp_path / "models",
            "--model-config",
            model,
            "--epochs",
            1,
        )
    )
    assert "history_1.h5: chunk '0-49': 'step_num' at step 10 is 5000" in line
    assert not (tmp_path / "models").exists()


# -- a failure during training leaves a state the next command accepts ------------------------
def test_nan_from_the_data_names_it_and_the_rerun_is_accepted(base, tmp_path, monkeypatch):
    # the data check refuses |x| > 1e6 since round 3 (test_reliability_round3): lifted here, so
    # the training loop's own diagnosis, the second line of defence, is still tested
    import adaptkit.data.check as check

    monkeypatch.setattr(check, "MAX_ABS_VALUE", float("inf"))

    def huge_actions(a):  # finite, so the data check passes, but the loss overflows
        a["act"] = a["act"] * np.float32(1e19)

    data = write_mc_data(tmp_path, huge_actions)
    args = finetune_args(base, data, tmp_path / "models")
    line = one_error(cli(*args))
    assert "loss became inf" in line and "the cause is the data, not the learning rate" in line
    assert "running the same command again starts over" in line
    assert (tmp_path / "models" / "run" / "0000_epoch").is_dir()  # the untrained start
    write_mc_data(tmp_path)  # the data fixed, the same command runs
    r = cli(*args)
    assert r.exit_code == 0, r.output
    assert metric_steps(tmp_path / "models" / "run") == list(range(1, 15))


def test_failure_after_an_epoch_offers_resume_and_metrics_hold_each_step_once(
    base, tmp_path, monkeypatch
):
    from adaptkit.train.loop import Trainer

    data = write_mc_data(tmp_path)
    args = finetune_args(base, data, tmp_path / "models", "run", "--epochs", "2")
    real = Trainer.train_step

    def diverge_in_epoch_2(self, it):
        loss = real(self, it)
        return float("nan") if self.global_step > self.steps_per_epoch + 3 else loss

    monkeypatch.setattr(Trainer, "train_step", diverge_in_epoch_2)
    line = one_error(cli(*args))
    assert "loss became nan at step 18 (epoch 2)" in line
    assert "the optimiser diverged: lower --lr" in line  # the batch itself was moderate
    assert "0001_epoch is complete: `--resume` continues after epoch 1" in line
    line = one_error(cli(*args))  # a trained epoch exists: no silent restart
    assert "already holds checkpoints (newest 0001_epoch); pass --resume" in line
    monkeypatch.setattr(Trainer, "train_step", real)
    r = cli(*args, "--resume")
    assert r.exit_code == 0, r.output
    assert metric_steps(tmp_path / "models" / "run") == list(range(1, 29))


# -- one run per folder -----------------------------------------------------------------------
def _hold_lock(save_dir: Path, name: str) -> subprocess.Popen:
    code = (
        "import time\n"
        "from adaptkit.train.run_dir import RunDir\n"
        f"with RunDir({str(save_dir)!r}, {name!r}).hold():\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"held"
    return proc


def test_a_live_run_folder_is_refused_and_freed_by_kill_9(base, tmp_path):
    data = write_mc_data(tmp_path)
    models = tmp_path / "models"
    holder = _hold_lock(models, "run")
    try:
        for extra in ([], ["--resume"]):
            line = one_error(cli(*finetune_args(base, data, models, "run", *extra)))
            assert f"{models / 'run'} is in use by another run (pid {holder.pid} on " in line
            assert not (models / "run" / "0000_epoch").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    r = cli(*finetune_args(base, data, models, "run"))  # the kernel released the dead lock
    assert r.exit_code == 0, r.output
    assert not (models / "run" / ".lock").exists()


def test_two_finetunes_at_once_one_runs_the_other_is_refused(base, tmp_path):
    data = write_mc_data(tmp_path)
    models = tmp_path / "models"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adaptkit",
                *map(str, finetune_args(base, data, models, "same", "--seed", str(seed))),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (5, 6)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = [p.returncode for p in procs]
    assert sorted(codes) == [0, 1], outs
    winner = codes.index(0)
    err = outs[1 - winner][1].strip().splitlines()
    assert len(err) == 1 and ("is in use by another run" in err[0] or "already holds" in err[0])
    cfg = json.loads((models / "same" / "0001_epoch" / "config.json").read_text())
    assert cfg["seed"] == (5, 6)[winner]  # every file is the winner's
    assert metric_steps(models / "same") == list(range(1, 15))


# -- OS errors are one line, nothing half-written ---------------------------------------------
@pytest.fixture
def tmpfs(tmp_path):
    """mount(size, read_only) -> a fresh tmpfs; skipped where mounting is not allowed."""
    mounted = []

    def mount(size: str, read_only: bool = False) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        opts = f"size={size}" + (",ro" if read_only else "")
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)], capture_output=True
        )
        if r.returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN)")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_save_dir_that_is_a_file(base, tmp_path):
    data = write_mc_data(tmp_path)
    (tmp_path / "models").write_text("not a folder")
    line = one_error(cli(*finetune_args(base, data, tmp_path / "models")))
    assert f"{tmp_path / 'models' / 'run'}: cannot create the run folder" in line
    assert "not a directory" in line
    assert (tmp_path / "models").read_text() == "not a folder"


def test_read_only_save_dir(base, tmp_path, tmpfs):
    data = write_mc_data(tmp_path)
    ro = tmpfs("1m", read_only=True)
    line = one_error(cli(*finetune_args(base, data, ro)))
    assert f"{ro / 'run'}: cannot create the run folder: read-only file system" in line


def test_disk_full_mid_run_keeps_every_complete_checkpoint(base, tmp_path, tmpfs):
    data = write_mc_data(tmp_path)
    small = tmpfs("160k")  # room for the untrained 0000_epoch, not for 0001_epoch as well
    line = one_error(cli(*finetune_args(base, data, small, "run", "--epochs", "3")))
    assert "no space left on device (disk full)" in line, line
    run = small / "run"
    assert not [p for p in run.iterdir() if ".tmp-" in p.name]  # no half-written save left
    from adaptkit.ckpt.load import load_checkpoint

    load_checkpoint(run)  # the newest complete checkpoint still loads


def test_disk_full_while_saving_simulated(base, tmp_path, monkeypatch):
    """The same without a tmpfs: torch's writes fail with ENOSPC at epoch 1's save."""
    data = write_mc_data(tmp_path)
    real = torch.save

    def full(obj, f, *a, **kw):
        if "0001_epoch" in str(getattr(f, "name", f)):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", full)
    line = one_error(cli(*finetune_args(base, data, tmp_path / "models")))
    run = tmp_path / "models" / "run"
    assert line.startswith(f"error: {run / '0001_epoch'}: cannot write the checkpoint: no space")
    assert line.endswith("no trained epoch was saved: running the same command again starts over")
    assert sorted(p.name for p in run.iterdir()) == ["0000_epoch", "metrics.jsonl"]


def test_permission_denied_simulated(base, tmp_path, monkeypatch):
    data = write_mc_data(tmp_path)
    locked = tmp_path / "locked"
    real = Path.mkdir

    def deny(self, *a, **kw):  # root ignores chmod: refuse like a foreign folder would
        if str(self).startswith(str(locked)):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *a, **kw)

    monkeypatch.setattr(Path, "mkdir", deny)
    line = one_error(cli(*finetune_args(base, data, locked)))
    assert f"{locked / 'run'}: cannot create the run folder: permission denied" in line


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_data_stats_to_dev_full(tmp_path):
    data = write_mc_data(tmp_path)
    cfg = tmp_path / "mc.yaml"  # written by write_mc_data
    line = one_error(cli("data", "stats", cfg, "--data-dir", data, "--out", "/dev/full"))
    assert (
        line == "error: /dev/full: cannot write the stats file: no space left on device (disk full)"
    )


def test_stats_file_on_a_read_only_fs_is_untouched(tmp_path, tmpfs):
    data = write_mc_data(tmp_path)
    cfg = tmp_path / "mc.yaml"  # written by write_mc_data
    point = tmpfs("1m")
    old = json.dumps({"go1_walking_ad": {k: [0.0, 1.0] for k in STATS}})
    (point / "stats.json").write_text(old)
    subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
    line = one_error(cli("data", "stats", cfg, "--data-dir", data, "--out", point / "stats.json"))
    assert line == (
        f"error: {point / 'stats.json'}: cannot write the stats file: read-only file system"
    )
    assert (point / "stats.json").read_text() == old


def test_history_writer_on_a_full_disk_leaves_nothing(tmpfs):
    from adaptkit.data.history import HistoryWriter
    from adaptkit.errors import AdaptkitError

    point = tmpfs("64k")
    obs, act, rew, step = good_arrays(n=2000)
    message = r"history_0\.h5: cannot write the learning history"
    with (
        pytest.raises(AdaptkitError, match=message),
        HistoryWriter(point / "history_0.h5", 45, 12, chunk_size=500) as w,
    ):
        w.append(obs, act, rew, step)
    assert list(point.iterdir()) == []


# -- strict configs -----------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["parallel_residual", "norm_acs"])
def test_config_json_string_boolean_is_refused(tmp_path, field):
    ckpt = tiny_checkpoint(tmp_path)
    cfg = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**cfg, field: "false"}))
    line = one_error(cli("inspect", ckpt))
    assert f"config.json: field '{field}' must be true or false" in line


def test_config_json_unknown_keys_still_pass_through(tmp_path):
    ckpt = tiny_checkpoint(tmp_path)
    cfg = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**cfg, "random_sample_frac": 0.1}))
    assert cli("inspect", ckpt).exit_code == 0


def test_duplicate_task_in_a_dataset_yaml(tmp_path, base):
    data = write_mc_data(tmp_path)
    body = yaml.safe_dump(MC_TASK)
    cfg = tmp_path / "twice.yaml"
    cfg.write_text(body + body.replace("reward_scale: 1.0", "reward_scale: 2.0"))
    line = one_error(cli("data", "validate", cfg, "--data-dir", data))
    assert f"{cfg}: duplicate key 'minicheetah_walking_ad' on line 7 (first on line 1)" in line
    line = one_error(
        cli(*finetune_args(base, data, tmp_path / "models", "run", "--dataset-config-paths", cfg))
    )
    assert "duplicate key 'minicheetah_walking_ad'" in line
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hidden_size: 64\n", "unknown key 'hidden_size' (model keys are observation_emb_dim"),
        ("lr: 0.001\n", "unknown key 'lr' (it is a training setting: pass --lr)"),
        ("transformer_depth: 1\ntransformer_depth: 2\n", "duplicate key 'transformer_depth'"),
        ("bias: 'false'\n", "field 'bias' must be true or false"),
        ("attn_dropout: '0.1'\n", "field 'attn_dropout' must be a number in [0, 1)"),
    ],
)
def test_model_config_is_strict(tmp_path, text, message):
    data = write_mc_data(tmp_path)
    cfg = tmp_path / "mc.yaml"  # written by write_mc_data
    model = tmp_path / "model.yaml"
    model.write_text(yaml.safe_dump(TINY_MODEL) + text)
    line = one_error(
        cli(
            "pretrain",
            cfg,
            "--data-dir",
            data,
            "--save-dir",
            tmp_path / "models",
            "--model-config",
            model,
        )
    )
    assert f"model config {model}: " in line and message in line, line
    assert not (tmp_path / "models").exists()


def test_train_config_types_are_strict():
    from adaptkit.errors import AdaptkitError
    from adaptkit.train import TrainConfig

    for bad, name in (
        ({"lr": "1e-3"}, "lr"),
        ({"lr": True}, "lr"),
        ({"shuffle": "false"}, "shuffle"),
        ({"epochs": 2.0}, "epochs"),
        ({"betas": ("x", 0.9)}, "betas"),
        ({"seed": True}, "seed"),
    ):
        with pytest.raises(AdaptkitError, match=f"training option '{name}' must be"):
            TrainConfig(**bad)


# -- durable writes -------------------------------------------------------------------------------
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to name fds")
def test_every_writer_fsyncs_the_file_and_its_folder(tmp_path, monkeypatch):
    """Each writer fsyncs what it wrote and the folder it renamed it into."""
    from helpers_model import tiny_meta, tiny_model

    from adaptkit.ckpt.adapter import BaseRef, save_adapter
    from adaptkit.ckpt.checkpoint import save_checkpoint
    from adaptkit.data.config import write_dataset_config
    from adaptkit.data.history import HistoryWriter, write_task_metadata
    from adaptkit.data.stats_file import save_stats_file
    from adaptkit.meta import Stats

    synced: list[str] = []
    real = os.fsync

    def record(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", record)

    def check(target: Path) -> None:
        """Its hidden temp (`.name.…`, renamed to `target`) and the folder were synced."""
        temps = [p for p in map(Path, synced) if p.parent == target.parent]
        assert any(p.name.startswith(f".{target.name}.") for p in temps), (target, synced)
        assert str(target.parent) in synced, (target.parent, synced)
        synced.clear()

    model = tiny_model()
    ckpt = save_checkpoint(tmp_path / "run" / "0001_epoch", model, tiny_meta(), {})
    for name in ("model.pth", "metadata.json", "config.json"):
        assert any(p.endswith(name) and ".0001_epoch.tmp-" in p for p in synced), name
    check(ckpt)  # the folder renamed into run/
    adapter = save_adapter(tmp_path / "adapter", model, "arm", tiny_meta(), BaseRef("f" * 64, "b"))
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        assert any(p.endswith(name) and ".adapter.tmp-" in p for p in synced), name
    check(adapter)
    stats = Stats((0.0,), (1.0,), (0.0,), (1.0,))
    save_stats_file(tmp_path / "stats.json", {"t": stats})
    check(tmp_path / "stats.json")
    write_dataset_config(tmp_path / "d.yaml", MC_TASK)
    check(tmp_path / "d.yaml")
    folder = tmp_path / "minicheetah_trajectories"
    write_task_metadata(folder, {"task": "t"})
    check(folder / "minicheetah_trajectories.json")
    obs, act, rew, step = good_arrays(n=60)
    with HistoryWriter(folder / "history_0.h5", 45, 12, chunk_size=50) as w:
        w.append(obs, act, rew, step)
    check(folder / "history_0.h5")


def test_a_save_killed_between_its_renames_is_put_back(tmp_path):
    from helpers_model import tiny_meta, tiny_model

    from adaptkit.ckpt.checkpoint import save_checkpoint
    from adaptkit.train.run_dir import RunDir

    run = RunDir(tmp_path, "run")
    save_checkpoint(run.epoch(0), tiny_model(), tiny_meta(), {})
    run.epoch(0).rename(run.path / ".0000_epoch.old-1234abcd")  # moved aside, then killed
    (run.path / ".0000_epoch.tmp-1234abcd").mkdir()  # the new one, half-written
    run.prepare(resume=False, is_main=True)
    assert sorted(p.name for p in run.path.iterdir()) == ["0000_epoch"]
    assert (run.epoch(0) / "model.pth").is_file()
