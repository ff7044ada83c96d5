"""Observation layouts are data: named terms, the built-in 45- and 33-dim layouts, the env
building exactly the declared columns, and `collect --obs-layout` writing what it says."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from adaptkit import (
    CANONICAL_JOINTS,
    FORK_OBS_NAMES,
    LOCOMOTION_OBS_NAMES,
    OBS_LAYOUTS,
    AdaptkitError,
    RobotSpec,
    compose_obs,
)
from adaptkit.cli import app
from adaptkit.data.history import read_history, read_task_metadata
from adaptkit.sim.env import LocomotionEnv

runner = CliRunner()


def test_layouts_are_named_terms():
    assert len(LOCOMOTION_OBS_NAMES) == 45 and len(FORK_OBS_NAMES) == 33
    # the fork's observation is the 45-dim one without its last 12 dims (the last action)
    assert LOCOMOTION_OBS_NAMES[:33] == FORK_OBS_NAMES
    assert all(n.startswith("last_action_") for n in LOCOMOTION_OBS_NAMES[33:])
    assert OBS_LAYOUTS["fork33"].names() == FORK_OBS_NAMES
    assert compose_obs("projected_gravity", "command") == (
        "projected_gravity_x", "projected_gravity_y", "projected_gravity_z",
        "command_vx", "command_vy", "command_yaw",
    )  # fmt: skip
    assert compose_obs("dof_vel", joints=("a", "b")) == ("dof_vel_a", "dof_vel_b")
    with pytest.raises(AdaptkitError, match="observation term 'joint_torque'"):
        compose_obs("joint_torque")


def test_a_robot_derives_its_other_layouts(registry):
    mc = registry.robot("minicheetah")
    assert mc.obs_layout == "locomotion45" and mc.layouts() == {"locomotion45": 45, "fork33": 33}
    fork = mc.for_layout("fork33")
    assert (fork.obs_dim, fork.obs_layout, fork.data_path) == (
        33,
        "fork33",
        "minicheetah_trajectories_fork33",
    )
    # same robot, task and group: the plugin is the single source of truth
    assert (fork.name, fork.task, fork.group, fork.gait) == (mc.name, mc.task, mc.group, mc.gait)
    assert fork.plugin_spec is mc and fork.for_layout(None) is mc
    assert fork.for_obs_dim(45) is mc and mc.for_obs_dim(33) == fork
    assert fork.summary()["obs_layout"] == "fork33"
    with pytest.raises(AdaptkitError, match="layout 'fork34' is not one of locomotion45, fork33"):
        mc.for_layout("fork34")
    with pytest.raises(AdaptkitError, match="observations of 50 dims fit no observation layout"):
        mc.for_obs_dim(50)


def test_env_builds_exactly_the_declared_columns(registry):
    go2 = registry.robot("go2")
    custom = RobotSpec(
        **{
            **{f: getattr(go2, f) for f in ("task", "group", "joint_names", "mjcf")},
            **{f: getattr(go2, f) for f in ("mjcf_joints", "default_joint_angles", "kp", "kd")},
            "name": "go2_custom",
            # another order, a subset: gravity first, then joint velocities, then the command
            "obs_names": compose_obs("projected_gravity", "dof_vel", "command"),
        }
    )
    specs = [go2, go2.for_layout("fork33"), custom]
    actions = np.random.default_rng(0).uniform(-1, 1, (20, 3, 12))
    obs = {}
    for spec in specs:
        env = LocomotionEnv(spec, 3, seed=4)
        rows = [env.reset()]
        for a in actions:
            rows.append(env.step(a)[0])
        env.close()
        obs[spec.name + str(spec.obs_dim)] = np.stack(rows)
    full, fork, mine = obs["go245"], obs["go233"], obs["go2_custom18"]
    assert full.shape[-1] == 45 and fork.shape[-1] == 33 and mine.shape[-1] == 18
    np.testing.assert_array_equal(fork, full[..., :33])  # same physics, the first 33 columns
    index = [LOCOMOTION_OBS_NAMES.index(n) for n in custom.obs_names]
    np.testing.assert_array_equal(mine, full[..., index])
    assert not np.allclose(full[-1, :, 33:], 0)  # the last action is really in the 45


def test_env_refuses_names_it_cannot_build(registry):
    go2 = registry.robot("go2")
    bad = RobotSpec(
        **{
            **{f: getattr(go2, f) for f in ("task", "group", "joint_names", "mjcf")},
            **{f: getattr(go2, f) for f in ("mjcf_joints", "default_joint_angles")},
            "name": "odd",
            "obs_names": ("projected_gravity_x", "foot_contact_FR"),
        }
    )
    with pytest.raises(AdaptkitError, match="'obs_names' has foot_contact_FR"):
        LocomotionEnv(bad, 1)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Go1 histories collected through the CLI in the fork's layout and in the plugin's own."""
    root = tmp_path_factory.mktemp("collect")
    args = ["collect", "go1", "--histories", "1", "--steps-per-history", "60", "--num-envs", "1"]
    args += ["--data-dir", str(root), "--seed", "3"]
    fork = runner.invoke(app, [*args, "--obs-layout", "fork33", "--config", str(root / "f.yaml")])
    own = runner.invoke(app, args)
    return {"root": root, "args": args, "fork": fork, "own": own}


def test_collect_obs_layout_writes_and_records_it(collected):
    root, args = collected["root"], collected["args"]
    assert collected["fork"].exit_code == 0, collected["fork"].output
    assert collected["own"].exit_code == 0, collected["own"].output
    assert "33-dim fork33 observations" in collected["fork"].output
    folder = root / "go1_trajectories_fork33"
    meta = read_task_metadata(folder)
    assert meta["obs_layout"] == "fork33" and meta["observation_shape"] == {"proprio": [33]}
    assert meta["obs_names"] == list(FORK_OBS_NAMES)
    h33 = read_history(folder / "history_000.h5")
    h45 = read_history(root / "go1_trajectories" / "history_000.h5")  # the plugin's own folder
    assert h33.obs.shape == (60, 33) and h45.obs.shape == (60, 45)
    # the same seed simulates the same physics and actions: only the observation differs
    np.testing.assert_array_equal(h33.obs, h45.obs[:, :33])
    np.testing.assert_array_equal(h33.action, h45.action)
    res = runner.invoke(app, [*args, "--obs-layout", "fork32"])
    assert res.exit_code == 1 and "'fork32' is not one of" in res.output


def test_pretrain_and_eval_a_33_dim_robot(registry, collected, tmp_path):
    from helpers_train import TINY_MODEL, tiny_train

    from adaptkit.ckpt.load import load_checkpoint
    from adaptkit.evaluate import EvalSettings, evaluate
    from adaptkit.train import pretrain

    root = collected["root"]
    pretrain([root / "f.yaml"], root, "b", tmp_path, TINY_MODEL, tiny_train(epochs=1, batch_size=4),
             registry=registry)  # fmt: skip
    ckpt = load_checkpoint(tmp_path / "b")
    task = ckpt.meta["go1_walking_ad"]
    assert (task.dims.obs_dim, task.obs_layout, task.robot) == (33, "fork33", "go1")
    settings = EvalSettings(num_envs=1, episodes=1, episode_length=20, data_dir=root)
    s = evaluate(ckpt, registry.robot("go1"), settings).summary
    assert (s["mode"], s["obs_layout"], s["num_episodes"]) == ("native", "fork33", 1)


def test_robots_command_lists_layouts(registry):
    rows = {r["robot"]: r for r in json.loads(runner.invoke(app, ["robots", "--json"]).stdout)}
    assert rows["go2"]["layouts"] == {"locomotion45": 45, "fork33": 33}
    assert rows["go2"]["obs_layout"] == "locomotion45"


def test_plugin_with_the_fork_layout_natively(tmp_path):
    """A plugin may declare the 33-dim layout as its own; 45 is then its derived one."""
    spec = RobotSpec(
        name="bot",
        task="bot_walking_ad",
        group="bot_locomotion",
        obs_names=FORK_OBS_NAMES,
        joint_names=CANONICAL_JOINTS,
        default_joint_angles=(0.0, 0.8, -1.5) * 4,
    )
    assert spec.obs_layout == "fork33" and list(spec.layouts()) == ["fork33", "locomotion45"]
    assert spec.for_layout("locomotion45").data_path == "bot_trajectories_locomotion45"
