"""Dataset validation and the `adaptkit data` CLI: each corruption gives one clear error line."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import yaml
from helpers_data import write_synthetic_dataset, write_synthetic_history
from helpers_model import tiny_meta, tiny_metadata, tiny_model, write_reference_checkpoint
from typer.testing import CliRunner

from adaptkit.cli import app
from adaptkit.data.config import load_dataset_configs
from adaptkit.data.validate import validate_dataset
from adaptkit.errors import AdaptkitError
from adaptkit.model import GroupDims

runner = CliRunner()
MC = "minicheetah_trajectories"


@pytest.fixture
def dataset(tmp_path, registry):
    cfg = write_synthetic_dataset(tmp_path, robots=("minicheetah",), histories=2)
    return cfg, tmp_path / "data"


def _cli(*args: str):
    return runner.invoke(app, ["data", *map(str, args)])


def _one_error_line(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_valid_dataset_summary(dataset, registry):
    cfg, data_dir = dataset
    report = validate_dataset(load_dataset_configs([cfg], data_dir), registry)
    (t,) = report.tasks
    assert (t.robot, t.obs_dim, t.act_dim, t.histories, t.episodes, t.steps) == (
        "minicheetah",
        45,
        12,
        2,
        8,
        400,
    )
    assert t.return_end > t.return_start  # the synthetic histories improve
    result = _cli("validate", cfg, "--data-dir", data_dir, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["tasks"][0]["episodes"] == 8
    result = _cli("validate", cfg, "--data_dir", data_dir)  # the seed's underscore spelling
    assert result.exit_code == 0 and "400" in result.stdout


def _corrupt(path, chunk, key, fn):
    with h5py.File(path, "r+") as f:
        data = f[chunk][key][()]
        del f[chunk][key]
        f[chunk][key] = fn(data)


def _set(index, value):
    def fn(a):
        a[index] = value
        return a

    return fn


# name -> (corrupt history_1.h5, expected error)
CORRUPTIONS = {
    "wrong-dim": (
        lambda p: write_synthetic_history(p, obs_dim=44),
        r"'proprio_observation' has dim 44, expected 45",
    ),
    "nan": (
        lambda p: _corrupt(p, "64-127", "reward", _set(6, np.nan)),
        r"chunk '64-127': dataset 'reward' has NaN/inf at step 70",
    ),
    "inf": (
        lambda p: _corrupt(p, "128-191", "proprio_observation", _set((3, 5), np.inf)),
        r"'proprio_observation' has NaN/inf at step 131",
    ),
    "step-jump": (
        lambda p: _corrupt(p, "0-63", "step_num", _set(10, 12)),
        r"chunk '0-63': 'step_num' at step 10 is 12, expected 0 or 10",
    ),
    "step-start": (
        lambda p: _corrupt(p, "0-63", "step_num", _set(0, 3)),
        r"'step_num' at step 0 is 3, expected 0",
    ),
    "short-dataset": (
        lambda p: _corrupt(p, "64-127", "action", lambda a: a[:-1]),
        r"chunk '64-127': dataset 'action' has 63 rows, expected 64",
    ),
    "gap": (
        lambda p: _move(p, "64-127", "70-133"),
        r"chunk '70-133' starts at step 70, expected 64",
    ),
    "not-hdf5": (lambda p: p.write_bytes(b"garbage"), r"not a readable HDF5 file"),
}


@pytest.mark.parametrize(("corrupt", "message"), CORRUPTIONS.values(), ids=CORRUPTIONS.keys())
def test_each_corruption_gives_its_error(dataset, registry, corrupt, message):
    cfg, data_dir = dataset
    bad = data_dir / MC / "history_1.h5"
    corrupt(bad)
    with pytest.raises(AdaptkitError, match=message) as info:
        validate_dataset(load_dataset_configs([cfg], data_dir), registry)
    assert str(bad) in str(info.value)
    line = _one_error_line(_cli("validate", cfg, "--data-dir", data_dir))
    assert "history_1.h5" in line


def _move(path, old, new):
    with h5py.File(path, "r+") as f:
        f.move(old, new)


def test_chunk_name_disagreeing_with_length(dataset, registry):
    cfg, data_dir = dataset
    _move(data_dir / MC / "history_0.h5", "0-63", "0-60")
    with pytest.raises(
        AdaptkitError, match=r"chunk '0-60': dataset 'proprio_observation' has 64 rows, expected 61"
    ):
        validate_dataset(load_dataset_configs([cfg], data_dir), registry)


def test_missing_files_and_folders(dataset, tmp_path):
    cfg, data_dir = dataset
    line = _one_error_line(_cli("validate", tmp_path / "nope.yaml", "--data-dir", data_dir))
    assert "nope.yaml: dataset config not found" in line
    for p in (data_dir / MC).iterdir():
        p.unlink()
    line = _one_error_line(_cli("validate", cfg, "--data-dir", data_dir))
    assert f"{MC}: no learning-history files" in line
    line = _one_error_line(_cli("validate", cfg, "--data-dir", tmp_path / "elsewhere"))
    assert "learning-history folder not found" in line


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weight": 1}, "'minicheetah_walking_ad.weight' is not a known key"),
        ({"reward_scale": "big"}, "'minicheetah_walking_ad.reward_scale' must be a number"),
    ],
)
def test_bad_yaml_via_cli(dataset, change, message):
    cfg, data_dir = dataset
    data = yaml.safe_load(cfg.read_text())
    data["minicheetah_walking_ad"].update(change)
    cfg.write_text(yaml.safe_dump(data))
    for cmd in ("validate", "stats"):
        line = _one_error_line(_cli(cmd, cfg, "--data-dir", data_dir))
        assert str(cfg) in line and message in line


def test_checkpoint_group_dims(dataset, registry, tmp_path):
    cfg, data_dir = dataset
    entries = load_dataset_configs([cfg], data_dir)
    mc = "minicheetah_locomotion"
    narrow = tiny_meta({mc: GroupDims(33, 12)}, {"other": mc})
    with pytest.raises(
        AdaptkitError, match="checkpoint's group 'minicheetah_locomotion' has 33/12"
    ):
        validate_dataset(entries, registry, narrow)
    assert validate_dataset(entries, registry, tiny_meta({mc: GroupDims(45, 12)}, {"x": mc})).ok
    # through the CLI, from a checkpoint folder written in the reference layout
    groups = {mc: GroupDims(45, 6)}
    write_reference_checkpoint(
        tmp_path / "run" / "0003_epoch", tiny_model(groups=groups), tiny_metadata(groups, {"x": mc})
    )
    (tmp_path / "run" / "0004_epoch").mkdir()  # incomplete: not the one read
    line = _one_error_line(
        _cli("validate", cfg, "--data-dir", data_dir, "--checkpoint", tmp_path / "run")
    )
    assert "has 45/6" in line


def test_stats_cli_writes_and_merges(dataset, tmp_path):
    cfg, data_dir = dataset
    out = tmp_path / "stats.json"
    existing = {"obs_mean": [0.0], "obs_std": [1.0], "acs_mean": [0.0], "acs_std": [1.0]}
    out.write_text(json.dumps({"go1_walking_ad": existing}))
    result = _cli("stats", cfg, "--data-dir", data_dir, "--out", out)
    assert result.exit_code == 0, result.output
    stats = json.loads(out.read_text())
    assert stats["go1_walking_ad"] == existing
    assert len(stats["minicheetah_walking_ad"]["obs_std"]) == 45
