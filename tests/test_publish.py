"""`adaptkit push`: the folder (adapter or full checkpoint + model card) and the card's Hub
metadata, parsed with huggingface_hub's own card parser; the upload itself is mocked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_train import lora_finetune
from typer.testing import CliRunner

from adaptkit.ckpt.load import load_checkpoint
from adaptkit.cli import app

hub = pytest.importorskip("huggingface_hub")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A LoRA fine-tune of Mini Cheetah on a tiny base, and its comparison written by hand in
    compare.json's layout (runs: label → eval summary)."""
    root = tmp_path_factory.mktemp("push")
    base, result, _ = lora_finetune(root, save="full")
    summary = {"robot": "minicheetah", "num_episodes": 8, "num_envs": 4, "seed": 7, "task": "walk"}
    model = {**summary, "policy": "model"}
    compare = {
        "robot": "minicheetah",
        "runs": {
            "zero-shot": {**model, "checkpoint": str(base.checkpoints[-1]), "mean_return": 1.5,
                          "std_return": 0.25},
            "fine-tuned": {**model, "checkpoint": str(result.checkpoints[-1]),
                           "mean_return": 12.25, "std_return": 1.0},
            "demonstrator": {**summary, "policy": "demonstrator", "mean_return": 19.98,
                             "std_return": 0.01},
            "stand": {**summary, "policy": "stand", "mean_return": float("nan"),
                      "std_return": None},
        },
    }  # fmt: skip
    (result.run_dir / "compare").mkdir()
    (result.run_dir / "compare" / "compare.json").write_text(
        json.dumps(compare).replace("NaN", "null")
    )
    return result.run_dir


def test_dry_run_writes_the_adapter_and_a_card_the_hub_parses(run, tmp_path):
    out = tmp_path / "push"
    res = CliRunner().invoke(
        app, ["push", str(run), "hf://me/mc-lora", "--dry-run", "--out", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["kind"] == "adapter" and info["uploaded"] is None
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors",
    ]  # fmt: skip
    card = hub.ModelCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["library_name"] == "adaptkit" and "minicheetah" in data["tags"]
    assert "base_model" not in data  # a local base is no Hub repo
    results = {r.metric_name: r.metric_value for r in card.data.eval_results}
    # only the pushed model's own result: the base zero-shot and the demonstrator are
    # references, named as such in the body; the NaN row (no finished episode) is left out
    assert results == {"mean_reward (fine-tuned)": "12.25 +/- 1.00"}
    assert all(r.task_type == "reinforcement-learning" for r in card.data.eval_results)
    assert "(reference: another model" not in card.text  # the prefix is the section's
    assert "`zero-shot` (another model compared on the same seeds (not this one))" in card.text
    assert "`demonstrator` (the demonstrator (scripted expert))" in card.text
    # the command the run recorded at training time (a Python caller here), not a rebuilt one
    assert "- Command: none (the run was started from Python" in card.text
    # the folder is a checkpoint adaptkit loads (onto its recorded base)
    assert load_checkpoint(out).groups.keys() >= {"minicheetah_locomotion"}


def test_full_checkpoint_upload(run, tmp_path, monkeypatch):
    calls = {}

    class FakeApi:
        def create_repo(self, repo_id, private, exist_ok):
            calls["repo"] = (repo_id, private)

        def upload_folder(self, repo_id, folder_path, commit_message):
            calls["files"] = sorted(p.name for p in Path(folder_path).iterdir())
            return type("Info", (), {"commit_url": f"https://hub/{repo_id}/commit/1"})()

    monkeypatch.setattr(hub, "HfApi", FakeApi)
    out = tmp_path / "full"
    args = ["push", str(run), "me/mc-full", "--what", "full", "--out", str(out)]
    args += ["--command", "adaptkit finetune minicheetah --pretrained-path hf://org/base"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert calls["repo"] == ("me/mc-full", False)
    assert calls["files"] == ["README.md", "config.json", "metadata.json", "model.pth"]
    assert "uploaded to hf://me/mc-full" in " ".join(res.output.split())


def test_bad_targets_and_folders(run, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["push", str(run), "hf://me", "--dry-run"])
    assert res.exit_code == 1 and "expected hf://ORG/NAME" in res.output
    res = runner.invoke(app, ["push", str(run), "hf://me/x@v1", "--dry-run"])
    assert res.exit_code == 1 and "expected hf://ORG/NAME" in res.output
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    res = runner.invoke(app, ["push", str(run), "me/x", "--dry-run", "--out", str(busy)])
    assert res.exit_code == 1 and "not an earlier push folder" in res.output
    assert (busy / "keep.txt").read_text() == "mine"
