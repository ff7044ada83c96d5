"""The in-context base in the product: where it is shipped, its recipe, `eval --controls` and
`--in-context`, and the main job's "in context" row."""

from __future__ import annotations

import json

import pytest
import torch
from helpers_model import reference_config, tiny_meta, write_reference_checkpoint
from typer.testing import CliRunner

from adaptkit.bootstrap.in_context import (
    IN_CONTEXT_BASE,
    in_context_base,
    in_context_episode_length,
    shipped_in_context,
)
from adaptkit.cli import app
from adaptkit.errors import AdaptkitError
from adaptkit.model import GroupDims, ModelConfig, Vintix
from adaptkit.study.embodiments_plan import PRESETS
from adaptkit.study.in_context_base import in_context_plan

runner = CliRunner()


def test_a_missing_in_context_base_is_one_line_saying_how_to_build_it(tmp_path):
    with pytest.raises(AdaptkitError, match="build-base --recipe in-context"):
        in_context_base(tmp_path / "nothing")
    assert shipped_in_context(tmp_path / "nothing") is None


def test_the_shipped_in_context_base_records_its_recipe_and_episode_length():
    base = in_context_base()
    assert base == IN_CONTEXT_BASE
    info = json.loads((base / "provenance.json").read_text())
    assert info["complete"] is True and info["plan"]["preset"] == "in-context"
    assert in_context_episode_length(base) == in_context_plan().episode_length == 86
    assert len(info["fingerprint"]) >= 16 and "check" in info


def test_the_recipe_is_the_embodiment_studys_at_one_k_and_seed():
    plan, small = in_context_plan(), PRESETS["embodiments-small"].build()
    assert plan.ks == (3,) and plan.base_seeds == (0,) and plan.curves == ("budget",)
    # the same total data and optimiser steps as every base of the study
    assert plan.histories_for(3, "budget") * 3 == pytest.approx(
        small.histories_for(100, "budget") * 100, rel=0.01
    )
    for key in ("pretrain_steps", "pretrain_batch", "episode_length", "noise_cycle", "model"):
        assert getattr(plan, key) == getattr(small, key)


def _tiny_family_base(path):
    torch.manual_seed(0)
    cfg = ModelConfig(observation_emb_dim=8, action_emb_dim=4, reward_emb_dim=4,
                      transformer_depth=1, transformer_heads=2, intermediate_size=16,
                      context_len=64)  # fmt: skip
    model = Vintix(cfg, {"quadruped_locomotion": GroupDims(45, 12)}).eval()
    meta = tiny_meta(
        {"quadruped_locomotion": GroupDims(45, 12)}, {"a_walk": "quadruped_locomotion"}
    )
    return write_reference_checkpoint(path, model, meta.to_json(), reference_config(model))


def test_eval_controls_prints_every_control_and_writes_one_set(tmp_path):
    ckpt = _tiny_family_base(tmp_path / "base" / "0001_epoch")
    out = tmp_path / "out"
    args = [
        "eval",
        str(ckpt),
        "--robot",
        "go2",
        "--controls",
        "--episodes",
        "3",
        "--episode-length",
        "12",
        "--num-envs",
        "2",
        "--seed",
        "777",
        "--data-dir",
        str(tmp_path / "no-data"),
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("chained", "reset", "rewards-zeroed", "blank", "neutral", "foreign"):
        assert name in result.output
    assert "identification" in result.output and "minicheetah" in result.output
    # no data of the robot: said, with the command that collects some
    assert "note: no data of go2" in result.output and "adaptkit collect go2" in result.output
    saved = json.loads((out / "controls.json").read_text())
    assert saved["foreign"] == "minicheetah" and (out / "controls.png").is_file()
    assert set(saved["decomposition"]) >= {"context", "position", "rewards", "identification"}
    # too few episodes for the prefix: one line, nothing written
    again = runner.invoke(app, [*args[:5], "--episodes", "2", *args[7:-1], str(tmp_path / "o2")])
    assert saved["stats_source"].endswith("(no robot data)")
    assert again.exit_code == 1 and "prefix episodes need --episodes above 2" in again.output
    assert not (tmp_path / "o2").exists()


def test_eval_in_context_runs_the_shipped_base_at_its_episode_length(tmp_path):
    out = tmp_path / "ic"
    result = runner.invoke(app, ["eval", "--robot", "go2", "--in-context", "--num-envs", "1",
                                 "--episodes", "3", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "controls.json").read_text())
    assert saved["settings"]["episode_length"] == 86
    assert len(saved["curves"]["chained"]["per_episode_return"]) == 3
