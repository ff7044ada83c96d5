"""The main job end to end at toy sizes: `adaptkit finetune minicheetah` on an empty folder.

Builds the base model from Go1 (collect → pretrain), collects Mini Cheetah histories, adds the
group, freezes, fine-tunes, compares — then checks what a user relies on: cached artefacts,
frozen weights, old robots unchanged, and clear errors for what the user named explicitly.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from adaptkit.bootstrap.recipe import Recipe
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.cli import app
from adaptkit.evaluate import EvalSettings, evaluate
from adaptkit.pipeline import adapt
from adaptkit.plugins import get_registry
from adaptkit.train import FinetuneJob, TrainConfig

runner = CliRunner()
TINY = Recipe.tiny()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    mp = pytest.MonkeyPatch()
    mp.chdir(root)
    result = runner.invoke(app, ["finetune", "minicheetah", "--recipe", "tiny"])
    yield root, result
    mp.undo()


def test_fresh_folder_runs_the_whole_story(demo):
    root, result = demo
    out = result.output
    assert result.exit_code == 0, out
    assert "no base model at models/base" in out
    assert "collecting" in out and "minicheetah" in out
    assert "frozen weights verified" in out
    marker = json.loads((root / "models" / "base" / "provenance.json").read_text())
    assert marker["complete"] is True and len(marker["data_sha256"]) == 64
    ckpt = root / "models" / "minicheetah_finetune" / f"{TINY.finetune_epochs:04d}_epoch"
    assert (ckpt / "adapter_config.json").is_file() and (ckpt / "model.pth").is_file()
    table = json.loads(
        (root / "models" / "minicheetah_finetune" / "compare" / "compare.json").read_text()
    )["table"]
    labels = ["demonstrator", "stand", "zero-shot", "in context", "fine-tuned"]
    assert [r["label"] for r in table] == labels
    rows = {r["label"]: r for r in table}
    assert rows["zero-shot"]["mode"] == "zero-shot" and rows["fine-tuned"]["mode"] == "native"
    # the shipped in-context base on the robot, through its family group, no gradient step
    assert rows["in context"]["mode"] == "zero-shot"
    assert rows["in context"]["group"] == "quadruped_family_locomotion"
    assert rows["fine-tuned"]["num_episodes"] == TINY.eval_envs * TINY.eval_episodes


def test_new_group_added_old_groups_kept(demo):
    root, _ = demo
    base = load_checkpoint(root / "models" / "base")
    tuned = load_checkpoint(root / "models" / "minicheetah_finetune")
    assert set(tuned.groups) == set(base.groups) | {"minicheetah_locomotion"}
    new_keys = [k for k in tuned.model.state_dict() if "minicheetah_locomotion" in k]
    assert new_keys
    base_sd, tuned_sd = base.model.state_dict(), tuned.model.state_dict()
    for key, value in base_sd.items():  # everything old is bit-identical
        assert tuned_sd[key].equal(value), key
    task = tuned.meta["minicheetah_walking_ad"]
    assert task.group == "minicheetah_locomotion" and len(task.stats.obs_mean) == 45


def test_old_robot_behaves_identically(demo):
    root, _ = demo
    go1 = get_registry().robot("go1")
    settings = EvalSettings(num_envs=2, episodes=1, seed=5, episode_length=60)
    before = evaluate(root / "models" / "base", go1, settings, out_dir=root / "ev_base")
    after = evaluate(
        root / "models" / "minicheetah_finetune", go1, settings, out_dir=root / "ev_ft"
    )
    assert before.episodes == after.episodes
    assert (root / "ev_base" / "episodes.csv").read_text() == (
        root / "ev_ft" / "episodes.csv"
    ).read_text()


def test_second_run_reuses_the_cache(demo):
    assert demo[1].exit_code == 0  # runs in the demo folder, after the first run
    robot = get_registry().robot("minicheetah")
    train = TrainConfig.for_finetune("transformer", epochs=1, precision=TINY.precision)
    job = FinetuneJob(robot, name="again", train=train)
    res = adapt(job, recipe=TINY, evaluate=False)
    assert res.notes == []  # nothing collected or built again
    assert res.finetune.frozen_verified is True


def test_named_inputs_must_exist(demo):
    root, _ = demo
    r = runner.invoke(app, ["finetune", "minicheetah", "--data-dir", "nope", "--no-eval"])
    assert r.exit_code == 1 and "--data-dir nope: does not exist" in r.output
    r = runner.invoke(
        app, ["finetune", "minicheetah", "--pretrained-path", "x", "--name", "y", "--no-eval"]
    )
    assert r.exit_code == 1 and "checkpoint x: no such file" in r.output
    assert "Traceback" not in r.output and not (root / "models" / "y").exists()
    # the same run name again: refused, the earlier run untouched
    before = sorted(p.name for p in (root / "models" / "minicheetah_finetune").iterdir())
    r = runner.invoke(app, ["finetune", "minicheetah", "--no-eval"])
    assert r.exit_code == 1 and "pass --resume" in r.output
    assert sorted(p.name for p in (root / "models" / "minicheetah_finetune").iterdir()) == before
    assert not (root / "nope").exists()
