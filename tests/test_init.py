"""How a fine-tune's new group starts (`--init auto|fresh|warm:GROUP`), through the modes table:
the resolver spells it, the zero-shot probe settles `auto` (warm from the best dims-matching old
group when it beats standing still, else fresh), the choice is recorded in config.json and the
model card, old groups stay bit-identical either way, and a fine-tuned policy that ends below
zero-shot or standing still is said in one line with the cause and the next command."""

from __future__ import annotations

import json

import pytest
import torch
from helpers_train import TINY_MODEL, job, make_world, state_dict, tiny_train

from adaptkit.adapt.modes import START_AUTO, START_FRESH, START_WARM, parse_init, resolve_mode
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import CompareReport
from adaptkit.evaluate.probe import fitting_groups, probe_groups
from adaptkit.evaluate.settings import EvalSettings
from adaptkit.pipeline import outcome_warning
from adaptkit.plugins import get_registry
from adaptkit.share.card import model_card
from adaptkit.train import FinetuneJob, finetune, pretrain


def test_init_is_spelled_through_the_modes_table():
    assert resolve_mode().start == START_AUTO and resolve_mode().init == "auto"  # the default
    assert resolve_mode("lora").init == "fresh" and resolve_mode("full").init == "fresh"
    assert resolve_mode("warm").init == "warm:auto"  # the warm mode, as before
    assert resolve_mode(init="fresh").start == START_FRESH
    warm = resolve_mode(init="warm:quadruped_locomotion")
    assert (warm.start, warm.warm_start, warm.mode.name) == (START_WARM, "quadruped_locomotion",
                                                            "frozen")  # fmt: skip
    assert resolve_mode("lora", init="auto").init == "auto"
    assert resolve_mode(warm_start="go1").init == "warm:go1"  # the older spelling
    assert parse_init("warm") == (START_WARM, "auto")
    with pytest.raises(AdaptkitError, match="expected auto, fresh or warm:GROUP"):
        resolve_mode(init="hot")
    with pytest.raises(AdaptkitError, match="contradicts --warm-start"):
        resolve_mode(init="fresh", warm_start="go1")
    # a job keeps its choice through every re-resolution
    spec = get_registry().robot("minicheetah")
    j = FinetuneJob(robot=spec, init="warm:quadruped_locomotion")
    assert j.warm_start == "quadruped_locomotion" and j.choice.init == j.init


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("init")
    paths = make_world(root)
    base = pretrain(
        [paths["pretrain_config"]], paths["data"], "base", root / "models", TINY_MODEL,
        tiny_train(epochs=1),
    )  # fmt: skip
    return root, paths, base


def test_the_probe_runs_every_fitting_group_against_standing_still(world):
    _root, paths, base = world
    robot = get_registry().robot("minicheetah")
    ckpt = load_checkpoint(base.run_dir)
    assert fitting_groups(ckpt, robot) == ["quadruped_locomotion"]  # the 7/3 arm group: no
    quick = EvalSettings(num_envs=2, episodes=1, episode_length=20, seed=555)
    probe = probe_groups(ckpt, robot, quick, data_dir=paths["data"])
    assert set(probe.groups) == {"quadruped_locomotion"} and probe.best == "quadruped_locomotion"
    beats = probe.groups["quadruped_locomotion"] > probe.stand
    assert probe.init == ("warm:quadruped_locomotion" if beats else "fresh")
    record = probe.record()
    assert record["asked"] == "auto" and record["settings"]["seed"] == 555
    # the same envs and seed give the same figures (the decision is reproducible)
    assert probe_groups(ckpt, robot, quick, data_dir=paths["data"]).groups == probe.groups


@pytest.mark.parametrize("init", ["fresh", "warm:quadruped_locomotion"])
def test_the_choice_is_recorded_and_old_groups_stay_identical(world, init):
    root, paths, base = world
    robot = get_registry().robot("minicheetah")
    record = {"asked": "auto", "groups": {"quadruped_locomotion": 1.5}, "stand": 1.0}
    run = finetune(
        job(robot, base.run_dir, paths["data"], f"init-{init[:4]}", root / "runs",
            tiny_train(epochs=1), init=init, init_record=record)
    )  # fmt: skip
    assert run.frozen_verified
    config = json.loads((run.last_checkpoint / "config.json").read_text())
    assert config["adaptkit_init"]["init"] == init and config["adaptkit_init"]["asked"] == "auto"
    old = state_dict(base.last_checkpoint)
    new = state_dict(run.checkpoints[0])  # 0000_epoch: as the new group started
    assert all(torch.equal(new[k], v) for k, v in old.items())  # the base, bit for bit
    group = "minicheetah_locomotion"
    copied = [k for k in new if f".{group}." in k and torch.equal(
        new[k], old.get(k.replace(group, "quadruped_locomotion"), torch.empty(0)))]  # fmt: skip
    assert bool(copied) == init.startswith("warm")
    card = model_card(run.last_checkpoint, "me/mc", "checkpoint", [])
    assert f"- New group started: `{init}` (asked: `auto`)" in card
    assert "`quadruped_locomotion` 1.50 vs standing still 1.00" in card


def test_a_job_nothing_probed_starts_fresh_and_says_so(world):
    root, paths, base = world
    robot = get_registry().robot("minicheetah")
    run = finetune(
        job(robot, base.run_dir, paths["data"], "unprobed", root / "runs", tiny_train(epochs=1))
    )
    config = json.loads((run.last_checkpoint / "config.json").read_text())
    assert config["adaptkit_init"] == {"init": "fresh", "asked": "auto"}
    assert any("no zero-shot probe chose an old group" in n for n in run.notes)


def _report(zs: float, ft: float, demo: float = 20.0, zs_return: float = 15.0) -> CompareReport:
    rows = [
        {"label": "demonstrator", "normalised_score": 1.0, "mean_return": demo},
        {"label": "stand", "normalised_score": 0.0, "mean_return": 10.0},
        {"label": "zero-shot", "normalised_score": zs, "mean_return": zs_return,
         "group": "quadruped_locomotion"},
        {"label": "fine-tuned", "normalised_score": ft, "mean_return": 10.0 + 10 * ft},
    ]  # fmt: skip
    return CompareReport("go1x", rows, {})


def test_a_fine_tune_below_zero_shot_or_standing_is_said_with_the_next_command():
    spec = get_registry().robot("minicheetah")
    fresh = FinetuneJob(robot=spec, init="fresh", name="mc")
    line = outcome_warning(_report(zs=0.85, ft=0.28), fresh)
    assert "below zero-shot (0.85)" in line and "started fresh" in line
    assert "`adaptkit finetune minicheetah --init warm:quadruped_locomotion --name mc_warm`" in line
    warm = FinetuneJob(robot=spec, init="warm:quadruped_locomotion")
    line = outcome_warning(_report(zs=0.95, ft=0.80, demo=18.0, zs_return=19.0), warm)
    assert "walks better than the robot's demonstrator" in line and "tune-robot" in line
    line = outcome_warning(_report(zs=0.95, ft=0.80, demo=20.0, zs_return=19.0), warm)
    assert "moved the warm-started group away" in line and "--epochs 3" in line
    assert outcome_warning(_report(zs=0.85, ft=0.84), warm) is None  # within 0.02
    line = outcome_warning(_report(zs=-0.5, ft=-0.2), warm)
    assert "below standing still" in line and "adaptkit demonstrator minicheetah" in line
    assert "\n" not in line
