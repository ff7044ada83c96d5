"""Bad or half-written input found in review: each gives a clean AdaptkitError, nothing is lost."""

from __future__ import annotations

import json

import pytest
from helpers_model import tiny_checkpoint

from adaptkit import AdaptkitError
from adaptkit.bootstrap.data import has_data
from adaptkit.ckpt.checkpoint import load_training_state
from adaptkit.ckpt.load import load_adapter
from adaptkit.evaluate import EvalSettings, compare
from adaptkit.model import ModelConfig
from adaptkit.sim import LocomotionEnv
from adaptkit.sim.collect import collect_histories
from adaptkit.sim.demonstrator import load_demonstrator


def test_partial_collect_folder_is_not_data(registry, tmp_path):
    spec = registry.robot("go1")
    folder = tmp_path / spec.data_path
    folder.mkdir()
    (folder / ".history_000.h5.tmp-abc").write_bytes(b"half")  # a killed first history
    assert has_data(spec, tmp_path) is False
    (folder / "history_000.h5").write_bytes(b"done")  # a killed collection: no task JSON yet
    assert has_data(spec, tmp_path) is False  # collected again
    (folder / "run_7.h5").write_bytes(b"mine")  # a file adaptkit did not name: the user's data,
    assert has_data(spec, tmp_path) is True  # trained on (and checked), never collected into


def test_corrupt_training_state(tmp_path):
    ckpt = tiny_checkpoint(tmp_path)
    (ckpt / "state.pth").write_bytes(b"\x00truncated")
    with pytest.raises(AdaptkitError, match="state.pth: unreadable training state"):
        load_training_state(ckpt)


def test_non_numeric_dropout():
    with pytest.raises(AdaptkitError, match="attn_dropout"):
        ModelConfig.from_dict({**ModelConfig().to_dict(), "attn_dropout": "abc"})


def test_malformed_adapter(tmp_path):
    ckpt = tiny_checkpoint(tmp_path)
    bad = tmp_path / "adapter"
    bad.mkdir()
    (bad / "adapter_config.json").write_text(
        json.dumps({"format": "adaptkit-adapter", "format_version": 2})
    )
    (bad / "adapter_model.safetensors").write_bytes(b"junk")
    with pytest.raises(AdaptkitError, match="missing or malformed group, obs_dim"):
        load_adapter(ckpt, bad)


def test_model_label_may_not_hide_a_baseline(registry, tmp_path):
    with pytest.raises(AdaptkitError, match="differ from the baselines"):
        compare(
            registry.robot("go1"),
            [("demonstrator", tmp_path)],
            EvalSettings(num_envs=1, episodes=1),
        )


def test_bad_expert_file_fails_before_writing(registry, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"x")
    with pytest.raises(AdaptkitError, match="not a TorchScript or torch.save file"):
        load_demonstrator(registry.robot("a1"), bad)
    out = tmp_path / "data" / "a1_trajectories"
    with pytest.raises(AdaptkitError):
        collect_histories(registry.robot("a1"), out, 1, 10, 1, 0, expert=bad)
    assert not out.exists()


def test_env_refuses_other_spaces(registry):
    from dataclasses import replace

    spec = replace(registry.robot("go1"), obs_names=tuple(f"o{i}" for i in range(46)))
    with pytest.raises(AdaptkitError, match="cannot build"):
        LocomotionEnv(spec, 1)


def test_resume_survives_a_cut_metrics_line(tmp_path):
    from helpers_train import TINY_MODEL, make_world, tiny_train

    from adaptkit.train import pretrain

    paths = make_world(tmp_path)
    kw = dict(model_config=TINY_MODEL, train_config=tiny_train(epochs=1))
    first = pretrain([paths["pretrain_config"]], paths["data"], "run", tmp_path / "m", **kw)
    metrics = first.run_dir / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"step": 99, "lo')  # killed mid-write
    again = pretrain(
        [paths["pretrain_config"]],
        paths["data"],
        "run",
        tmp_path / "m",
        resume=True,
        **kw,
    )
    lines = [json.loads(x) for x in metrics.read_text().splitlines()]  # all whole again
    assert again.resumed_from is not None and lines and all(r["step"] != 99 for r in lines)
