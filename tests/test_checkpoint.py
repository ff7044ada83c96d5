"""Checkpoint layout, strict loading with readable reports, metadata validation, adapters."""

from __future__ import annotations

import json

import pytest
import torch
from helpers_model import (
    TINY_GROUPS,
    make_spec,
    random_batch,
    reference_config,
    tiny_checkpoint,
    tiny_config,
    tiny_meta,
    tiny_metadata,
    tiny_model,
    tiny_stats,
    write_reference_checkpoint,
)

from adaptkit.adapt.surgery import add_group, robot_task_meta
from adaptkit.ckpt.adapter import BaseRef, save_adapter
from adaptkit.ckpt.checkpoint import (
    checkpoint_fingerprint,
    fingerprint,
    load_training_state,
    save_checkpoint,
)
from adaptkit.ckpt.layout import epoch_dir, latest_checkpoint
from adaptkit.ckpt.load import load_adapter, load_checkpoint
from adaptkit.errors import AdaptkitError
from adaptkit.meta import CheckpointMeta, Stats
from adaptkit.model import GroupDims, Vintix


def test_reference_layout_loads_strictly_from_run_dir(tmp_path):
    model = tiny_model()
    meta = tiny_metadata()
    run = tmp_path / "runs" / "pretrain"
    write_reference_checkpoint(run / "0000_epoch", tiny_model(seed=9), meta)
    write_reference_checkpoint(run / "0002_epoch", model, meta)
    (run / "0003_epoch").mkdir()  # incomplete: ignored
    assert epoch_dir(tmp_path / "runs", "pretrain", 2) == run / "0002_epoch"
    assert latest_checkpoint(run) == run / "0002_epoch"
    ckpt = load_checkpoint(run)
    assert ckpt.path == run / "0002_epoch"
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[k], v)
    assert ckpt.groups == TINY_GROUPS
    assert ckpt.meta.task2group == {t: e["group_name"] for t, e in meta.items()}
    assert ckpt.config.extra["dataset_config_paths"] == ["configs/pretrain.yaml"]
    assert ckpt.config.token_order == "obs,act,rew"  # absent from the reference config → default
    assert ckpt.meta["reach"].extra["extra_key"] == "passes through"
    assert ckpt.meta.to_json() == meta  # the reference entries round-trip exactly
    assert ckpt.meta.group_tasks() == {
        "quadruped_locomotion": ["go2_walking", "a1_walking"],
        "arm": ["reach"],
    }


def test_save_load_round_trip_is_exact(tmp_path):
    model = tiny_model(seed=3)
    meta = tiny_meta()
    opt = torch.optim.AdamW(model.parameters())
    x = random_batch(TINY_GROUPS["arm"])
    model("arm", x["obs"], x["prev_act"], x["prev_rew"], x["step_num"]).sum().backward()
    opt.step()
    cfg = {**reference_config(model), "lr": 1e-4}
    path = save_checkpoint(
        tmp_path / "ft" / "0001_epoch",
        model,
        meta,
        cfg,
        {"optimizer": opt.state_dict(), "epoch": 1},
    )
    ckpt = load_checkpoint(path)
    assert fingerprint(ckpt.model) == fingerprint(model)
    assert ckpt.fingerprint == checkpoint_fingerprint(path)
    assert ckpt.meta.to_json() == meta.to_json()
    assert ckpt.config.to_dict() == {
        **json.loads((path / "config.json").read_text()),
        "token_order": "obs,act,rew",
    }
    assert ckpt.config.extra["lr"] == 1e-4
    assert ckpt.config.model_dict() == model.config.model_dict()
    state = load_training_state(path)
    assert state["epoch"] == 1 and state["optimizer"]["state"]
    args = (x["obs"], x["prev_act"], x["prev_rew"], x["step_num"])
    assert torch.equal(ckpt.model("arm", *args), model("arm", *args))


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tiny_checkpoint(tmp_path)
    before = checkpoint_fingerprint(path)
    real_save = torch.save

    def failing_save(obj, f, *a, **kw):
        if str(getattr(f, "name", f)).endswith("state.pth"):  # a path or an open file
            raise OSError("disk full")
        return real_save(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(AdaptkitError, match="0001_epoch: cannot write the checkpoint: disk full"):
        save_checkpoint(path, tiny_model(seed=5), tiny_meta(), {}, {"x": 1})
    with pytest.raises(AdaptkitError, match="0002_epoch: cannot write the checkpoint"):
        save_checkpoint(path.parent / "0002_epoch", tiny_model(seed=5), tiny_meta(), {}, {"x": 1})
    assert checkpoint_fingerprint(path) == before  # old checkpoint untouched
    assert not (path.parent / "0002_epoch").exists()
    assert sorted(p.name for p in path.parent.iterdir()) == ["0001_epoch"]  # no temp leftovers


def test_refuses_to_save_metadata_the_reference_could_not_reload(tmp_path):
    model = tiny_model()
    meta = tiny_metadata()
    del meta["reach"]  # group 'arm' has modules but no task entry
    with pytest.raises(AdaptkitError, match=r"\['arm'\] have no task entry"):
        save_checkpoint(tmp_path / "x", model, CheckpointMeta.parse(meta), {})


def test_readable_report_for_missing_unexpected_and_shapes(tmp_path):
    meta = tiny_metadata()
    # Weights have an extra group 'old', lack group 'arm' and have another obs width for quadrupeds.
    weights = tiny_model(groups={"quadruped_locomotion": GroupDims(33, 12), "old": GroupDims(4, 2)})
    write_reference_checkpoint(tmp_path / "c", weights, meta)
    with pytest.raises(AdaptkitError) as err:
        load_checkpoint(tmp_path / "c")
    msg = str(err.value)
    assert "model.pth does not match config.json + metadata.json" in msg
    assert "missing group 'arm' (all 26 tensors)" in msg
    assert "unexpected group 'old' (all 26 tensors)" in msg
    assert (
        "shape mismatch in group 'quadruped_locomotion': obs encoder layers.0.weight: "
        "expected [16, 45], found [16, 33]"
    ) in msg
    assert "\n" not in msg


def test_transformer_config_mismatch_is_reported(tmp_path):
    model = tiny_model()
    cfg = reference_config(model)
    cfg["intermediate_size"] = 32
    write_reference_checkpoint(tmp_path / "c", model, tiny_metadata(), cfg)
    with pytest.raises(
        AdaptkitError, match=r"shape mismatch in transformer: block 0 mlp.fc.weight"
    ):
        load_checkpoint(tmp_path / "c")


def test_incomplete_metadata_names_task_and_fields(tmp_path):
    meta = tiny_metadata()
    # What the reference add_task leaves behind: a group name and a reward scale, nothing else.
    meta["minicheetah_walking_ad"] = {"group_name": "quadruped_locomotion", "reward_scale": 1.0}
    write_reference_checkpoint(tmp_path / "c", tiny_model(), meta)
    with pytest.raises(AdaptkitError) as err:
        load_checkpoint(tmp_path / "c")
    msg = str(err.value)
    assert "'minicheetah_walking_ad' is incomplete" in msg
    for f in ("observation_shape", "action_dim", "obs_mean", "acs_std"):
        assert f in msg


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("obs_mean", [0.0] * 44, "'obs_mean' has 44 values, expected 45"),
        ("observation_shape", {"image": [3]}, "observation_shape"),
        ("action_type", "discrete", "'continuous'"),
        ("action_dim", 11, "dims 45/11"),
    ],
)
def test_metadata_field_errors(field, value, expected):
    meta = tiny_metadata()
    meta["a1_walking"][field] = value
    if field == "action_dim":
        meta["a1_walking"].update(acs_mean=[0.0] * 11, acs_std=[1.0] * 11)
    with pytest.raises(AdaptkitError, match=expected):
        CheckpointMeta.parse(meta)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("obs_std", [-1.0] * 45, "'obs_std' must be >= 0"),
        ("reward_scale", "1.0", "'reward_scale' must be a finite number"),
        ("acs_mean", [float("nan")] * 12, "'acs_mean' must be a non-empty list of finite"),
        ("action_dim", True, "'action_dim' must be a positive integer"),
    ],
)
def test_metadata_strict_types(field, value, expected):
    meta = tiny_metadata()
    meta["a1_walking"][field] = value
    with pytest.raises(AdaptkitError, match=expected):
        CheckpointMeta.parse(meta)


def test_task_metadata_from_spec():
    spec = make_spec("mini", obs_dim=45, act_dim=12)
    entry = robot_task_meta(spec, tiny_stats(45, 12)).to_json()
    assert entry["group_name"] == "mini_locomotion"
    assert entry["observation_shape"] == {"proprio": [45]}
    assert entry["action_dim"] == 12 and entry["action_type"] == "continuous"
    bad = Stats(**{**tiny_stats(45, 12).to_dict(), "acs_std": [1.0] * 3})
    with pytest.raises(AdaptkitError, match="'acs_std' has 3 values, expected 12"):
        robot_task_meta(spec, bad)


def test_adapter_round_trip_and_wrong_base(tmp_path):
    base_path = tiny_checkpoint(tmp_path)
    ckpt = load_checkpoint(base_path)
    spec = make_spec("mini")
    add_group(ckpt.model, ckpt.meta, spec, tiny_stats(45, 12))
    with torch.no_grad():
        for p in ckpt.model.encoder.obs_encoders["mini_locomotion"].parameters():
            p.add_(1.0)  # "trained"
    adapter = save_adapter(
        tmp_path / "mini_adapter",
        ckpt.model,
        "mini_locomotion",
        ckpt.meta,
        BaseRef(ckpt.fingerprint, str(base_path), base_path),
    )
    size = sum(p.stat().st_size for p in adapter.iterdir())
    assert size < (base_path / "model.pth").stat().st_size

    loaded = load_adapter(base_path, adapter)
    assert loaded.adapters == [adapter]
    assert loaded.meta[spec.task] == ckpt.meta[spec.task]
    assert loaded.meta.task2group[spec.task] == "mini_locomotion"
    assert fingerprint(loaded.model) == fingerprint(ckpt.model)
    x = random_batch(GroupDims(45, 12))
    args = (x["obs"], x["prev_act"], x["prev_rew"], x["step_num"])
    assert torch.equal(loaded.model("mini_locomotion", *args), ckpt.model("mini_locomotion", *args))
    # The combined model saves as a full checkpoint the reference layout can hold.
    full = save_checkpoint(
        tmp_path / "ft" / "0001_epoch", loaded.model, loaded.meta, loaded.config.extra
    )
    assert load_checkpoint(full).groups["mini_locomotion"] == GroupDims(45, 12)

    other = tiny_checkpoint(tmp_path, seed=1, name="other")
    with pytest.raises(AdaptkitError, match="trained on base"):
        load_adapter(other, adapter)
    with pytest.raises(AdaptkitError, match="already has group"):
        load_adapter(loaded, adapter)
    (adapter / "adapter_model.safetensors").write_bytes(b"junk")
    with pytest.raises(AdaptkitError, match="not a readable safetensors file"):
        load_adapter(base_path, adapter)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(AdaptkitError, match="no such file"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdaptkitError, match="expected a NNNN_epoch dir"):
        load_checkpoint(tmp_path / "empty")
    path = tiny_checkpoint(tmp_path)
    (path / "config.json").unlink()
    with pytest.raises(AdaptkitError, match="missing config.json"):
        load_checkpoint(path)


def test_partial_group_mismatch_lists_modules(tmp_path):
    model = tiny_model()
    sd = model.state_dict()
    del sd["head.acs_decoders.arm.layers.6.weight"]
    sd["transformer.blocks.0.attention.extra.weight"] = torch.zeros(1)
    (tmp_path / "c").mkdir()
    write_reference_checkpoint(tmp_path / "c", model, tiny_metadata())
    torch.save(sd, tmp_path / "c" / "model.pth")
    with pytest.raises(AdaptkitError) as err:
        load_checkpoint(tmp_path / "c")
    assert "missing in group 'arm': decoder (1)" in str(err.value)
    assert "unexpected in transformer: block 0 (1)" in str(err.value)


def test_token_order_round_trip_and_override(tmp_path):
    torch.manual_seed(0)
    fork_like = Vintix(tiny_config(token_order="act,rew,obs"), TINY_GROUPS)
    path = save_checkpoint(tmp_path / "f", fork_like, tiny_meta(), {})
    loaded = load_checkpoint(path)
    assert loaded.config.token_order == "act,rew,obs"
    assert loaded.token_order.settled and loaded.token_order.reason == "recorded in config.json"
    # every checkpoint adaptkit writes records its order, the released default too
    released_like = save_checkpoint(tmp_path / "r", tiny_model(), tiny_meta(), {})
    assert json.loads((released_like / "config.json").read_text())["token_order"] == "obs,act,rew"
    # A checkpoint written by the reference carries no token_order: inferred, not settled
    write_reference_checkpoint(tmp_path / "w", fork_like, tiny_metadata())
    guessed = load_checkpoint(tmp_path / "w")
    assert guessed.config.token_order == "obs,act,rew" and not guessed.token_order.settled
    ckpt = load_checkpoint(tmp_path / "w", config_overrides={"token_order": "act,rew,obs"})
    assert ckpt.config.token_order == "act,rew,obs" and ckpt.token_order.settled
    ckpt = load_checkpoint(tmp_path / "w", token_order="act,rew,obs")
    assert ckpt.config.token_order == "act,rew,obs"
    assert ckpt.token_order.reason == "given with --token-order"
    with pytest.raises(AdaptkitError, match="--token-order: expected one of"):
        load_checkpoint(tmp_path / "w", token_order="rew,obs,act")


def test_mapped_weights_never_write_the_file(tmp_path):
    """Loading maps model.pth; writing into a loaded tensor (a full fine-tune) is copy-on-write."""
    path = tiny_checkpoint(tmp_path)
    before = (path / "model.pth").read_bytes()
    ckpt = load_checkpoint(path)
    with torch.no_grad():
        for p in ckpt.model.parameters():
            p.add_(1.0)
    assert (path / "model.pth").read_bytes() == before
    again = load_checkpoint(path)
    assert again.fingerprint == ckpt.fingerprint  # the hashes of the file as loaded
    assert fingerprint(again.model) != fingerprint(ckpt.model)
    assert load_checkpoint(path, hash_weights=False).fingerprint == ""
