"""MuJoCo physics for the locomotion env: every env stepped by one native `mujoco.rollout` call
per control step (threads in C, no Python loop over envs); PD by position actuators."""

from __future__ import annotations

import copy
import os

import mujoco
import numpy as np
from mujoco import rollout

from adaptkit.defaults import Sim
from adaptkit.robot import RobotSpec
from adaptkit.sim.model import build_model
from adaptkit.sim.physics import SUBSTEPS


class MujocoBackend:
    sim = Sim.MUJOCO

    def __init__(self, spec: RobotSpec, num_envs: int, nthread: int | None = None) -> None:
        n = self.num_envs = num_envs
        self.model, info = build_model(spec)
        self._qpos_idx = info.qpos_idx
        self._qvel_idx = info.qvel_idx
        self._default_qpos = info.default_qpos
        self._base_body = int(self.model.jnt_bodyid[0])  # the free joint's body: the trunk
        self._floor = self.model.geom("floor").id
        # One native rollout call steps every env: threads only pay off with several envs.
        if nthread is None:
            nthread = min(os.cpu_count() or 1, n) if n > 1 else 0
        self._rollout = rollout.Rollout(nthread=nthread)
        self._models = [self.model] * n
        self._datas = [mujoco.MjData(self.model) for _ in range(max(nthread, 1))]
        self._nq = nq = self.model.nq
        nstate = mujoco.mj_stateSize(self.model, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        self._state = np.zeros((n, nstate))
        self._state_out = np.zeros((n, SUBSTEPS, nstate))
        self._ctrl = np.zeros((n, SUBSTEPS, self.model.nu))
        self._sensor_out = np.zeros((n, SUBSTEPS, self.model.nsensordata))
        # Columns of the physics state the task reads (backend.STATE_COLUMNS), gathered in one
        # indexing op: [time, qpos, qvel, ...] with qpos = base pos, quat, joints and qvel = world
        # linear velocity, body angular velocity (the free joint's conventions), joints.
        self._gather = np.concatenate(
            [
                np.arange(1, 8),
                1 + nq + np.arange(6),
                1 + self._qpos_idx,
                1 + nq + self._qvel_idx,
            ]
        )

    @property
    def physics_state(self) -> np.ndarray:
        """Every env's MuJoCo state [N, nstate] (mjSTATE_FULLPHYSICS of `model`): what a
        renderer draws. A view, valid until the next step; do not write to it."""
        return self._state

    def reset(
        self,
        idx: np.ndarray,
        base_pos: np.ndarray,
        base_quat: np.ndarray,
        joint_pos: np.ndarray,
        base_lin_vel: np.ndarray,
    ) -> None:
        qpos = np.tile(self._default_qpos, (len(idx), 1))
        qpos[:, 0:3] = base_pos
        qpos[:, 3:7] = base_quat
        qpos[:, self._qpos_idx] = joint_pos
        state = np.zeros((len(idx), self._state.shape[1]))
        state[:, 1 : 1 + self._nq] = qpos
        state[:, 1 + self._nq : 1 + self._nq + 3] = base_lin_vel
        self._state[idx] = state

    def enable_dynamics(self) -> None:
        """One model copy per env (rollout takes a model per state), so each env's mass and
        friction can differ; the `walk` task keeps sharing one model."""
        self._models = [copy.copy(self.model) for _ in range(self.num_envs)]

    def set_dynamics(self, idx: np.ndarray, mass_scale: np.ndarray, friction: np.ndarray) -> None:
        b, base = self._base_body, self.model
        for i, m, f in zip(idx, mass_scale, friction, strict=True):
            env_model = self._models[int(i)]
            if env_model is base:
                raise RuntimeError("set_dynamics before enable_dynamics")
            env_model.body_mass[b] = base.body_mass[b] * m
            env_model.body_inertia[b] = base.body_inertia[b] * m
            env_model.geom_friction[self._floor, 0] = f

    def step(self, targets: np.ndarray) -> None:
        self._ctrl[:] = targets[:, None]
        self._rollout.rollout(
            self._models,
            self._datas,
            self._state,
            self._ctrl,
            skip_checks=True,
            nstep=SUBSTEPS,
            state=self._state_out,
            sensordata=self._sensor_out,
        )
        self._state[:] = self._state_out[:, -1]

    def read(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        return self._state[idx][:, self._gather]

    def close(self) -> None:
        self._rollout.close()
