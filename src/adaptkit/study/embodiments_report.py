"""The embodiment-scaling study's report from its results folder: report.md, summary.json and
embodiments.png (zero-shot, in-context gain and adaptation − scratch against K).

Computed from the files the study writes (adaptkit.study.embodiments), so a study cut short
reports what finished and says what is missing."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from adaptkit.adapt.modes import MODES, mode_names
from adaptkit.errors import AdaptkitError
from adaptkit.fileio import read_json, write_json, write_text_atomic
from adaptkit.study.common import WIN_MARGIN, fmt_ci, is_scratch, mean_ci

ICL_MARGIN = 0.1  # episode 3 − episode 1, in units of the stand → demonstrator gap
ZERO_SHOT_GOAL = 0.5
ZERO_SHOT_AFTER = ("zero_shot_blank", "zero_shot_neutral")  # a blank / standing context first
# what the first scored episode's gain is owed to (adaptkit.evaluate.in_context.decompose)
DECOMPOSITION = {
    "context": "chained − reset",
    "position": "blank − reset (position alone)",
    "standing": "neutral − blank (what the body shows standing)",
    "own_history": "rewards-zeroed − neutral (its own earlier episodes)",
    "rewards": "chained − rewards-zeroed",
    "identification": "neutral − foreign (the same standing, another body)",
    "gain_reward_driven": "(ep3 − ep1) chained − (ep3 − ep1) rewards-zeroed",
}
_signed = functools.partial(fmt_ci, signed=True)  # score differences carry their sign


def _read(paths: Iterable[Path]) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(paths):
        try:
            rows.append(read_json(path))
        except AdaptkitError:
            continue  # a file being written by a running study: reported next time
    return rows


def _scores(probe: dict[str, Any]) -> dict[str, Any]:
    """A probe file's scores: zero-shot = every episode with a fresh context (reset), in
    context = the episodes chained in one context (a probe made before the controls recorded
    only these two, in its curves)."""
    c = probe["curves"]
    out = {**probe, "curve": probe["base"].split("-")[1]}
    if "zero_shot" not in probe or "decomposition" not in probe:
        out["zero_shot"] = c["reset"]["normalised_score"]
        out["in_context"] = c["chained"]["normalised_score"]
    return out


def _episode(probe: dict[str, Any], i: int) -> float | None:
    """The chained run's normalised score in episode i (the first: no context of this body)."""
    per = probe["curves"]["chained"]["per_episode_normalised"]
    return per[i] if per else None


def _k(base: str) -> int:
    return int(base.split("-")[0][1:])


def summarise(out: Path) -> dict[str, Any]:
    plan = read_json(out / "plan.json")
    plan = plan.get("plan") if isinstance(plan, dict) else None
    if not isinstance(plan, dict) or not isinstance(plan.get("ks"), list) or not plan["ks"]:
        raise AdaptkitError(f"{out / 'plan.json'}: not an embodiment study's folder (no ks)")
    bodies = (_read([out / "bodies.json"]) or [{}])[0]
    probes = [_scores(p) for p in _read(out.glob("probes/*/*.json"))]
    bases = {p.parent.name: b for p in out.glob("bases/*/provenance.json") for b in _read([p])}
    cells = _read(out.glob("adapt/*/cells/*.json"))
    # the per-body curve's largest K is the budget base (built once): its point on both curves
    top = max(plan["ks"])
    if "per_body" in plan.get("curves", []):
        probes += [{**p, "curve": "per_body"} for p in probes
                   if _k(p["base"]) == top and p["curve"] == "budget"]  # fmt: skip
    for c in cells:
        c["k"] = None if is_scratch(c["mode"]) else _k(c.get("base") or "k0")

    # zero-shot and in-context gain per (curve, K): built-ins and held-out family bodies
    probe_rows = []
    groups: dict[tuple[str, int, bool], list[dict[str, Any]]] = defaultdict(list)
    for p in probes:
        groups[(p["curve"], _k(p["base"]), p["builtin"])].append(p)
    for (curve, k, builtin), ps in sorted(groups.items()):
        zs, zci = mean_ci([p["zero_shot"] for p in ps])
        ic, icci = mean_ci([p["in_context"] for p in ps])
        gc, gcci = mean_ci([p["gain_chained"] for p in ps])
        gr, grci = mean_ci([p["gain_reset"] for p in ps])
        e1, e1ci = mean_ci([_episode(p, 0) for p in ps])
        last, lastci = mean_ci([_episode(p, -1) for p in ps])
        controls = {
            key: mean_ci([p.get(key) for p in ps])
            for key in ("zero_shot_blank", "zero_shot_neutral")
        }
        parts = {
            key: mean_ci([(p.get("decomposition") or {}).get(key) for p in ps])
            for key in DECOMPOSITION
        }
        probe_rows.append(
            {
                "curve": curve,
                "k": k,
                "bodies": "built-in" if builtin else "held-out family",
                "n": len(ps),
                "seeds": len({p["base"] for p in ps}),
                "zero_shot": zs,
                "zero_shot_ci": zci,
                "in_context": ic,
                "in_context_ci": icci,
                "first_episode": e1,
                "first_episode_ci": e1ci,
                "last_episode": last,
                "last_episode_ci": lastci,
                "gain_chained": gc,
                "gain_chained_ci": gcci,
                "gain_reset": gr,
                "gain_reset_ci": grci,
                "per_robot": {p["body"]: p["zero_shot"] for p in ps} if builtin else None,
                **{k: v[0] for k, v in controls.items()},
                **{f"{k}_ci": v[1] for k, v in controls.items()},
                "decomposition": {k: {"mean": m, "ci": ci} for k, (m, ci) in parts.items()},
            }
        )

    # adaptation − scratch, paired by robot, size and seed
    scratch = {
        (c["robot"], c["size"], c["seed"]): c["normalised_score"]
        for c in cells
        if is_scratch(c["mode"])
    }
    adapt_rows = []
    by: dict[tuple[int, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for c in cells:
        if c["k"] is not None:
            by[(c["k"], c["robot"], c["size"], c["mode"])].append(c)
    for (k, robot, size, mode), cs in sorted(by.items()):
        m, ci = mean_ci([c["normalised_score"] for c in cs])
        diffs = [
            c["normalised_score"] - scratch[key]
            for c in cs
            if (key := (robot, size, c["seed"])) in scratch
            and None not in (c["normalised_score"], scratch[key])
        ]
        d, dci = mean_ci(diffs)
        win = d is not None and dci is not None and d >= WIN_MARGIN and d - dci > 0
        adapt_rows.append(
            {
                "k": k,
                "robot": robot,
                "size": size,
                "mode": mode,
                "n": len(cs),
                "score": m,
                "score_ci": ci,
                "minus_scratch": d,
                "minus_scratch_ci": dci,
                "wins": win,
            }
        )
    scratch_rows = []
    for key in sorted({(c["robot"], c["size"]) for c in cells if is_scratch(c["mode"])}):
        vals = [v for (r, s, _), v in scratch.items() if (r, s) == key]
        m, ci = mean_ci(vals)
        scratch_rows.append(
            {"robot": key[0], "size": key[1], "n": len(vals), "score": m, "score_ci": ci}
        )

    return {
        "plan": plan,
        "bodies": bodies,
        "probes": probe_rows,
        "adaptation": adapt_rows,
        "scratch": scratch_rows,
        "goals": _goals(plan, probes, adapt_rows),
        "costs": _costs(bodies, bases, probes, cells),
        "done": {
            "bases": sum(1 for b in bases.values() if b.get("complete")),
            "probes": len(probes),
            "cells": len(cells),
        },
    }


def _goals(
    plan: dict[str, Any], probes: Sequence[dict[str, Any]], adapt_rows: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    top = max(plan["ks"])
    probes = [p for p in probes if p["curve"] == "budget"]  # the largest K's seeds, once each
    at_top = [p for p in probes if p["builtin"] and _k(p["base"]) == top]
    per_robot: dict[str, list[float]] = defaultdict(list)
    for p in at_top:
        if p["zero_shot"] is not None:
            per_robot[p["body"]].append(p["zero_shot"])
    robot_means = {r: sum(v) / len(v) for r, v in per_robot.items()}
    zs = sum(robot_means.values()) / len(robot_means) if robot_means else None
    # in context, on every held-out body (built-in or family) at the largest K, over base seeds
    icl = []
    held = defaultdict(list)
    for p in probes:
        if _k(p["base"]) == top:
            held[p["body"]].append(p)
    for body, ps in sorted(held.items()):
        gc, gcci = mean_ci([p["gain_chained"] for p in ps])
        gr, grci = mean_ci([p["gain_reset"] for p in ps])
        met = (
            len(ps) >= 3
            and gc is not None
            and gcci is not None
            and gc >= ICL_MARGIN
            and gc - gcci > 0
            and (gr is None or gr < ICL_MARGIN)
        )
        icl.append(
            {
                "body": body,
                "seeds": len(ps),
                "gain_chained": gc,
                "gain_chained_ci": gcci,
                "gain_reset": gr,
                "gain_reset_ci": grci,
                "met": met,
            }
        )
    adaptation = {}
    for k in sorted({r["k"] for r in adapt_rows}):
        best = {}
        for mode in (m.name for m in MODES.values() if m.keeps_old):  # old bodies untouched
            wins = [
                r["robot"]
                for r in adapt_rows
                if r["k"] == k and r["mode"] == mode and r["size"] == "1ep" and r["wins"]
            ]
            best[mode] = wins
        adaptation[k] = {"robots_won_by_mode": best, "met": any(len(w) >= 3 for w in best.values())}
    return {
        "zero_shot": {
            "k": top,
            "per_robot": robot_means,
            "mean": zs,
            "met": zs is not None and zs >= ZERO_SHOT_GOAL and len(robot_means) == 4,
        },
        "in_context": {"per_body": icl, "met": any(r["met"] for r in icl)},
        "adaptation_1ep": adaptation,
    }


def _costs(
    bodies: dict[str, Any],
    bases: dict[str, dict[str, Any]],
    probes: Sequence[dict[str, Any]],
    cells: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    search = bodies.get("search_seconds") or {}
    per_k: dict[str, float] = {}
    for name, b in sorted(bases.items()):
        per_k[name] = b.get("seconds")
    return {
        "gait_search_seconds": (search.get("mean", 0) * search.get("n", 0)) or None,
        "pretrain_seconds": per_k,
        "probe_seconds": sum(p.get("seconds") or 0 for p in probes),
        "cell_seconds": sum(c.get("wall_seconds") or 0 for c in cells),
    }


def write_embodiment_report(out: Path | str) -> dict[str, Any]:
    out = Path(out)
    s = summarise(out)
    write_json(out / "summary.json", s, "summary")
    write_text_atomic(out / "report.md", _markdown(s), "report")
    if s["probes"] or s["adaptation"]:
        _plot(s, out / "embodiments.png")
    return s


def _markdown(s: dict[str, Any]) -> str:
    plan, g, b = s["plan"], s["goals"], s["bodies"]
    lines = [f"# Embodiment scaling: preset `{plan['preset']}`", ""]
    done = s["done"]
    lines += [
        f"Finished: {done['bases']} bases, {done['probes']} probes, {done['cells']} cells.",
        "",
    ]
    if b:
        sc = b.get("demonstrator_score") or {}
        lines += [
            f"Bodies: {b['accepted']} of {b['looked_at']} family members looked at have an "
            f"accepted demonstrator ({100 * b['accepted'] / max(1, b['looked_at']):.0f} %); "
            f"demonstrator return / best possible {sc.get('mean', 0):.2f} ± {sc.get('sd', 0):.2f} "
            f"(min {sc.get('min', 0):.2f}).",
            "",
        ]
    lines += [
        "## Zero-shot and in context (normalised: stand 0, demonstrator 1)",
        "",
        "Zero-shot: every episode with a fresh context; in context: the episodes chained in one "
        "context (episode 1 and the last are the chained run's).",
        "",
        "| curve | K | bodies | probes (seeds) | zero-shot | in context | episode 1 | last "
        "episode | ep3 − ep1 chained | ep3 − ep1 reset |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in s["probes"]:
        lines.append(
            f"| {r['curve']} | {r['k']} | {r['bodies']} | {r['n']} ({r['seeds']}) | "
            f"{_signed(r['zero_shot'], r['zero_shot_ci'])} | "
            f"{_signed(r['in_context'], r['in_context_ci'])} | "
            f"{_signed(r['first_episode'], r['first_episode_ci'])} | "
            f"{_signed(r['last_episode'], r['last_episode_ci'])} | "
            f"{_signed(r['gain_chained'], r['gain_chained_ci'])} | "
            f"{_signed(r['gain_reset'], r['gain_reset_ci'])} |"
        )
    controlled = [r for r in s["probes"] if r.get("zero_shot_neutral") is not None]
    if controlled:
        lines += [
            "",
            "## Controls (adaptkit.evaluate.controls): what the gain of episode 3 is owed to",
            "",
            "Zero-shot at the window's start is the reset run; after a blank context of 2 "
            "episodes (the position alone) and after 2 episodes of the body standing (neutral) "
            "it is the first own episode. The decomposition telescopes: context = position + "
            "standing + own history + rewards.",
            "",
            "| curve | K | bodies | zero-shot, blank | zero-shot, neutral | "
            + " | ".join(DECOMPOSITION)
            + " |",
            "| --- | --- | --- | --- | --- |" + " --- |" * len(DECOMPOSITION),
        ]
        for r in controlled:
            d = r["decomposition"]
            lines.append(
                f"| {r['curve']} | {r['k']} | {r['bodies']} | "
                f"{_signed(r['zero_shot_blank'], r['zero_shot_blank_ci'])} | "
                f"{_signed(r['zero_shot_neutral'], r['zero_shot_neutral_ci'])} | "
                + " | ".join(_signed(d[k]["mean"], d[k]["ci"]) for k in DECOMPOSITION)
                + " |"
            )
        lines += [""] + [f"- {k}: {v}" for k, v in DECOMPOSITION.items()]
    zs = g["zero_shot"]
    lines += [
        "",
        f"Zero-shot goal (≥ {ZERO_SHOT_GOAL} on the four built-ins at K = {zs['k']}): "
        f"{'met' if zs['met'] else 'not met'} — mean {_signed(zs['mean'])}; "
        + ", ".join(f"{r} {v:+.2f}" for r, v in sorted(zs["per_robot"].items())),
        "",
    ]
    icl = g["in_context"]
    lines.append(
        f"In-context goal (ep3 − ep1 ≥ {ICL_MARGIN} chained, not reset, ≥ 3 seeds, on a "
        f"held-out body): {'met' if icl['met'] else 'not met'}"
    )
    for r in icl["per_body"]:
        lines.append(
            f"- {r['body']}: chained {_signed(r['gain_chained'], r['gain_chained_ci'])}, "
            f"reset {_signed(r['gain_reset'], r['gain_reset_ci'])} ({r['seeds']} seeds)"
        )
    lines += [
        "",
        "## Adaptation against same-budget scratch (paired by seed; 95 % CI)",
        "",
        "| K | robot | size | mode | n | score | − scratch | wins (≥ 0.2, CI > 0) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in s["adaptation"]:
        lines.append(
            f"| {r['k']} | {r['robot']} | {r['size']} | {r['mode']} | {r['n']} | "
            f"{_signed(r['score'], r['score_ci'])} | "
            f"{_signed(r['minus_scratch'], r['minus_scratch_ci'])} | "
            f"{'yes' if r['wins'] else ''} |"
        )
    for r in s["scratch"]:
        lines.append(
            f"| – | {r['robot']} | {r['size']} | scratch | {r['n']} | "
            f"{_signed(r['score'], r['score_ci'])} | | |"
        )
    lines.append("")
    for k, a in g["adaptation_1ep"].items():
        won = ", ".join(f"{m}: {len(w)}" for m, w in a["robots_won_by_mode"].items())
        lines.append(
            f"- K = {k}: robots where a mode keeping old bodies bit-identical wins at "
            f"1 episode — {won} → goal {'met' if a['met'] else 'not met'}"
        )
    c = s["costs"]
    lines += [
        "",
        "## Cost (seconds, this machine)",
        "",
        f"- gait search + check: {c['gait_search_seconds'] or 0:.0f} (cached after)",
        "- pretraining: "
        + ", ".join(f"{n} {v:.0f}" for n, v in c["pretrain_seconds"].items() if v is not None),
        f"- probes: {c['probe_seconds']:.0f}",
        f"- adaptation cells: {c['cell_seconds']:.0f}",
        "",
    ]
    return "\n".join(lines)


def _plot(s: dict[str, Any], path: Path) -> None:
    fig = Figure(figsize=(13, 3.6))
    FigureCanvasAgg(fig)
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for i, (curve, bodies) in enumerate(sorted({(r["curve"], r["bodies"]) for r in s["probes"]})):
        rows = sorted(
            (r for r in s["probes"] if (r["curve"], r["bodies"]) == (curve, bodies)),
            key=lambda r: r["k"],
        )
        ks = [r["k"] for r in rows]
        style = "-" if curve == "budget" else "--"
        scored = [r for r in rows if r["zero_shot"] is not None]
        ax1.errorbar(
            [r["k"] for r in scored],
            [r["zero_shot"] for r in scored],
            yerr=[r["zero_shot_ci"] or 0 for r in scored],
            fmt="o" + style,
            ms=4,
            color=f"C{i}",
            label=f"{bodies}, {curve}",
            capsize=2,
        )
        if curve == "budget":
            ax2.plot(
                ks,
                [r["gain_chained"] for r in rows],
                "o-",
                color=f"C{i}",
                label=f"{bodies}, chained",
            )
            ax2.plot(
                ks, [r["gain_reset"] for r in rows], "x:", color=f"C{i}", label=f"{bodies}, reset"
            )
    for j, mode in enumerate(mode_names(scratch=False)):
        rows = [r for r in s["adaptation"] if r["mode"] == mode and r["size"] == "1ep"]
        ks = sorted({r["k"] for r in rows})
        means = []
        for k in ks:
            vals = [
                r["minus_scratch"] for r in rows if r["k"] == k and r["minus_scratch"] is not None
            ]
            means.append(sum(vals) / len(vals) if vals else None)
        if ks:
            ax3.plot(ks, means, "o-", color=f"C{j}", label=mode)
    for ax, title in (
        (ax1, "zero-shot"),
        (ax2, "in context: episode 3 − episode 1"),
        (ax3, "1 episode of data: mode − scratch (mean of robots)"),
    ):
        ax.set_xscale("log")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xlabel("K bodies in pretraining")
        ax.set_title(title, fontsize=10)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    ax1.set_ylabel("normalised score")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
