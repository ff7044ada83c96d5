"""`adaptkit eval` / `adaptkit compare`: the seed's spellings, outputs, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers_model import reference_config, tiny_meta, tiny_model
from typer.testing import CliRunner

import adaptkit.evaluate as ev
from adaptkit.ckpt.checkpoint import save_checkpoint
from adaptkit.cli import app
from adaptkit.model import GroupDims

QUAD = {"quadruped_locomotion": GroupDims(45, 12)}


@pytest.fixture
def calls(monkeypatch, tmp_path):
    # the commands save their resolved config (run.yaml) in their output folder, relative to
    # the working folder: keep that out of the checkout
    monkeypatch.chdir(tmp_path)
    seen: dict = {}

    def fake(name):
        def run(*args, **kwargs):
            seen[name] = (args, kwargs)
            summary = {"per_episode": [], "group": "g", "mode": "native", "stats_source": "s"}
            return SimpleNamespace(summary=summary, files={}, rows=[], not_applicable={})

        return run

    monkeypatch.setattr(ev, "evaluate", fake("evaluate"))
    monkeypatch.setattr(ev, "compare", fake("compare"))
    return seen


def test_seed_spellings_parse(calls):
    args = "eval --vintix_path runs/ft --robot_type minicheetah --parallel --num_envs 100 "
    args += "--max_steps 1000 --context_len 512 --json"
    res = CliRunner().invoke(app, args.split())
    assert res.exit_code == 0, res.output
    (ckpt, robot, settings), _ = calls["evaluate"]
    assert (ckpt, robot.name) == ("runs/ft", "minicheetah")  # a string: may be a Hub reference
    s = settings
    assert (s.num_envs, s.max_steps, s.episodes, s.context_len) == (100, 1000, None, 512)


def test_dashed_spellings_and_defaults(calls):
    args = "eval runs/ft --robot go1 --num-envs 4 --episodes 2 --group quad --seed 3 --out o --json"
    res = CliRunner().invoke(app, args.split())
    assert res.exit_code == 0, res.output
    (_, _, s), kw = calls["evaluate"]
    assert (s.episodes, s.max_steps, s.group, s.seed) == (2, None, "quad", 3)
    assert kw["out_dir"] == Path("o")


def test_compare_models_and_labels_parse(calls):
    args = "compare --robot minicheetah --models base/0001_epoch ft/0001_epoch "
    args += "--labels zero-shot,fine-tuned --no-demonstrator --num_envs 8 --json"
    res = CliRunner().invoke(app, args.split())
    assert res.exit_code == 0, res.output
    (_robot, named, settings), kw = calls["compare"]
    assert named == [("zero-shot", "base/0001_epoch"), ("fine-tuned", "ft/0001_epoch")]
    assert (kw["demonstrator"], kw["stand"], settings.num_envs) == (False, True, 8)
    res = CliRunner().invoke(
        app, ["compare", "--robot", "go1", "zs=a/0001_epoch", "b/0001_epoch", "--json"]
    )
    assert calls["compare"][0][1] == [
        ("zs", "a/0001_epoch"),
        ("b/0001_epoch", "b/0001_epoch"),
    ]
    res = CliRunner().invoke(app, ["compare", "--robot", "go1", "a", "b", "--labels", "x"])
    assert res.exit_code == 1 and "--labels: got 1 labels for 2 models" in res.output


def test_eval_end_to_end_and_errors(registry, tmp_path):
    model = tiny_model(groups=QUAD)
    tasks = {"go1_walking_ad": "quadruped_locomotion"}
    ckpt = save_checkpoint(
        tmp_path / "run" / "0001_epoch", model, tiny_meta(QUAD, tasks), reference_config(model)
    )
    out = tmp_path / "out"
    args = ["eval", str(tmp_path / "run"), "--robot", "go1", "--num-envs", "2", "--episodes", "2"]
    args += ["--episode-length", "6", "--out", str(out), "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["num_episodes"] == 4 and summary["mode"] == "native"
    assert summary["checkpoint"] == str(ckpt)
    assert {p.name for p in out.iterdir()} == {
        "episodes.csv", "summary.json", "curve.png", "run.yaml",  # run.yaml: the resolved config
    }  # fmt: skip
    # rich table form
    res = CliRunner().invoke(app, args[:-1])
    assert res.exit_code == 0 and "return per episode in context" in res.output
    # bad input: one line naming the field, exit 1
    res = CliRunner().invoke(app, [*args, "--group", "nope"])
    assert res.exit_code == 1
    assert "error: --group: 'nope' is not in the checkpoint" in res.output
    res = CliRunner().invoke(app, ["eval", "--robot", "go1"])
    assert res.exit_code == 1 and "--vintix_path" in res.output
