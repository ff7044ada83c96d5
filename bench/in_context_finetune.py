"""Does a fine-tune from the in-context base beat the base's own in-context policy?

For every built-in robot: the in-context base through its family group, no gradient step, 3
episodes chained in one context (the `zero-shot` reference row), against a new group fine-tuned
from it on 1 demonstrator episode (mode `warm`: the new group starts as the family group, trunk
frozen; `--mode scratch`: the same model trained on that data alone) — both on the held-out
env seed 777, 8 envs, the in-context recipe's episode length.
It is the embodiment study's adaptation stage on one base, so it reuses that machinery.

    python bench/in_context_finetune.py --out runs/ic-finetune [--base PATH] [--seeds 0,1,2]

Resumable (every cell and reference is a file under OUT). Prints one table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adaptkit.adapt.modes import get_mode
from adaptkit.bootstrap.in_context import in_context_base
from adaptkit.evaluate.score import score_against
from adaptkit.fileio import read_json
from adaptkit.plugins import get_registry
from adaptkit.progress import Reporter
from adaptkit.study.common import fmt_ci, mean_ci
from adaptkit.study.embodiments import EmbodimentStudy
from adaptkit.study.in_context_base import IN_CONTEXT_K, in_context_plan


class Say(Reporter):
    def note(self, message: str) -> None:
        print(message, flush=True)


def interval(xs: list[float]) -> str:
    return fmt_ci(*mean_ci(xs), signed=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--base", default=None, help="default: the shipped in-context base")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mode", default="warm", help="an adaptation mode (adaptkit.adapt.modes)")
    ap.add_argument("--size", default="1ep", help="1ep | 10ep | 1h | all")
    a = ap.parse_args()
    base = Path(a.base).resolve() if a.base else in_context_base()
    seeds = tuple(int(s) for s in a.seeds.split(","))
    plan = in_context_plan().replace(modes=(a.mode,), sizes=(a.size,), seeds=seeds)
    out = Path(a.out).resolve()
    registry = get_registry()
    study = EmbodimentStudy(plan, out, registry, Say(), "local", a.workers)
    study.wave("robot data", study.collections([]))  # no family bodies: the robots' only
    scratch = get_mode(a.mode).scratch  # the same model trained on the robot's data alone
    study.adapt(base, None if scratch else IN_CONTEXT_K)
    folder = out / "adapt" / ("scratch" if scratch else f"k{IN_CONTEXT_K:03d}")

    tuned = f"fine-tuned {a.mode}, {a.size}"
    print(
        f"\n| robot | in context, 3 episodes chained (ep3) | {tuned} (ep3) | {tuned} ≥ in context |"
    )
    print("| --- | --- | --- | --- |")
    wins = 0
    for robot in plan.robots:
        refs = read_json(folder / "refs" / f"{robot}.json")
        ic = refs["zero-shot"]
        ic_score = score_against(ic["mean_return"], refs)
        ic_ep3 = score_against(ic["per_episode"][-1]["mean"], refs)
        cells = [
            read_json(folder / "cells" / f"{robot}-{a.size}-{a.mode}-s{s}.json") for s in seeds
        ]
        ft = [c["normalised_score"] for c in cells]
        ft_ep3 = [score_against(c["per_episode_mean"][-1], refs) for c in cells]
        won = sum(ft) / len(ft) >= ic_score
        wins += won
        print(f"| {robot} | {ic_score:+.2f} ({ic_ep3:+.2f}) | {interval(ft)} ({interval(ft_ep3)}) "
              f"| {'yes' if won else 'no'} |")  # fmt: skip
    print(f"\nfine-tuned ≥ in context on {wins} of {len(plan.robots)} robots "
          f"(base {base}, seeds {list(seeds)})")  # fmt: skip


if __name__ == "__main__":
    main()
