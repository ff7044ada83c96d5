"""Robot models and the batched locomotion env: structure, standing, obs/reward, resets."""

from __future__ import annotations

import math

import mujoco
import numpy as np
import pytest

from adaptkit.plugins import load_registry
from adaptkit.robot import CANONICAL_JOINTS
from adaptkit.sim.env import LocomotionEnv
from adaptkit.sim.model import build_model

ROBOTS = ("go1", "go2", "a1", "minicheetah")


@pytest.fixture(scope="module")
def specs():
    return load_registry().robots


@pytest.mark.parametrize("name", ROBOTS)
def test_model_compiles_with_canonical_actuators(specs, name):
    spec = specs[name]
    model, info = build_model(spec)
    assert model.nu == 12
    assert [model.actuator(i).name for i in range(12)] == list(CANONICAL_JOINTS)
    for i, joint in enumerate(spec.mjcf_joints):  # actuator i drives canonical joint i
        assert model.actuator_trnid[i, 0] == model.joint(joint).id
        assert model.jnt_type[model.joint(joint).id] == mujoco.mjtJoint.mjJNT_HINGE
    assert abs(model.body_mass.sum() - spec.mass_kg) / spec.mass_kg < 0.05
    assert np.all(model.actuator_forcelimited)
    assert model.actuator_gainprm[:, 0] == pytest.approx([spec.kp] * 12)
    assert not any(model.geom_type == mujoco.mjtGeom.mjGEOM_MESH)  # primitives only
    # Canonical leg order FR, FL, RR, RL: right legs at y < 0, front legs at x > 0.
    data = mujoco.MjData(model)
    data.qpos[:] = info.default_qpos
    mujoco.mj_kinematics(model, data)
    hips = [model.joint(spec.mjcf_joints[3 * leg]).bodyid[0] for leg in range(4)]
    xy = data.xpos[hips][:, :2]
    assert list(np.sign(xy[:, 0])) == [1, 1, -1, -1]
    assert list(np.sign(xy[:, 1])) == [-1, 1, -1, 1]


@pytest.mark.parametrize("name", ROBOTS)
def test_stands_under_pd_for_5_seconds(specs, name):
    env = LocomotionEnv(specs[name], 4, seed=3)
    env.reset()
    for _ in range(250):  # 5 s at 50 Hz
        _, _, done, _ = env.step(np.zeros((4, 12)))
        assert not done.any()
    assert np.all(env.base_pos[:, 2] > 0.2)
    assert np.all(np.abs(env.base_lin_vel[:, :2]) < 0.05)


def _rotate_to_body(quat: np.ndarray, v: np.ndarray) -> np.ndarray:
    """World -> body with MuJoCo's own quaternion routines (independent of the env's math)."""
    inv = np.zeros(4)
    mujoco.mju_negQuat(inv, quat)
    out = np.zeros(3)
    mujoco.mju_rotVecQuat(out, v, inv)
    return out


def test_obs_and_reward_match_hand_computation(specs):
    spec = specs["go2"]
    env = LocomotionEnv(spec, 1, seed=0)
    env.reset()
    nq = env.model.nq
    roll, pitch, yaw = 0.05, -0.03, 0.4
    quat = np.zeros(4)
    mujoco.mju_euler2Quat(quat, np.array([roll, pitch, yaw]), "XYZ")
    q = np.asarray(spec.default_joint_angles) + np.linspace(-0.1, 0.1, 12)
    qd = np.linspace(1.0, -1.0, 12)
    v_world, w_body, z = np.array([0.3, -0.1, 0.05]), np.array([0.2, -0.4, 0.6]), 0.28
    state = env.backend._state[0]
    state[1:4] = (1.0, 2.0, z)
    state[4:8] = quat
    state[1 + env.backend._qpos_idx] = q
    state[1 + nq : 4 + nq] = v_world
    state[4 + nq : 7 + nq] = w_body
    state[1 + nq + env.backend._qvel_idx] = qd
    a_prev, a = np.full(12, 0.2), np.linspace(-1, 1, 12)
    env.actions[0], env.last_actions[0] = a, a_prev
    env._update()
    obs = env._observation()[0]

    gravity = _rotate_to_body(quat, np.array([0.0, 0.0, -1.0]))
    expected = np.concatenate(
        [w_body * 0.25, gravity, [0.5 * 2, 0, 0], q - spec.default_joint_angles, qd * 0.05, a]
    )
    np.testing.assert_allclose(obs, expected, atol=1e-6)

    v_body = _rotate_to_body(quat, v_world)
    dt = 0.02
    terms = {
        "tracking_lin_vel": 1.0 * math.exp(-((0.5 - v_body[0]) ** 2 + v_body[1] ** 2) / 0.25),
        "tracking_ang_vel": 0.2 * math.exp(-(w_body[2] ** 2) / 0.25),
        "lin_vel_z": -1.0 * v_body[2] ** 2,
        "base_height": -50.0 * (z - spec.base_height_target) ** 2,
        "action_rate": -0.005 * np.sum((a - a_prev) ** 2),
        "similar_to_default": -0.1 * np.sum(np.abs(q - spec.default_joint_angles)),
    }
    reward = env.compute_reward()[0]
    assert reward == pytest.approx(dt * sum(terms.values()), rel=1e-9)
    for k, val in env.reward_terms.items():
        assert val[0] == pytest.approx(dt * terms[k], rel=1e-9, abs=1e-12)
    assert env.roll[0] == pytest.approx(roll, abs=1e-9)
    assert env.pitch[0] == pytest.approx(pitch, abs=1e-9)
    assert env.base_lin_vel[0] == pytest.approx(  # yaw frame
        [
            math.cos(yaw) * v_world[0] + math.sin(yaw) * v_world[1],
            -math.sin(yaw) * v_world[0] + math.cos(yaw) * v_world[1],
            v_world[2],
        ]
    )


def test_action_latency_clipping_and_last_action(specs):
    spec = specs["a1"]
    env = LocomotionEnv(spec, 2, seed=0)
    env.reset()
    default = np.asarray(spec.default_joint_angles)
    a1 = np.full((2, 12), 0.5)
    obs, _, _, _ = env.step(a1)
    ctrl = env.backend._ctrl
    np.testing.assert_allclose(ctrl[:, 0], np.tile(default, (2, 1)))  # executes a_{-1} = 0
    np.testing.assert_allclose(obs[:, 33:45], a1)
    obs, _, _, _ = env.step(np.full((2, 12), 100.0))  # clipped to the action bounds
    np.testing.assert_allclose(ctrl[:, 0], np.tile(default + 0.5 * spec.action_scale, (2, 1)))
    np.testing.assert_allclose(obs[:, 33:45], spec.action_bounds[1])


def test_auto_reset_sets_step_num_zero_and_rerandomises(specs):
    env = LocomotionEnv(specs["minicheetah"], 3, seed=5, episode_length=4)
    first = env.reset()
    assert np.all(env.step_num == 0)
    for t in range(1, 4):
        _, _, done, _ = env.step(np.zeros((3, 12)))
        assert not done.any()
        assert np.all(env.step_num == t)
    obs, _, done, info = env.step(np.zeros((3, 12)))
    assert done.all() and info["time_out"].all() and not info["fell"].any()
    assert np.all(env.step_num == 0)
    np.testing.assert_array_equal(info["episode_length"], 4)
    assert not np.allclose(info["terminal_obs"], obs)
    assert not np.allclose(obs[:, 9:21], first[:, 9:21])  # new random start, not a replay
    np.testing.assert_array_equal(obs[:, 33:45], 0.0)


def test_tilt_beyond_10_degrees_terminates(specs):
    env = LocomotionEnv(specs["go1"], 2, seed=0)
    env.reset()
    quat = np.zeros(4)
    mujoco.mju_euler2Quat(quat, np.array([math.radians(15), 0.0, 0.0]), "XYZ")
    env.backend._state[1, 4:8] = quat  # env 1 rolled 15°, env 0 upright
    _, _, done, info = env.step(np.zeros((2, 12)))
    assert list(done) == [False, True] and list(info["fell"]) == [False, True]
    assert env.step_num[1] == 0


def test_seeded_and_independent_of_batch(specs):
    spec = specs["go2"]
    acts = np.random.default_rng(0).uniform(-1, 1, (30, 3, 12))
    runs = []
    for n, nthread in ((3, 2), (3, 0)):
        env = LocomotionEnv(spec, n, seed=11, nthread=nthread)
        env.reset()
        for a in acts:
            obs, *_ = env.step(a[:n])
        runs.append(obs)
    alone = LocomotionEnv(spec, 1, seed=11, env_ids=[2])
    alone.reset()
    for a in acts:
        obs_alone, *_ = alone.step(a[2:3])
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0][2:3], obs_alone)
    other = LocomotionEnv(spec, 3, seed=12)
    assert not np.allclose(other.reset(), LocomotionEnv(spec, 3, seed=11).reset())
