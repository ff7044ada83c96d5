"""What was tried when the embodiments-small preset's K = 100 base scored below its K = 3 one:
the same K = 100 base with 4x the optimiser steps (2,400 instead of 600), one seed, everything
else as the preset (docs/embodiments.md). Prints the report's probe and adaptation summary.

    ADAPTKIT_CACHE_DIR=... python bench/embodiments_longer_k100.py OUT [--steps 2400]
"""

from __future__ import annotations

import argparse
import statistics

from adaptkit.study.embodiments import EmbodimentPlan, run_embodiments
from adaptkit.study.embodiments_report import summarise


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    plan = EmbodimentPlan.preset_named("embodiments-small").replace(
        preset=f"embodiments-small-k100-{args.steps}-steps",
        ks=(100,),
        curves=("budget",),
        top_seeds=(0,),
        pretrain_steps=args.steps,
        threads=2,  # one base: both cores
    )
    out = run_embodiments(plan, args.out, executor="local", workers=args.workers)
    s = summarise(out)
    for r in s["probes"]:
        keys = ("zero_shot", "in_context", "gain_chained", "gain_reset")
        print(r["bodies"], {k: None if r[k] is None else round(r[k], 2) for k in keys})
    for mode in ("frozen", "warm", "lora", "full"):
        d = [r["minus_scratch"] for r in s["adaptation"] if r["mode"] == mode]
        d = [x for x in d if x is not None]
        wins = [r["robot"] for r in s["adaptation"] if r["mode"] == mode and r["wins"]]
        print(mode, "− scratch", round(statistics.mean(d), 2) if d else None, "wins", wins)


if __name__ == "__main__":
    main()
