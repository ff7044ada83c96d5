"""Training windows against hand-computed examples; single-group, reproducible batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers_data import write_synthetic_history

from adaptkit.data.config import DatasetEntry
from adaptkit.data.history import write_history
from adaptkit.data.windows import (
    GroupBatchSampler,
    WindowDataset,
    collate_windows,
    make_loader,
    split_batch,
)
from adaptkit.errors import AdaptkitError
from adaptkit.meta import Stats

# episodes of 3, 2 and 4 steps: t = 0..8
STEPS = np.array([0, 1, 2, 0, 1, 0, 1, 2, 3])
STATS = {"t": Stats((10.0,), (2.0,), (0.0,), (1.0,))}


def _toy(tmp_path, sparsity=1, reward_scale=0.5, histories=1) -> DatasetEntry:
    t = np.arange(9, dtype=np.float32)
    for i in range(histories):
        # obs o_t = t, action a_t = 100 + t, reward r_t = t; second history offset by 1000
        off = 1000 * i
        write_history(
            tmp_path / "t" / f"h{i}.h5",
            (t + off)[:, None],
            (100 + t + off)[:, None],
            t + off,
            STEPS,
            chunk_size=4,
        )
    return DatasetEntry("t", "default", tmp_path / "t", "g", reward_scale, sparsity)


def _norm(x):
    return (np.asarray(x, np.float32) - 10.0) / np.float32(2.0 + 1e-6)


def test_window_across_an_episode_boundary(tmp_path):
    ds = WindowDataset([_toy(tmp_path)], STATS, context_len=3, stride=2)
    assert len(ds) == 3  # starts 0, 2, 4 (a window needs 4 steps; 9 steps)
    w = ds[1]  # steps 2..5: crosses the ends of episodes 0 and 1
    np.testing.assert_allclose(w["obs"].numpy(), _norm([[3], [4], [5]]), rtol=1e-6)
    assert w["prev_action"].tolist() == [[102], [103], [104]]
    assert w["prev_reward"].tolist() == [1.0, 1.5, 2.0]  # r[2..4] * 0.5
    assert w["target"].tolist() == [[103], [104], [105]]
    assert w["step_num"].tolist() == [0, 1, 0]
    assert w["step_num"].dtype == torch.int64 and w["obs"].dtype == torch.float32
    assert (w["group"], w["task"]) == ("g", "t")
    assert ds[2]["target"].tolist() == [[105], [106], [107]]


def test_episode_sparsity_two_keeps_every_other_episode(tmp_path):
    ds = WindowDataset([_toy(tmp_path, sparsity=2)], STATS, context_len=3, stride=1)
    # kept: episode 0 (t 0..2) and episode 2 (t 5..8) -> 7 steps, starts 0..3
    assert len(ds) == 4
    w = ds[1]  # kept positions 1..4 = t 1, 2, 5, 6
    np.testing.assert_allclose(w["obs"].numpy(), _norm([[2], [5], [6]]), rtol=1e-6)
    assert w["prev_action"].tolist() == [[101], [102], [105]]
    assert w["target"].tolist() == [[102], [105], [106]]
    assert w["step_num"].tolist() == [2, 0, 1]


def test_windows_never_cross_histories(tmp_path):
    ds = WindowDataset([_toy(tmp_path, histories=2)], STATS, context_len=3, stride=1)
    assert len(ds) == 2 * 6
    for i in range(len(ds)):
        a = ds[i]["prev_action"].numpy()
        assert a.max() - a.min() < 1000  # all from one history
    assert ds[5]["target"].tolist() == [[106], [107], [108]]  # last window of history 0
    assert ds[6]["prev_action"].tolist() == [[1100], [1101], [1102]]


def test_get_batch_equals_collated_samples(tmp_path):
    ds = WindowDataset([_toy(tmp_path, histories=2)], STATS, context_len=3, stride=1)
    idx = [7, 0, 11, 3]
    batch, ref = ds.get_batch(idx), collate_windows([ds[i] for i in idx])
    for key in ("obs", "prev_action", "prev_reward", "target", "step_num"):
        assert torch.equal(batch[key], ref[key]), key
    assert batch["group"] == ref["group"] == "g" and batch["task"] == ["t"] * 4


def test_too_short_and_missing_stats_are_errors(tmp_path):
    entry = _toy(tmp_path)
    with pytest.raises(AdaptkitError, match="no training windows"):
        WindowDataset([entry], STATS, context_len=9)
    with pytest.raises(AdaptkitError, match="no normalisation stats for task 't'"):
        WindowDataset([entry], {}, context_len=3)


def _two_groups(tmp_path) -> WindowDataset:
    entries, stats = [], {}
    for name, group, seed in (("a", "ga", 0), ("b", "gb", 1), ("c", "ga", 2)):
        write_synthetic_history(tmp_path / name / "h.h5", (40, 35), obs_dim=3, act_dim=2, seed=seed)
        entries.append(DatasetEntry(name, "default", tmp_path / name, group, 1.0, 1))
        stats[name] = Stats((0.0,) * 3, (1.0,) * 3, (0.0,) * 2, (1.0,) * 2)
    return WindowDataset(entries, stats, context_len=8, stride=3)


def test_group_batches_are_single_group_and_reproducible(tmp_path):
    ds = _two_groups(tmp_path)
    s = GroupBatchSampler(ds, batch_size=4, shuffle=True, seed=7)
    s.set_epoch(3)
    batches = list(s)
    assert len(batches) == len(s)
    assert sorted(i for b in batches for i in b) == list(range(len(ds)))
    assert all(len({ds.group_of(i) for i in b}) == 1 for b in batches)
    again = GroupBatchSampler(ds, batch_size=4, shuffle=True, seed=7)
    again.load_state_dict({"epoch": 3, "seed": 7})
    assert list(again) == batches
    again.set_epoch(4)
    assert list(again) != batches
    again.set_epoch(3, skip_batches=5)
    assert list(again) == batches[5:] and len(again) == len(batches) - 5


@pytest.mark.parametrize("drop_last", [False, True])
def test_sharding_gives_every_rank_the_same_count(tmp_path, drop_last):
    ds = _two_groups(tmp_path)
    full = list(GroupBatchSampler(ds, 4, seed=1, drop_last=drop_last))
    shards = [
        list(GroupBatchSampler(ds, 4, seed=1, drop_last=drop_last, rank=r, world_size=3))
        for r in range(3)
    ]
    assert len({len(s) for s in shards}) == 1
    assert len(shards[0]) == len(GroupBatchSampler(ds, 4, drop_last=drop_last, world_size=3))
    flat = [b for s in shards for b in s]
    assert all(b in flat for b in full) or drop_last
    if drop_last:
        assert all(len(b) == 4 for b in flat)


def test_make_loader_yields_collated_single_group_batches(tmp_path):
    ds = _two_groups(tmp_path)
    loader = make_loader(ds, batch_size=5, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader.sampler)
    b = batches[0]
    assert b["obs"].shape[1:] == (8, 3) and isinstance(b["group"], str)
    assert b["target"].shape == (len(b["task"]), 8, 2)


def test_split_batch_keeps_every_window_once_in_order(tmp_path):
    ds = WindowDataset([_toy(tmp_path, histories=2)], STATS, context_len=3, stride=1)
    batch = collate_windows([ds[i] for i in range(5)])
    pieces = split_batch(batch, 2)
    assert [len(p["obs"]) for p in pieces] == [2, 2, 1]
    assert all(p["group"] == "g" for p in pieces)
    assert [t for p in pieces for t in p["task"]] == batch["task"]
    for key in ("obs", "prev_action", "prev_reward", "target", "step_num"):
        assert torch.equal(torch.cat([p[key] for p in pieces]), batch[key])
    assert len(split_batch(batch, 8)) == 1
