"""A study's report from its results folder: report.md (the table and the findings),
summary.json, study.png (score vs data size per mode) and icl.png (the in-context curves).

Everything here is computed from the cell JSON files, so the report of a study cut short shows
the cells that finished, and says how many there are."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from adaptkit.adapt.modes import mode_names
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate.score import score_against
from adaptkit.fileio import read_json, write_json, write_text_atomic
from adaptkit.study.common import WIN_MARGIN, fmt_ci, is_scratch, mean_ci
from adaptkit.study.plan import SIZES
from adaptkit.tasks import DEFAULT_TASK, TASKS

# what the report reads of each finished cell, and the types it needs
_CELL_KEYS = {
    "robot": str,
    "size": str,
    "mode": str,
    "seed": int,
    "falls": int,
    "num_episodes": int,
    "wall_seconds": (int, float),
    "normalised_score": (int, float, type(None)),
}


def read_cell(path: Path) -> dict[str, Any]:
    """One finished cell's JSON, checked: a truncated or mistyped file is a one-line error."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise AdaptkitError(f"{path}: not a study cell (expected a JSON object)")
    for key, kind in _CELL_KEYS.items():
        value = data.get(key)
        if key not in data or isinstance(value, bool) or not isinstance(value, kind):
            raise AdaptkitError(
                f"{path}: not a finished study cell ('{key}' missing or of the wrong type); "
                "delete it and run the study again to redo that cell"
            )
    return data


def load_cells(out: Path) -> list[dict[str, Any]]:
    return [read_cell(p) for p in sorted((out / "cells").glob("*.json"))]


def aggregate(cells: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (robot, size, mode): mean ± CI of the normalised score over seeds, falls,
    mean wall time."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for c in cells:
        groups.setdefault((c["robot"], c["size"], c["mode"]), []).append(c)

    def order(key: tuple[str, str, str]) -> tuple[str, int, int]:
        r, s, m = key
        modes = mode_names()
        return (r, SIZES.index(s) if s in SIZES else 99, modes.index(m) if m in modes else 99)

    rows = []
    for key in sorted(groups, key=order):
        cs = groups[key]
        mean, ci = mean_ci([c["normalised_score"] for c in cs])
        rows.append(
            {
                "robot": key[0],
                "size": key[1],
                "mode": key[2],
                "seeds": sorted(c["seed"] for c in cs),
                "scores": [c["normalised_score"] for c in sorted(cs, key=lambda c: c["seed"])],
                "normalised_mean": mean,
                "normalised_ci95": ci,
                "falls": sum(c["falls"] for c in cs),
                "episodes": sum(c["num_episodes"] for c in cs),
                "wall_seconds": sum(c["wall_seconds"] for c in cs) / len(cs),
                "data_steps": cs[0].get("data_steps"),
                "steps": cs[0].get("steps"),
            }
        )
    return rows


def findings(
    rows: Sequence[dict[str, Any]], zero_shot: dict[str, float | None] | None = None
) -> dict[str, Any]:
    """Where a pretrained base beats same-budget scratch by ≥ WIN_MARGIN (its best mode, per
    robot and size), and the best mode per data size (mean over robots). A win whose best mode
    stays at or below standing still (score ≤ 0) is flagged: neither policy is of use there.
    `zero_shot`: each robot's base score with no data of it, set beside each comparison."""
    zero_shot = zero_shot or {}
    by = {(r["robot"], r["size"], r["mode"]): r for r in rows}
    wins, comparisons = [], []
    for (robot, size, mode), r in by.items():
        if not is_scratch(mode):
            continue
        adapted = [
            by[(robot, size, m)]
            for m in mode_names(scratch=False)
            if (robot, size, m) in by and by[(robot, size, m)]["normalised_mean"] is not None
        ]
        if not adapted or r["normalised_mean"] is None:
            continue
        best = max(adapted, key=lambda a: a["normalised_mean"])
        diff = best["normalised_mean"] - r["normalised_mean"]
        item = {
            "robot": robot,
            "size": size,
            "best_mode": best["mode"],
            "best": best["normalised_mean"],
            "scratch": r["normalised_mean"],
            "difference": diff,
            "below_standing": best["normalised_mean"] <= 0.0,
            "zero_shot": zero_shot.get(robot),
        }
        comparisons.append(item)
        if diff >= WIN_MARGIN:
            wins.append(item)
    best_per_size = {}
    for size in SIZES:
        means = {}
        for mode in mode_names():
            vals = [
                r["normalised_mean"]
                for r in rows
                if r["size"] == size and r["mode"] == mode and r["normalised_mean"] is not None
            ]
            if vals:
                means[mode] = sum(vals) / len(vals)
        if means:
            best = max(means, key=means.__getitem__)
            best_per_size[size] = {"mode": best, "mean": means[best], "all": means}
    return {"wins": wins, "comparisons": comparisons, "best_mode_per_size": best_per_size}


def paired(cells: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (size, mode): the score minus scratch's on the same robot, size and seed, as mean ±
    95 % CI over those pairs (robots × seeds: more pairs than seeds per robot, and the pairing
    removes what a robot or a seed does to every mode alike)."""
    score = {(c["robot"], c["size"], c["mode"], c["seed"]): c["normalised_score"] for c in cells}
    scratch = next(iter(mode_names(scratch=True)), None)  # the mode every other is paired with
    out = []
    for size in SIZES:
        for mode in mode_names(scratch=False):
            diffs = [
                v - score[(r, s, scratch, seed)]
                for (r, s, m, seed), v in score.items()
                if s == size
                and m == mode
                and v is not None
                and score.get((r, s, scratch, seed)) is not None
            ]
            if diffs:
                mean, ci = mean_ci(diffs)
                out.append({"size": size, "mode": mode, "pairs": len(diffs), "mean": mean,
                            "ci95": ci})  # fmt: skip
    return out


def write_report(out: Path | str) -> dict[str, Any]:
    """report.md, summary.json, study.png and icl.png in `out`; returns the summary."""
    out = Path(out)
    plan = read_json(out / "plan.json")["plan"]
    axes = [set(plan[k]) for k in ("targets", "sizes", "modes", "seeds")]
    every = load_cells(out)
    # the plan's cells only: a folder grown by runs with other axes reports what was asked
    cells = [
        c
        for c in every
        if all(
            v in a for v, a in zip((c["robot"], c["size"], c["mode"], c["seed"]), axes, strict=True)
        )
    ]
    rows = aggregate(cells)
    refs = {p.stem: read_json(p) for p in sorted((out / "refs").glob("*.json"))}
    found = findings(rows, {r: _zero_shot_score(d) for r, d in refs.items()})
    found["paired_vs_scratch"] = paired(cells)
    icl_path = out / "icl.json"
    icl = read_json(icl_path) if icl_path.is_file() else None
    expected = len(plan["targets"]) * len(plan["sizes"]) * len(plan["modes"]) * len(plan["seeds"])
    summary = {
        "preset": plan["preset"],
        "cells_done": len(cells),
        "cells_planned": expected,
        "cells_outside_plan": len(every) - len(cells),
        "rows": rows,
        "findings": found,
        "refs": {
            r: {k: v.get("mean_return") for k, v in d.items() if isinstance(v, dict)}
            for r, d in refs.items()
        },
        "icl": icl,
        "total_cell_seconds": round(sum(c["wall_seconds"] for c in cells), 1),
    }
    write_json(out / "summary.json", summary, "study summary")
    write_text_atomic(out / "report.md", _markdown(plan, summary, refs), "study report")
    if rows:
        _plot_study(rows, out / "study.png")
    if icl:
        _plot_icl(icl, out / "icl.png")
    return summary


def _markdown(plan: dict[str, Any], s: dict[str, Any], refs: dict[str, Any]) -> str:
    lines = [
        f"# Study ({s['preset']} preset)",
        "",
        f"Task: {_task_line(plan.get('task', DEFAULT_TASK))}.",
        "",
        f"Cells finished: {s['cells_done']} of {s['cells_planned']} planned "
        f"(robots {', '.join(plan['targets'])}; sizes {', '.join(plan['sizes'])}; modes "
        f"{', '.join(plan['modes'])}; seeds {', '.join(map(str, plan['seeds']))}). Each robot's "
        f"base is pretrained on the other robots of {', '.join(plan['pool'])}."
        + (
            f" ({s['cells_outside_plan']} more cells in this folder, of other axes, are left "
            "out: rerun with those axes to report them.)"
            if s.get("cells_outside_plan")
            else ""
        )
        + " Every mode trains "
        f"{plan['budget_steps']} optimiser steps (batch {plan['batch_size']}, lr {plan['lr']:g}); "
        f"evaluation: {plan['eval_envs']} envs × {plan['eval_episodes']} episodes of "
        f"{plan['episode_length']} steps in one context, env seed {plan['eval_seed']} for every "
        f"cell. Normalised score: standing still = 0, demonstrator = 1; mean ± 95 % CI over "
        "seeds (t-distribution).",
        "",
        *_overview(s["rows"]),
        "| robot | data | steps of data | mode | normalised score | falls | wall s / cell |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in s["rows"]:
        lines.append(
            f"| {r['robot']} | {r['size']} | {r['data_steps']:,} | {r['mode']} | "
            f"{fmt_ci(r['normalised_mean'], r['normalised_ci95'])} | {r['falls']} / {r['episodes']}"
            f" | {r['wall_seconds']:.1f} |"
        )
    lines += ["", "Reference returns per episode (held-out seed):", ""]
    for robot, d in refs.items():
        parts = []
        for label in ("demonstrator", "stand", "zero-shot"):
            v = d.get(label, {}).get("mean_return")
            if v is not None:
                z = ""
                score = score_against(v, d) if label == "zero-shot" else None
                if score is not None:
                    z = f" (normalised {score:.2f})"
                parts.append(f"{label} {v:.2f}{z}")
        lines.append(f"- {robot}: " + ", ".join(parts))
    f = s["findings"]
    lines += ["", "## Findings", ""]
    if f["wins"]:
        lines.append(
            "Regimes where the pretrained base beats same-budget scratch by ≥ "
            f"{WIN_MARGIN} normalised score at equal data:"
        )
        for w in f["wins"]:
            below = " — both at or below standing still: no useful policy either way"
            lines.append(
                f"- {w['robot']}, {w['size']}: {w['best_mode']} {w['best']:.2f} vs scratch "
                f"{w['scratch']:.2f} (+{w['difference']:.2f}){below if w['below_standing'] else ''}"
            )
    else:
        lines.append(
            f"No regime found where the pretrained base beats same-budget scratch by ≥ "
            f"{WIN_MARGIN} normalised score at equal data."
        )
    if f["comparisons"]:
        lines += ["", "Best base mode minus scratch, per robot and size:", ""]
        for c in f["comparisons"]:
            z = c.get("zero_shot")
            lines.append(
                f"- {c['robot']}, {c['size']}: {c['best_mode']} {c['best']:.2f} − scratch "
                f"{c['scratch']:.2f} = {c['difference']:+.2f}"
                + (f" (the base zero-shot, no data of the robot: {z:.2f})" if z is not None else "")
            )
    if f["paired_vs_scratch"]:
        lines += [
            "",
            "Mode minus scratch on the same robot, data and seed (mean ± 95 % CI over the pairs; "
            "a CI that excludes 0 is a difference the seeds resolve):",
            "",
            "| data | mode | pairs | score − scratch |",
            "| --- | --- | --- | --- |",
        ]
        for d in f["paired_vs_scratch"]:
            lines.append(
                f"| {d['size']} | {d['mode']} | {d['pairs']} | {fmt_ci(d['mean'], d['ci95'])} |"
            )
    lines += ["", "Best mode per data size (mean normalised score over robots):", ""]
    for size, b in f["best_mode_per_size"].items():
        others = ", ".join(f"{m} {v:.2f}" for m, v in b["all"].items())
        lines.append(f"- {size}: **{b['mode']}** ({others})")
    icl = s["icl"]
    if icl:
        ch, rs = icl["curves"]["chained"], icl["curves"]["reset"]

        def curve(c: dict[str, Any]) -> str:
            return " / ".join("—" if v is None else f"{v:.2f}" for v in c["per_episode_normalised"])

        gain = icl["gain_ep3_vs_ep1"]
        lines += [
            "",
            "## In-context learning",
            "",
            f"{icl['robot']}, base context {icl['context_len']} steps = "
            f"{icl['episodes_in_context']:.1f} episodes of {icl['episode_length']}; adapted "
            f"with the trunk frozen on data size {icl.get('size', '1hist')}. Normalised score "
            "per episode:",
            "",
            f"- episodes chained in one context: {curve(ch)}",
            f"- context reset between episodes: {curve(rs)}",
            "",
            f"Episode 3 − episode 1 (chained): "
            f"{'—' if gain is None else f'{gain:+.2f}'} of the stand → demonstrator gap; the goal "
            f"(≥ +0.10) is {'met' if icl['goal_met'] else 'not met'}. Cost: the long-context "
            f"base pretrained in {icl['base_seconds']:.0f} s"
            + (
                f" (context {plan['model'].get('context_len', 256)}: "
                f"{icl['base_seconds_short_context']:.0f} s)"
                if icl.get("base_seconds_short_context")
                else ""
            )
            + ".",
        ]
    lines += ["", f"Total cell time: {s['total_cell_seconds'] / 60:.1f} min.", ""]
    return "\n".join(lines)


def _overview(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Modes × (robot, size): the normalised score at a glance (the full table follows)."""
    cols = []
    for r in rows:
        if (r["robot"], r["size"]) not in cols:
            cols.append((r["robot"], r["size"]))
    by = {(r["robot"], r["size"], r["mode"]): r for r in rows}
    modes = [m for m in mode_names() if any(r["mode"] == m for r in rows)]
    out = [
        "| mode | " + " | ".join(f"{robot} {size}" for robot, size in cols) + " |",
        "| --- |" + " --- |" * len(cols),
    ]
    for m in modes:
        cells = []
        for robot, size in cols:
            r = by.get((robot, size, m))
            cells.append(fmt_ci(r["normalised_mean"], r["normalised_ci95"]) if r else "—")
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    return [*out, ""]


def _plot_study(rows: Sequence[dict[str, Any]], path: Path) -> None:
    robots = sorted({r["robot"] for r in rows})
    fig = Figure(figsize=(4 * len(robots), 3.4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(robots), squeeze=False)
    for ax, robot in zip(axes[0], robots, strict=True):
        sizes = [s for s in SIZES if any(r["size"] == s and r["robot"] == robot for r in rows)]
        # the mean over seeds as a line, every seed as a dot (with two seeds a 95 % t-interval
        # is ±12.7 standard errors: drawn, it would hide the data)
        for k, mode in enumerate(m for m in mode_names() if any(r["mode"] == m for r in rows)):
            pts = sorted(
                (sizes.index(r["size"]), r)
                for r in rows
                if r["robot"] == robot and r["mode"] == mode and r["normalised_mean"] is not None
            )
            if not pts:
                continue
            xs = [x + 0.04 * (k - 2) for x, _ in pts]
            color = f"C{k}"
            style = "--" if is_scratch(mode) else "-"
            ax.plot(xs, [r["normalised_mean"] for _, r in pts], style, color=color, label=mode)
            for x, (_, r) in zip(xs, pts, strict=True):
                ys = [v for v in r["scores"] if v is not None]
                ax.plot([x] * len(ys), ys, "o", color=color, ms=3, alpha=0.7)
        ax.set_ylim(min(-0.2, ax.get_ylim()[0]), 1.15)
        ax.set_xticks(range(len(sizes)), sizes)
        ax.axhline(0, color="grey", lw=0.5)
        ax.axhline(1, color="grey", lw=0.5, ls=":")
        ax.set_title(f"{robot} (left out of its base)")
        ax.set_xlabel("data of the new robot")
    axes[0][0].set_ylabel("normalised score (stand 0, demo 1)\nline: mean; dots: seeds")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _plot_icl(icl: dict[str, Any], path: Path) -> None:
    fig = Figure(figsize=(5, 3.4))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for label, c in icl["curves"].items():
        ys = [float("nan") if v is None else v for v in c["per_episode_normalised"]]
        ax.plot(range(1, len(ys) + 1), ys, marker="o", label=f"{label} context")
    ax.set_xlabel("episode")
    ax.set_ylabel("normalised score")
    ax.set_title(f"{icl['robot']}: in-context curve (context {icl['context_len']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def _task_line(name: str) -> str:
    task = TASKS.get(name)
    return f"{name} ({task.description})" if task else name


def _zero_shot_score(refs: dict[str, Any]) -> float | None:
    """The base's zero-shot normalised score from a robot's references (None if it had none)."""
    return score_against((refs.get("zero-shot") or {}).get("mean_return"), refs)
