"""Adaptation modes as one table (adaptkit.adapt.modes): the older flags spell today's modes, and
a new mode is one registration — here a test-only "decoder-only" mode (only the new group's
action decoder trains), registered in this file alone and run through `finetune` and a toy study.
"""

from __future__ import annotations

import json

import pytest
import torch
from helpers_train import TINY_MODEL, job, make_world, state_dict, tiny_train

from adaptkit.adapt.modes import MODES, Mode, get_mode, mode_names, register_mode, resolve_mode
from adaptkit.defaults import FreezeMode
from adaptkit.errors import AdaptkitError
from adaptkit.plugins import get_registry
from adaptkit.study.leave_one_out import run_study
from adaptkit.study.plan import StudyPlan
from adaptkit.train import finetune, pretrain

# the new group's encoders frozen again after the mode's `trains` made the whole group trainable
DECODER_ONLY = Mode(
    "decoder-only",
    "a new group whose action decoder alone trains",
    patterns=("!encoder.*_encoders.{group}.*",),
)


@pytest.fixture
def decoder_only():
    register_mode(DECODER_ONLY)
    yield DECODER_ONLY
    MODES.pop(DECODER_ONLY.name)  # the table is global: other tests see today's modes


def test_todays_modes_and_the_flags_that_spell_them():
    assert mode_names() == ("frozen", "warm", "lora", "full", "scratch")
    assert mode_names(scratch=True) == ("scratch",)
    spelled = {
        "frozen": {},
        "full": {"freeze": FreezeMode.NONE},
        "warm": {"warm_start": "go1"},
        "lora": {"lora_rank": 8},
    }
    for name, flags in spelled.items():
        assert resolve_mode(**flags).mode is get_mode(name)
    lora = resolve_mode("lora")
    assert (lora.lora_rank, lora.freeze, lora.lr) == (4, FreezeMode.TRANSFORMER, 1e-3)
    assert resolve_mode("warm").warm_start == "auto" and resolve_mode("full").lr == 1e-4
    # a flag overrides the mode's setting: what trains sets the default lr
    assert resolve_mode("lora", freeze="none").lr == 1e-4
    with pytest.raises(AdaptkitError, match="no fine-tune"):
        resolve_mode("scratch")
    with pytest.raises(AdaptkitError, match="expected one of frozen, warm"):
        get_mode("prefix")
    with pytest.raises(AdaptkitError, match="already registered"):
        register_mode(Mode("frozen", "again"))


def test_a_registered_mode_runs_through_finetune(tmp_path, decoder_only):
    paths = make_world(tmp_path)
    base = pretrain(
        [paths["pretrain_config"]], paths["data"], "base", tmp_path / "models", TINY_MODEL,
        tiny_train(epochs=1),
    )  # fmt: skip
    robot = get_registry().robot("minicheetah")
    result = finetune(
        job(robot, base.run_dir, paths["data"], "dec", tmp_path / "runs", mode="decoder-only")
    )
    trained = result.trainable["freeze"]["trainable"]
    assert trained and all(n.startswith(f"head.acs_decoders.{robot.group}.") for n in trained)
    assert result.frozen_verified  # the trunk, the old group and the new encoders untouched
    first, last = state_dict(result.checkpoints[0]), state_dict(result.last_checkpoint)
    for name, tensor in last.items():
        assert torch.equal(tensor, first[name]) == (name not in trained), name
    old = state_dict(base.last_checkpoint)
    assert all(torch.equal(last[k], v) for k, v in old.items())  # old groups bit-identical
    config = json.loads((result.last_checkpoint / "config.json").read_text())
    assert config["adaptkit_mode"] == "decoder-only"


def test_a_registered_mode_runs_through_a_toy_study(tmp_path, decoder_only):
    plan = StudyPlan.preset_named("ci").replace(modes=("decoder-only", "scratch"), icl=False)
    out = run_study(plan, tmp_path / "study", executor="inline")
    cells = {p.stem: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    assert set(cells) == {"minicheetah-1hist-decoder-only-s0", "minicheetah-1hist-scratch-s0"}
    mine, scratch = (
        cells["minicheetah-1hist-decoder-only-s0"],
        cells["minicheetah-1hist-scratch-s0"],
    )
    assert mine["base"] is not None and scratch["base"] is None
    assert 0 < mine["trainable_params"] < scratch["trainable_params"]
    summary = json.loads((out / "summary.json").read_text())
    assert [d["mode"] for d in summary["findings"]["paired_vs_scratch"]] == ["decoder-only"]
    assert summary["findings"]["comparisons"][0]["best_mode"] == "decoder-only"
    assert "| decoder-only |" in (out / "report.md").read_text()
