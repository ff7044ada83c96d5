"""In-window improvement of learning histories: SPEC.md's noise schedule vs a per-episode noise
cycle with short episodes, on family members with accepted demonstrators.

    OMP_NUM_THREADS=1 python bench/family_histories.py --cache /tmp/famcache --members 0 1

Collects a few histories per configuration (task `varied`: hidden per-episode mass and friction)
and prints adaptkit.data.improvement's measure for windows of the default context (256 steps),
plus the collection speed (env-steps/s on one thread). Configurations: SPEC.md's schedule over
long histories (the default); a per-episode noise cycle with short episodes, one cycle per
history or repeating; a longer context with longer episodes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from adaptkit.data.improvement import in_window_improvement
from adaptkit.family.quadruped import quadruped_family
from adaptkit.sim.collect import collect_histories

# name: (episode_length, noise_cycle, steps_per_history, context_len). One cycle per history:
# windows never cross a noise restart; long histories repeat the cycle (restarts inside).
CONFIGS = {
    "spec_schedule_ep1000": (1000, 0, 8000, 256),
    "cycle3_ep86_one_cycle": (86, 3, 258, 256),
    "cycle4_ep86_repeating": (86, 4, 4128, 256),
    "cycle4_ep257_one_cycle_ctx1024": (257, 4, 1028, 1024),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--members", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--steps", type=int, default=16000, help="env-steps per member and config")
    ap.add_argument("--task", default="varied")
    args = ap.parse_args()
    family = quadruped_family()
    for name, (length, cycle, per_history, context) in CONFIGS.items():
        histories = max(1, args.steps // per_history)
        paths, steps, secs = [], 0, 0.0
        with tempfile.TemporaryDirectory() as tmp:
            for m in args.members:
                spec = family.member(m, args.cache)
                t0 = time.perf_counter()
                paths += collect_histories(
                    spec,
                    Path(tmp) / spec.name,
                    histories,
                    per_history,
                    num_envs=min(histories, 16),
                    seed=0,
                    episode_length=length,
                    task=args.task,
                    noise_cycle=cycle,
                )
                secs += time.perf_counter() - t0
                steps += histories * per_history
            m = in_window_improvement(paths, context, stride=1)
        pos = " / ".join(f"{r:.2f}" for r in m.mean_return_by_position[:5])
        print(f"{name}: {histories} histories × {per_history} steps per member, context {context}")
        print(
            f"  gait {spec.extra['gait']}; windows {m.windows}, whole episodes per window "
            f"{m.episodes_per_window:.2f}, pairs {m.pairs}, k+1 beats k in {m.improving:.0%}, "
            f"mean gain {m.mean_gain:.3f}; mean return by position in window {pos}; "
            f"collection {steps / secs:.0f} env-steps/s",
            flush=True,
        )


if __name__ == "__main__":
    main()
