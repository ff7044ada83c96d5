"""Modest random search + local refinement of a robot's trot CPG parameters (not run by tests).

    .venv/bin/python tools/tune_gait.py ROBOT [--rounds 8] [--batch 128] [--seconds 10]

Each candidate runs in its own env of one batched LocomotionEnv (per-env parameter arrays), under
the reference env exactly (10° roll/pitch termination). Prints the best GaitParams to paste into the
robot's plugin.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

import numpy as np

from adaptkit.plugins import load_registry
from adaptkit.robot import GaitParams
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


def score(spec, params: dict[str, np.ndarray], steps: int, seed: int) -> np.ndarray:
    n = len(params["frequency"])
    env = LocomotionEnv(spec, n, seed=seed, episode_length=steps)
    pol = TrotDemonstrator(spec, gait=None, params=params)
    obs = env.reset()
    alive = np.ones(n, dtype=bool)
    v_sum, ret, life = np.zeros(n), np.zeros(n), np.zeros(n)
    for t in range(steps):
        obs, r, done, info = env.step(pol.act(obs, env))
        live = alive.copy()
        if t >= 100:  # skip the start-up second for the speed
            vel = info["terminal_base_lin_vel"] if done.any() else env.base_lin_vel
            v_sum += np.where(live, vel[:, 0], 0.0)
        ret += np.where(live, r, 0.0)
        life += live
        alive &= ~info["fell"]
    env.close()
    v = v_sum / max(steps - 100, 1)
    return np.where(
        alive, np.minimum(v, 0.55) + 2.0 * ret / steps / 0.024 * 0.1, -1.0 + life / steps
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("robot")
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    spec = load_registry().robots[args.robot]
    rng = np.random.default_rng(args.seed)
    steps = int(args.seconds / 0.02)
    lo = np.array([BOUNDS[k][0] for k in NAMES])
    hi = np.array([BOUNDS[k][1] for k in NAMES])
    start = np.array([getattr(spec.gait, k) for k in NAMES]) if spec.gait else (lo + hi) / 2
    best_x, best_s = start, -np.inf
    for rnd in range(args.rounds):
        width = 1.0 if rnd == 0 else 0.35 * 0.7**rnd
        if rnd == 0:
            x = lo + rng.random((args.batch, len(NAMES))) * (hi - lo)
            x[0] = start
        else:
            x = best_x + rng.normal(0, 1, (args.batch, len(NAMES))) * width * (hi - lo)
            x[0] = best_x
        x = np.clip(x, lo, hi)
        s = score(spec, {k: x[:, i] for i, k in enumerate(NAMES)}, steps, seed=args.seed + rnd)
        # Re-check the top 6 on 8 seeds each; keep the best mean.
        top = np.argsort(s)[-6:]
        xr = np.repeat(x[top], 8, axis=0)
        sr = score(spec, {k: xr[:, i] for i, k in enumerate(NAMES)}, steps, seed=100 + rnd)
        sr = sr.reshape(6, 8).mean(axis=1) - sr.reshape(6, 8).std(axis=1)
        i = int(np.argmax(sr))
        if sr[i] > best_s:
            best_s, best_x = sr[i], x[top[i]]
        print(
            f"round {rnd}: best {best_s:.3f} (batch max {s.max():.3f}, "
            f"alive {np.mean(s > -0.5):.2f})"
        )
    print("GaitParams(" + ", ".join(f"{v:.3f}" for v in best_x) + ")")


if __name__ == "__main__":
    main()
