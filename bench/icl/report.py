"""Summarise the controls of bench/icl/run.py: per K, the per-episode normalised curves of every
control and the decomposition of the episode-3 gain, mean ± 95 % interval over base seeds.

    python bench/icl/report.py /work/runs/icl-v0 [--bodies builtin|family|all]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

from adaptkit.study.common import fmt_ci, mean_ci

BUILTIN = ("go1", "go2", "a1", "minicheetah")
E = 2  # episode 3 (0-based)


def ci(xs: list[float]) -> str:
    return fmt_ci(*mean_ci(xs), signed=True)


def ep(row: dict, control: str, k: int) -> float | None:
    v = row["curves"][control]["per_episode_normalised"]
    return v[k] if k < len(v) else None


def sub(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


CONTRASTS = {
    "chained ep3 − ep1": lambda r: sub(ep(r, "chained", E), ep(r, "chained", 0)),
    "reset ep3 − ep1": lambda r: sub(ep(r, "reset", E), ep(r, "reset", 0)),
    "zeroed ep3 − ep1": lambda r: sub(ep(r, "rewards-zeroed", E), ep(r, "rewards-zeroed", 0)),
    "reward-driven (chained − zeroed gains)": lambda r: sub(
        sub(ep(r, "chained", E), ep(r, "chained", 0)),
        sub(ep(r, "rewards-zeroed", E), ep(r, "rewards-zeroed", 0)),
    ),
    "reward: chained − zeroed at ep3": lambda r: sub(
        ep(r, "chained", E), ep(r, "rewards-zeroed", E)
    ),
    "reward: chained − shuffled at ep3": lambda r: sub(
        ep(r, "chained", E), ep(r, "rewards-shuffled", E)
    ),
    "identification: chained − foreign at ep3": lambda r: sub(
        ep(r, "chained", E), ep(r, "foreign", E)
    ),
    # the decomposition's identification (adaptkit.evaluate.in_context): the same standing
    # prefix, the body's own vs another convention's
    "identification: neutral − foreign at ep3": lambda r: sub(
        ep(r, "neutral", E), ep(r, "foreign", E)
    ),
    "position: blank − reset at ep3": lambda r: sub(ep(r, "blank", E), ep(r, "reset", E)),
    "standing context: neutral − reset at ep3": lambda r: sub(
        ep(r, "neutral", E), ep(r, "reset", E)
    ),
    "context: chained − reset at ep3": lambda r: sub(ep(r, "chained", E), ep(r, "reset", E)),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--bodies", default="builtin")
    a = ap.parse_args()
    rows = [json.loads(p.read_text()) for p in sorted(Path(a.out, "controls").glob("*/*.json"))]
    if a.bodies == "builtin":
        rows = [r for r in rows if r["body"] in BUILTIN]
    elif a.bodies == "family":
        rows = [r for r in rows if r["body"] not in BUILTIN]
    by_k: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        m = re.match(r"k(\d+)-(\w+)-s(\d+)", r["base"])
        r["k"], r["seed"] = int(m.group(1)), int(m.group(3))
        by_k[r["k"]].append(r)
    for k, rs in sorted(by_k.items()):
        seeds = sorted({r["seed"] for r in rs})
        bodies = sorted({r["body"] for r in rs})
        print(f"\n## K = {k}: {len(seeds)} base seeds, bodies {', '.join(bodies)}\n")
        controls = list(rs[0]["curves"])
        print("| control | " + " | ".join(f"ep{i + 1}" for i in range(6)) + " |")
        print("| --- |" + " --- |" * 6)
        for c in controls:
            cells = []
            for i in range(6):
                per_seed = []
                for s in seeds:
                    vals = [ep(r, c, i) for r in rs if r["seed"] == s]
                    vals = [v for v in vals if v is not None]
                    if vals:
                        per_seed.append(sum(vals) / len(vals))
                cells.append(ci(per_seed))
            print(f"| {c} | " + " | ".join(cells) + " |")
        print("\n| contrast (mean over bodies per seed) | all | " + " | ".join(bodies) + " |")
        print("| --- | --- |" + " --- |" * len(bodies))
        for name, f in CONTRASTS.items():
            per_seed = []
            for s in seeds:
                vals = [f(r) for r in rs if r["seed"] == s]
                vals = [v for v in vals if v is not None]
                if vals:
                    per_seed.append(sum(vals) / len(vals))
            per_body = [ci([f(r) for r in rs if r["body"] == b]) for b in bodies]
            print(f"| {name} | {ci(per_seed)} | " + " | ".join(per_body) + " |")
        print("\n| chained at ep3, per body | " + " | ".join(bodies) + " |")
        print("| --- |" + " --- |" * len(bodies))
        for c in ("chained", "reset", "neutral", "foreign", "rewards-zeroed"):
            print(f"| {c} | " + " | ".join(ci([ep(r, c, E) for r in rs if r["body"] == b])
                                           for b in bodies) + " |")  # fmt: skip


if __name__ == "__main__":
    main()
