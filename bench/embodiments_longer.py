"""What was tried when the embodiments-small preset's K = 100 base scored below its K = 3 one:
its bases with 4x the optimiser steps (2,400 instead of 600), one seed, everything else as the
preset (docs/embodiments.md). Prints the report's probe and adaptation summary.

    ADAPTKIT_CACHE_DIR=... python bench/embodiments_longer.py OUT [--steps 2400] [--ks 100]
    ADAPTKIT_CACHE_DIR=... python bench/embodiments_longer.py OUT --ks 3,10,30,100 --workers 2 \
        --threads 1
"""

from __future__ import annotations

import argparse
import statistics

from adaptkit.study.embodiments import run_embodiments
from adaptkit.study.embodiments_plan import EmbodimentPlan
from adaptkit.study.embodiments_report import summarise


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=2400)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--ks", default="100", help="comma-separated K (the largest sets the data)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    plan = EmbodimentPlan.preset_named("embodiments-small").replace(
        preset=f"embodiments-small-{args.steps}-steps",
        ks=tuple(int(k) for k in args.ks.split(",")),
        curves=("budget",),
        top_seeds=(0,),
        pretrain_steps=args.steps,
        threads=args.threads,  # one base alone: both cores
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
