"""`adaptkit new-robot NAME --mjcf FILE` end to end at toy size, on a robot file of the tests' own
whose joints are numbered j00..j11 in a scrambled order and whose legs sit in the file in another
order: the package it writes carries the derived values with their notes, loads as a plugin and
simulates; a robot whose demonstrator is rejected gets no package (unless asked); an ambiguous
file is refused with its table; `tune-robot` derives a generated plugin again and never
overwrites an edited one."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from adaptkit.cli import app
from adaptkit.plugins import load_registry
from adaptkit.sim import LocomotionEnv, TrotDemonstrator
from tests.helpers_robots import expected_names, numbered_names, toy_mjcf

# toy size: one search round of 8 candidates × 2 s, checked on 2 episodes of 4 s
TOY = ["--rounds", "1", "--batch", "8", "--seconds", "2", "--check-episodes", "2",
       "--check-seconds", "4"]  # fmt: skip
NAMES = numbered_names(3)


@pytest.fixture(scope="module")
def derived(tmp_path_factory):
    folder = tmp_path_factory.mktemp("derived")
    mjcf = folder / "toy.xml"
    mjcf.write_text(toy_mjcf(NAMES, order=("RL", "FR", "RR", "FL")))
    out = folder / "adaptkit-toy"
    res = CliRunner().invoke(
        app, ["new-robot", "toy", "--mjcf", str(mjcf), "--out", str(out), *TOY]
    )
    return res, out, mjcf


def test_the_package_carries_every_derived_value_with_its_note(derived):
    res, out, _ = derived
    assert res.exit_code == 0, res.output
    module = out / "src" / "adaptkit_toy"
    assert sorted(p.name for p in module.iterdir()) == [
        "__init__.py", "derivation.json", "plugin.py", "toy.xml",
    ]  # fmt: skip
    assert "demonstrator: return" in res.output and "0 of 2 episodes fell" in res.output
    record = json.loads((module / "derivation.json").read_text())
    values = {k: v["value"] for k, v in record["values"].items()}
    assert tuple(values["mjcf_joints"]) == expected_names(NAMES)  # from the tree, not the names
    assert record["report"]["accepted"] and record["report"]["falls"] == 0
    assert record["gain_tests"] and all("hold" in t for t in record["gain_tests"])
    plugin = (module / "plugin.py").read_text()
    for key in ("default_joint_angles", "kp", "kd", "base_init_height", "base_height_target",
                "mass_kg", "torque_limits", "mjcf_joints", "gait"):  # fmt: skip
        # each value under a comment that says how it was found
        assert re.search(rf"#[^\n]*\n(\s+#[^\n]*\n)*\s+{key}=", plugin), key
    spec = load_registry(plugin_files=[module / "plugin.py"]).robot("toy")
    assert spec.mjcf == module / "toy.xml" and spec.mjcf_joints == expected_names(NAMES)
    assert spec.kp == values["kp"] and spec.kd == values["kd"]
    assert spec.default_joint_angles == pytest.approx(values["default_joint_angles"], abs=1e-4)
    assert spec.torque_limits == pytest.approx(values["torque_limits"], abs=0.01)
    assert spec.joint_signs == tuple(values["joint_signs"])
    # the package's robot walks with its demonstrator without falling
    env = LocomotionEnv(spec, 2, seed=5)
    policy = TrotDemonstrator(spec)
    obs = env.reset()
    policy.reset(2)
    fell, speed = np.zeros(2, bool), []
    for _ in range(200):
        obs, _, _, info = env.step(policy.act(obs, env))
        fell |= info["fell"]
        speed.append(env.base_lin_vel[:, 0].mean())
    env.close()
    assert not fell.any() and np.mean(speed[50:]) > 0.2


def test_a_taken_folder_is_refused_before_anything_is_derived(derived, tmp_path):
    res, out, mjcf = derived
    before = (out / "src" / "adaptkit_toy" / "plugin.py").read_text()
    again = CliRunner().invoke(app, ["new-robot", "toy", "--mjcf", str(mjcf), "--out", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
    assert "gain tests" not in again.output  # refused first
    assert (out / "src" / "adaptkit_toy" / "plugin.py").read_text() == before
    res = CliRunner().invoke(app, ["new-robot", "toy2", "--kp", "30", "--out", str(tmp_path / "x")])
    assert res.exit_code == 1 and "--kp: only with --mjcf" in res.output


def test_a_rejected_demonstrator_writes_nothing_unless_asked(tmp_path):
    # motors far too weak to carry the body: it sags onto its knees, no gait walks
    mjcf = tmp_path / "weak.xml"
    mjcf.write_text(toy_mjcf(motors={"hip": 0.3, "thigh": 0.3, "calf": 0.3}))
    out = tmp_path / "adaptkit-weak"
    args = ["new-robot", "weak", "--mjcf", str(mjcf), "--out", str(out), *TOY, "--kp", "25"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "no trot demonstrator accepted for weak" in res.output
    assert "nothing written" in res.output and "what to change" in res.output
    assert not out.exists()
    res = CliRunner().invoke(app, [*args, "--allow-rejected"])
    assert res.exit_code == 0, res.output
    plugin = (out / "src" / "adaptkit_weak" / "plugin.py").read_text()
    assert "Demonstrator: REJECTED" in plugin and "REJECTED" in (out / "README.md").read_text()


def test_an_ambiguous_file_is_refused_with_a_table_and_joints_names_it(tmp_path):
    mjcf = tmp_path / "odd.xml"
    mjcf.write_text(toy_mjcf(NAMES, hip_axis="0 1 0"))  # hips turn about y: which is which?
    out = tmp_path / "adaptkit-odd"
    res = CliRunner().invoke(app, ["new-robot", "odd", "--mjcf", str(mjcf), "--out", str(out)])
    assert res.exit_code == 1 and not out.exists()
    assert "hinge joints found" in res.output and "j0" in res.output  # the table
    assert "name them with --joints" in res.output.splitlines()[-1]
    joints = ",".join(expected_names(NAMES))
    res = CliRunner().invoke(app, ["new-robot", "odd", "--mjcf", str(mjcf), "--out", str(out),
                                   "--joints", joints, "--allow-rejected", *TOY])  # fmt: skip
    assert res.exit_code == 0, res.output
    record = json.loads((out / "src" / "adaptkit_odd" / "derivation.json").read_text())
    assert record["values"]["mjcf_joints"]["how"].startswith("given with --joints")
    res = CliRunner().invoke(app, ["new-robot", "odd2", "--mjcf", str(mjcf), "--joints", "a,b"])
    assert res.exit_code == 1 and "expected 12 comma-separated joint names" in res.output


def test_tune_robot_derives_again_and_never_overwrites_an_edit(derived):
    _, out, _ = derived
    plugin = out / "src" / "adaptkit_toy" / "plugin.py"
    cmd = ["--plugin", str(plugin), "tune-robot", "toy", *TOY]
    shown = CliRunner().invoke(app, cmd)
    assert shown.exit_code == 0, shown.output
    assert "the kinematic-tree rule finds the plugin's joint mapping" in shown.output
    assert "paste into the toy plugin's RobotSpec" in shown.output and "kp=" in shown.output
    wrote = CliRunner().invoke(app, [*cmd, "--write"])
    assert wrote.exit_code == 0 and "rewrote" in wrote.output, wrote.output
    plugin.write_text(plugin.read_text().replace("kp=", "kp=1 + "))  # a hand edit
    edited = plugin.read_text()
    refused = CliRunner().invoke(app, [*cmd, "--write"])
    assert refused.exit_code == 1 and "edited since adaptkit wrote it" in refused.output
    assert plugin.read_text() == edited
