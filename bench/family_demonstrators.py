"""Demonstrators for the procedural quadruped family: acceptance rate, spread, cost per body.

    OMP_NUM_THREADS=1 python bench/family_demonstrators.py --members 30 --cache /tmp/famcache

Tunes (or reads from --cache) the demonstrator of members 0..N-1 of family seed 0 with the
default SearchBudget, and checks the built-in robots' shipped gaits the same way for scale.
Prints one line per body, then the summary (docs/family.md quotes it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from adaptkit.family.quadruped import nearest_members, quadruped_family
from adaptkit.plugins import get_registry
from adaptkit.sim.demonstrator import TrotDemonstrator
from adaptkit.sim.family_gait import SearchBudget, _check, cached_demonstrator
from adaptkit.sim.policy import StandPolicy

BEST_PER_STEP = 0.024  # the reward of a perfect walker per step (SPEC.md)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=30)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=SearchBudget.rounds)
    ap.add_argument("--batch", type=int, default=SearchBudget.batch)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    budget = SearchBudget(rounds=args.rounds, batch=args.batch)
    steps = round(budget.check_seconds / 0.02)
    best = BEST_PER_STEP * steps

    print(f"budget {budget}")
    for name, spec in get_registry().robots.items():
        demo = _check(spec, TrotDemonstrator(spec), budget.check_envs, steps, budget.check_seed)
        stand = _check(spec, StandPolicy(12), budget.check_envs, steps, budget.check_seed)
        print(
            f"built-in {name:12s} speed {demo['speed']:.2f} falls {demo['falls']} "
            f"return {demo['return']:.2f} ({demo['return'] / best:.2f} of best) "
            f"stand {stand['return']:.2f}"
        )
    family = quadruped_family()
    records = []
    for i in range(args.first, args.first + args.members):
        t0 = time.perf_counter()
        r = cached_demonstrator(family, i, args.cache, budget)
        wall = time.perf_counter() - t0
        records.append(r)
        print(
            f"{r.robot} {'ACCEPT' if r.accepted else 'reject'} speed {r.speed:.2f} "
            f"falls {r.falls}/{r.episodes} return {r.return_demo:.2f} "
            f"({r.return_demo / best:.2f} of best) stand {r.return_stand:.2f} "
            f"search+check {r.seconds:.1f}s (this call {wall:.1f}s) {r.reason}",
            flush=True,
        )
    ok = [r for r in records if r.accepted]
    frac = np.array([r.return_demo / best for r in ok])
    gain = np.array([r.return_demo - r.return_stand for r in ok])
    secs = np.array([r.seconds for r in records])
    print(f"accepted {len(ok)} of {len(records)} ({len(ok) / len(records):.0%})")
    if ok:
        print(
            f"accepted return / best: mean {frac.mean():.2f} sd {frac.std():.2f} "
            f"min {frac.min():.2f} max {frac.max():.2f}; return − stand: mean {gain.mean():.2f} "
            f"sd {gain.std():.2f}; speed mean {np.mean([r.speed for r in ok]):.2f}"
        )
    print(f"wall time per body (search + check): mean {secs.mean():.1f}s, max {secs.max():.1f}s")
    print("nearest members (first 100):", json.dumps(nearest_members(0, 100)))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in records], default=str, indent=1))


if __name__ == "__main__":
    main()
