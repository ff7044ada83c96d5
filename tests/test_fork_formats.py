"""The quadruped fork's checkpoints and histories, built by hand from the format facts, read by
adaptkit: strict loads, the token order inferred and said, the n+1 observation rows aligned by
the documented rule and named by `data validate`."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from helpers_fork import (
    FORK_CHUNK,
    FORK_GROUP,
    FORK_PARAMS,
    FORK_TASKS,
    fork_config,
    fork_state_dict,
    trajectory,
    write_config,
    write_fork_checkpoint,
    write_fork_history,
    write_fork_task,
)
from typer.testing import CliRunner

from adaptkit.ckpt.config_file import config_token_order
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.cli import app
from adaptkit.data.config import load_dataset_configs
from adaptkit.data.history import (
    extra_observation_rows,
    find_task_metadata,
    iter_chunks,
    read_history,
    read_task_metadata,
)
from adaptkit.data.stats import compute_stats
from adaptkit.data.validate import validate_dataset
from adaptkit.errors import AdaptkitError
from adaptkit.model import GroupDims, ModelConfig

runner = CliRunner()


# -- checkpoints ---------------------------------------------------------------------------------
def test_fork_checkpoint_loads_strictly_with_its_sizes_and_order(tmp_path):
    sd = fork_state_dict({FORK_GROUP: (33, 12)})
    assert sum(t.numel() for t in sd.values()) == FORK_PARAMS  # SPEC: 1,231,706 parameters
    path = write_fork_checkpoint(tmp_path / "fork" / "0015_epoch", sd)
    ckpt = load_checkpoint(tmp_path / "fork")  # the run dir: newest epoch
    assert ckpt.path == path
    assert ckpt.groups == {FORK_GROUP: GroupDims(33, 12)}
    assert sum(p.numel() for p in ckpt.model.parameters()) == FORK_PARAMS
    assert ckpt.config.model_dict() == {**ModelConfig.fork(context_len=64).model_dict()}
    # not recorded, inferred from the fork's own training keys, and said so
    assert ckpt.config.token_order == "act,rew,obs"
    assert not ckpt.token_order.settled
    assert "random_sample_frac" in ckpt.token_order.reason
    assert ckpt.config.extra["finetune_new_group"] is False  # unknown keys pass through


@pytest.mark.parametrize(
    ("config", "order", "settled", "why"),
    [
        ({"random_sample_frac": 0.1}, "act,rew,obs", False, "random_sample_frac"),
        ({"finetune_freeze_encoder": True}, "act,rew,obs", False, "finetune_freeze_encoder"),
        ({"lr": 3e-4}, "obs,act,rew", False, "released Vintix order"),
        ({"token_order": "act,rew,obs"}, "act,rew,obs", True, "recorded"),
        ({"token_order": ["obs", "act", "rew"], "random_sample_frac": 0.1}, "obs,act,rew", True,
         "recorded"),
    ],
)  # fmt: skip
def test_token_order_from_config(config, order, settled, why):
    got = config_token_order(config)
    assert (got.order, got.settled) == (order, settled) and why in got.reason
    forced = config_token_order(config, "obs,act,rew")
    assert forced.order == "obs,act,rew" and forced.settled and "--token-order" in forced.reason


def test_inspect_and_groups_show_the_order_and_why(tmp_path):
    write_fork_checkpoint(tmp_path / "fork" / "0015_epoch")
    res = runner.invoke(app, ["groups", str(tmp_path / "fork")])
    assert res.exit_code == 0, res.output
    assert "token order: act,rew,obs" in res.output and "random_sample_frac" in res.output
    res = runner.invoke(app, ["inspect", str(tmp_path / "fork"), "--json"])
    info = json.loads(res.stdout)
    assert info["token_order"] == "act,rew,obs" and "fork" in info["token_order_source"]
    res = runner.invoke(
        app, ["groups", str(tmp_path / "fork"), "--token-order", "obs,act,rew", "--json"]
    )
    row = json.loads(res.stdout)[0]
    assert (row["group"], row["obs_dim"], row["token_order"]) == (FORK_GROUP, 33, "obs,act,rew")
    assert row["token_order_source"] == "given with --token-order"
    res = runner.invoke(app, ["inspect", str(tmp_path / "fork"), "--token-order", "obs,rew,act"])
    assert res.exit_code == 2 and "obs,rew,act" in res.output


def test_adaptkit_checkpoints_record_their_order(tmp_path):
    from adaptkit.ckpt.checkpoint import save_checkpoint

    ckpt = load_checkpoint(write_fork_checkpoint(tmp_path / "fork" / "0015_epoch"))
    out = save_checkpoint(tmp_path / "copy" / "0001_epoch", ckpt.model, ckpt.meta, {})
    assert json.loads((out / "config.json").read_text())["token_order"] == "act,rew,obs"
    again = load_checkpoint(out)
    assert again.token_order.settled and again.token_order.reason == "recorded in config.json"


# -- histories -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fork_file(tmp_path_factory):
    """A 120,000-step fork history: chunks 0-49999, 50000-99999, 100000-119999."""
    path = tmp_path_factory.mktemp("fork") / "trajectories_env_0.h5"
    data = trajectory(120_000, episode=1000, seed=3)
    names = write_fork_history(path, data)
    return path, data, names


def test_fork_file_is_as_the_facts_say(fork_file):
    path, data, names = fork_file
    assert names == ["0-49999", "50000-99999", "100000-119999"]
    with h5py.File(path) as f:
        for name in names:  # n+1 observation rows per n actions in each chunk
            assert len(f[name]["proprio_observation"]) == len(f[name]["action"]) + 1
        # concatenated as stored, observations drift one step later per chunk
        naive = np.concatenate([f[n]["proprio_observation"][()] for n in names])
    assert np.array_equal(naive[50_001], data["obs"][50_000])  # o_50000 at row 50001
    assert extra_observation_rows(path) == (3, 3)


def test_reader_aligns_by_dropping_each_chunks_last_observation_row(fork_file):
    path, data, _ = fork_file
    h = read_history(path)
    assert len(h) == 120_000 and h.obs.shape == (120_000, 33)
    np.testing.assert_array_equal(h.obs, data["obs"][:-1])  # o_t pairs with a_t
    np.testing.assert_array_equal(h.action, data["action"])
    np.testing.assert_array_equal(h.step_num, data["step_num"])
    for _, chunk in iter_chunks(path):
        assert len(chunk["proprio_observation"]) == len(chunk["action"])
    s = compute_stats([path])
    np.testing.assert_allclose(s.obs_mean, data["obs"][:-1].mean(axis=0), atol=1e-6)


def test_other_row_mismatches_are_errors(tmp_path):
    data = trajectory(100)
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("0-99")
        g["proprio_observation"] = data["obs"][:99]  # one row short: no documented rule
        g["action"], g["reward"], g["step_num"] = data["action"], data["reward"], data["step_num"]
    with pytest.raises(AdaptkitError, match="99 rows for 100 actions"):
        read_history(path)


def test_validate_names_the_misalignment(registry, fork_file, tmp_path):
    folder = tmp_path / "data" / "go2_fork"
    folder.mkdir(parents=True)
    path = fork_file[0]
    (folder / path.name).symlink_to(path)
    (folder / "trajectories_env_0.json").write_text(json.dumps({"env": "Go2"}))
    cfg = write_config(tmp_path / "cfg.yaml", {"go2_walking_ad": ("go2_fork", FORK_GROUP)})
    report = validate_dataset(load_dataset_configs([cfg], tmp_path / "data"), registry)
    assert report.ok, report.errors
    (task,) = report.tasks
    assert (task.robot, task.obs_layout, task.obs_dim, task.steps) == ("go2", "fork33", 33, 120_000)
    (warning,) = report.warnings
    assert "3 of 3 chunks (e.g. '0-49999')" in warning
    assert "drops each such chunk's last observation row" in warning
    assert "at 2 of 2 chunk boundaries that row equals the next chunk's first row" in warning
    # the CLI prints it and succeeds
    args = ["data", "validate", str(cfg), "--data-dir", str(tmp_path / "data")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "warning:" in res.output and "one observation row more than actions" in res.output
    out = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert out["ok"] and out["tasks"][0]["obs_layout"] == "fork33" and out["warnings"]


def test_fork_task_metadata_and_layout_selection(registry, tmp_path):
    folder = tmp_path / "data" / "mc"
    write_fork_task(folder, histories=1, steps=120)
    assert find_task_metadata(folder).name == "trajectories_env_0.json"
    assert read_task_metadata(folder)["env"] == "Go2-v0"
    # 33-dim data of a robot whose plugin declares 45: the data selects fork33
    from adaptkit.data.layout import spec_for_data

    spec, why = spec_for_data(registry.robot("minicheetah"), folder)
    assert spec.obs_layout == "fork33" and "33-dim" in why
    # a width no layout of the robot has is a clear error
    write_fork_task(tmp_path / "data" / "odd", histories=1, steps=50, obs_dim=40)
    with pytest.raises(AdaptkitError, match="40 dims fit no observation layout.*fork33"):
        spec_for_data(registry.robot("minicheetah"), tmp_path / "data" / "odd")


def test_dataset_config_for_fork_tasks(registry, tmp_path):
    for i, task in enumerate(FORK_TASKS):
        write_fork_task(tmp_path / "data" / task, histories=1, steps=80, seed=i, chunk=FORK_CHUNK)
    cfg = write_config(tmp_path / "q.yaml", {t: (t, FORK_GROUP) for t in FORK_TASKS})
    report = validate_dataset(load_dataset_configs([cfg], tmp_path / "data"), registry)
    assert report.ok and [t.obs_layout for t in report.tasks] == ["fork33"] * 3
    assert len(report.warnings) == 3  # one per file: the extra observation row


def test_fork_config_file_is_the_facts(tmp_path):
    cfg = fork_config()
    assert "token_order" not in cfg and cfg["hidden_dim"] == 127 + 127 + 2
