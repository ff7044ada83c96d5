"""Plugin registry, RobotSpec validation and the `plugins` / `robots` commands."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, AdaptkitError, RobotSpec
from adaptkit.cli import app
from adaptkit.plugins import load_registry

runner = CliRunner()

PLUGIN = textwrap.dedent(
    """
    from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, RobotSpec, hookimpl

    @hookimpl
    def register_robots(register):
        register(RobotSpec(
            name={name!r}, task="spot_walking_ad", group="spot_locomotion",
            obs_names=LOCOMOTION_OBS_NAMES, joint_names=CANONICAL_JOINTS,
            default_joint_angles=(0.0, 0.9, -1.8) * 4,
        ))
    """
)


def write_plugin(tmp_path: Path, name: str = "spot", file: str = "spot_plugin.py") -> Path:
    path = tmp_path / file
    path.write_text(PLUGIN.format(name=name))
    return path


def spec(**kw) -> RobotSpec:
    base = dict(
        name="bot",
        task="bot_walking_ad",
        group="bot_locomotion",
        obs_names=LOCOMOTION_OBS_NAMES,
        joint_names=CANONICAL_JOINTS,
        default_joint_angles=(0.0, 0.8, -1.5) * 4,
    )
    return RobotSpec(**{**base, **kw})


def invoke(*args: str, **kw):
    result = runner.invoke(app, list(args), **kw)
    return result, result.output


# -- RobotSpec ---------------------------------------------------------------------------------


def test_builtin_robots_are_registered_through_entry_points(registry):
    assert set(registry.robots) == {"minicheetah", "go1", "go2", "a1"}
    for name, robot in registry.robots.items():
        assert robot.obs_dim == 45 and robot.action_dim == 12
        assert registry.plugins[registry.owner(name)].origin == "entry point"
    assert registry.robot("minicheetah").group == "minicheetah_locomotion"
    # The pretraining robots share one group; the new robot must get its own.
    assert {registry.robot(n).group for n in ("go1", "go2", "a1")} == {"quadruped_locomotion"}


def test_minicheetah_signs_are_flipped_vs_unitree(registry):
    mc, go2 = registry.robot("minicheetah"), registry.robot("go2")
    assert mc.joint_signs[:3] == (-1.0, -1.0, 1.0)
    assert go2.joint_signs[:3] == (1.0, 1.0, -1.0)


def test_obs_layout_matches_the_reference_env():
    assert len(LOCOMOTION_OBS_NAMES) == 45
    assert LOCOMOTION_OBS_NAMES[:3] == ("base_ang_vel_x", "base_ang_vel_y", "base_ang_vel_z")
    assert LOCOMOTION_OBS_NAMES[9] == "dof_pos_FR_hip"
    assert LOCOMOTION_OBS_NAMES[-1] == "last_action_RL_calf"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        (dict(default_joint_angles=(0.0,) * 11), "default_joint_angles"),
        (dict(joint_names=CANONICAL_JOINTS[:-1]), "default_joint_angles"),
        (dict(obs_names=("a", "a")), "obs_names"),
        (dict(obs_names=()), "obs_names"),
        (dict(kp=0.0), "kp"),
        (dict(episode_sparsity=0), "episode_sparsity"),
        (dict(group="Bad Group"), "group"),
        (dict(torque_limits=(1.0,) * 3), "torque_limits"),
        (dict(mjcf="/does/not/exist.xml"), "mjcf"),
        (dict(action_bounds=(1.0, -1.0)), "action_bounds"),
    ],
)
def test_inconsistent_specs_name_the_field(kw, field):
    with pytest.raises(AdaptkitError, match=f"'{field}'"):
        spec(**kw)


def test_spec_is_frozen_and_renders_its_dataset_entry():
    s = spec()
    with pytest.raises(AttributeError):
        s.name = "other"  # type: ignore[misc]
    entry = s.dataset_entry()["bot_walking_ad"]
    assert entry == {
        "type": "default",
        "path": "bot_trajectories",
        "group": "bot_locomotion",
        "reward_scale": 1.0,
        "episode_sparsity": 1,
    }
    assert replace(s, name="bot2").name == "bot2"


# -- registry ----------------------------------------------------------------------------------


def test_local_plugin_file_is_loaded(tmp_path):
    reg = load_registry(plugin_files=[write_plugin(tmp_path)])
    assert reg.robot("spot").group == "spot_locomotion"
    assert reg.plugins["spot_plugin"].origin == "file"
    assert reg.plugins["spot_plugin"].robots == ["spot"]


def test_env_variable_loads_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("ADAPTKIT_PLUGINS", str(write_plugin(tmp_path)))
    assert "spot" in load_registry().robots


def test_duplicate_robot_name_fails(tmp_path):
    with pytest.raises(AdaptkitError, match="'go1' is already registered by plugin 'go1'"):
        load_registry(plugin_files=[write_plugin(tmp_path, name="go1")])


def test_disabled_plugins_are_skipped(monkeypatch):
    monkeypatch.setenv("ADAPTKIT_DISABLE_PLUGINS", "go1, a1")
    assert set(load_registry().robots) == {"minicheetah", "go2"}


def test_unknown_robot_suggests_a_close_match(registry):
    with pytest.raises(AdaptkitError, match="did you mean 'minicheetah'"):
        registry.robot("minicheeta")


def test_plugin_that_fails_to_import(tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("import not_a_module_anywhere\n")
    with pytest.raises(AdaptkitError, match="broken.py failed to import: ModuleNotFoundError"):
        load_registry(plugin_files=[bad])


def test_misspelled_hook_is_caught(tmp_path):
    bad = tmp_path / "typo.py"
    bad.write_text(
        "from adaptkit import hookimpl\n\n@hookimpl\ndef register_robot(register):\n    pass\n"
    )
    with pytest.raises(AdaptkitError, match="plugin 'typo'.*register_robot"):
        load_registry(plugin_files=[bad])


def test_plugin_registering_something_else(tmp_path):
    bad = tmp_path / "wrongtype.py"
    bad.write_text(
        "from adaptkit import hookimpl\n\n@hookimpl\n"
        "def register_robots(register):\n    register({'name': 'x'})\n"
    )
    with pytest.raises(AdaptkitError, match="plugin 'wrongtype'.*expects a RobotSpec"):
        load_registry(plugin_files=[bad])


# -- CLI ---------------------------------------------------------------------------------------


def test_robots_json_lists_the_four_robots():
    result, out = invoke("robots", "--json")
    assert result.exit_code == 0, out
    rows = {r["robot"]: r for r in json.loads(out)}
    assert set(rows) == {"minicheetah", "go1", "go2", "a1"}
    assert all(r["obs_dim"] == 45 and r["action_dim"] == 12 for r in rows.values())
    assert rows["minicheetah"]["group"] == "minicheetah_locomotion"


def test_cli_plugin_option_shows_in_robots_and_plugins(tmp_path):
    path = write_plugin(tmp_path)
    result, out = invoke("--plugin", str(path), "robots")
    assert result.exit_code == 0, out
    assert "spot" in out
    result, out = invoke("--plugin", str(path), "plugins", "--json")
    info = {p["name"]: p for p in json.loads(out)}["spot_plugin"]
    assert info["origin"] == "file" and info["robots"] == ["spot"]


def test_cli_duplicate_is_one_clean_line(tmp_path):
    path = write_plugin(tmp_path, name="go2")
    result, out = invoke("--plugin", str(path), "robots")
    assert result.exit_code == 1
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "error: plugin 'spot_plugin': robot 'go2' is already registered"
    )


def test_cli_missing_plugin_file(tmp_path):
    result, out = invoke("--plugin", str(tmp_path / "nope.py"), "robots")
    assert result.exit_code == 1 and "nope.py: not found" in out


def test_cli_disable_plugin():
    result, out = invoke("--disable-plugin", "go2", "robots", "--json")
    assert result.exit_code == 0
    assert "go2" not in {r["robot"] for r in json.loads(out)}


def test_version_and_help():
    result, out = invoke("--version")
    assert result.exit_code == 0 and out.startswith("adaptkit ")
    result, out = invoke("--help")
    assert result.exit_code == 0 and "robots" in out and "plugins" in out
