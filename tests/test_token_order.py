"""Token order is never silent: a checkpoint that does not record it is settled on its own tasks'
data (the loss under both orders), the reason is said, and an inconclusive check says so."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from helpers_fork import FORK_TRAINING_KEYS, trajectory, write_config, write_fork_history

from adaptkit.ckpt.load import load_checkpoint
from adaptkit.ckpt.token_order import order_losses, own_task_data, settle_token_order
from adaptkit.data.config import load_dataset_configs
from adaptkit.progress import NoteCollector
from adaptkit.train import TrainConfig, pretrain

TINY = dict(
    observation_emb_dim=16,
    action_emb_dim=8,
    reward_emb_dim=8,
    transformer_depth=1,
    transformer_heads=2,
    intermediate_size=32,
    context_len=16,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model trained in the fork's order on a task whose action is read off the
    observation, re-written by hand as the fork writes checkpoints: no token_order and no fork
    keys either (so config.json alone would guess the released order, wrongly)."""
    root = tmp_path_factory.mktemp("order")
    for i in range(2):
        data = trajectory(400, obs_dim=6, act_dim=2, episode=100, seed=i)
        data["action"] = np.clip(data["obs"][:-1, :2], -2, 2)  # easy to learn from obs
        write_fork_history(root / "data" / "reach" / f"trajectories_env_{i}.h5", data, chunk=150)
    cfg = write_config(root / "reach.yaml", {"reach_task": ("reach", "arm")})
    model = {**TINY, "token_order": "act,rew,obs"}
    train = TrainConfig(epochs=6, batch_size=16, lr=5e-3, warmup_ratio=0.05, trajectory_sparsity=2)
    pretrain([cfg], root / "data", "trained", root / "models", model, train)
    src = root / "models" / "trained" / "0006_epoch"
    fork = root / "fork" / "0006_epoch"
    fork.mkdir(parents=True)
    for name in ("model.pth", "metadata.json"):
        shutil.copy(src / name, fork / name)
    config = json.loads((src / "config.json").read_text())
    del config["token_order"], config["adaptkit_train"]
    (fork / "config.json").write_text(json.dumps(config))
    entries = load_dataset_configs([cfg], root / "data")
    return {"root": root, "fork": fork, "entries": entries}


def test_the_loss_check_finds_the_trained_order(trained):
    ckpt = load_checkpoint(trained["fork"])
    assert ckpt.config.token_order == "obs,act,rew" and not ckpt.token_order.settled
    data = own_task_data(ckpt, None, (), trained["entries"].values())
    assert list(data) == ["reach_task"]
    losses = order_losses(ckpt, data)
    assert losses["act,rew,obs"] < 0.5 * losses["obs,act,rew"]
    assert ckpt.config.token_order == "obs,act,rew"  # the check leaves the model as it was
    notes = NoteCollector()
    order = settle_token_order(ckpt, data, notes)
    assert order.order == "act,rew,obs" and order.settled
    assert ckpt.config.token_order == "act,rew,obs"  # the model now uses it
    (note,) = notes.notes
    assert "token order act,rew,obs" in note and "reach_task" in note and "loss" in note


def test_the_flag_and_the_record_win_without_a_check(trained):
    ckpt = load_checkpoint(trained["fork"], token_order="obs,act,rew")
    data = own_task_data(ckpt, None, (), trained["entries"].values())
    notes = NoteCollector()
    assert settle_token_order(ckpt, data, notes).order == "obs,act,rew"
    assert notes.notes == ["token order obs,act,rew (given with --token-order)"]
    recorded = load_checkpoint(trained["root"] / "models" / "trained")
    notes = NoteCollector()
    assert settle_token_order(recorded, data, notes).reason == "recorded in config.json"
    assert notes.notes == []  # the normal case: nothing to say


def test_no_data_or_an_untrained_model_keeps_the_config_guess(trained, tmp_path):
    fork = tmp_path / "fork"
    shutil.copytree(trained["fork"], fork)
    config = json.loads((fork / "config.json").read_text())
    (fork / "config.json").write_text(json.dumps({**config, **FORK_TRAINING_KEYS}))
    notes = NoteCollector()
    order = settle_token_order(load_checkpoint(fork), {}, notes)
    assert order.order == "act,rew,obs" and not order.settled
    assert "random_sample_frac" in notes.notes[0] and "no learning histories" in notes.notes[0]
    # the untrained initial model (0000_epoch) predicts equally badly in both orders
    untrained = load_checkpoint(trained["root"] / "models" / "trained" / "0000_epoch")
    untrained.token_order = order  # as if it were unrecorded
    data = own_task_data(untrained, None, (), trained["entries"].values())
    notes = NoteCollector()
    got = settle_token_order(untrained, data, notes)
    assert got.order == "act,rew,obs" and not got.settled
    assert "inconclusive" in notes.notes[0]
