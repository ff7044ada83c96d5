"""add_group, freeze modes, frozen-weight verification, parameter report, groups/inspect CLI."""

from __future__ import annotations

import json

import pytest
import torch
from helpers_model import (
    make_spec,
    random_batch,
    tiny_checkpoint,
    tiny_meta,
    tiny_model,
    tiny_stats,
)
from typer.testing import CliRunner

from adaptkit.adapt.surgery import (
    add_group,
    freeze,
    frozen_fingerprint,
    parameter_report,
    trainable_parameters,
    verify_against_checkpoint,
    verify_frozen,
)
from adaptkit.ckpt.checkpoint import fingerprint, save_checkpoint
from adaptkit.ckpt.load import load_checkpoint
from adaptkit.cli import app
from adaptkit.errors import AdaptkitError
from adaptkit.meta import CheckpointMeta, Stats
from adaptkit.model import GroupDims, Vintix, action_loss

NEW = "mini_locomotion"


def _train(model: Vintix, group: str, steps: int = 3) -> None:
    opt = torch.optim.AdamW(trainable_parameters(model), lr=1e-2, weight_decay=0.1)
    model.train()
    for i in range(steps):
        x = random_batch(model.groups[group], b=2, t=8, seed=i)
        pred = model(group, x["obs"], x["prev_act"], x["prev_rew"], x["step_num"])
        opt.zero_grad()
        action_loss(pred, x["target"]).backward()
        opt.step()
    model.eval()


def test_add_group_freeze_train_keeps_old_weights_bit_identical(tmp_path):
    base = tiny_checkpoint(tmp_path)
    ckpt = load_checkpoint(base)
    model, meta = ckpt.model, ckpt.meta
    spec = make_spec("mini")
    add_group(model, meta, spec, tiny_stats(45, 12))
    verify_against_checkpoint(model, base)  # surgery re-initialised nothing (HPT lesson)
    assert meta[spec.task].group == NEW
    assert meta.task2group[spec.task] == NEW

    result = freeze(model, "transformer", new_group=NEW)
    assert result.trainable and all(NEW in n for n in result.trainable)
    assert "encoder.prev_acs_padding" in result.frozen
    new_before = fingerprint(model, result.trainable)
    before = frozen_fingerprint(model)
    _train(model, NEW)
    verify_frozen(before, model)
    verify_against_checkpoint(model, base)
    new_after = fingerprint(model, result.trainable)
    assert all(new_after[k] != new_before[k] for k in new_before)  # every new tensor trained

    out = save_checkpoint(tmp_path / "ft" / "0001_epoch", model, meta, ckpt.config.extra)
    reloaded = load_checkpoint(out)
    verify_frozen(before, reloaded.model)  # the saved checkpoint's old weights equal the base
    verify_against_checkpoint(reloaded.model, base)
    assert reloaded.groups[NEW] == GroupDims(45, 12)


def test_full_finetune_is_caught_by_verify_frozen(tmp_path):
    model = tiny_model()
    add_group(model, CheckpointMeta(), make_spec("mini"), tiny_stats(45, 12))
    before = fingerprint(model, [n for n, _ in model.named_parameters() if NEW not in n])
    result = freeze(model, "none")
    assert result.n_trainable == result.n_total
    _train(model, NEW, steps=1)
    with pytest.raises(
        AdaptkitError, match=r"not bit-identical: \d+ changed \(encoder.prev_acs_padding"
    ):
        verify_frozen(before, model)


def test_one_spelling_for_freeze_and_patterns_adjust():
    model = tiny_model()
    add_group(model, CheckpointMeta(), make_spec("mini"), tiny_stats(45, 12))
    a = freeze(model, "transformer", new_group=NEW)
    assert a.mode == "transformer" and all(NEW in n for n in a.trainable)
    with pytest.raises(AdaptkitError, match="expected one of transformer, none"):
        freeze(model, "new-group-only", new_group=NEW)  # the old synonym is gone
    c = freeze(
        model, "transformer", NEW, patterns=["encoder.prev_*", f"!head.acs_decoders.{NEW}.*"]
    )
    assert "encoder.prev_acs_padding" in c.trainable
    assert not any(n.startswith("head.") for n in c.trainable)
    assert c.pattern_matches == {"encoder.prev_*": 2, f"!head.acs_decoders.{NEW}.*": 8}
    assert len(trainable_parameters(model)) == len(c.trainable)


@pytest.mark.parametrize("pattern", ["transformer", "BlockTransformer_0", "!nothing.*"])
def test_pattern_matching_nothing_is_an_error(pattern):
    model = tiny_model()
    with pytest.raises(AdaptkitError, match=r"matches no parameter .*transformer\.blocks\.\*"):
        freeze(model, "none", patterns=[pattern])


def test_freeze_argument_errors():
    model = tiny_model()
    with pytest.raises(AdaptkitError, match="one of"):
        freeze(model, "head_only")
    with pytest.raises(AdaptkitError, match="needs the new group"):
        freeze(model, "transformer")
    with pytest.raises(AdaptkitError, match="no group 'ghost'"):
        freeze(model, "transformer", new_group="ghost")


def test_add_group_refusals_replace_and_warm_start():
    model = tiny_model()
    meta = CheckpointMeta()
    shared = make_spec("go1", group="quadruped_locomotion")
    with pytest.raises(AdaptkitError, match="already exists"):
        add_group(model, meta, shared, tiny_stats(45, 12))
    meta_shared = tiny_meta(tasks={"go2_walking": "quadruped_locomotion"})
    with pytest.raises(AdaptkitError, match=r"shared with tasks \['go2_walking'\]"):
        add_group(model, meta_shared, shared, tiny_stats(45, 12), replace=True)
    short = Stats(**{**tiny_stats(45, 12).to_dict(), "acs_mean": [0.0, 0.0]})
    with pytest.raises(AdaptkitError, match="'acs_mean' has 2 values, expected 12"):
        add_group(model, meta, make_spec("mini"), short)
    with pytest.raises(AdaptkitError, match="obs/act 7/3"):
        add_group(model, meta, make_spec("mini"), tiny_stats(45, 12), warm_start_from="arm")
    assert NEW not in model.groups  # nothing half-done after a refusal

    add_group(
        model, meta, make_spec("mini"), tiny_stats(45, 12), warm_start_from="quadruped_locomotion"
    )
    ref = dict(model.named_parameters())
    for name, p in model.named_parameters():
        if NEW in name:
            assert torch.equal(p, ref[name.replace(NEW, "quadruped_locomotion")])
    old = fingerprint(model, [n for n in model.state_dict() if NEW in n])
    add_group(model, meta, make_spec("mini"), tiny_stats(45, 12), replace=True)  # fresh init
    assert fingerprint(model, list(old)) != old


def test_add_group_follows_device_and_dtype():
    model = tiny_model().to(torch.float64)
    add_group(model, CheckpointMeta(), make_spec("mini", obs_dim=20, act_dim=5), tiny_stats(20, 5))
    assert {p.dtype for p in model.parameters()} == {torch.float64}
    assert model.groups[NEW] == GroupDims(20, 5)


def test_parameter_report():
    model = tiny_model()
    freeze(model, "transformer", new_group="arm")
    rows = {r["module"]: r for r in parameter_report(model)}
    assert set(rows) == {
        "transformer",
        "shared paddings",
        "group quadruped_locomotion",
        "group arm",
        "total",
    }
    assert rows["total"]["params"] == sum(p.numel() for p in model.parameters())
    assert rows["group arm"]["trainable_pct"] == 100.0
    assert rows["transformer"]["trainable"] == 0
    assert rows["total"]["trainable"] == rows["group arm"]["params"]


def test_groups_and_inspect_cli(tmp_path):
    path = tiny_checkpoint(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["groups", str(path.parent), "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["group"]: r for r in json.loads(res.stdout)}
    assert rows["arm"]["tasks"] == ["reach"] and rows["arm"]["obs_dim"] == 7
    assert rows["quadruped_locomotion"]["act_dim"] == 12 and rows["arm"]["params"] > 0
    res = runner.invoke(app, ["groups", str(path)])
    assert res.exit_code == 0 and "quadruped_locomotion" in res.stdout
    res = runner.invoke(app, ["inspect", str(path), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["model_config"]["hidden_dim"] == 32 and len(info["fingerprint"]) == 64
    assert info["parameters"][-1]["module"] == "total"
    assert info["other_config"]["lr"] == 3e-4
    res = runner.invoke(app, ["inspect", str(path)])
    assert res.exit_code == 0 and "fingerprint" in res.stdout
    res = runner.invoke(app, ["groups", str(tmp_path / "missing")])
    assert res.exit_code == 1 and "error:" in res.output and "no such file" in res.output
