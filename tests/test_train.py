"""pretrain → finetune → reload; frozen weights; resume; refusals. Tiny model, tiny data."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers_train import TINY_MODEL, job, make_world, state_dict, tiny_train

from adaptkit.ckpt.load import load_adapter, load_checkpoint
from adaptkit.errors import AdaptkitError
from adaptkit.model import Vintix
from adaptkit.plugins import get_registry
from adaptkit.progress import Reporter
from adaptkit.train import METRICS_FILE, finetune, pretrain

MC_GROUP = "minicheetah_locomotion"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    paths = make_world(root)
    torch.set_num_threads(2)
    result = pretrain(
        [paths["pretrain_config"]], paths["data"], "base", root / "models", TINY_MODEL,
        tiny_train(epochs=2),
    )  # fmt: skip
    return {**paths, "root": root, "base": result.run_dir, "pretrain": result}


def _robot():
    return get_registry().robot("minicheetah")


def test_pretrain_writes_epochs_and_learns(world):
    r = world["pretrain"]
    assert [p.name for p in r.checkpoints] == ["0000_epoch", "0001_epoch", "0002_epoch"]
    assert r.epoch_losses[-1] < r.epoch_losses[0]
    ck = load_checkpoint(world["base"])
    assert ck.path.name == "0002_epoch"
    assert set(ck.model.groups) == {"quadruped_locomotion"}
    cfg = json.loads((ck.path / "config.json").read_text())
    assert cfg["betas"] == [0.9, 0.99] and cfg["transformer_depth"] == 1
    assert len(ck.meta["go1_walking"].stats.obs_mean) == 45


def test_finetune_then_reload(world, tmp_path):
    r = finetune(job(_robot(), world["base"], world["data"], "mc", tmp_path, tiny_train(epochs=3)))
    assert r.frozen_verified is True
    assert r.epoch_losses[-1] < r.epoch_losses[0]
    assert any("computed" in n for n in r.notes)  # no stats anywhere: computed, and said so
    base = state_dict(world["base"] / "0002_epoch")
    start, final = state_dict(r.checkpoints[0]), state_dict(r.checkpoints[-1])
    new = Vintix.group_prefixes(MC_GROUP)
    for k, v in base.items():  # transformer, old group, paddings: bit-identical
        assert torch.equal(final[k], v), k
    changed = [k for k in final if k.startswith(new) and not torch.equal(final[k], start[k])]
    assert changed, "the new group did not train"

    ck = load_checkpoint(r.run_dir)
    assert ck.path == r.checkpoints[-1]
    assert set(ck.model.groups) == {"quadruped_locomotion", MC_GROUP}
    assert ck.meta["minicheetah_walking_ad"].group == MC_GROUP
    # the adapter files beside the full checkpoint + the base give the same weights
    assert r.adapter == r.checkpoints[-1]
    merged = load_adapter(world["base"], r.adapter)
    for k, v in merged.model.state_dict().items():
        assert torch.equal(v, final[k]), k
    records = [json.loads(x) for x in (r.run_dir / METRICS_FILE).read_text().splitlines()]
    steps = [x for x in records if "event" not in x]  # the rest: epoch summaries
    assert len(steps) == r.steps and {"step", "loss", "lr", "tokens_per_s"} <= set(steps[0])


class _Kill(Exception):
    pass


class _KillAfterEpoch2(Reporter):
    def event(self, name, data):
        if name == "checkpoint" and data["epoch"] == 2:
            raise _Kill


def test_resume_equals_uninterrupted(world, tmp_path):
    def run(name, **kw):
        return job(
            _robot(), world["base"], world["data"], name, tmp_path, tiny_train(epochs=3), **kw
        )

    full = finetune(run("full"))
    with pytest.raises(_Kill):
        finetune(run("cut"), _KillAfterEpoch2())
    assert not (tmp_path / "cut" / "0003_epoch").exists()
    resumed = finetune(run("cut", resume=True))
    assert resumed.resumed_from.name == "0002_epoch"
    assert resumed.frozen_verified is True
    a, b = state_dict(full.checkpoints[-1]), state_dict(resumed.checkpoints[-1])
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed.epoch_losses == full.epoch_losses
    metrics = (tmp_path / "cut" / METRICS_FILE).read_text().splitlines()
    steps = [json.loads(m) for m in metrics]
    assert [r["step"] for r in steps if "event" not in r] == list(range(1, full.steps + 1))


def test_refuses_existing_group_and_existing_run(world, tmp_path):
    r = finetune(job(_robot(), world["base"], world["data"], "mc", tmp_path, tiny_train(epochs=1)))
    before = {p: p.read_bytes() for p in r.run_dir.rglob("*") if p.is_file()}
    # the fine-tuned checkpoint already has the Mini Cheetah group: never overwrite it
    with pytest.raises(AdaptkitError, match="already has group 'minicheetah_locomotion'"):
        finetune(job(_robot(), r.run_dir, world["data"], "again", tmp_path))
    assert not (tmp_path / "again").exists()
    # the same run name without --resume would clobber a finished run
    with pytest.raises(AdaptkitError, match="--resume"):
        finetune(job(_robot(), world["base"], world["data"], "mc", tmp_path))
    after = {p: p.read_bytes() for p in r.run_dir.rglob("*") if p.is_file()}
    assert before == after


def test_clear_errors(world, tmp_path):
    robot = _robot()
    with pytest.raises(AdaptkitError, match="no such file"):
        finetune(job(robot, tmp_path / "nope", world["data"], "x", tmp_path))
    with pytest.raises(AdaptkitError, match="does not exist"):
        finetune(job(robot, world["base"], tmp_path / "empty", "x", tmp_path))
    # data with the wrong widths for the robot (7/3 instead of 45/12)
    bad = tmp_path / "bad"
    shutil.copytree(world["data"] / "arm", bad / "minicheetah_trajectories")
    with pytest.raises(AdaptkitError, match=r"observations of 7 dims fit no observation layout"):
        finetune(job(robot, world["base"], bad, "x", tmp_path))
    assert not (tmp_path / "x").exists()


def test_bf16_and_grad_accum_run(world, tmp_path):
    cfg = tiny_train(epochs=1, precision="bf16", grad_accum=2, batch_size=4)
    r = finetune(job(_robot(), world["base"], world["data"], "bf", tmp_path, cfg))
    assert r.frozen_verified and r.steps > 0


def test_full_finetune_mode(world, tmp_path):
    cfg = tiny_train(epochs=1)
    r = finetune(job(_robot(), world["base"], world["data"], "full", tmp_path, cfg, freeze="none"))
    assert r.frozen_verified is None
    base, final = state_dict(world["base"] / "0002_epoch"), state_dict(r.checkpoints[-1])
    assert not torch.equal(base["transformer.ln_f.weight"], final["transformer.ln_f.weight"])
