"""Simulator benchmark: env-steps/s of LocomotionEnv vs bare MuJoCo, and each demonstrator.

    .venv/bin/python bench/bench_sim.py [--robots go1 go2 a1 minicheetah] [--steps 300]
        [--demo-envs 16] [--demo-episodes 1] [--skip-demo] [--json]
        [--obs-layouts locomotion45 fork33]

Throughput: the env (obs, reward, termination, auto-reset included) is driven by a precomputed
open-loop trot so every run has the same contacts; "bare" steps the same compiled model with the
same PD targets through the same native path (`mujoco.rollout`, same threads) and reads nothing
back. ratio = env / bare (the env's own overhead; target >= 0.8). "mj_step" is a plain
single-thread Python loop over `mujoco.mj_step`, for reference. With several --obs-layouts the
env is measured in each (the 45-dim layout is the env's feature row as is; others gather their
columns from it each step); "obs µs" is the time to build one step's observation for all envs.
Demonstrator: mean return per 1000-step episode, mean forward speed, fall rate.
"""

from __future__ import annotations

import argparse
import json
import time

import mujoco
import numpy as np
from mujoco import rollout

from adaptkit.evaluate import EvalSettings, evaluate_policy
from adaptkit.plugins import load_registry
from adaptkit.sim import load_demonstrator
from adaptkit.sim.env import LocomotionEnv
from adaptkit.sim.physics import SUBSTEPS

ROBOTS = ("go1", "go2", "a1", "minicheetah")
ENV_COUNTS = (1, 16, 100)


def _actions(steps: int, n: int) -> np.ndarray:
    """Open-loop trot in action units (same for env and bare runs)."""
    t = np.arange(steps)[:, None, None] * 0.02
    phase = np.array([0, np.pi, np.pi, 0]).repeat(3)[None, None, :]
    return 0.8 * np.sin(2 * np.pi * 2.5 * t + phase) * np.ones((1, n, 12))


def bench_env(spec, n: int, steps: int) -> tuple[float, float]:
    """(env-steps/s, µs to build one step's observation: the best of 200 repeats, so other
    processes on a shared machine barely touch it)."""
    env = LocomotionEnv(spec, n, seed=0)
    acts = _actions(steps, n)
    env.reset()
    env.step(acts[0])  # warm-up
    t0 = time.perf_counter()
    for a in acts:
        env.step(a)
    wall = time.perf_counter() - t0
    build = []
    for _ in range(200):
        t1 = time.perf_counter()
        env._observation()
        build.append(time.perf_counter() - t1)
    env.close()
    return n * steps / wall, 1e6 * min(build)


def bench_bare(spec, n: int, steps: int) -> tuple[float, float]:
    """(rollout loop, plain mj_step loop) env-steps/s on the env's own compiled model."""
    env = LocomotionEnv(spec, n, seed=0)
    env.reset()
    model, state = env.model, env.backend._state.copy()
    nthread = env.backend._rollout.nthread
    env.close()
    targets = _actions(steps, n) * spec.action_scale + np.asarray(spec.default_joint_angles)
    ctrl = np.zeros((n, SUBSTEPS, model.nu))
    out = np.zeros((n, SUBSTEPS, state.shape[1]))
    sens = np.zeros((n, SUBSTEPS, 0))
    datas = [mujoco.MjData(model) for _ in range(max(nthread, 1))]
    models = [model] * n
    with rollout.Rollout(nthread=nthread) as ro:
        t0 = time.perf_counter()
        for tgt in targets:
            ctrl[:] = tgt[:, None, :]
            ro.rollout(models, datas, state, ctrl, skip_checks=True, nstep=SUBSTEPS,
                       state=out, sensordata=sens)  # fmt: skip
            state[:] = out[:, -1]
        rate_rollout = n * steps / (time.perf_counter() - t0)
    # Plain loop: one MjData per env, mj_step with 4 substeps, qpos/qvel read each step.
    k = min(n, 16)  # cap the per-env Python loop; rate is per env-step anyway
    ds = [mujoco.MjData(model) for _ in range(k)]
    for d in ds:
        mujoco.mj_setState(model, d, state[0], mujoco.mjtState.mjSTATE_FULLPHYSICS)
    t0 = time.perf_counter()
    for tgt in targets:
        for i, d in enumerate(ds):
            d.ctrl[:] = tgt[i]
            mujoco.mj_step(model, d, nstep=SUBSTEPS)
            _ = d.qpos.copy(), d.qvel.copy()
    rate_plain = k * steps / (time.perf_counter() - t0)
    return rate_rollout, rate_plain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--robots", nargs="+", default=list(ROBOTS))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--demo-envs", type=int, default=16)
    ap.add_argument("--demo-episodes", type=int, default=1)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--obs-layouts",
        nargs="+",
        default=[None],
        help="observation layouts to measure the env in, in one run (default: the plugin's own)",
    )
    args = ap.parse_args()
    reg = load_registry()
    results: dict[str, dict] = {}
    if not args.json:
        print(f"{'robot':12} {'layout':12} {'envs':>5} {'env/s':>9} {'bare/s':>9} {'ratio':>6} "
              f"{'mj_step/s':>10} {'obs µs':>7}")  # fmt: skip
    for name in args.robots:
        results[name] = {"throughput": []}
        for n in ENV_COUNTS:
            steps = args.steps if n > 1 else args.steps * 3
            bare, plain = bench_bare(reg.robots[name], n, steps)
            for layout in args.obs_layouts:
                spec = reg.robots[name].for_layout(layout)
                env_rate, obs_us = bench_env(spec, n, steps)
                row = {"envs": n, "layout": spec.obs_layout, "env": env_rate, "bare": bare,
                       "ratio": env_rate / bare, "mj_step": plain, "obs_us": obs_us}  # fmt: skip
                results[name]["throughput"].append(row)
                if not args.json:
                    print(f"{name:12} {spec.obs_layout:12} {n:5d} {env_rate:9.0f} {bare:9.0f} "
                          f"{row['ratio']:6.2f} {plain:10.0f} {obs_us:7.1f}")  # fmt: skip
    if not args.skip_demo:
        if not args.json:
            print(f"\n{'robot':12} {'episodes':>8} {'return':>14} {'speed m/s':>9} {'falls':>6}")
        for name in args.robots:
            spec = reg.robots[name]
            settings = EvalSettings(num_envs=args.demo_envs, episodes=args.demo_episodes, seed=1000)
            s = evaluate_policy(load_demonstrator(spec), spec, settings).summary
            results[name]["demonstrator"] = s
            if not args.json:
                ret = f"{s['mean_return']:8.2f}±{s['std_return']:5.2f}"
                print(f"{name:12} {s['num_episodes']:8d} {ret} {s['mean_speed']:9.3f} "
                      f"{s['fall_rate']:6.1%}")  # fmt: skip
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
