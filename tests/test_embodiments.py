"""The embodiment-scaling study: its plan's arithmetic (the two curves), the toy preset end to end
through the CLI (bases, probes, adaptation cells, report), resuming, and the report's goals."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from adaptkit import AdaptkitError
from adaptkit.cli import app
from adaptkit.family import CACHE_ENV
from adaptkit.study.embodiments import base_name
from adaptkit.study.embodiments_plan import EmbodimentPlan
from adaptkit.study.embodiments_report import summarise

INLINE = ("--executor", "inline")  # one process: worker start-up would dominate at toy size


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))


def test_budget_curve_keeps_total_data_and_steps_per_body_curve_keeps_data_per_body():
    plan = EmbodimentPlan(histories_per_body=8, pretrain_steps=600)
    for k in plan.ks:
        assert plan.pretrain_steps_for(k, "budget") == 600
        assert plan.histories_for(k, "per_body") == 8
    # the same total data at every K on the budget curve (to rounding)
    totals = [k * plan.histories_for(k, "budget") for k in plan.ks]
    assert all(abs(t - 800) <= max(plan.ks) // 2 for t in totals), totals
    assert plan.pretrain_steps_for(10, "per_body") == 60
    bases = plan.bases()
    # the per-body base at the largest K would be the budget one: not built twice
    assert (100, "per_body", 0) not in bases and (100, "budget", 0) in bases
    assert len(bases) == len(set(bases)) == 4 * 3 + 3 * 3
    # every K's first seed comes before any second seed
    firsts = [i for i, b in enumerate(bases) if b[2] == 0]
    assert max(firsts) < min(i for i, b in enumerate(bases) if b[2] != 0)


def test_small_preset_has_three_seeds_at_the_largest_k_only():
    plan = EmbodimentPlan.preset_named("embodiments-small")
    seeds = {(k, c): set() for k, c, _ in plan.bases()}
    for k, c, s in plan.bases():
        seeds[(k, c)].add(s)
    assert seeds[(100, "budget")] == {0, 1, 2}
    assert seeds[(3, "budget")] == {0}


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"ks": ()}, "--ks"),
        ({"curves": ("budget", "more")}, "--curves"),
        ({"episode_length": 50, "noise_cycle": 2}, "longer than the model's context"),
        ({"icl_episodes": 2}, "icl_episodes"),
        ({"gait_search": "fast"}, "gait_search"),
    ],
)
def test_bad_plans_are_refused_with_the_field(changes, field):
    with pytest.raises(AdaptkitError, match=field):
        EmbodimentPlan(**changes)


def test_toy_preset_end_to_end_and_resumes(tmp_path):
    out = tmp_path / "emb"
    runner = CliRunner()
    r = runner.invoke(app, ["study", "--preset", "embodiments-ci", "--out", str(out), *INLINE])
    assert r.exit_code == 0, r.output
    plan = EmbodimentPlan.preset_named("embodiments-ci")
    for k, curve, seed in plan.bases():
        prov = json.loads(
            (out / "bases" / base_name(k, curve, seed) / "provenance.json").read_text()
        )
        assert prov["complete"] and len(prov["bodies"]) == k
        assert prov["histories_per_body"] == plan.histories_for(k, curve)
    bodies = json.loads((out / "bodies.json").read_text())
    assert len(bodies["train_bodies"]) == max(plan.ks) and len(bodies["held_out_bodies"]) == 1
    assert not set(bodies["train_bodies"]) & set(bodies["held_out_bodies"])
    probe = json.loads((out / "probes" / "k002-budget-s0" / "minicheetah.json").read_text())
    assert probe["group"] == "quadruped_family_locomotion"  # zero-shot through the shared group
    for label in ("chained", "reset"):
        assert len(probe["curves"][label]["per_episode_normalised"]) == plan.icl_episodes
    s = summarise(out)
    assert {(r["k"], r["mode"]) for r in s["adaptation"]} == {(1, "frozen"), (2, "frozen")}
    assert s["scratch"][0]["n"] == 1 and (out / "embodiments.png").is_file()
    assert "Zero-shot goal" in (out / "report.md").read_text()
    # a rerun finds everything done: nothing is rebuilt, the files stay as they were
    made = ("report.md", "summary.json", "plan.json")  # rewritten by every run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.json") if p.name not in made}
    assert any("probes" in p.parts for p in before) and any("bases" in p.parts for p in before)
    r = runner.invoke(app, ["study", "--preset", "embodiments-ci", "--out", str(out), *INLINE])
    assert r.exit_code == 0, r.output
    assert {p: p.stat().st_mtime_ns for p in before} == before
    # another plan into the same folder is refused, naming what differs
    r = runner.invoke(
        app, ["study", "--preset", "embodiments-ci", "--out", str(out), "--task", "varied"]
    )
    assert r.exit_code == 1 and "task" in r.output


def _probe(base: str, body: str, zs: float, gc: float, gr: float, builtin: bool) -> dict:
    """A probe file as EmbodimentStudy.probe writes it (only the fields the report reads)."""
    chained = [zs - gc / 2, zs, zs + gc / 2]
    reset = [zs - gr / 2, zs, zs + gr / 2]
    return {
        "base": base,
        "body": body,
        "builtin": builtin,
        "zero_shot": zs,
        "gain_chained": gc,
        "gain_reset": gr,
        "seconds": 1.0,
        "curves": {
            "chained": {"per_episode_normalised": chained, "normalised_score": zs},
            "reset": {"per_episode_normalised": reset, "normalised_score": zs},
        },
    }


def test_report_goals_from_written_files(tmp_path):
    out = tmp_path
    plan = EmbodimentPlan(ks=(3, 10), robots=("go1", "go2", "a1", "minicheetah"))
    (out / "plan.json").write_text(json.dumps({"plan": plan.as_dict()}))
    for seed, (gc, gr) in enumerate([(0.3, 0.0), (0.25, 0.02), (0.35, -0.01)]):
        base = f"k010-budget-s{seed}"
        (out / "probes" / base).mkdir(parents=True)
        (out / "probes" / base / "quadfam_0200.json").write_text(
            json.dumps(_probe(base, "quadfam_0200", 0.4, gc, gr, False))
        )
        for robot, zs in (("go1", 0.7), ("go2", 0.6), ("a1", 0.5), ("minicheetah", 0.3)):
            (out / "probes" / base / f"{robot}.json").write_text(
                json.dumps(_probe(base, robot, zs, 0.0, 0.0, True))
            )
    cells = out / "adapt" / "k010" / "cells"
    cells.mkdir(parents=True)
    scratch = out / "adapt" / "scratch" / "cells"
    scratch.mkdir(parents=True)
    for robot in ("go1", "go2", "a1", "minicheetah"):
        for seed, (f, sc) in enumerate([(0.6, 0.1), (0.7, 0.2), (0.65, 0.1)]):
            won = robot != "minicheetah"
            cell = {"robot": robot, "size": "1ep", "seed": seed, "wall_seconds": 1.0}
            (cells / f"{robot}-frozen-{seed}.json").write_text(json.dumps(
                {**cell, "mode": "frozen", "base": "k010-budget-s0",
                 "normalised_score": f if won else sc}))  # fmt: skip
            (scratch / f"{robot}-scratch-{seed}.json").write_text(
                json.dumps({**cell, "mode": "scratch", "base": None, "normalised_score": sc})
            )
    goals = summarise(out)["goals"]
    assert goals["zero_shot"]["mean"] == pytest.approx(0.525) and goals["zero_shot"]["met"]
    assert goals["in_context"]["met"]
    assert goals["adaptation_1ep"][10]["robots_won_by_mode"]["frozen"] == ["a1", "go1", "go2"]
    assert goals["adaptation_1ep"][10]["met"]
    # the in-context goal needs the gain with the context reset to stay below the margin
    (out / "probes" / "k010-budget-s0" / "quadfam_0200.json").write_text(
        json.dumps(_probe("k010-budget-s0", "quadfam_0200", 0.4, 0.3, 0.5, False))
    )
    assert not summarise(out)["goals"]["in_context"]["met"]


def test_report_of_a_folder_that_is_not_an_embodiment_study_is_one_line(tmp_path):
    (tmp_path / "plan.json").write_text(json.dumps({"plan": {"preset": "readme"}}))
    r = CliRunner().invoke(
        app, ["study", "--preset", "embodiments", "--report-only", "--out", str(tmp_path)]
    )
    assert r.exit_code == 1 and "not an embodiment study" in r.output


@pytest.mark.parametrize(
    "args, says",
    [
        (["--ks", "3,3"], "--ks"),
        (["--seeds", "0,0"], "--seeds"),
        (["--keep-runs"], "--keep-runs"),
    ],
)
def test_bad_axes_are_refused_before_any_work(tmp_path, args, says):
    out = tmp_path / "emb"
    r = CliRunner().invoke(app, ["study", "--preset", "embodiments-ci", "--out", str(out), *args])
    assert r.exit_code in (1, 2) and says in r.output
    assert not out.exists()
