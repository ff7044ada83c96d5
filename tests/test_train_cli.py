"""`adaptkit finetune` / `adaptkit pretrain` through the CLI: the seed's spellings, clean errors."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers_train import TINY_MODEL, make_world, tiny_train
from typer.testing import CliRunner

from adaptkit.cli import app
from adaptkit.commands.train import parse_config_paths
from adaptkit.train import pretrain

SEED_CONFIG = {
    "minicheetah_walking_ad": {
        "type": "default",
        "path": "minicheetah_trajectories",
        "group": "minicheetah_locomotion",
        "reward_scale": 1.0,
        "episode_sparsity": 1,
    }
}


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    paths = make_world(root)
    (root / "configs").mkdir()
    (root / "configs" / "minicheetah_finetune_config.yaml").write_text(yaml.safe_dump(SEED_CONFIG))
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY_MODEL))
    pretrain([paths["pretrain_config"]], paths["data"], "lib", root / "models", TINY_MODEL,
             tiny_train(epochs=1))  # fmt: skip
    return {**paths, "root": root}


def _run(args, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, args, catch_exceptions=False)


def test_parse_config_paths():
    assert parse_config_paths(['["a.yaml", "b.yaml"]', "c.yaml"]) == ["a.yaml", "b.yaml", "c.yaml"]
    assert parse_config_paths(None) == []


def test_pretrain_then_seed_spelling(cli_world, monkeypatch):
    root = cli_world["root"]
    r = _run(
        ["pretrain", "pretrain.yaml", "--name", "base", "--model-config", "tiny.yaml",
         "--epochs", "1", "--batch-size", "8"],
        root, monkeypatch,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (root / "models" / "base" / "0001_epoch" / "model.pth").is_file()
    # the command as typed, in config.json; the resolved config beside the run
    recorded = json.loads((root / "models" / "base" / "0001_epoch" / "config.json").read_text())
    assert recorded["command"] == (
        "adaptkit pretrain pretrain.yaml --name base --model-config tiny.yaml --epochs 1 "
        "--batch-size 8"
    )
    saved = yaml.safe_load((root / "models" / "base" / "run.yaml").read_text())
    assert saved["configs"] == ["pretrain.yaml"] and saved["epochs"] == 1
    assert saved["model-config"] == "tiny.yaml" and saved["batch-size"] == 8
    # the seed guide's command, flag for flag
    r = _run(
        ["finetune", "minicheetah", "--pretrained_path", "models/base",
         "--dataset_config_paths", '["configs/minicheetah_finetune_config.yaml"]',
         "--name", "N", "--epochs", "1", "--data_dir", "data", "--freeze_transformer",
         "--lr", "0.0001", "--no-eval"],
        root, monkeypatch,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "frozen weights verified" in r.output
    assert (root / "models" / "N" / "0001_epoch" / "adapter_model.safetensors").is_file()
    # defaults from the plugin: `adaptkit finetune minicheetah` alone, + a JSON summary
    r = _run(
        ["finetune", "minicheetah", "--epochs", "1", "--json", "--eval-envs", "2",
         "--eval-episodes", "1"],
        root, monkeypatch,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert '"frozen_verified": true' in r.output
    assert '"label": "zero-shot"' in r.output and '"label": "fine-tuned"' in r.output
    assert (root / "models" / "minicheetah_finetune" / "0001_epoch").is_dir()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--pretrained-path", "nowhere"], "no such file"),
        (["--data-dir", "missing"], "does not exist"),
        (["--precision", "fp16"], "'fp16' is not one of 'auto', 'fp32', 'bf16'"),
        (["--dataset-config-paths", "[oops"], "JSON"),
    ],
)
def test_clean_one_line_errors(cli_world, monkeypatch, args, message):
    root = cli_world["root"]
    monkeypatch.chdir(root)
    base = [
        "finetune",
        "minicheetah",
        "--name",
        "err",
        "--pretrained-path",
        "models/lib",
        "--no-eval",
    ]
    r = CliRunner().invoke(app, [*base, *args])
    assert r.exit_code == (2 if "--precision" in args else 1)  # 2: a usage error
    assert message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (root / "models" / "err").exists()
