"""Old robots stay as they were: adding (and training) a minicheetah group leaves go1 untouched."""

from __future__ import annotations

import numpy as np
import torch
from helpers_model import reference_config, tiny_meta, tiny_model, tiny_stats

from adaptkit.adapt.surgery import add_group
from adaptkit.ckpt.checkpoint import save_checkpoint
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.evaluate import EvalSettings, evaluate
from adaptkit.model import GroupDims

QUAD = {"quadruped_locomotion": GroupDims(45, 12)}
TASKS = {"go1_walking_ad": "quadruped_locomotion", "go2_walking_ad": "quadruped_locomotion"}


def test_go1_identical_before_and_after_minicheetah_group(registry, tmp_path):
    model = tiny_model(groups=QUAD)
    base = save_checkpoint(
        tmp_path / "base" / "0001_epoch", model, tiny_meta(QUAD, TASKS), reference_config(model)
    )
    ckpt = load_checkpoint(base)
    mc = registry.robot("minicheetah")
    add_group(ckpt.model, ckpt.meta, mc, tiny_stats(45, 12, seed=9))
    with torch.no_grad():  # stand-in for fine-tuning: the new group's weights move
        for m in ckpt.model.group_modules(mc.group):
            for p in m.parameters():
                p.add_(0.1 * torch.randn_like(p))
    tuned = save_checkpoint(
        tmp_path / "ft" / "0001_epoch", ckpt.model, ckpt.meta, ckpt.config.extra
    )

    go1 = registry.robot("go1")
    kw = dict(settings=EvalSettings(num_envs=3, episodes=2, episode_length=12, seed=11))
    before = evaluate(base, go1, out_dir=tmp_path / "before", record_actions=True, **kw)
    after = evaluate(tuned, go1, out_dir=tmp_path / "after", record_actions=True, **kw)
    assert before.summary["mode"] == after.summary["mode"] == "native"
    np.testing.assert_array_equal(before.result.actions, after.result.actions)
    assert before.episodes == after.episodes  # returns, lengths, falls, speeds: bit-identical
    assert (tmp_path / "before" / "episodes.csv").read_text() == (
        tmp_path / "after" / "episodes.csv"
    ).read_text()
    # and the new robot runs natively through its own group in the tuned checkpoint
    mc_run = evaluate(tuned, mc, EvalSettings(num_envs=2, episodes=1, episode_length=5))
    assert (mc_run.summary["mode"], mc_run.summary["group"]) == ("native", mc.group)
