"""The procedural quadruped family: valid bodies, sign conventions, determinism, registration,
demonstrator acceptance, per-episode noise cycles and the in-window improvement measure."""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict, fields

import h5py
import mujoco
import numpy as np
import pytest
from typer.testing import CliRunner

from adaptkit import AdaptkitError
from adaptkit.cli import app
from adaptkit.data.improvement import in_window_improvement
from adaptkit.family import CACHE_ENV
from adaptkit.family.core import gait_file
from adaptkit.family.quadruped import (
    BUILTIN_BODIES,
    RANGES,
    body_distance,
    body_mjcf,
    nearest_members,
    quadruped_family,
    sample_body,
)
from adaptkit.plugins import load_registry
from adaptkit.sim import family_gait
from adaptkit.sim.collect import collect_histories, episode_noise
from adaptkit.sim.env import LocomotionEnv
from adaptkit.sim.model import build_model

# Member 0 follows the unitree convention, member 3 the cheetah one (family seed 0); both stand.
UNITREE, CHEETAH = 0, 3


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    """Members named through the registry write their MJCF to the cache: never the home one."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "default-cache"))


@pytest.fixture
def family(tmp_path):
    fam = quadruped_family(seed=0)
    return fam, tmp_path / "cache"


def test_members_compile_and_stand_for_one_second(family):
    fam, cache = family
    for index in (UNITREE, CHEETAH):
        spec = fam.member(index, cache)
        assert spec.obs_dim == 45 and spec.action_dim == 12
        assert spec.for_layout("fork33").obs_dim == 33
        assert spec.group == "quadruped_family_locomotion"
        env = LocomotionEnv(spec, 2, seed=1, episode_length=1000)
        env.reset()
        for _ in range(50):  # 1 s at 50 Hz, PD holding the default pose
            info = env.step(np.zeros((2, 12)))[3]
            assert not info["fell"].any(), f"member {index} fell while standing"
        assert (env.base_pos[:, 2] > 0.7 * spec.base_height_target).all()


def _foot_x_in_trunk(data, foot: int, trunk: int) -> float:
    """The foot's forward position in the trunk's frame."""
    rel = data.geom_xpos[foot] - data.xpos[trunk]
    return float(data.xmat[trunk].reshape(3, 3).T.dot(rel)[0])


def test_both_sign_conventions_move_the_foot_as_documented(family):
    """A positive thigh target swings the foot backwards (unitree) or forwards (cheetah)."""
    fam, cache = family
    moved = {}
    for index in (UNITREE, CHEETAH):
        spec = fam.member(index, cache)
        model, info = build_model(spec)
        model.opt.gravity[:] = 0.0  # in the air: only the joint's own motion moves the foot
        data = mujoco.MjData(model)
        data.qpos[:] = info.default_qpos
        target = np.array(spec.default_joint_angles)
        target[1] += 0.3  # FR thigh
        foot = model.geom("FR_foot").id
        trunk = model.body("trunk").id
        mujoco.mj_forward(model, data)
        before = _foot_x_in_trunk(data, foot, trunk)
        for _ in range(200):
            data.ctrl[:] = target
            mujoco.mj_step(model, data)
        moved[spec.extra["convention"]] = _foot_x_in_trunk(data, foot, trunk) - before
    assert moved["unitree"] < -0.03
    assert moved["cheetah"] > 0.03


def test_members_are_deterministic_and_distinct(tmp_path):
    a, b = quadruped_family(seed=0), quadruped_family(seed=0)
    assert sample_body(0, 5) == sample_body(0, 5)
    xml_a = a.member(5, tmp_path / "a").mjcf.read_text()
    xml_b = b.member(5, tmp_path / "b").mjcf.read_text()
    assert xml_a == xml_b
    assert sample_body(0, 5) != sample_body(0, 6)
    assert sample_body(0, 5) != sample_body(1, 5)
    assert body_distance(sample_body(0, 5), sample_body(0, 6)) > 0.05
    conventions = {sample_body(0, i).convention for i in range(20)}
    assert conventions == {"unitree", "cheetah"}


def test_ranges_span_the_builtin_robots_without_containing_them():
    for name, body in BUILTIN_BODIES.items():
        for key, (lo, hi) in RANGES.items():
            assert lo <= getattr(body, key) <= hi, f"{name}.{key} outside {lo}..{hi}"
    nearest = nearest_members(0, 50)
    assert set(nearest) == {"go1", "go2", "a1", "minicheetah"}
    assert all(0 < v["distance"] < 0.5 for v in nearest.values())


def test_builtin_table_matches_the_vendored_models(registry):
    """The distance report's numbers for the built-in robots are the files' own."""
    for name, body in BUILTIN_BODIES.items():
        spec = registry.robot(name)
        model, _ = build_model(spec)
        trunk = int(model.jnt_bodyid[0])
        assert model.body_mass[trunk] == pytest.approx(body.trunk_mass, abs=1e-3)
        thigh = model.joint(spec.mjcf_joints[1])
        calf = model.joint(spec.mjcf_joints[2])
        assert model.body_pos[calf.bodyid[0]][2] == pytest.approx(-body.thigh_length, abs=1e-3)
        assert model.body_mass[thigh.bodyid[0]] == pytest.approx(body.thigh_mass, abs=1e-3)
        assert spec.kp == body.kp and spec.torque_limits[2] == body.calf_torque


def test_generated_builtin_stands_like_the_real_one():
    """The generator is faithful enough: Go1's parameters give a Go1-height stand."""
    xml = body_mjcf(BUILTIN_BODIES["go1"], "go1_copy")
    model = mujoco.MjModel.from_xml_string(xml)
    assert model.nu == 0 and model.njnt == 13
    assert sum(model.body_mass) == pytest.approx(BUILTIN_BODIES["go1"].total_mass, rel=1e-6)


runner = CliRunner()


def test_registry_shows_the_family_as_one_line_and_resolves_members(registry):
    assert set(registry.families) == {"quadfam"}
    result = runner.invoke(app, ["robots"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "quadfam" in line]
    assert len(lines) == 1 and "1000 members" in lines[0]
    spec = registry.robot("quadfam_0003")
    assert spec.name == "quadfam_0003" and spec.extra["family_index"] == 3
    assert registry.owner("quadfam_0003") == "quadfam"
    assert registry.robot_for_task("quadfam_0003_walking_ad").name == "quadfam_0003"
    assert registry.robot_for_task("go1_walking_ad").name == "go1"
    assert registry.robot_for_task("quadfam_0003_running") is None
    with pytest.raises(AdaptkitError, match="member index"):
        registry.robot("quadfam_9999")
    data = json.loads(runner.invoke(app, ["plugins", "--json"]).output)
    assert [f["members"] for p in data for f in p["families"]] == [1000]


def test_third_party_family_registers_through_the_hook(tmp_path):
    plugin = tmp_path / "tinyfam_plugin.py"
    plugin.write_text(
        textwrap.dedent(
            """
            from adaptkit import hookimpl
            from adaptkit.family import RobotFamily
            from adaptkit.family.quadruped import member_spec

            def build(seed, index, folder):
                spec = member_spec(seed, index, folder)
                from dataclasses import replace
                return replace(spec, name=f"tinyfam_{index:04d}", group="tiny_locomotion")

            @hookimpl
            def register_families(register):
                register(RobotFamily("tinyfam", "tiny_locomotion", 3, build, seed=7))
            """
        )
    )
    reg = load_registry(plugin_files=[plugin])
    assert reg.families["tinyfam"].size == 3
    assert reg.plugins["tinyfam_plugin"].families == ["tinyfam"]
    assert reg.robot("tinyfam_0002").group == "tiny_locomotion"


TINY = family_gait.SearchBudget(
    rounds=1, batch=6, seconds=1.0, check_envs=2, check_seconds=2.0, seed=0
)


def test_demonstrator_is_tuned_checked_and_cached(family, monkeypatch):
    fam, cache = family
    record = family_gait.cached_demonstrator(fam, UNITREE, cache, TINY)
    assert record.accepted, record.reason
    assert record.return_demo > record.return_stand and record.falls == 0
    assert gait_file(fam.cache_dir(cache), "quadfam_0000").is_file()
    spec = fam.member(UNITREE, cache)  # the member now comes with its tuned gait
    assert spec.gait == record.gait and spec.extra["gait"] == "tuned" and spec.extra["accepted"]

    def no_tuning(*args, **kwargs):
        raise AssertionError("tuned again despite the cache")

    monkeypatch.setattr(family_gait, "tune_gait", no_tuning)
    assert family_gait.cached_demonstrator(fam, UNITREE, cache, TINY) == record


def test_a_body_below_the_bar_is_rejected_and_counted(family, monkeypatch):
    fam, cache = family
    monkeypatch.setattr(family_gait, "MIN_SPEED", 5.0)  # no trot walks this fast
    record = family_gait.derive_demonstrator(fam.member(CHEETAH, cache), TINY, starts=[])
    assert not record.accepted and "walks at" in record.reason
    with pytest.raises(AdaptkitError, match="accepted demonstrator"):
        small = quadruped_family(seed=0, size=1)
        family_gait.accepted_members(small, 1, cache, TINY)


def test_episode_noise_falls_within_a_cycle():
    assert episode_noise(np.arange(4), 4) == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0])
    assert episode_noise(np.arange(2), 2) == pytest.approx([1.0, 0.0])


def test_noise_cycle_collection_records_the_cycle(family, tmp_path):
    fam, cache = family
    spec = fam.member(UNITREE, cache)
    out = tmp_path / "data" / spec.data_path
    paths = collect_histories(
        spec, out, 1, 120, 1, seed=0, episode_length=20, noise_cycle=3, task="varied"
    )
    meta = json.loads((out / f"{out.name}.json").read_text())
    assert meta["collector"]["noise_cycle_episodes"] == 3
    assert meta["histories"][0]["episodes"] == 6
    assert in_window_improvement(paths, context_len=63).pairs > 0


def _write_history(path, returns_per_episode, length):
    """One history in the SPEC.md layout, written with h5py: a '0-(n-1)' group."""
    n = length * len(returns_per_episode)
    reward = np.repeat(np.array(returns_per_episode) / length, length).astype(np.float32)
    with h5py.File(path, "w") as f:
        g = f.create_group(f"0-{n - 1}")
        g["proprio_observation"] = np.zeros((n, 45), np.float32)
        g["action"] = np.zeros((n, 12), np.float32)
        g["reward"] = reward
        g["step_num"] = np.tile(np.arange(length), len(returns_per_episode)).astype(np.int32)


def test_in_window_improvement_counts_whole_episodes(tmp_path):
    rising, falling = tmp_path / "rising.h5", tmp_path / "falling.h5"
    _write_history(rising, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 0.0], 10)
    _write_history(falling, [3.0, 2.0, 1.0, 0.0], 10)
    up = in_window_improvement([rising], context_len=29, stride=10)
    # windows start at 0, 10, .., 40 and hold 3 whole episodes each (the history's last one is
    # as long as the others: it ran to the time limit, so it counts)
    assert up.windows == 5 and up.episodes_per_window == pytest.approx(3.0)
    assert up.mean_return_by_position[0] < up.mean_return_by_position[1]
    down = in_window_improvement([falling], context_len=19, stride=10)
    assert down.improving == 0.0 and down.mean_gain == pytest.approx(-1.0)
    _write_history(falling, [3.0, 2.0, 1.0], 10)
    with h5py.File(falling, "a") as f:  # cut the last episode short: it no longer counts
        g = f["0-29"]
        for key in list(g):
            data = g[key][:25]
            del g[key]
            g[key] = data
        f.move("0-29", "0-24")
    cut = in_window_improvement([falling], context_len=24, stride=5)
    assert cut.windows == 1 and cut.episodes_per_window == 2 and cut.pairs == 1
    assert in_window_improvement([falling], context_len=100).windows == 0


def test_parameters_cover_the_issue_list():
    names = {f.name for f in fields(sample_body(0, 0))}
    for needed in ("trunk_mass", "hip_x", "thigh_length", "calf_mass", "thigh_min", "kp"):
        assert needed in names
    assert asdict(sample_body(0, 0))["convention"] in ("unitree", "cheetah")
