"""Tune a robot's trot demonstrator (`adaptkit tune-gait ROBOT`): random search, then local
refinement, of the nine GaitParams in the simulator.

Each candidate runs in its own env of one batched LocomotionEnv (per-env parameter arrays) under
the reference task exactly (10° roll/pitch termination). A candidate scores its forward speed
(capped at 0.55 m/s) plus a little of its return while it stands; a fall scores below any walk.
Every round re-checks its best 6 candidates on 8 fresh seeds and keeps the best mean - std.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.robot import GaitParams, RobotSpec
from adaptkit.sim.demonstrator import TrotDemonstrator
from adaptkit.sim.env import LocomotionEnv

NAMES = [f.name for f in fields(GaitParams)]
BOUNDS = {
    "frequency": (1.5, 3.5),
    "thigh_amplitude": (0.05, 0.5),
    "calf_amplitude": (0.2, 1.0),
    "thigh_offset": (-0.2, 0.3),
    "calf_offset": (-0.8, 0.3),
    "speed_gain": (0.0, 0.8),
    "pitch_gain": (-1.0, 1.0),
    "roll_gain": (-1.0, 1.0),
    "phase_lead": (0.0, 2 * np.pi),
}
RECHECK_TOP, RECHECK_SEEDS = 6, 8
SKIP_S = 2.0  # the speed is measured after the start-up (s)


@dataclass
class TuneResult:
    gait: GaitParams
    score: float  # mean - std over the re-check seeds of the best candidate
    rounds: list[dict[str, float]]  # per round: best so far, batch max, share alive

    def plugin_line(self) -> str:
        """What to paste into the robot's plugin."""
        values = ", ".join(f"{getattr(self.gait, k):.3f}" for k in NAMES)
        return f"gait=GaitParams({values}),"


def score(spec: RobotSpec, params: dict[str, np.ndarray], steps: int, seed: int) -> np.ndarray:
    """One score per candidate (per-env parameter arrays), higher is better."""
    n = len(params["frequency"])
    env = LocomotionEnv(spec, n, seed=seed, episode_length=steps)
    try:
        policy = TrotDemonstrator(spec, gait=None, params=params)
        obs = env.reset()
        policy.reset(n)
        alive = np.ones(n, dtype=bool)
        v_sum, ret, life = np.zeros(n), np.zeros(n), np.zeros(n)
        skip = min(int(SKIP_S / env.dt), steps // 2)
        for t in range(steps):
            obs, r, done, info = env.step(policy.act(obs, env))
            live = alive.copy()
            if t >= skip:
                vel = info["terminal_base_lin_vel"] if done.any() else env.base_lin_vel
                v_sum += np.where(live, vel[:, 0], 0.0)
            ret += np.where(live, r, 0.0)
            life += live
            alive &= ~info["fell"]
    finally:
        env.close()
    v = v_sum / max(steps - skip, 1)
    walking = np.minimum(v, 0.55) + 2.0 * ret / steps / 0.024 * 0.1
    return np.where(alive, walking, -1.0 + life / steps)


def tune_gait(
    spec: RobotSpec,
    rounds: int = 8,
    batch: int = 128,
    seconds: float = 10.0,
    seed: int = 0,
    progress: Callable[[int, dict[str, float]], None] | None = None,
    starts: Sequence[GaitParams] = (),
) -> TuneResult:
    """Search GaitParams for `spec` (starting from its own gait, if any; `starts`: more
    candidates for the first round, e.g. other robots' tuned gaits)."""
    if spec.mjcf is None or spec.mjcf_joints is None:
        raise AdaptkitError(
            f"robot {spec.name!r}: no simulator model (mjcf / mjcf_joints) to tune a gait in"
        )
    if rounds < 1 or batch < RECHECK_TOP or not (math.isfinite(seconds) and seconds > 0):
        raise AdaptkitError(
            f"tune-gait: need --rounds >= 1, --batch >= {RECHECK_TOP} and --seconds a finite "
            f"number > 0, got {rounds}, {batch}, {seconds}"
        )
    rng = np.random.default_rng(seed)
    steps = max(1, round(seconds / 0.02))
    lo = np.array([BOUNDS[k][0] for k in NAMES])
    hi = np.array([BOUNDS[k][1] for k in NAMES])
    start = np.array([getattr(spec.gait, k) for k in NAMES]) if spec.gait else (lo + hi) / 2
    best_x, best_s = start, -np.inf
    history = []
    for rnd in range(rounds):
        if rnd == 0:  # wide: uniform over the bounds, plus the starting point
            x = lo + rng.random((batch, len(NAMES))) * (hi - lo)
        else:  # narrowing around the best so far
            width = 0.35 * 0.7**rnd
            x = best_x + rng.normal(0, 1, (batch, len(NAMES))) * width * (hi - lo)
        x[0] = start if rnd == 0 else best_x
        if rnd == 0 and starts:
            extra = np.array([[getattr(g, k) for k in NAMES] for g in starts[: batch - 1]])
            x[1 : 1 + len(extra)] = extra
        x = np.clip(x, lo, hi)
        s = score(spec, {k: x[:, i] for i, k in enumerate(NAMES)}, steps, seed=seed + rnd)
        top = np.argsort(s)[-RECHECK_TOP:]
        xr = np.repeat(x[top], RECHECK_SEEDS, axis=0)
        sr = score(spec, {k: xr[:, i] for i, k in enumerate(NAMES)}, steps, seed=100 + rnd)
        sr = sr.reshape(RECHECK_TOP, RECHECK_SEEDS)
        robust = sr.mean(axis=1) - sr.std(axis=1)
        i = int(np.argmax(robust))
        if robust[i] > best_s:
            best_s, best_x = float(robust[i]), x[top[i]]
        entry = {"best": best_s, "batch_max": float(s.max()), "alive": float(np.mean(s > -0.5))}
        history.append(entry)
        if progress is not None:
            progress(rnd, entry)
    gait = GaitParams(**{k: float(round(v, 3)) for k, v in zip(NAMES, best_x, strict=True)})
    return TuneResult(gait=gait, score=best_s, rounds=history)
