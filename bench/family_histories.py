"""In-window improvement of learning histories: SPEC.md's noise schedule vs a per-episode noise
cycle with short episodes, on family members with accepted demonstrators.

    OMP_NUM_THREADS=1 python bench/family_histories.py --cache /tmp/famcache --members 0 1

Collects a few histories per configuration (task `varied`: hidden per-episode mass and friction)
and prints adaptkit.data.improvement's measure for windows of the default context (256 steps),
plus the collection speed (env-steps/s on one thread).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from adaptkit.data.improvement import in_window_improvement
from adaptkit.quadruped_family import quadruped_family
from adaptkit.sim.collect import collect_histories

CONFIGS = {  # name: (episode_length, noise_cycle)
    "spec_schedule_1000": (1000, 0),
    "cycle4_ep64": (64, 4),
    "cycle3_ep85": (85, 3),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--members", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--histories", type=int, default=4)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--task", default="varied")
    args = ap.parse_args()
    family = quadruped_family()
    for name, (length, cycle) in CONFIGS.items():
        paths, steps, secs = [], 0, 0.0
        with tempfile.TemporaryDirectory() as tmp:
            for m in args.members:
                spec = family.member(m, args.cache)
                t0 = time.perf_counter()
                paths += collect_histories(
                    spec,
                    Path(tmp) / spec.name,
                    args.histories,
                    args.steps,
                    num_envs=args.histories,
                    seed=0,
                    episode_length=length,
                    task=args.task,
                    noise_cycle=cycle,
                )
                secs += time.perf_counter() - t0
                steps += args.histories * args.steps
            m = in_window_improvement(paths, args.context, stride=16)
        pos = " / ".join(f"{r:.2f}" for r in m.mean_return_by_position[:5])
        print(
            f"{name}: gait {spec.extra['gait']}; windows {m.windows}, whole episodes per window "
            f"{m.episodes_per_window:.2f}, pairs {m.pairs}, k+1 beats k in {m.improving:.0%}, "
            f"mean gain {m.mean_gain:.3f}; mean return by position in window {pos}; "
            f"collection {steps / secs:.0f} env-steps/s",
            flush=True,
        )


if __name__ == "__main__":
    main()
