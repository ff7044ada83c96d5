"""Issue 27's probes (reliability round 3), each with its own fixture: every input and earlier
output is hashed before and after, so a refusal that changed or lost anything fails the test.

Histories are written by hand with h5py from the format's facts (test_reliability.write_h5)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers_model import reference_config, tiny_checkpoint, tiny_meta, tiny_model
from test_reliability import (
    MC_TASK,
    cli,
    finetune_args,
    good_arrays,
    one_error,
    write_h5,
    write_mc_data,
)

from adaptkit import lockfile
from adaptkit.ckpt.checkpoint import save_checkpoint
from adaptkit.data.dataset_folder import lock_path
from adaptkit.model import GroupDims

COLLECT = ["--steps-per-history", "40", "--num-envs", "2", "--episode-length", "20"]


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under `roots` (hidden ones included), by path."""
    out = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for p in files:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def usage_error(result, flag: str) -> str:
    """A bad flag: exit 2, no traceback, the flag named."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert flag in result.output, result.output
    return result.output


# -- 1. a dataset folder is written whole or not at all -----------------------------------------
@pytest.fixture
def collected(tmp_path) -> Path:
    """data/ holding an earlier finished collection of 2 histories (by `adaptkit collect`)."""
    data = tmp_path / "data"
    r = cli("collect", "minicheetah", "--histories", 2, "--data-dir", data, *COLLECT)
    assert r.exit_code == 0, r.output
    return data


def _listed(folder: Path) -> list[str]:
    meta = json.loads((folder / f"{folder.name}.json").read_text())
    return sorted(h["file"] for h in meta["histories"])


def test_collect_killed_midway_leaves_the_earlier_collection_untouched(collected):
    before = snapshot(collected)
    folder = collected / "minicheetah_trajectories"
    cmd = [
        sys.executable,
        "-m",
        "adaptkit",
        "collect",
        "minicheetah",
        "--histories",
        "4",
        "--num-envs",
        "4",
        "--steps-per-history",
        "200000",
        "--data-dir",
        str(collected),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not list(collected.glob(".minicheetah_trajectories.tmp-*/.history_*")):
            assert time.time() < deadline and proc.poll() is None, "collect never started"
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    visible = {k: v for k, v in snapshot(collected).items() if "/." not in k[len(str(collected)) :]}
    assert visible == before  # the old histories, JSON and config, byte for byte
    assert (
        cli(
            "data", "validate", collected / "dataset_config.yaml", "--data-dir", collected
        ).exit_code
        == 0
    )
    # the next collect sweeps the leftover and replaces the folder as a whole
    r = cli("collect", "minicheetah", "--histories", 1, "--data-dir", collected, *COLLECT)
    assert r.exit_code == 0, r.output
    assert [p.name for p in collected.iterdir() if p.name.startswith(".minicheetah")] == []
    assert sorted(p.name for p in folder.glob("*.h5")) == _listed(folder) == ["history_000.h5"]


def test_collect_on_a_full_disk_keeps_the_earlier_collection(collected, monkeypatch):
    import adaptkit.data.history as history

    before = snapshot(collected)
    real, calls = history.commit, []

    def full_on_the_third(tmp, path, what="file"):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tmp, path, what)

    monkeypatch.setattr(history, "commit", full_on_the_third)
    r = cli("collect", "minicheetah", "--histories", 4, "--num-envs", 4, "--data-dir", collected,
            *COLLECT[:2], *COLLECT[4:])  # fmt: skip
    line = one_error(r)
    assert "no space left on device" in line and "minicheetah_trajectories" in line
    assert snapshot(collected) == before  # nothing half-written, no temp left


def test_collect_with_fewer_histories_replaces_the_folder_as_a_whole(collected):
    folder = collected / "minicheetah_trajectories"
    assert _listed(folder) == ["history_000.h5", "history_001.h5"]
    r = cli("collect", "minicheetah", "--histories", 1, "--data-dir", collected, *COLLECT)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in folder.glob("*.h5")) == _listed(folder) == ["history_000.h5"]


def test_a_second_collect_into_the_same_folder_is_refused(collected):
    before = snapshot(collected)
    folder = collected / "minicheetah_trajectories"
    fd = lockfile.acquire(lock_path(folder), lambda who: who)  # a live collect holds it
    try:
        r = cli("collect", "minicheetah", "--histories", 1, "--data-dir", collected, *COLLECT)
        line = one_error(r)
    finally:
        lockfile.release(lock_path(folder), fd)
    assert f"{folder} is being collected by another process (pid {os.getpid()}" in line
    assert snapshot(collected) == before


def test_collect_never_mixes_with_or_deletes_your_own_files(tmp_path):
    data = write_mc_data(tmp_path)  # history_0.h5, history_1.h5: not names collect gives
    before = snapshot(data)
    line = one_error(cli("collect", "minicheetah", "--histories", 1, "--data-dir", data, *COLLECT))
    assert "holds files collect did not write (history_0.h5, history_1.h5)" in line
    assert snapshot(data) == before


def _disagreeing(tmp_path: Path) -> Path:
    """Two hand-written histories and a task JSON that lists three."""
    data = tmp_path / "data"
    folder = data / "minicheetah_trajectories"
    for i in range(2):
        write_h5(folder / f"history_00{i}.h5", *good_arrays(seed=i))
    meta = {"task": "minicheetah_walking_ad", "collector": {"method": "by hand"},
            "histories": [{"file": f"history_00{i}.h5"} for i in range(3)]}  # fmt: skip
    (folder / "minicheetah_trajectories.json").write_text(json.dumps(meta))
    (tmp_path / "mc.yaml").write_text(yaml.safe_dump(MC_TASK))
    return data


def test_data_validate_refuses_files_and_json_that_disagree(tmp_path):
    data = _disagreeing(tmp_path)
    before = snapshot(tmp_path)
    line = one_error(cli("data", "validate", tmp_path / "mc.yaml", "--data-dir", data))
    assert "minicheetah_trajectories.json: lists 3 history file(s)" in line
    assert "holds 2 (missing history_002.h5)" in line
    assert snapshot(tmp_path) == before


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    from test_reliability import base as make_base

    return make_base.__wrapped__(tmp_path_factory)


def test_finetune_preflight_refuses_files_and_json_that_disagree(base, tmp_path):
    data = _disagreeing(tmp_path)
    before = snapshot(tmp_path)
    line = one_error(cli(*finetune_args(base, data, tmp_path / "models")))
    assert "lists 3 history file(s)" in line
    assert snapshot(tmp_path) == before
    assert not (tmp_path / "models" / "run").exists()


# -- 2. values no physical signal has are refused, naming file, chunk, field, step ----------------
def _huge_rows(a):
    a["obs"][40:50, 3] = 1e30  # ten rows, in the first chunk (0-49)


def _wide_dim(a):
    a["obs"][60:70, 7] = 3e5  # within |x| <= 1e6, but a spread no physical signal has


BOUNDS = {
    "huge": (
        _huge_rows,
        "chunk '0-49': dataset 'proprio_observation' has 1e+30 at step 40 (dim 3)",
    ),
    "spread": (_wide_dim, "chunk '50-99': dataset 'proprio_observation' dim 7 spreads"),
}


@pytest.mark.parametrize(("corrupt", "message"), BOUNDS.values(), ids=BOUNDS.keys())
def test_data_validate_refuses_absurd_values(tmp_path, corrupt, message):
    data = write_mc_data(tmp_path, corrupt)
    before = snapshot(tmp_path)
    line = one_error(cli("data", "validate", tmp_path / "mc.yaml", "--data-dir", data))
    assert "history_1.h5: " + message in line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(("corrupt", "message"), BOUNDS.values(), ids=BOUNDS.keys())
def test_finetune_preflight_refuses_absurd_values(base, tmp_path, corrupt, message):
    data = write_mc_data(tmp_path, corrupt)
    before = snapshot(tmp_path)
    line = one_error(cli(*finetune_args(base, data, tmp_path / "models")))
    assert "history_1.h5: " + message in line
    assert snapshot(tmp_path) == before


# -- 3. model sizes are checked before anything is built; the sizes are required ----------------
@pytest.fixture
def checkpoint(tmp_path) -> Path:
    """A tiny saved checkpoint whose config.json the probes edit."""
    return tiny_checkpoint(tmp_path)


def _edit_config(ckpt: Path, **changes) -> None:
    path = ckpt / "config.json"
    raw = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    path.write_text(json.dumps(raw))


SIZES = {
    "depth 1e6": ({"transformer_depth": 1_000_000}, "'transformer_depth' must be at most 1,024"),
    "depth 1e6 float": (
        {"transformer_depth": 1e6},
        "'transformer_depth' must be a positive integer",
    ),
    "hidden 1e9": (
        {"hidden_dim": 10**9, "observation_emb_dim": 10**9 - 16},
        "'observation_emb_dim' must be at most 65,536",
    ),
    "intermediate 1e9": (
        {"intermediate_size": 10**9},
        "'intermediate_size' must be at most 262,144",
    ),
    "no depth": ({"transformer_depth": None}, "missing 'transformer_depth'"),
}


@pytest.mark.parametrize(("changes", "message"), SIZES.values(), ids=SIZES.keys())
def test_absurd_or_missing_model_sizes_are_refused_before_building(checkpoint, changes, message):
    _edit_config(checkpoint, **changes)
    before = snapshot(checkpoint.parent)
    start = time.perf_counter()
    line = one_error(cli("inspect", checkpoint))
    assert time.perf_counter() - start < 3.0
    assert f"{checkpoint / 'config.json'}: " in line and message in line
    assert snapshot(checkpoint.parent) == before


def test_a_model_larger_than_free_memory_is_refused_before_building(checkpoint, monkeypatch):
    import adaptkit.ckpt.config_file as config_file

    monkeypatch.setattr(config_file, "available_memory", lambda device="cpu": 10_000)
    line = one_error(cli("inspect", checkpoint))
    assert "a model of about" in line and "GB of memory is free" in line
    assert "transformer_depth=2" in line


# -- 4. YAML loading is bounded; messages quote a bounded value ------------------------------------
def _alias_bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.fixture
def bomb(tmp_path) -> Path:
    path = tmp_path / "bomb.yaml"
    path.write_text(_alias_bomb())
    return path


def test_a_yaml_alias_bomb_is_refused_at_once(bomb, tmp_path):
    before = snapshot(tmp_path)
    start = time.perf_counter()
    line = one_error(cli("data", "validate", bomb, "--data-dir", tmp_path))
    assert time.perf_counter() - start < 3.0
    assert f"{bomb}: the YAML expands to more than 100,000 values" in line
    assert snapshot(tmp_path) == before


def test_a_big_value_in_a_dataset_yaml_is_quoted_bounded(tmp_path):
    path = tmp_path / "mc.yaml"
    task = dict(MC_TASK["minicheetah_walking_ad"], reward_scale=[[i] * 50 for i in range(50)])
    path.write_text(yaml.safe_dump({"minicheetah_walking_ad": task}))
    line = one_error(cli("data", "validate", path, "--data-dir", tmp_path))
    assert "reward_scale" in line and len(line) < 300


# -- 5. run names and plugin data paths stay inside their folders --------------------------------
@pytest.fixture
def world(tmp_path) -> Path:
    """Good data, and a marker tree around save_dir so an escape would show."""
    write_mc_data(tmp_path)
    (tmp_path / "outside.txt").write_text("keep")
    return tmp_path


@pytest.mark.parametrize("name", ["../../escape", "..", "a/b", "", "."])
def test_run_name_cannot_leave_save_dir(base, world, name):
    before = snapshot(world)
    save = world / "models"
    r = cli(*finetune_args(base, world / "data", save, name))
    usage_error(r, "--name")
    assert snapshot(world) == before and not save.exists()
    assert not (world.parent / "escape").exists()


PLUGIN = """
from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, RobotSpec, hookimpl

@hookimpl
def register_robots(register):
    register(RobotSpec(
        name="escaper", task="escaper_walking_ad", group="escaper_locomotion",
        obs_names=LOCOMOTION_OBS_NAMES, joint_names=CANONICAL_JOINTS,
        default_joint_angles=(0.0, 0.9, -1.8) * 4, data_path={path!r},
    ))
"""


@pytest.mark.parametrize("path", ["../../..", "/tmp/elsewhere", "ok/../../up"])
def test_plugin_data_path_cannot_leave_data_dir(tmp_path, path):
    plugin = tmp_path / "escaper.py"
    plugin.write_text(PLUGIN.format(path=path))
    before = snapshot(tmp_path)
    data = tmp_path / "d"
    r = cli(
        "--plugin", plugin, "collect", "escaper", "--histories", 1, "--data-dir", data, *COLLECT
    )
    line = one_error(r)
    assert "field 'data_path' must be a relative path inside --data-dir" in line
    assert snapshot(tmp_path) == before and not (tmp_path / "d").exists()


# -- 6. device and seed are checked at the CLI: exit 2, one rule for every bad flag ---------------
BAD_FLAGS = {
    "device bogus": (["--device", "bogus"], "--device"),
    "device cuda:99": (["--device", "cuda:99"], "--device"),
    "seed negative": (["--seed", "-1"], "--seed"),
    "seed past 64 bits": (["--seed", str(2**70)], "--seed"),
}


@pytest.mark.parametrize(("extra", "flag"), BAD_FLAGS.values(), ids=BAD_FLAGS.keys())
def test_bad_device_or_seed_on_finetune(base, world, extra, flag):
    before = snapshot(world)
    usage_error(cli(*finetune_args(base, world / "data", world / "models", "run", *extra)), flag)
    assert snapshot(world) == before and not (world / "models").exists()


@pytest.mark.parametrize(("extra", "flag"), BAD_FLAGS.values(), ids=BAD_FLAGS.keys())
def test_bad_device_or_seed_on_eval(checkpoint, extra, flag):
    before = snapshot(checkpoint.parent)
    usage_error(cli("eval", checkpoint, "--robot", "minicheetah", *extra), flag)
    assert snapshot(checkpoint.parent) == before


def test_cuda_on_a_cpu_only_torch_is_one_line(checkpoint):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    out = usage_error(
        cli("eval", checkpoint, "--robot", "minicheetah", "--device", "cuda"), "--device"
    )
    assert "CUDA is not available" in out


@pytest.mark.parametrize("seed", ["-1", str(2**70)])
def test_bad_seed_on_collect(tmp_path, seed):
    usage_error(
        cli("collect", "minicheetah", "--data-dir", tmp_path / "d", "--seed", seed), "--seed"
    )
    assert not (tmp_path / "d").exists()


# -- 6b. symlink loops, study cells and torch's own write errors are one line ---------------------
@pytest.fixture
def loop(tmp_path) -> Path:
    """a -> b -> a."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    return tmp_path / "a"


def test_a_symlink_loop_data_folder_is_named(loop, tmp_path):
    (tmp_path / "mc.yaml").write_text(
        yaml.safe_dump(MC_TASK).replace("minicheetah_trajectories", "a")
    )
    before = snapshot(tmp_path / "mc.yaml")
    line = one_error(cli("data", "validate", tmp_path / "mc.yaml", "--data-dir", tmp_path))
    assert f"{loop}: learning-history folder not found (a symlink loop" in line
    line = one_error(cli("collect", "minicheetah", "--out", loop, "--data-dir", tmp_path, *COLLECT))
    assert f"{loop}: cannot collect into it: a symlink loop" in line
    assert snapshot(tmp_path / "mc.yaml") == before and loop.is_symlink()


def test_a_symlink_loop_checkpoint_is_named_not_missing(loop):
    line = one_error(cli("inspect", loop))
    assert f"checkpoint {loop}: a symlink loop (too many levels of symbolic links)" in line


@pytest.fixture
def study_out(tmp_path) -> Path:
    """A study folder with its plan and one truncated cell file."""
    out = tmp_path / "study"
    (out / "cells").mkdir(parents=True)
    axes = {"targets": ["minicheetah"], "sizes": ["small"], "modes": ["full"], "seeds": [0]}
    (out / "plan.json").write_text(json.dumps({"plan": axes}))
    (out / "cells" / "minicheetah-full-small-0.json").write_text('{"robot": "minicheetah", "si')
    return out


@pytest.mark.parametrize("text", ['{"robot": "minicheetah", "si', '{"robot": 3}', "[]"])
def test_a_truncated_or_mistyped_study_cell_is_one_line(study_out, text):
    cell = study_out / "cells" / "minicheetah-full-small-0.json"
    cell.write_text(text)
    before = snapshot(study_out)
    line = one_error(cli("study", "--report-only", "--out", study_out))
    assert f"{cell}: " in line
    assert snapshot(study_out) == before


def test_torch_writer_failure_while_saving_is_one_line(base, tmp_path, monkeypatch):
    """torch's zip writer reports a failed write as its own RuntimeError: still one line, and
    the epoch before stays whole."""
    import torch

    data = write_mc_data(tmp_path)
    real = torch.save

    def failing(obj, f, *a, **kw):
        if "0001_epoch" in str(getattr(f, "name", f)):
            f.write(b"PK\x03\x04partial")
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
            )
        return real(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", failing)
    line = one_error(cli(*finetune_args(base, data, tmp_path / "models")))
    run = tmp_path / "models" / "run"
    assert line.startswith(
        f"error: {run / '0001_epoch' / 'model.pth'}: cannot write the checkpoint:"
    )
    assert "unexpected pos" in line
    assert sorted(p.name for p in run.iterdir()) == ["0000_epoch", "metrics.jsonl"]


# -- 7. the gymnasium envs refuse non-finite actions (docs/reliability.md argues why) -------------
@pytest.fixture
def gym_envs():
    gymnasium = pytest.importorskip("gymnasium")
    import adaptkit.gym  # noqa: F401  (registers the env ids)

    one = gymnasium.make("adaptkit/MiniCheetah-v0", episode_length=20)
    many = gymnasium.make_vec("adaptkit/MiniCheetah-v0", num_envs=3, episode_length=20)
    one.reset(seed=0)
    many.reset(seed=0)
    yield one, many
    one.close()
    many.close()


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_gym_envs_refuse_non_finite_actions(gym_envs, bad):
    one, many = gym_envs
    action = np.zeros(12, np.float32)
    action[4] = bad
    with pytest.raises(ValueError, match=r"non-finite value .* at index 4"):
        one.step(action)
    obs, reward, *_ = one.step(np.zeros(12, np.float32))  # the env is unharmed
    assert np.isfinite(obs).all() and np.isfinite(reward)
    actions = np.zeros((3, 12), np.float32)
    actions[1, 2] = bad
    with pytest.raises(ValueError, match=r"at index \(1, 2\)"):
        many.step(actions)
    obs, reward, *_ = many.step(np.zeros((3, 12), np.float32))
    assert np.isfinite(obs).all() and np.isfinite(reward).all()


# -- 8. zero limits are usage errors everywhere: exit 2 naming the flag --------------------------
ZEROS = ["--context-len", "--episode-length", "--num-envs", "--episodes", "--max-steps"]


@pytest.mark.parametrize("flag", ZEROS)
def test_zero_limits_on_eval_are_usage_errors(checkpoint, flag):
    before = snapshot(checkpoint.parent)
    usage_error(cli("eval", checkpoint, "--robot", "minicheetah", flag, "0"), flag)
    assert snapshot(checkpoint.parent) == before


@pytest.mark.parametrize("flag", ["--num-envs", "--episode-length"])
def test_zero_limits_on_collect_are_usage_errors_too(tmp_path, flag):
    usage_error(cli("collect", "minicheetah", "--data-dir", tmp_path / "d", flag, "0"), flag)
    assert not (tmp_path / "d").exists()


# -- 9. compare / eval write their outputs as one set -----------------------------------------
QUAD = {"quadruped_locomotion": GroupDims(45, 12)}
ROLL = ["--robot", "go1", "--num-envs", "2", "--episodes", "2", "--episode-length", "6"]


@pytest.fixture
def quad_checkpoint(tmp_path, registry) -> Path:
    model = tiny_model(groups=QUAD)
    meta = tiny_meta(QUAD, {"go1_walking_ad": "quadruped_locomotion"})
    return save_checkpoint(tmp_path / "run" / "0001_epoch", model, meta, reference_config(model))


def _full_disk_at_the_plot(monkeypatch):
    from matplotlib.figure import Figure

    def full(self, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)


@pytest.mark.parametrize(
    ("command", "files"),
    [
        (
            ["compare", "--no-demonstrator"],
            {"compare.json", "compare.csv", "episodes.csv", "compare.png"},
        ),
        (["eval"], {"episodes.csv", "summary.json", "curve.png"}),
    ],
    ids=["compare", "eval"],
)
def test_a_failed_rerun_keeps_the_earlier_outputs_whole(
    quad_checkpoint, tmp_path, monkeypatch, command, files
):
    out = tmp_path / "out"
    args = [*command, quad_checkpoint, *ROLL, "--out", out]
    assert cli(*args).exit_code == 0
    # run.yaml: the resolved config; a failed rerun leaves the earlier one too
    assert {p.name for p in out.iterdir()} == files | {"run.yaml"}
    before = snapshot(out)
    _full_disk_at_the_plot(monkeypatch)
    line = one_error(cli(*args, "--seed", "7"))
    assert "no space left on device" in line
    assert snapshot(out) == before  # every file the earlier run's, no temp left


# -- 10. messages that mislead or are unsafe to copy --------------------------------------------
def test_the_hub_download_hint_is_safe_to_paste_into_a_shell():
    import shlex

    from adaptkit.ckpt.hub import parse_hub_ref

    ref = parse_hub_ref("hf://org/name@v1;touch pwned/sub dir")
    assert ref is not None and ref.revision == "v1;touch pwned"
    command = ref.download_command()
    assert shlex.split(command) == ["hf", "download", "org/name", "--revision", "v1;touch pwned",
                                    "--include", "sub dir/*"]  # fmt: skip


def test_kv_cache_message_gives_readable_sizes():
    from adaptkit.evaluate.plan import _gb

    assert _gb(8192) == "8.19 kB" and _gb(3 * 10**6) == "3.00 MB" and _gb(67 * 10**9) == "67.00 GB"


# -- 11. bad input is refused before the heavy work (model build, simulator) ---------------------
@pytest.fixture
def bad_metadata(tmp_path) -> Path:
    ckpt = tiny_checkpoint(tmp_path)
    (ckpt / "metadata.json").write_text('{"groups": {')  # truncated
    return ckpt


@pytest.mark.parametrize("command", ["eval", "compare"])
def test_bad_metadata_is_refused_before_any_model_or_env_is_built(
    bad_metadata, monkeypatch, command
):
    import adaptkit.ckpt.checkpoint
    import adaptkit.sim.env

    def never(*a, **kw):
        raise AssertionError("built before the input was checked")

    monkeypatch.setattr(adaptkit.ckpt.checkpoint, "build_model", never)
    monkeypatch.setattr(adaptkit.sim.env.LocomotionEnv, "__init__", never)
    before = snapshot(bad_metadata.parent)
    line = one_error(
        cli(command, bad_metadata, "--robot", "minicheetah", "--out", bad_metadata.parent / "out")
    )
    assert f"{bad_metadata / 'metadata.json'}: invalid JSON" in line
    assert snapshot(bad_metadata.parent) == before
