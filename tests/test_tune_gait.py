"""`adaptkit tune-gait` never recommends a gait that falls or earns no more than standing still
(it says it found none and what to try); its durations must be finite; a plugin family's seed
must be a non-negative integer (one line, not numpy's traceback)."""

from __future__ import annotations

import textwrap

import pytest
from typer.testing import CliRunner

from adaptkit.cli import app
from adaptkit.errors import AdaptkitError
from adaptkit.family import RobotFamily
from adaptkit.family.quadruped import member_spec
from adaptkit.plugins import load_registry
from tests.helpers_robots import toy_mjcf

TOY = ["--rounds", "1", "--batch", "6", "--seconds", "1", "--check-episodes", "2",
       "--check-seconds", "2"]  # fmt: skip


def _toy_plugin(tmp_path, name: str, torque: float) -> str:
    (tmp_path / f"{name}.xml").write_text(toy_mjcf(floor=False))  # the plugin's model as is
    plugin = tmp_path / f"{name}_plugin.py"
    plugin.write_text(
        textwrap.dedent(
            f"""
            from adaptkit import CANONICAL_JOINTS, LOCOMOTION_OBS_NAMES, GaitParams, RobotSpec
            from adaptkit import hookimpl

            @hookimpl
            def register_robots(register):
                register(RobotSpec(
                    name="{name}", task="{name}_walking_ad", group="{name}_locomotion",
                    obs_names=LOCOMOTION_OBS_NAMES, joint_names=CANONICAL_JOINTS,
                    default_joint_angles=(0.0, 0.8, -1.6) * 4, kp=25.0, kd=0.6,
                    base_init_height=0.33, base_height_target=0.25,
                    torque_limits=({torque},) * 12, mjcf="{name}.xml",
                    mjcf_joints=tuple(f"{{leg}}_{{kind}}_joint" for leg in ("FR", "FL", "RR", "RL")
                                      for kind in ("hip", "thigh", "calf")),
                    gait=GaitParams(3.3, 0.15, 0.7, 0.0, -0.3, 0.5, 0.3, 0.0, 1.5),
                ))
            """
        )
    )
    return str(plugin)


def test_a_failed_search_recommends_nothing(tmp_path):
    # motors too weak to carry the body: no gait walks, none may be pasted
    plugin = _toy_plugin(tmp_path, "feeble", torque=0.3)
    res = CliRunner().invoke(app, ["--plugin", plugin, "tune-gait", "feeble", *TOY])
    assert res.exit_code == 1, res.output
    assert "paste into" not in res.output and "GaitParams(" not in res.output
    last = res.output.strip().splitlines()[-1]
    assert "found no gait to recommend" in last and "--rounds" in last and "kp" in last
    assert "checked on 2 fresh-seed episodes" in res.output  # the check it failed is shown


def test_a_gait_that_passes_the_check_is_printed_to_paste():
    # Go1's shipped gait starts the search and survives one short round
    args = ["tune-gait", "go1", "--rounds", "1", "--batch", "6", "--seconds", "2",
            "--check-episodes", "2", "--check-seconds", "4"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "paste into the go1 plugin's RobotSpec" in res.output
    assert res.output.strip().splitlines()[-1].startswith("gait=GaitParams(")


def test_a_fast_gait_that_earns_less_than_standing_is_not_recommended(tmp_path):
    # the search's score caps speed, so a short search on this toy picks a gait that runs at
    # about 1 m/s against the 0.5 m/s command: no fall, but it earns less than standing still
    plugin = _toy_plugin(tmp_path, "sturdy", torque=30.0)
    args = ["--plugin", plugin, "tune-gait", "sturdy", "--rounds", "1", "--batch", "8",
            "--seconds", "2", "--check-episodes", "2", "--check-seconds", "4"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "0 fell" in res.output and "paste into" not in res.output
    assert "<= standing still" in res.output.strip().splitlines()[-1]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0"])
@pytest.mark.parametrize("flag", ["--seconds", "--check-seconds"])
def test_durations_must_be_finite_and_positive(value, flag):
    res = CliRunner().invoke(app, ["tune-gait", "go1", flag, value])
    assert res.exit_code == 2
    assert "finite number of seconds > 0" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(app, ["new-robot", "x", "--mjcf", "x.xml", flag, value])
    assert res.exit_code == 2 and "finite number of seconds > 0" in res.output


def test_the_library_refuses_a_non_finite_duration_too():
    from adaptkit.sim.gait_tuning import tune_gait

    with pytest.raises(AdaptkitError, match="finite number > 0"):
        tune_gait(load_registry().robot("go1"), seconds=float("nan"))


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3"])
def test_a_family_seed_must_be_a_non_negative_integer(tmp_path, seed):
    with pytest.raises(AdaptkitError, match="field 'seed' must be an integer >= 0"):
        RobotFamily("negfam", "neg_locomotion", 3, member_spec, seed=seed)
    plugin = tmp_path / "negfam_plugin.py"
    plugin.write_text(
        textwrap.dedent(
            f"""
            from adaptkit import hookimpl
            from adaptkit.family import RobotFamily
            from adaptkit.family.quadruped import member_spec

            @hookimpl
            def register_families(register):
                register(RobotFamily("negfam", "neg_locomotion", 3, member_spec, seed={seed!r}))
            """
        )
    )
    res = CliRunner().invoke(app, ["--plugin", str(plugin), "robots"])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "field 'seed' must be an integer >= 0" in res.output
