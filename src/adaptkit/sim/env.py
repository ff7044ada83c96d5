"""Batched quadruped locomotion env reproducing the reference (Genesis go2) walking task.

N envs live in one object. The task (observations, action mapping, PD targets, one-step latency,
rewards, termination, seeded resets) is vectorised numpy over N and is the same whichever physics
backend steps the robots (adaptkit.sim.backend: MuJoCo by default, or Genesis); physics for all
envs is one backend call per control step.

The observation is the robot's declared `obs_names` (adaptkit.robot's named terms, e.g. the
45-dim `locomotion45` layout or the quadruped fork's 33-dim `fork33`): every term is computed
into one feature row per env, and the observation is exactly the declared columns, in order.

Deliberate, documented differences from the reference implementation:
- the reward of a terminal transition is computed on the terminal state (the reference resets
  first and scores the fresh state);
- an episode is exactly `episode_length` steps (the reference's `>` check gives one more).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptkit.defaults import Sim
from adaptkit.errors import AdaptkitError
from adaptkit.robot import JOINT_TERMS, OBS_TERMS, TERM_AXES, RobotSpec
from adaptkit.sim.backend import make_backend, parse_sim
from adaptkit.sim.physics import CONTROL_DT, STATE_WIDTH
from adaptkit.sim.rotations import quat_from_rpy, quat_to_matrix
from adaptkit.tasks import TaskVariant, get_task

COMMAND = np.array([0.5, 0.0, 0.0])  # vx, vy, yaw rate of the `walk` task
COMMAND_SCALE = np.array([2.0, 2.0, 0.25])
ANG_VEL_SCALE = 0.25
DOF_VEL_SCALE = 0.05
TERMINATION_ANGLE = np.deg2rad(10.0)  # |roll| or |pitch| beyond this ends the episode
TRACKING_SIGMA = 0.25
# Reward weights of the reference task; each term is multiplied by the control dt.
REWARD_SCALES = {
    "tracking_lin_vel": 1.0,
    "tracking_ang_vel": 0.2,
    "lin_vel_z": -1.0,
    "base_height": -50.0,
    "action_rate": -0.005,
    "similar_to_default": -0.1,
}
# Reset randomisation (uniform ± these): small, so every episode starts from a near-nominal pose.
RESET_JOINT_NOISE = 0.05  # rad
RESET_TILT_NOISE = 0.02  # rad, roll and pitch
RESET_YAW_NOISE = 0.05  # rad
RESET_VEL_NOISE = 0.05  # m/s, base linear velocity


def feature_columns(joints: Sequence[str]) -> dict[str, int]:
    """Observation name → column of the env's feature row: every term of adaptkit.robot in the
    reference order (3 + 3 + 3 + 3 × joints columns); a layout picks its columns from it."""
    names: list[str] = []
    for term in OBS_TERMS:
        parts = joints if term in JOINT_TERMS else TERM_AXES[term]
        names += [f"{term}_{p}" for p in parts]
    return {name: i for i, name in enumerate(names)}


class LocomotionEnv:
    """`num_envs` copies of one robot following velocity commands (the `walk` task: vx = 0.5
    m/s; adaptkit.tasks has the others); numpy in, numpy out."""

    action_dim = 12

    def __init__(
        self,
        spec: RobotSpec,
        num_envs: int,
        seed: int = 0,
        episode_length: int = 1000,
        nthread: int | None = None,
        env_ids: Sequence[int] | None = None,
        sim: Sim | str | None = None,
        task: TaskVariant | str | None = None,
    ) -> None:
        """`env_ids` (default 0..N-1) name each env's random stream [seed, id]: env i behaves
        the same whatever else is in the batch, so results don't depend on num_envs. `sim`: the
        physics backend (default MuJoCo; `nthread` is MuJoCo's). `task`: the task variant
        (default `walk`; commands, mass and friction drawn from each env's own stream)."""
        if num_envs < 1:
            raise ValueError("num_envs must be >= 1")
        if spec.action_dim != self.action_dim:
            raise AdaptkitError(
                f"robot {spec.name!r}: the locomotion env needs 12 joints, got {spec.action_dim}"
            )
        columns = feature_columns(spec.joint_names)
        unknown = [name for name in spec.obs_names if name not in columns]
        if unknown:
            raise AdaptkitError(
                f"robot {spec.name!r}: field 'obs_names' has {', '.join(unknown[:3])}"
                f"{' ...' if len(unknown) > 3 else ''}, which the locomotion env cannot build "
                f"(names are <term>_<component> of the terms {', '.join(OBS_TERMS)})"
            )
        self.obs_dim = spec.obs_dim
        self.obs_layout = spec.obs_layout or "custom"
        self._obs_idx = np.array([columns[name] for name in spec.obs_names])
        # the declared columns in the feature order (locomotion45): no gather needed each step
        self._obs_is_features = len(self._obs_idx) == len(columns) and bool(
            (self._obs_idx == np.arange(len(columns))).all()
        )
        self.spec = spec
        self.num_envs = n = num_envs
        self.episode_length = episode_length
        self.dt = CONTROL_DT
        self.default_dof_pos = np.asarray(spec.default_joint_angles, dtype=np.float64)
        self.action_scale = spec.action_scale
        self.action_low, self.action_high = spec.action_bounds
        ids = list(range(n)) if env_ids is None else [int(i) for i in env_ids]
        if len(ids) != n:
            raise ValueError(f"env_ids has {len(ids)} ids for {n} envs")
        self.sim = parse_sim(sim)
        self.task = get_task(task)
        self.backend = make_backend(self.sim, spec, n, nthread)
        if self.task.varies_dynamics:
            self.backend.enable_dynamics()  # a one-line error where the backend cannot
        # MuJoCo's compiled model (renderers and tests read it); None for other backends
        self.model = getattr(self.backend, "model", None)

        self.env_ids = ids
        self._rngs = [np.random.default_rng([seed, i]) for i in ids]
        self._raw = np.zeros((n, STATE_WIDTH))  # backend.STATE_COLUMNS of every env
        self._rot = np.tile(np.eye(3), (n, 1, 1))  # body -> world rotation of each base
        self._vel_body = np.zeros((n, 3))
        self._terms = np.zeros((n, len(REWARD_SCALES)))
        self._term_weights = np.array(list(REWARD_SCALES.values())) * self.dt
        self._sin_limit, self._tan_limit = np.sin(TERMINATION_ANGLE), np.tan(TERMINATION_ANGLE)
        self.commands = np.tile(COMMAND, (n, 1))
        self.mass_scale = np.ones(n)  # this episode's, per env (1 in the `walk` task)
        self.friction = np.ones(n)
        self.actions = np.zeros((n, 12))
        self.last_actions = np.zeros((n, 12))
        self.step_num = np.zeros(n, dtype=np.int64)
        self.episode_return = np.zeros(n)
        self._feat = np.zeros((n, len(columns)), dtype=np.float32)  # every term, every env
        self._set_commands(np.arange(n), self.commands)

    # -- state views (valid until the next step) ---------------------------------------------
    @property
    def base_pos(self) -> np.ndarray:
        return self._raw[:, 0:3]

    @property
    def base_quat(self) -> np.ndarray:
        return self._raw[:, 3:7]

    @property
    def base_lin_vel_world(self) -> np.ndarray:
        return self._raw[:, 7:10]

    @property
    def base_ang_vel(self) -> np.ndarray:
        """Body-frame angular velocity (the free joint's own convention)."""
        return self._raw[:, 10:13]

    @property
    def dof_pos(self) -> np.ndarray:
        return self._raw[:, 13:25]

    @property
    def dof_vel(self) -> np.ndarray:
        return self._raw[:, 25:37]

    @property
    def base_lin_vel_body(self) -> np.ndarray:
        return self._vel_body

    @property
    def projected_gravity(self) -> np.ndarray:
        return -self._rot[:, 2, :]

    @property
    def roll(self) -> np.ndarray:
        return np.arctan2(self._rot[:, 2, 1], self._rot[:, 2, 2])

    @property
    def pitch(self) -> np.ndarray:
        return -np.arcsin(np.clip(self._rot[:, 2, 0], -1.0, 1.0))

    @property
    def base_lin_vel(self) -> np.ndarray:
        """Base linear velocity [N,3] in the yaw frame: x along the heading, z up."""
        yaw = np.arctan2(self._rot[:, 1, 0], self._rot[:, 0, 0])
        c, sn = np.cos(yaw), np.sin(yaw)
        v = self._raw[:, 7:10]
        return np.stack([c * v[:, 0] + sn * v[:, 1], c * v[:, 1] - sn * v[:, 0], v[:, 2]], axis=1)

    @property
    def reward_terms(self) -> dict[str, np.ndarray]:
        """The last step's six reward terms (already × scale × dt)."""
        return {k: self._terms[:, i] * self._term_weights[i] for i, k in enumerate(REWARD_SCALES)}

    # -- internals -------------------------------------------------------------------------
    def _randomise(self, idx: np.ndarray) -> None:
        """Put envs idx in a fresh state: standing pose with small seeded perturbations."""
        count = len(idx)
        # Per-env streams (a Python loop, but only at resets): joints, roll/pitch, yaw, velocity.
        u = np.stack([self._rngs[i].uniform(-1.0, 1.0, 18) for i in idx])
        joint_pos = self.default_dof_pos + RESET_JOINT_NOISE * u[:, 0:12]
        tilt = RESET_TILT_NOISE * u[:, 12:14]
        quat = quat_from_rpy(tilt[:, 0], tilt[:, 1], RESET_YAW_NOISE * u[:, 14])
        pos = np.tile([0.0, 0.0, self.spec.base_init_height], (count, 1))
        task = self.task
        # `walk` draws nothing more: its streams (and every result made with it) are unchanged
        if task.varies_commands:
            self._set_commands(idx, np.stack([task.draw_commands(self._rngs[i]) for i in idx]))
        if task.varies_dynamics:
            drawn = np.array([task.draw_dynamics(self._rngs[i]) for i in idx])
            self.mass_scale[idx], self.friction[idx] = drawn[:, 0], drawn[:, 1]
            self.backend.set_dynamics(idx, drawn[:, 0], drawn[:, 1])
        self.backend.reset(idx, pos, quat, joint_pos, RESET_VEL_NOISE * u[:, 15:18])

    def _set_commands(self, idx: np.ndarray, commands: np.ndarray) -> None:
        self.commands[idx] = commands
        self._feat[idx, 6:9] = commands * COMMAND_SCALE

    def _update(self, idx: np.ndarray | slice = slice(None)) -> None:
        """Refresh the gathered state, rotations and observation rows of envs `idx`."""
        raw = self.backend.read(idx)
        rot = quat_to_matrix(raw[:, 3:7])
        self._raw[idx] = raw
        self._rot[idx] = rot
        # v_body = R^T v_world, as a batched row-vector product.
        self._vel_body[idx] = np.matmul(raw[:, None, 7:10], rot)[:, 0]
        o = self._feat
        o[idx, 0:3] = raw[:, 10:13] * ANG_VEL_SCALE
        o[idx, 3:6] = -rot[:, 2, :]
        o[idx, 9:21] = raw[:, 13:25] - self.default_dof_pos
        o[idx, 21:33] = raw[:, 25:37] * DOF_VEL_SCALE
        o[idx, 33:45] = self.actions[idx]

    def _observation(self) -> np.ndarray:
        """The declared observation [N, obs_dim] f32, a fresh array."""
        if self._obs_is_features:
            return self._feat.copy()
        return self._feat[:, self._obs_idx]

    def _reset_envs(self, idx: np.ndarray) -> None:
        self._randomise(idx)
        self.actions[idx] = 0.0
        self.last_actions[idx] = 0.0
        self.step_num[idx] = 0
        self.episode_return[idx] = 0.0
        self._update(idx)

    @property
    def physics_state(self) -> np.ndarray:
        """Every env's MuJoCo state [N, nstate] (mjSTATE_FULLPHYSICS of `model`): what a
        renderer draws. A view, valid until the next step; do not write to it."""
        state = getattr(self.backend, "physics_state", None)
        if state is None:
            raise AdaptkitError(
                f"--video: renders MuJoCo states only; this env runs in {self.sim.value} "
                "(use --sim mujoco to film)"
            )
        return state

    # -- API -------------------------------------------------------------------------------
    def reset(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Reset every env, or only those where `mask` [N] is True; returns the observations of
        all envs [N,obs_dim] float32."""
        idx = np.arange(self.num_envs) if mask is None else np.flatnonzero(mask)
        self._reset_envs(idx)
        return self._observation()

    def seed_envs(
        self, idx: Sequence[int], seeds: Sequence[int], ids: Sequence[int] | None = None
    ) -> None:
        """Restart the random streams of envs `idx`: env idx[k] draws its resets from
        [seeds[k], ids[k]] from now on (ids default to the envs' own; the constructor uses
        [seed, id])."""
        ids = [self.env_ids[i] for i in idx] if ids is None else list(ids)
        for i, s, e in zip(idx, seeds, ids, strict=True):
            self._rngs[int(i)] = np.random.default_rng([int(s), int(e)])

    def compute_reward(self) -> np.ndarray:
        """The six reference terms on the current state, weighted (× scale × dt) and summed."""
        t, v = self._terms, self._vel_body
        err = self.commands[:, :2] - v[:, :2]
        t[:, 0] = np.exp((err * err).sum(axis=1) * (-1.0 / TRACKING_SIGMA))
        t[:, 1] = np.exp(
            np.square(self.commands[:, 2] - self._raw[:, 12]) * (-1.0 / TRACKING_SIGMA)
        )
        t[:, 2] = np.square(v[:, 2])
        t[:, 3] = np.square(self._raw[:, 2] - self.spec.base_height_target)
        da = self.last_actions - self.actions
        t[:, 4] = (da * da).sum(axis=1)
        t[:, 5] = np.abs(self._raw[:, 13:25] - self.default_dof_pos).sum(axis=1)
        return t @ self._term_weights

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Advance every env one control step (auto-resetting finished ones).

        Returns obs [N,obs_dim] f32, reward [N] f32, done [N] bool and info with, valid where
        done: `terminal_obs` [N,obs_dim], `episode_return` [N], `episode_length` [N], `fell` [N]
        bool, `time_out` [N] bool, `terminal_base_lin_vel` [N,3] (yaw frame).
        """
        # min/max rather than np.clip: same result, a fraction of np.clip's call overhead.
        a = np.minimum(np.maximum(actions, self.action_low), self.action_high)
        a = a.astype(np.float64, copy=False).reshape(self.num_envs, 12)
        # One-step action latency, as the reference: this step executes the previous action.
        self.backend.step(self.last_actions * self.action_scale + self.default_dof_pos)
        self.actions = a
        self._update()
        reward = self.compute_reward()
        self.last_actions = a
        self.step_num += 1
        self.episode_return += reward

        rot = self._rot
        # |pitch| > lim  <=>  |R20| > sin(lim);  |roll| > lim  <=>  |R21| > tan(lim)·R22.
        fell = (np.abs(rot[:, 2, 0]) > self._sin_limit) | (
            np.abs(rot[:, 2, 1]) > self._tan_limit * rot[:, 2, 2]
        )
        time_out = self.step_num >= self.episode_length
        done = fell | time_out
        every = self.task.resample_steps
        if every:  # a new command mid-episode (finished envs draw theirs at their reset below)
            due = np.flatnonzero((self.step_num % every == 0) & ~done)
            if len(due):
                cmds = [self.task.draw_commands(self._rngs[i]) for i in due]
                self._set_commands(due, np.stack(cmds))
        info: dict[str, Any] = {"fell": fell, "time_out": time_out & ~fell}
        if done.any():
            info["episode_return"] = self.episode_return.copy()
            info["episode_length"] = self.step_num.copy()
            info["terminal_obs"] = self._observation()
            info["terminal_base_lin_vel"] = self.base_lin_vel
            self._reset_envs(np.flatnonzero(done))
            obs = self._observation()
        else:
            obs = self._observation()
            info["episode_return"] = self.episode_return
            info["episode_length"] = self.step_num
            info["terminal_obs"] = obs
            info["terminal_base_lin_vel"] = None
        return obs, reward.astype(np.float32), done, info

    def close(self) -> None:
        self.backend.close()


def one_episode_each(
    spec: RobotSpec,
    policy: Any,
    envs: int,
    steps: int,
    seed: int,
    sim: Sim | str | None = None,
    task: TaskVariant | str | None = None,
) -> dict[str, float]:
    """`policy` (adaptkit.sim.policy.Policy) for one episode of at most `steps` on each of
    `envs` envs: mean return, mean forward speed over the alive steps, falls."""
    env = LocomotionEnv(spec, envs, seed=seed, episode_length=steps, sim=sim, task=task)
    try:
        obs = env.reset()
        policy.reset(envs)
        alive = np.ones(envs, dtype=bool)
        ret, v_sum, n_alive = np.zeros(envs), 0.0, 0
        fell = np.zeros(envs, dtype=bool)
        for _ in range(steps):
            obs, r, done, info = env.step(policy.act(obs, env))
            policy.observe(np.zeros(0), r, done)
            vx = info["terminal_base_lin_vel"] if done.any() else env.base_lin_vel
            v_sum += float(vx[alive, 0].sum())
            n_alive += int(alive.sum())
            ret += np.where(alive, r, 0.0)
            fell |= info["fell"] & alive
            alive &= ~done
    finally:
        env.close()
    return {
        "return": float(ret.mean()),
        "speed": v_sum / max(n_alive, 1),
        "falls": int(fell.sum()),
    }
