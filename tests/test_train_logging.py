"""`--log jsonl,tensorboard,wandb`: every destination gets the steps (loss, lr, tokens/s, per-task
loss) and the summaries; W&B runs offline into the run folder; a missing package is one line."""

from __future__ import annotations

import importlib.util
import json

import pytest
from helpers_train import TINY_MODEL, make_world, tiny_train, write_config
from typer.testing import CliRunner

from adaptkit.cli import app
from adaptkit.errors import AdaptkitError
from adaptkit.train import METRICS_FILE, pretrain
from adaptkit.train import metrics as M

HAVE_TB = importlib.util.find_spec("tensorboard") is not None
HAVE_WANDB = importlib.util.find_spec("wandb") is not None


def test_parse_destinations():
    assert M.parse_destinations(None) == ("jsonl",)
    assert M.parse_destinations("jsonl, TensorBoard") == ("jsonl", "tensorboard")
    assert M.parse_destinations(["wandb", "jsonl,wandb"]) == ("wandb", "jsonl")
    assert M.parse_destinations("tensorboard") == ("jsonl", "tensorboard")  # always metrics.jsonl
    with pytest.raises(AdaptkitError, match="--log: unknown destination 'mlflow'"):
        M.parse_destinations("jsonl,mlflow")
    with pytest.raises(AdaptkitError, match="--log: give at least one"):
        M.parse_destinations(" , ")


def test_flatten_keeps_numbers_only():
    flat = M.flatten({"a": 1, "b": {"c": 2.5, "d": "x", "e": [1]}, "f": True, "g": None})
    assert flat == {"a": 1.0, "b/c": 2.5, "f": 1.0}


def test_missing_package_is_one_line_before_anything_is_written(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    paths = make_world(tmp_path)
    with pytest.raises(AdaptkitError, match=r"--log wandb: .* pip install 'adaptkit\[wandb\]'"):
        pretrain([paths["pretrain_config"]], paths["data"], "run", tmp_path / "m", TINY_MODEL,
                 tiny_train(epochs=1), log="jsonl,wandb")  # fmt: skip
    assert not (tmp_path / "m").exists()
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(
        app, ["pretrain", str(paths["pretrain_config"]), "--data-dir", "data", "--log", "wandb"]
    )
    assert res.exit_code == 1
    assert "error: --log wandb: the wandb package is not installed" in res.output
    assert "pip install 'adaptkit[wandb]'" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "models").exists()
    res = CliRunner().invoke(app, ["pretrain", "x.yaml", "--log", "csv"])
    assert res.exit_code == 1 and "--log: unknown destination 'csv'" in res.output


def _tensorboard_scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_every_destination_gets_steps_tasks_and_epochs(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb-elsewhere"))  # our dir= must win
    paths = make_world(tmp_path)
    # two tasks in one group: per-task losses must be told apart
    cfg = write_config(
        tmp_path / "two.yaml",
        {
            "go1_walking": ("go1", "quadruped_locomotion"),
            "mc_walking": ("minicheetah_trajectories", "quadruped_locomotion"),
        },
    )
    dests = ["jsonl"] + ["tensorboard"] * HAVE_TB + ["wandb"] * HAVE_WANDB
    result = pretrain([cfg], paths["data"], "run", tmp_path / "m", TINY_MODEL,
                      tiny_train(epochs=2), log=",".join(dests))  # fmt: skip
    run = result.run_dir
    lines = [json.loads(x) for x in (run / METRICS_FILE).read_text().splitlines()]
    steps = [r for r in lines if "event" not in r]
    epochs = [r for r in lines if r.get("event") == "epoch"]
    assert [r["step"] for r in steps] == list(range(1, result.steps + 1))
    assert all({"loss", "lr", "tokens_per_s", "task_loss"} <= set(r) for r in steps)
    seen = {t for r in steps for t in r["task_loss"]}
    assert seen == {"go1_walking", "mc_walking"}
    for r in steps:  # single-group batches may mix tasks: the loss is their window-weighted mean
        per_task = r["task_loss"].values()
        assert min(per_task) - 1e-4 <= r["loss"] <= max(per_task) + 1e-4
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert [e["loss"] for e in epochs] == pytest.approx(result.epoch_losses)
    assert set(epochs[-1]["task_loss"]) == {"go1_walking", "mc_walking"}

    if HAVE_TB:
        scalars = _tensorboard_scalars(run / "tensorboard")
        assert [s for s, _ in scalars["train/loss"]] == list(range(1, result.steps + 1))
        assert scalars["train/loss"][-1][1] == pytest.approx(steps[-1]["loss"], rel=1e-6)
        assert {"train/lr", "train/tokens_per_s", "train/task_loss/mc_walking"} <= set(scalars)
        assert [v for _, v in scalars["epoch/loss"]] == pytest.approx(result.epoch_losses)
    if HAVE_WANDB:
        runs = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(runs) == 1 and not (tmp_path / "wandb-elsewhere").exists()
        blob = runs[0].read_bytes()
        for key in ("train/loss", "train/task_loss/go1_walking", "epoch/task_loss/mc_walking"):
            assert key.encode() in blob, key
        assert (run / M.WANDB_ID_FILE).read_text().strip() in runs[0].name


@pytest.mark.skipif(not HAVE_TB, reason="needs adaptkit[tensorboard]")
def test_resume_continues_every_log_without_duplicates(tmp_path):
    paths = make_world(tmp_path)
    kw = dict(model_config=TINY_MODEL, log="jsonl,tensorboard")
    first = pretrain([paths["pretrain_config"]], paths["data"], "run", tmp_path / "m",
                     train_config=tiny_train(epochs=1), **kw)  # fmt: skip
    # a run killed after logging steps past its checkpoint: those steps are redone on resume
    with (first.run_dir / METRICS_FILE).open("a") as fh:
        fh.write(json.dumps({"step": first.steps + 1, "loss": 123.0}) + "\n")
    again = pretrain([paths["pretrain_config"]], paths["data"], "run", tmp_path / "m",
                     train_config=tiny_train(epochs=1), resume=True, **kw)  # fmt: skip
    assert again.resumed_from is not None
    lines = [json.loads(x) for x in (first.run_dir / METRICS_FILE).read_text().splitlines()]
    assert all(r["loss"] != 123.0 for r in lines)
    steps = [r["step"] for r in lines if "event" not in r]
    assert steps == list(range(1, first.steps + 1))
    scalars = _tensorboard_scalars(first.run_dir / "tensorboard")
    assert [s for s, _ in scalars["train/loss"]] == steps
