"""How much of a dataset's in-window improvement the window position alone predicts
(adaptkit.data.improvement.position_predictability): the check that data teaching in-context
learning does not let a base "improve" by its position in the window."""

from __future__ import annotations

import numpy as np
import pytest

from adaptkit.data.history import HistoryWriter
from adaptkit.data.improvement import position_predictability
from adaptkit.errors import AdaptkitError

EPISODE = 32


def _write(path, qualities, seed):
    rng = np.random.default_rng(seed)
    n = EPISODE * len(qualities)
    reward = np.repeat(np.asarray(qualities, np.float32), EPISODE)
    reward += 0.001 * rng.normal(size=n).astype(np.float32)
    with HistoryWriter(path, 4, 2) as w:
        w.append(rng.normal(size=(n, 4)).astype(np.float32),
                 rng.uniform(-1, 1, (n, 2)).astype(np.float32), reward,
                 np.tile(np.arange(EPISODE, dtype=np.int32), len(qualities)))  # fmt: skip
    return path


def test_one_noise_cycle_per_window_start_is_told_by_the_position(tmp_path):
    # every history improves 0 → 1 → 2 and windows start at its first step: position = quality
    paths = [_write(tmp_path / f"h{i}.h5", [0, 1, 2, 2], i) for i in range(6)]
    got = position_predictability(paths, context_len=3 * EPISODE, stride=1000, bin_steps=8)
    assert got.windows == 6 and got.r2_position > 0.95
    assert got.quality_by_position[0] < got.quality_by_position[-1]


def test_shuffled_schedules_leave_the_position_blind_but_the_previous_episode_telling(tmp_path):
    # each history's quality follows its own random walk: only the context says how good
    rng = np.random.default_rng(0)
    paths = []
    for i in range(40):
        walk = np.cumsum(rng.normal(size=8)) + rng.normal() * 3
        paths.append(_write(tmp_path / f"h{i}.h5", walk.tolist(), i))
    got = position_predictability(paths, context_len=3 * EPISODE, stride=EPISODE, bin_steps=8)
    assert got.r2_position < 0.1
    assert got.r2_previous_episode > 0.5
    assert got.steps == got.windows * 3 * EPISODE


def test_histories_shorter_than_the_context_are_one_line(tmp_path):
    path = _write(tmp_path / "short.h5", [0, 1], 0)
    with pytest.raises(AdaptkitError, match="no training window of 320 steps"):
        position_predictability([path], context_len=10 * EPISODE, stride=EPISODE)
