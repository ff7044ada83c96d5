"""Adapters the PEFT way: adapter-sized epochs, resume from them, --keep, merge into the reference
layout, eval/compare of base + adapter, and a hand-written adapter read from the format's facts."""

from __future__ import annotations

import json
import struct

import pytest
import torch
from helpers_model import make_spec, random_batch, tiny_checkpoint, tiny_stats
from helpers_train import TINY_MODEL, job, make_world, state_dict, tiny_train
from typer.testing import CliRunner

from adaptkit import defaults
from adaptkit.adapt.surgery import add_group
from adaptkit.ckpt.adapter import BaseRef, save_adapter
from adaptkit.ckpt.load import load_adapter, load_checkpoint, merge_adapter
from adaptkit.cli import app
from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import EvalSettings, compare, evaluate
from adaptkit.model import GroupDims, Vintix
from adaptkit.plugins import get_registry
from adaptkit.progress import Reporter
from adaptkit.train import finetune, pretrain

MC_GROUP = "minicheetah_locomotion"
ADAPTER_EPOCH = {"adapter_config.json", "adapter_model.safetensors", "state.pth"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapter")
    paths = make_world(root)
    base = pretrain(
        [paths["pretrain_config"]], paths["data"], "base", root / "models", TINY_MODEL,
        tiny_train(epochs=1),
    )  # fmt: skip
    full = finetune(
        job(_robot(), base.run_dir, paths["data"], "full", root, tiny_train(epochs=3), save="full")
    )
    return {**paths, "root": root, "base": base.run_dir, "full": full}


def _robot():
    return get_registry().robot("minicheetah")


class _Kill(Exception):
    pass


class _KillAfterEpoch2(Reporter):
    def event(self, name, data):
        if name == "checkpoint" and data["epoch"] == 2:
            raise _Kill


def test_adapter_epochs_resume_keep_and_merge(world, tmp_path, monkeypatch):
    monkeypatch.setattr(defaults, "LARGE_MODEL_BYTES", 0)  # the tiny base counts as large

    def run(**kw):
        return job(_robot(), world["base"], world["data"], "ad", tmp_path, tiny_train(epochs=3),
                   keep=2, **kw)  # fmt: skip

    with pytest.raises(_Kill):
        finetune(run(), _KillAfterEpoch2())
    epochs = sorted(p.name for p in (tmp_path / "ad").glob("*_epoch"))
    assert epochs == ["0001_epoch", "0002_epoch"]  # --keep 2 pruned 0000_epoch
    assert {p.name for p in (tmp_path / "ad" / "0002_epoch").iterdir()} == ADAPTER_EPOCH
    resumed = finetune(run(resume=True))
    assert resumed.resumed_from.name == "0002_epoch" and resumed.frozen_verified
    assert sorted(p.name for p in resumed.run_dir.glob("*_epoch")) == ["0002_epoch", "0003_epoch"]
    final = resumed.checkpoints[-1]
    assert resumed.adapter == final and {p.name for p in final.iterdir()} == ADAPTER_EPOCH
    size = sum(p.stat().st_size for p in final.iterdir() if p.name != "state.pth")
    assert size < (world["full"].checkpoints[-1] / "model.pth").stat().st_size

    # base + adapter (as recorded, found again) == the uninterrupted full-save run, bit for bit
    want = state_dict(world["full"].checkpoints[-1])
    loaded = load_checkpoint(resumed.run_dir)
    assert loaded.base_path is not None and loaded.path == final
    got = loaded.model.state_dict()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)

    # merge: a full NNNN_epoch the reference loader reads (checked by hand, not via adaptkit)
    merged = merge_adapter(final, tmp_path / "merged")
    assert merged == tmp_path / "merged" / "0003_epoch"
    assert {p.name for p in merged.iterdir()} == {"model.pth", "metadata.json", "config.json"}
    sd = torch.load(merged / "model.pth", map_location="cpu", weights_only=True)
    assert list(sd) == list(want) and all(torch.equal(sd[k], want[k]) for k in want)
    meta = json.loads((merged / "metadata.json").read_text())
    assert meta["minicheetah_walking_ad"]["group_name"] == MC_GROUP
    assert meta["go1_walking"]["group_name"] == "quadruped_locomotion"
    for entry in meta.values():
        assert {"observation_shape", "action_dim", "obs_mean", "acs_std"} <= set(entry)
    cfg = json.loads((merged / "config.json").read_text())
    assert cfg["hidden_dim"] == 16 and cfg["transformer_depth"] == 1
    with pytest.raises(AdaptkitError, match="already exists"):
        merge_adapter(final, merged)

    # the CLI spelling, and eval of base + adapter straight from the adapter epoch
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["merge", str(final), "--out", "cli/0009_epoch", "--json"])
    assert r.exit_code == 0, r.output
    assert torch.equal(state_dict(tmp_path / "cli" / "0009_epoch")[next(iter(want))],
                       want[next(iter(want))])  # fmt: skip
    r = CliRunner().invoke(app, ["inspect", str(final)])
    assert r.exit_code == 0 and "adapter on base" in r.output, r.output
    settings = EvalSettings(num_envs=2, episodes=1, episode_length=20, data_dir=world["data"])
    from_adapter = evaluate(final, _robot(), settings)
    from_merged = evaluate(merged, _robot(), settings)
    assert from_adapter.summary["mean_return"] == from_merged.summary["mean_return"]
    assert from_adapter.summary["base"].endswith("0001_epoch")
    rep = compare(
        _robot(), [("zero-shot", world["base"]), ("fine-tuned", final)],
        EvalSettings(num_envs=2, episodes=1, episode_length=20, base=world["base"]),
        demonstrator=False, stand=False,
    )  # fmt: skip
    assert [r["label"] for r in rep.rows] == ["zero-shot", "fine-tuned"]


def test_adapter_refusals(world, tmp_path):
    robot = _robot()
    with pytest.raises(AdaptkitError, match="--save adapter: an adapter holds only the new group"):
        finetune(job(robot, world["base"], world["data"], "x", tmp_path, save="adapter",
                     freeze="none"))  # fmt: skip
    assert not (tmp_path / "x").exists()
    final = world["full"].checkpoints[-1]  # full checkpoint + adapter files beside
    other = tiny_checkpoint(tmp_path)  # a different base
    with pytest.raises(AdaptkitError, match="trained on base"):
        load_adapter(other, final)
    # an adapter whose recorded base is gone: told to pass --base
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (moved / name).write_bytes((final / name).read_bytes())
    cfg = json.loads((moved / "adapter_config.json").read_text())
    cfg.update(base_model_name_or_path=str(tmp_path / "gone"), base_model_path=None)
    (moved / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(AdaptkitError, match="pass it with --base"):
        load_checkpoint(moved)
    ok = load_checkpoint(moved, base=world["base"])
    assert MC_GROUP in ok.groups


def _safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors layout by hand: u64 little-endian header size, JSON header of
    {name: {dtype, shape, data_offsets}} (+ __metadata__), then the raw little-endian bytes."""
    header: dict = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, t in tensors.items():
        raw = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset,
                        offset + len(raw)]}  # fmt: skip
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # header padded to 8 bytes
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def test_hand_written_adapter_applies(tmp_path):
    base_path = tiny_checkpoint(tmp_path)
    base = load_checkpoint(base_path)
    spec = make_spec("mini")
    group = "mini_locomotion"
    stats = tiny_stats(45, 12)
    # the group's tensors, made with a standalone model of the same architecture
    torch.manual_seed(3)
    donor = Vintix(base.config, {group: GroupDims(45, 12)})
    tensors = {
        k: v for k, v in donor.state_dict().items() if k.startswith(donor.group_prefixes(group))
    }
    folder = tmp_path / "hand"
    folder.mkdir()
    (folder / "adapter_model.safetensors").write_bytes(
        _safetensors_bytes(tensors, {"format": "pt"})
    )
    task = {
        "group_name": group, "observation_shape": {"proprio": [45]}, "action_dim": 12,
        "action_type": "continuous", "reward_scale": 1.0, **stats.to_dict(),
    }  # fmt: skip
    (folder / "adapter_config.json").write_text(json.dumps({
        "format": "adaptkit-adapter", "format_version": 2, "adapter_type": "vintix_group",
        "group": group, "obs_dim": 45, "act_dim": 12, "token_order": "obs,act,rew",
        "base_fingerprint": base.fingerprint, "base_model_name_or_path": str(base_path),
        "base_model_path": str(base_path), "metadata": {spec.task: task},
    }))  # fmt: skip
    loaded = load_checkpoint(folder)
    live = loaded.model.state_dict()
    assert all(torch.equal(live[k], v) for k, v in tensors.items())
    assert loaded.meta[spec.task].group == group
    x = random_batch(GroupDims(45, 12))
    args = (x["obs"], x["prev_act"], x["prev_rew"], x["step_num"])
    old = "quadruped_locomotion"  # the base's own group answers as before
    assert torch.equal(loaded.model(old, *args), base.model(old, *args))

    # and adaptkit's own writer produces files the same reader (and safetensors) accept
    ckpt = load_checkpoint(base_path)
    add_group(ckpt.model, ckpt.meta, spec, stats)
    out = save_adapter(tmp_path / "own", ckpt.model, group, ckpt.meta,
                       BaseRef(ckpt.fingerprint, str(base_path), base_path))  # fmt: skip
    raw = (out / "adapter_model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    assert set(header) - {"__metadata__"} == {
        k for k in ckpt.model.state_dict() if k.startswith(Vintix.group_prefixes(group))
    }
    assert json.loads((out / "adapter_config.json").read_text())["base_fingerprint"] == (
        ckpt.fingerprint
    )
