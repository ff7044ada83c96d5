"""Early stopping on a held-out validation loss (adaptkit.train.early_stop): which histories are
held out, when training stops, that only epochs that improved it are kept (the newest checkpoint
is the best), that the run records where and why it stopped, and that --resume ends where an
uninterrupted run ends."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from helpers_train import TINY_MODEL, job, make_world, state_dict, tiny_train

from adaptkit.ckpt.layout import epoch_dirs
from adaptkit.data.history import History
from adaptkit.errors import AdaptkitError
from adaptkit.plugins import get_registry
from adaptkit.train import TrainConfig, finetune, pretrain
from adaptkit.train.early_stop import EarlyStop, split_histories


def _history(n: int) -> History:
    return History(
        np.zeros((n, 3), np.float32), np.zeros((n, 2), np.float32), np.zeros(n, np.float32),
        np.arange(n, dtype=np.int32) % 50,
    )  # fmt: skip


def test_which_histories_are_held_out():
    eight = [_history(100) for _ in range(8)]
    kept, held, how = split_histories(eight, 0.125, context_len=8)
    assert len(kept) == 7 and held == eight[-1:] and "last 1 of 8" in how
    kept, held, _ = split_histories(eight[:2], 0.125, context_len=8)
    assert len(kept) == 1 and len(held) == 1  # at least one, never all
    kept, held, how = split_histories([_history(400)], 0.125, context_len=8)
    assert len(kept[0]) == 350 and len(held[0]) == 50 and "50 of the one history's 400" in how
    assert split_histories(eight, 0.0, 8)[1] == []
    assert split_histories([_history(12)], 0.125, context_len=8)[1] == []  # too short to split
    assert split_histories([_history(100), _history(5)], 0.5, context_len=8)[1] == []


def test_when_to_stop():
    stop = EarlyStop(patience=2, min_delta=0.01)
    assert stop.update(1, 1.0) == (True, False)
    assert stop.update(2, 0.995) == (False, False)  # 0.5 % better: not enough
    assert stop.update(3, 0.98) == (True, False)
    assert stop.update(4, 0.979) == (False, False)
    assert stop.update(5, math.nan) == (False, True)
    stop.stopped(5)
    assert stop.best_epoch == 3 and "stopped after epoch 5 of 10" in stop.reason(10)
    again = EarlyStop(2, 0.01)
    again.load_state_dict(json.loads(json.dumps(stop.state_dict())))
    assert again.state_dict().keys() == stop.state_dict().keys()
    assert (again.best, again.best_epoch, again.bad_epochs, again.stopped_at) == (0.98, 3, 2, 5)
    assert again.losses[:4] == stop.losses[:4] and math.isnan(again.losses[4])


@pytest.mark.parametrize(
    "field, value", [("val_share", 0.6), ("val_share", -0.1), ("patience", 0), ("min_delta", 1.0)]
)
def test_settings_are_checked(field, value):
    with pytest.raises(AdaptkitError, match=field):
        TrainConfig(**{field: value})


def test_fine_tune_defaults_hold_out_histories():
    cfg = TrainConfig.for_finetune()
    assert cfg.val_share == 0.125 and cfg.patience == 2 and cfg.epochs == 10
    assert TrainConfig().val_share == 0.0  # pretraining (and the study's cells) train it all


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("early")
    paths = make_world(root, mc_steps=240)
    base = pretrain(
        [paths["pretrain_config"]], paths["data"], "base", root / "models", TINY_MODEL,
        tiny_train(epochs=1),
    )  # fmt: skip
    return root, paths, base


def _run(world, name, **train):
    root, paths, base = world
    cfg = tiny_train(**{"epochs": 6, "val_share": 0.5, "patience": 1, "min_delta": 0.5, **train})
    robot = get_registry().robot("minicheetah")
    return finetune(job(robot, base.run_dir, paths["data"], name, root / "runs", cfg))


def test_training_stops_and_keeps_the_best_epoch(world):
    # min_delta 0.5: after epoch 1 no epoch is 50 % better, patience 1 stops at epoch 2
    result = _run(world, "stops")
    stopped = result.early_stop
    assert stopped["stopped_at"] == 2 and stopped["best_epoch"] == 1
    assert "stopped after epoch 2 of 6" in stopped["reason"]
    assert len(stopped["val_losses"]) == 2 and all(np.isfinite(stopped["val_losses"]))
    assert len(result.epoch_losses) == 2  # no epoch past the stop
    # only the kept epoch (and the initial 0000) was written: the newest is the best
    assert [e for e, _ in epoch_dirs(result.run_dir)] == [0, 1]
    assert result.last_checkpoint.name == "0001_epoch" and result.frozen_verified
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    kinds = [r.get("event") for r in records]
    assert kinds.count("validation") == 2 and "early_stop" in kinds
    assert any("stopped after epoch 2" in n for n in result.notes)
    # without held-out data every epoch is kept, as before
    full = _run(world, "all", val_share=0.0)
    assert full.early_stop is None and len(full.epoch_losses) == 6


def test_resume_ends_where_an_uninterrupted_run_ends(world):
    done = _run(world, "resumed")
    root, paths, base = world
    cfg = tiny_train(epochs=6, val_share=0.5, patience=1, min_delta=0.5)
    robot = get_registry().robot("minicheetah")
    resumed = finetune(
        job(robot, base.run_dir, paths["data"], "resumed", root / "runs", cfg, resume=True)
    )
    # the run had stopped: resuming replays the epochs after the kept one and stops again
    assert resumed.early_stop["stopped_at"] == done.early_stop["stopped_at"]
    assert resumed.early_stop["best_epoch"] == done.early_stop["best_epoch"]
    newest = epoch_dirs(done.run_dir)[-1][1]
    first, last = state_dict(done.last_checkpoint), state_dict(newest)
    assert all(torch.equal(first[k], last[k]) for k in first)


def test_validation_runs_in_the_memory_plans_micro_batches(world, monkeypatch):
    # a 1 MiB budget splits every loaded batch of 8 into micro-batches of 1 (issue 36's plan):
    # the held-out windows then go through the model one at a time too, and the run stops
    # where the unsplit run stops, on (nearly) the same validation losses
    import adaptkit.train.early_stop as early_stop

    sizes: list[int] = []
    split = early_stop.split_batch

    def spy(batch, size):
        pieces = split(batch, size)
        sizes.extend(len(p["obs"]) for p in pieces)
        return pieces

    monkeypatch.setattr(early_stop, "split_batch", spy)
    whole = _run(world, "whole_val", max_memory=2**40)
    assert sizes and max(sizes) == 8  # one pass per loaded batch
    sizes.clear()
    parts = _run(world, "split_val", max_memory=2**20)
    assert sizes and max(sizes) == 1
    assert parts.early_stop["stopped_at"] == whole.early_stop["stopped_at"]
    np.testing.assert_allclose(
        parts.early_stop["val_losses"], whole.early_stop["val_losses"], rtol=1e-4
    )
