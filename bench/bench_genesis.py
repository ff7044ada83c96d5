"""Genesis benchmark: start-up cost, env-steps/s of LocomotionEnv(sim="genesis") vs bare Genesis
stepping, and each robot's demonstrator in both simulators.

    .venv/bin/python bench/bench_genesis.py [--robots go1 go2 a1 minicheetah] [--steps 300]
        [--envs 1 16 100] [--demo-envs 16] [--demo-episodes 1] [--skip-demo] [--json]

Needs `pip install 'adaptkit[genesis]'`. Start-up: `gs.init` (once per process) and each
`scene.build` (once per robot and env count; a cold kernel cache makes the first build of a
machine take minutes). Throughput as in bench_sim.py: the env (obs, reward, termination,
auto-reset included) driven by the same precomputed open-loop trot; "bare" drives the env's own
built scene with the same PD targets (`control_dofs_position` + `scene.step`) and reads nothing
back. ratio = env / bare. Demonstrator: the `adaptkit demonstrator` defaults (16 envs × one
1000-step episode, seed 1000) in MuJoCo and in Genesis: return, forward speed, fall rate.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from adaptkit.evaluate import EvalSettings, evaluate_policy
from adaptkit.plugins import load_registry
from adaptkit.sim import load_demonstrator
from adaptkit.sim.env import LocomotionEnv

ROBOTS = ("go1", "go2", "a1", "minicheetah")


def _actions(steps: int, n: int) -> np.ndarray:
    """Open-loop trot in action units (same for env and bare runs, and as bench_sim.py)."""
    t = np.arange(steps)[:, None, None] * 0.02
    phase = np.array([0, np.pi, np.pi, 0]).repeat(3)[None, None, :]
    return 0.8 * np.sin(2 * np.pi * 2.5 * t + phase) * np.ones((1, n, 12))


def bench_robot(spec, n: int, steps: int) -> dict:
    t0 = time.perf_counter()
    env = LocomotionEnv(spec, n, seed=0, sim="genesis")
    build_s = time.perf_counter() - t0
    acts = _actions(steps, n)
    env.reset()
    env.step(acts[0])  # warm-up
    t0 = time.perf_counter()
    for a in acts:
        env.step(a)
    env_rate = n * steps / (time.perf_counter() - t0)
    # bare: the same scene, the same PD targets, nothing read back
    import genesis as gs

    be = env.backend
    env.reset()
    targets = acts * spec.action_scale + np.asarray(spec.default_joint_angles)
    tt = [torch.as_tensor(t, dtype=gs.tc_float) for t in targets]
    t0 = time.perf_counter()
    for t in tt:
        be.robot.control_dofs_position(t, be._dofs)
        be.scene.step()
    bare_rate = n * steps / (time.perf_counter() - t0)
    env.close()  # the built scene goes back to the backend's pool (reused by the demo)
    return {"envs": n, "build_s": build_s, "env": env_rate, "bare": bare_rate,
            "ratio": env_rate / bare_rate}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--robots", nargs="+", default=list(ROBOTS))
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--envs", nargs="+", type=int, default=[1, 16, 100])
    ap.add_argument("--demo-envs", type=int, default=16)
    ap.add_argument("--demo-episodes", type=int, default=1)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    out = not args.json
    t0 = time.perf_counter()
    from adaptkit.sim.genesis_backend import init_genesis

    import_s = time.perf_counter() - t0
    init_s = init_genesis()
    reg = load_registry()
    results: dict = {"import_s": import_s, "init_s": init_s, "robots": {}}
    if out:
        print(f"import genesis {import_s:.1f} s, gs.init {init_s:.1f} s")
        print(f"{'robot':12} {'envs':>5} {'build s':>8} {'env/s':>9} {'bare/s':>9} {'ratio':>6}")
    for name in args.robots:
        spec = reg.robots[name]
        rows = []
        for n in args.envs:
            steps = args.steps if n > 1 else args.steps * 3
            row = bench_robot(spec, n, steps)
            rows.append(row)
            if out:
                print(f"{name:12} {n:5d} {row['build_s']:8.1f} {row['env']:9.0f} "
                      f"{row['bare']:9.0f} {row['ratio']:6.2f}", flush=True)  # fmt: skip
        results["robots"][name] = {"throughput": rows}
    if not args.skip_demo:
        if out:
            print(f"\n{'robot':12} {'sim':8} {'episodes':>8} {'return':>14} {'speed m/s':>9} "
                  f"{'falls':>6} {'wall s':>7}")  # fmt: skip
        for name in args.robots:
            spec = reg.robots[name]
            for sim in ("mujoco", "genesis"):
                settings = EvalSettings(
                    num_envs=args.demo_envs, episodes=args.demo_episodes, seed=1000, sim=sim
                )
                t0 = time.perf_counter()
                s = evaluate_policy(load_demonstrator(spec), spec, settings).summary
                wall = time.perf_counter() - t0
                results["robots"].setdefault(name, {})[f"demonstrator_{sim}"] = s
                if out:
                    ret = f"{s['mean_return']:8.2f}±{s['std_return']:5.2f}"
                    print(f"{name:12} {sim:8} {s['num_episodes']:8d} {ret} "
                          f"{s['mean_speed']:9.3f} {s['fall_rate']:6.1%} {wall:7.1f}",
                          flush=True)  # fmt: skip
    if args.json:
        print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
