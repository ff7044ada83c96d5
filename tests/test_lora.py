"""Group-conditional LoRA: it changes only the new group's outputs, the old groups stay
bit-identical (training forward, mixed batches and the KV-cached step), and it survives the full
checkpoint, the adapter and `merge`. Also the warm start of a new group."""

from __future__ import annotations

import pytest
import torch
from helpers_model import TINY_GROUPS, random_batch, tiny_model
from helpers_train import TINY_MODEL, job, make_world, tiny_train
from typer.testing import CliRunner

from adaptkit.adapt.surgery import freeze, warm_start_group
from adaptkit.ckpt.load import load_adapter, load_checkpoint, merge_adapter
from adaptkit.cli import app
from adaptkit.errors import AdaptkitError
from adaptkit.model import GroupDims
from adaptkit.plugins import get_registry
from adaptkit.train import finetune, pretrain

MC_GROUP = "minicheetah_locomotion"


def _run(model, group, batch):
    return model(group, batch["obs"], batch["prev_act"], batch["prev_rew"], batch["step_num"])


def _trained_lora(model, group):
    """Give the LoRA non-zero B matrices (a fresh LoRA is a no-op by construction)."""
    with torch.no_grad():
        for name, p in model.lora[group].named_parameters():
            if name.endswith("lora_B"):
                p.normal_(0, 0.5)


def test_lora_changes_only_its_group():
    model = tiny_model()
    model.add_group_modules("newbot", GroupDims(45, 12))
    quad = random_batch(TINY_GROUPS["quadruped_locomotion"], seed=1)
    new = random_batch(GroupDims(45, 12), seed=2)
    before_quad = _run(model, "quadruped_locomotion", quad)
    before_new = _run(model, "newbot", new)
    model.add_lora("newbot", rank=2, alpha=4.0)
    assert torch.equal(_run(model, "newbot", new), before_new)  # B = 0: no change yet
    _trained_lora(model, "newbot")
    after_new = _run(model, "newbot", new)
    assert not torch.allclose(after_new, before_new)
    # the old group: bit-identical, alone and in a mixed batch with LoRA rows
    assert torch.equal(_run(model, "quadruped_locomotion", quad), before_quad)
    mixed = {k: torch.cat([quad[k], new[k]]) for k in quad}
    out = model.forward_mixed(["quadruped_locomotion"] * 2 + ["newbot"] * 2, **{
        k: v for k, v in mixed.items() if k != "target"
    })  # fmt: skip
    assert torch.equal(out[:2], before_quad)
    assert torch.allclose(out[2:], after_new, atol=1e-5)
    # the KV-cached step sees the LoRA too, and leaves the old group alone
    for group, batch, want in (("newbot", new, after_new), ("quadruped_locomotion", quad, None)):
        cache = model.new_cache(2)
        steps = [
            model.step(
                group, cache, *(batch[k][:, t] for k in ("obs", "prev_act", "prev_rew", "step_num"))
            )
            for t in range(batch["obs"].shape[1])
        ]
        got = torch.stack(steps, 1)
        ref = want if want is not None else before_quad
        assert torch.allclose(got, ref, atol=1e-4)


def test_lora_belongs_to_the_group():
    model = tiny_model()
    model.add_group_modules("newbot", GroupDims(45, 12))
    model.add_lora("newbot", rank=2, alpha=2.0)
    frozen = freeze(model, "transformer", new_group="newbot")
    lora = [n for n in frozen.trainable if n.startswith("lora.")]
    assert lora and all(n.startswith("lora.newbot.") for n in lora)
    assert not any(n.startswith("transformer.") for n in frozen.trainable)
    with pytest.raises(AdaptkitError, match="already has one"):
        model.add_lora("newbot", rank=2, alpha=2.0)
    model.remove_group("newbot")
    assert not any(k.startswith("lora.") for k in model.state_dict())


def test_warm_start_copies_matching_shapes():
    model = tiny_model()
    model.add_group_modules("newbot", GroupDims(45, 12))  # same dims as quadruped_locomotion
    ws = warm_start_group(model, "newbot", "auto")
    assert ws.source == "quadruped_locomotion" and not ws.skipped
    sd = model.state_dict()
    for name in ws.copied:
        src = name.replace(".newbot.", ".quadruped_locomotion.")
        assert torch.equal(sd[name], sd[src])
    model.add_group_modules("otherbot", GroupDims(10, 3))  # no group with these dims
    ws = warm_start_group(model, "otherbot", "arm")
    assert ws.skipped and ws.copied  # the decoder's hidden layers fit, the input layers do not
    assert "shapes match" in ws.describe()
    with pytest.raises(AdaptkitError, match="not an old group"):
        warm_start_group(model, "otherbot", "nope")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("lora")
    paths = make_world(root)
    base = pretrain(
        [paths["pretrain_config"]], paths["data"], "base", root / "models", TINY_MODEL,
        tiny_train(epochs=1),
    )  # fmt: skip
    return {**paths, "root": root, "base": base.run_dir}


def test_lora_finetune_roundtrip_adapter_and_merge(world, tmp_path):
    robot = get_registry().robot("minicheetah")
    result = finetune(
        job(
            robot,
            world["base"],
            world["data"],
            "lora",
            tmp_path,
            tiny_train(epochs=2),
            save="full",
            lora_rank=2,
        )
    )
    assert result.frozen_verified  # trunk and old group bit-identical to the base
    final = result.checkpoints[-1]
    ckpt = load_checkpoint(final)
    assert ckpt.meta[robot.task].extra["lora"] == {"rank": 2, "alpha": 4.0}
    lora_keys = [k for k in ckpt.model.state_dict() if k.startswith(f"lora.{MC_GROUP}.")]
    assert lora_keys
    b = ckpt.model.state_dict()[next(k for k in lora_keys if k.endswith("lora_B"))]
    assert b.abs().sum() > 0  # it trained
    batch = random_batch(GroupDims(45, 12), seed=3)
    want = _run(ckpt.model.eval(), MC_GROUP, batch)
    base = load_checkpoint(world["base"])
    old = _run(base.model.eval(), "quadruped_locomotion", batch)
    assert torch.equal(_run(ckpt.model, "quadruped_locomotion", batch), old)
    # the adapter beside the full checkpoint carries the LoRA tensors
    via_adapter = load_adapter(world["base"], final)
    assert torch.equal(_run(via_adapter.model.eval(), MC_GROUP, batch), want)
    assert torch.equal(_run(via_adapter.model, "quadruped_locomotion", batch), old)
    merged = load_checkpoint(merge_adapter(final, tmp_path / "merged", base=world["base"]))
    assert torch.equal(_run(merged.model.eval(), MC_GROUP, batch), want)
    # the command says the merged LoRA group is not in the reference layout
    res = CliRunner().invoke(
        app,
        ["merge", str(final), "--out", str(tmp_path / "merged_cli"), "--base", str(world["base"])],
    )
    assert res.exit_code == 0, res.output
    assert f"LoRA tensors stay as lora.{MC_GROUP}.*" in " ".join(res.output.split())
