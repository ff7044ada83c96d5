"""Reading a user's robot file: the joint mapping comes from the kinematic tree and the geometry,
never from names or file order; ambiguous files are refused with a table; signs, the standing
pose, heights and torque limits follow from forward kinematics (adaptkit.sim.robot_file,
joint_map, robot_geometry). Every robot here is a toy file of the tests' own."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from adaptkit.errors import AdaptkitError
from adaptkit.sim.joint_map import AmbiguousJoints, map_joints
from adaptkit.sim.robot_file import read_robot_file
from adaptkit.sim.robot_geometry import STANCE_FRACTION, TORQUE_RULE, leg_geometry, torque_limits
from tests.helpers_robots import (
    CALF,
    FOOT_R,
    THIGH,
    expected_names,
    numbered_names,
    toy_mjcf,
    toy_urdf,
    unitree_names,
    upper_lower_names,
)


def _read(tmp_path, text, suffix=".xml"):
    path = tmp_path / f"robot{suffix}"
    path.write_text(text)
    rf = read_robot_file(path)
    return rf, rf.compile()


@pytest.mark.parametrize("axis", [1, -1])
@pytest.mark.parametrize(
    "names, order",
    [
        (unitree_names, ("FR", "FL", "RR", "RL")),
        (upper_lower_names, ("RL", "FR", "RR", "FL")),
        (numbered_names(3), ("FL", "RR", "RL", "FR")),
        (numbered_names(11), ("RR", "RL", "FL", "FR")),
    ],
    ids=["unitree", "upper-lower", "numbered", "numbered-2"],
)
def test_joints_are_mapped_from_the_tree_not_the_names(tmp_path, names, order, axis):
    rf, model = _read(tmp_path, toy_mjcf(names, order, axis=axis))
    jmap = map_joints(model)
    assert jmap.names == expected_names(names)
    # the file's floor went (adaptkit adds its own), the trunk kept its free joint
    assert any("world body" in n for n in rf.notes)
    assert [row["role"] for row in jmap.table if row["role"] != "?"]  # every hinge has a role


def test_a_urdf_is_read_with_a_floating_base_and_its_effort_limits(tmp_path):
    rf, model = _read(tmp_path, toy_urdf(numbered_names(5), effort=13.0), ".urdf")
    assert rf.kind == "urdf" and any("floating base" in n for n in rf.notes)
    jmap = map_joints(model)
    assert jmap.names == expected_names(numbered_names(5))
    geometry = leg_geometry(model, jmap)
    torques, how = torque_limits(jmap, geometry, rf.force_limits)
    assert torques == (13.0,) * 12 and "from the file" in how
    # the written model is self-contained MJCF that compiles to the same robot
    again = mujoco.MjSpec.from_string(rf.xml()).compile()
    assert again.njnt == model.njnt and math.isclose(
        float(again.body_subtreemass[1]), float(model.body_subtreemass[1]), rel_tol=1e-6
    )


@pytest.mark.parametrize(
    "kwargs, why",
    [
        ({"drop": [("RR", "calf")]}, "11 hinge joints"),
        ({"hip_axis": "0 1 0"}, "not the trunk's x axis"),
        ({"corners": {"FR": (1, -1), "FL": (1, 1), "RR": (-1, -1), "RL": (-1, -1)}}, "two legs"),
    ],
    ids=["missing-knee", "hip-about-y", "two-legs-one-corner"],
)
def test_ambiguous_files_are_refused_with_what_was_found(tmp_path, kwargs, why):
    _, model = _read(tmp_path, toy_mjcf(numbered_names(2), **kwargs))
    with pytest.raises(AmbiguousJoints, match=why) as info:
        map_joints(model)
    assert "--joints" in str(info.value) and "\n" not in str(info.value)
    rows = info.value.table
    assert rows and {"joint", "chain", "depth", "axis", "role"} <= set(rows[0])
    assert len(rows) == (11 if "11" in why else 12)


def test_joints_given_by_hand_are_checked(tmp_path):
    names = numbered_names(2)
    _, model = _read(tmp_path, toy_mjcf(names, hip_axis="0 1 0"))
    given = list(expected_names(names))
    assert map_joints(model, given).names == tuple(given)
    with pytest.raises(AdaptkitError, match="12 different joint names"):
        map_joints(model, given[:11])
    with pytest.raises(AdaptkitError, match="has no joint 'nope'"):
        map_joints(model, [*given[:11], "nope"])


@pytest.mark.parametrize("axis", [1, -1])
def test_signs_pose_and_heights_follow_from_the_geometry(tmp_path, axis):
    _, model = _read(tmp_path, toy_mjcf(numbered_names(4), axis=axis))
    g = leg_geometry(model, map_joints(model))
    # thigh + swings the foot backwards: +1 on +y axes (Unitree), -1 on -y (Mini Cheetah)
    assert g.signs == (axis, axis, -axis) * 4
    # equal links: the front knee bent so that hip-to-foot = STANCE_FRACTION of the reach,
    # the thigh half of it (the foot below the thigh joint)
    knee = 2 * math.acos(STANCE_FRACTION)
    front = g.legs[0].pose
    assert front[0] == 0.0
    assert front[1] == pytest.approx(axis * knee / 2, abs=0.01)
    assert front[2] == pytest.approx(-axis * knee, abs=0.01)
    height = STANCE_FRACTION * (THIGH + CALF) + FOOT_R
    assert g.standing_height == pytest.approx(height, abs=2e-3)
    for leg in g.legs[2:]:  # rear: thigh further back, same depth
        assert abs(leg.pose[1]) > abs(front[1]) and leg.height == pytest.approx(height, abs=2e-3)
    assert g.mass == pytest.approx(4.0 + 4 * (0.4 + 0.6 + 0.15 + 0.05))
    assert g.leg_length == pytest.approx(THIGH + CALF, abs=1e-6)
    # the plugin's pose carries these signs (RobotSpec.joint_signs reads them off the pose)
    assert all(np.sign(q) == s for q, s in zip(g.default_joint_angles, g.signs, strict=True) if q)


def test_a_pose_against_the_axes_is_refused(tmp_path):
    _, model = _read(tmp_path, toy_mjcf(axis=1))
    jmap = map_joints(model)
    with pytest.raises(AdaptkitError, match="leg FR's thigh angle in the pose"):
        leg_geometry(model, jmap, pose=(0.0, -0.8, 1.6) * 4)  # a Mini Cheetah pose on +y axes


def test_torque_limits_from_the_files_motors_else_the_rule(tmp_path):
    rf, model = _read(tmp_path, toy_mjcf(motors={"hip": 9.0, "thigh": 11.0, "calf": 17.0}))
    assert any("actuator" in n for n in rf.notes) and model.nu == 0  # adaptkit adds its own
    jmap = map_joints(model)
    g = leg_geometry(model, jmap)
    torques, how = torque_limits(jmap, g, rf.force_limits)
    assert torques == (9.0, 11.0, 17.0) * 4 and "ctrlrange × gear" in how
    rf, model = _read(tmp_path, toy_mjcf())
    torques, how = torque_limits(jmap, g, rf.force_limits)
    mgl = g.mass * 9.81 * g.leg_length
    assert torques[:3] == pytest.approx([TORQUE_RULE["hip"] * mgl, TORQUE_RULE["thigh"] * mgl,
                                         TORQUE_RULE["calf"] * mgl], abs=0.01)  # fmt: skip
    assert "the file states none" in how


def test_bad_files_are_one_line(tmp_path):
    with pytest.raises(AdaptkitError, match="no such file"):
        read_robot_file(tmp_path / "missing.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text("<mujoco><worldbody><body><joint type='hinge'/></body></worldbody>")
    with pytest.raises(AdaptkitError, match="cannot read it as MJCF") as info:
        read_robot_file(bad)
    assert "\n" not in str(info.value)
    two = tmp_path / "two.xml"
    two.write_text(
        "<mujoco><worldbody><body><freejoint/><geom size='0.1'/></body>"
        "<body pos='1 0 0'><freejoint/><geom size='0.1'/></body></worldbody></mujoco>"
    )
    with pytest.raises(AdaptkitError, match="expected one robot under the world body"):
        read_robot_file(two)
