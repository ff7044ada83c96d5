"""Rough edges a new user met: a step budget shorter than one episode, help text markup, output
to a pipe (width, a reader that leaves), and the order of the training summary."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from types import SimpleNamespace

from helpers_eval import ACT, FakeEnv
from typer.testing import CliRunner

from adaptkit.cli import app
from adaptkit.evaluate import EvalSettings, StandPolicy, evaluate_policy, rollout, summarize


def test_a_budget_shorter_than_any_episode_is_scored_partial_never_nan():
    result = rollout(StandPolicy(ACT), FakeEnv(num_envs=4), None, 2)  # episodes last 3-9 steps
    assert [e.length for e in result.episodes] == [2, 2, 2, 2]
    assert all(e.partial for e in result.episodes)
    s = summarize(result.episodes)
    assert s["partial"] and math.isfinite(s["mean_return"]) and s["num_episodes"] == 4
    # a budget in which episodes end scores only those, as before
    full = rollout(StandPolicy(ACT), FakeEnv(num_envs=4), None, 12)
    assert full.episodes and not any(e.partial for e in full.episodes)


def test_eval_says_why_the_episodes_are_partial(registry):
    spec = registry.robot("go1")
    settings = EvalSettings(num_envs=1, episodes=None, max_steps=5)
    s = evaluate_policy(StandPolicy(12), spec, settings).summary
    assert s["partial"] and math.isfinite(s["mean_return"])
    assert s["note"].startswith("no episode ended within 5 control steps (an episode lasts 1000)")


def test_help_shows_the_extra_in_brackets():
    res = CliRunner().invoke(app, ["eval", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "pip install 'adaptkit[genesis]'" in " ".join(res.output.split())  # wrapped or not


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    code = (
        "import sys; from adaptkit.cli import main; sys.argv = ['adaptkit', *sys.argv[1:]]; main()"
    )
    return subprocess.run([sys.executable, "-c", code, *args], env=env, **kw)


def test_a_reader_that_leaves_ends_the_command_quietly():
    r, w = os.pipe()
    os.close(r)  # nobody reads: the first write fails with EPIPE
    try:
        proc = _cli("robots", "--json", stdout=w, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(w)
    assert proc.stderr == ""  # was: "error: file system: broken pipe"


def test_tables_to_a_pipe_keep_their_cells_whole():
    proc = _cli("robots", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "minicheetah" in line)
    assert "minicheetah_walking_ad" in row and "minicheetah_locomotion" in row


def test_training_summary_prints_when_training_ends():
    """Before the fine-tune's comparison (its bars and table), not after it."""
    from adaptkit.commands import render, train

    result = SimpleNamespace(
        seconds=1.5, epoch_losses=[0.5], frozen_verified=True, frozen_report="trunk intact",
        last_checkpoint="runs/x/0001_epoch", adapter=None,
    )  # fmt: skip
    with render.console.capture() as cap:
        render.RichReporter().event("done", {"result": result})
    assert "done in 1.5s" in cap.get() and "runs/x/0001_epoch" in cap.get()
    with render.console.capture() as cap:
        train._summary(result, as_json=False)  # the command's own call, after: nothing twice
    assert cap.get() == ""
    with render.console.capture() as cap:
        render.RichReporter(quiet=True).event("done", {"result": result})
    assert cap.get() == ""


def test_robot_names_complete_in_the_shell():
    env = {"_ADAPTKIT_COMPLETE": "complete_bash", "COMP_WORDS": "adaptkit eval --robot mi",
           "COMP_CWORD": "3"}  # fmt: skip
    res = CliRunner().invoke(app, [], env=env, prog_name="adaptkit")
    assert "minicheetah" in res.output.split() and "go1" not in res.output
    env["COMP_WORDS"], env["COMP_CWORD"] = "adaptkit finetune g", "2"  # the robot argument
    res = CliRunner().invoke(app, [], env=env, prog_name="adaptkit")
    assert {"go1", "go2"} <= set(res.output.split()) and "a1" not in res.output
