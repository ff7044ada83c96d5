"""`adaptkit study`: plan parsing, the confidence interval against known numbers, the budget
arithmetic, findings, and the `ci` preset end to end (run, resume skipping done cells, report)."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from adaptkit.cli import app
from adaptkit.data.windows import count_windows
from adaptkit.errors import AdaptkitError
from adaptkit.study.common import budget_epochs, cell_shape, mean_ci
from adaptkit.study.plan import StudyPlan, parse_list
from adaptkit.study.report import findings


def test_plan_presets_and_axes():
    ci = StudyPlan.preset_named("ci")
    assert [c.id for c in ci.cells()] == [
        f"minicheetah-1hist-{m}-s0" for m in ("frozen", "warm", "lora", "full", "scratch")
    ]
    readme = StudyPlan.preset_named("readme")
    assert readme.base_robots("go1") == ("go2", "a1", "minicheetah")
    assert len(readme.cells()) == 4 * 2 * 5 * 2
    assert readme.icl_context >= 3 * readme.recipe.episode_length  # context spans ≥ 3 episodes
    # plan.json keeps its flat form: results folders written before the plan held a Recipe
    # still agree with the same preset
    assert readme.data_key() == {
        "task": "walk", "pool": ["go1", "go2", "a1", "minicheetah"], "histories": 4,
        "steps_per_history": 10_000, "episode_length": 250, "collect_envs": 4,
        "collect_seed": 0, "model": {}, "pretrain_epochs": 2, "pretrain_lr": 3e-4,
        "pretrain_batch": 32, "budget_steps": 40, "batch_size": 16, "lr": 1e-3, "lora_rank": 4,
        "precision": "auto", "eval_envs": 16, "eval_episodes": 3, "eval_seed": 777,
        "icl_context": 768, "icl_episodes": 6,
    }  # fmt: skip
    evaluation = readme.eval_settings()
    assert (evaluation.num_envs, evaluation.episodes, evaluation.seed) == (16, 3, 777)
    assert evaluation.episode_length == 250 and evaluation.threads == readme.threads
    assert parse_list("--seeds", "0, 2", int) == (0, 2) and parse_list("--robots", None) is None
    with pytest.raises(AdaptkitError, match="--modes: \\['frozn'\\] not among"):
        readme.replace(modes=("frozn",))
    with pytest.raises(AdaptkitError, match="--seeds"):
        parse_list("--seeds", "0,x", int)
    with pytest.raises(AdaptkitError, match="--preset"):
        StudyPlan.preset_named("huge")
    with pytest.raises(AdaptkitError, match="--icl-size"):
        readme.replace(icl_size="2ep")
    with pytest.raises(AdaptkitError, match="--icl-robot"):
        readme.replace(targets=("go1",), icl_robot="a1")


def test_mean_ci_against_known_numbers():
    # 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.303 → half-width 4.303 / √3
    m, ci = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and ci == pytest.approx(4.303 / math.sqrt(3))
    m, ci = mean_ci([0.5, 0.7])  # sd 0.1414, t(1) = 12.706
    assert m == pytest.approx(0.6) and ci == pytest.approx(12.706 * 0.1414214 / math.sqrt(2))
    assert mean_ci([0.4]) == (0.4, None) and mean_ci([]) == (None, None)


def test_budget_and_window_arithmetic():
    assert count_windows([1000], 256, 64) == math.ceil(744 / 64)
    assert cell_shape([250], 256, 16) == (125, 7)  # one short episode: half of it, denser
    ctx, stride = cell_shape([10_000], 256, 16)
    assert (ctx, stride) == (256, 64)
    assert budget_epochs(100, 16, 40) == (7, 6)  # 6 steps/epoch → 7 epochs × ≤ 6 = 42 ≈ 40
    assert budget_epochs(1000, 16, 40) == (1, 40)
    with pytest.raises(AdaptkitError, match="no batch"):
        budget_epochs(3, 16, 40)


def test_findings_from_rows():
    def row(size, mode, v):
        return {"robot": "mc", "size": size, "mode": mode, "normalised_mean": v}

    rows = [row("10ep", "frozen", 0.7), row("10ep", "scratch", 0.3), row("10ep", "lora", 0.6),
            row("1hist", "frozen", 0.9), row("1hist", "scratch", 0.85)]  # fmt: skip
    f = findings(rows, {"mc": 0.4})
    assert [(w["size"], w["best_mode"]) for w in f["wins"]] == [("10ep", "frozen")]
    assert not f["wins"][0]["below_standing"] and f["wins"][0]["zero_shot"] == 0.4
    assert f["best_mode_per_size"]["1hist"]["mode"] == "frozen"
    # a "win" where the best base mode is still below standing still is flagged as such
    f = findings([row("1ep", "frozen", -0.1), row("1ep", "scratch", -0.5)])
    assert f["wins"][0]["below_standing"] and f["wins"][0]["zero_shot"] is None


def test_ci_preset_end_to_end_resume_and_report(tmp_path):
    out = tmp_path / "study"
    runner = CliRunner()
    r = runner.invoke(app, ["study", "--preset", "ci", "--out", str(out)])
    assert r.exit_code == 0, r.output
    cells = sorted(p.stem for p in (out / "cells").glob("*.json"))
    assert len(cells) == 5
    cell = json.loads((out / "cells" / "minicheetah-1hist-lora-s0.json").read_text())
    assert cell["steps"] >= 3 and cell["num_episodes"] == 4
    assert cell["normalised_score"] is not None and cell["wall_seconds"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cells_done"] == 5 and summary["icl"]["curves"]["reset"]
    report = (out / "report.md").read_text()
    assert "| minicheetah | 1hist | 300 | scratch |" in report and "In-context" in report
    for f in ("study.png", "icl.png"):
        assert (out / f).stat().st_size > 1000
    assert not any((out / "runs").iterdir())  # the runs were removed once written

    # a rerun skips the done cells (one removed: only that one runs again), here in-process
    warm = out / "cells" / "minicheetah-1hist-warm-s0.json"
    warm.unlink()
    before = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    r = runner.invoke(app, ["study", "--preset", "ci", "--out", str(out), "--executor", "inline"])
    assert r.exit_code == 0, r.output
    after = {p.name: p.stat().st_mtime_ns for p in (out / "cells").glob("*.json")}
    assert {k: after[k] for k in before} == before and warm.name in after
    assert "5 of 6 already done" in r.output  # 5 cells and the in-context stage
    assert not any((out / "claims").glob("*.claim"))
    # another plan into the same folder is refused in one line
    r = runner.invoke(app, ["study", "--preset", "readme", "--out", str(out)])
    assert r.exit_code == 1 and "other settings" in r.output
    for changed in (["--task", "varied"], ["--budget-steps", "4"]):  # what results depend on
        r = runner.invoke(app, ["study", "--preset", "ci", "--out", str(out), *changed])
        assert r.exit_code == 1 and "other settings" in r.output, changed
