"""Summarise the controls of bench/icl/run.py: per K, the per-episode normalised curves of every
control and the decomposition of the episode-3 gain, mean ± 95 % interval over base seeds.

    python bench/icl/report.py /work/runs/icl-v0 [--bodies builtin|family|all]
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import defaultdict
from pathlib import Path

T95 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13)
BUILTIN = ("go1", "go2", "a1", "minicheetah")
E = 2  # episode 3 (0-based)


def ci(xs: list[float]) -> str:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    if not xs:
        return "—"
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return f"{m:+.2f}"
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    t = T95[len(xs) - 2] if len(xs) - 2 < len(T95) else 1.96
    return f"{m:+.2f} ± {t * sd / math.sqrt(len(xs)):.2f}"


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
    "position: neutral − reset at ep3": lambda r: sub(ep(r, "neutral", E), ep(r, "reset", E)),
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
