"""HDF5 learning histories: exact round-trips, chunk layout, atomic writes."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest
from helpers_data import make_history, write_synthetic_history

from adaptkit.data.history import (
    HistoryWriter,
    list_history_files,
    read_history,
    read_task_metadata,
    write_task_metadata,
)
from adaptkit.errors import AdaptkitError


def _same(a, b) -> None:
    for key in ("obs", "action", "reward", "step_num"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))


def test_round_trip_with_odd_appends_across_chunks(tmp_path):
    h = make_history([37, 100, 64, 50], obs_dim=5, act_dim=3)
    path = tmp_path / "h.h5"
    with HistoryWriter(path, 5, 3, chunk_size=64) as w:
        i = 0
        for n in (0, 1, 63, 64, 65, 3, 1000):  # spans chunk boundaries, ends mid-chunk
            w.append(
                h.obs[i : i + n], h.action[i : i + n], h.reward[i : i + n], h.step_num[i : i + n]
            )
            i += n
    back = read_history(path)
    _same(back, h)
    assert back.obs.dtype == np.float32 and back.step_num.dtype == np.int32
    with h5py.File(path) as f:
        assert sorted(f.keys(), key=lambda k: int(k.split("-")[0])) == [
            "0-63",
            "64-127",
            "128-191",
            "192-250",
        ]
        assert set(f["0-63"].keys()) == {"proprio_observation", "action", "reward", "step_num"}
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind


def test_exception_inside_writer_leaves_no_file(tmp_path):
    h = make_history([100], obs_dim=4, act_dim=2)
    path = tmp_path / "h.h5"
    with pytest.raises(RuntimeError), HistoryWriter(path, 4, 2, chunk_size=30) as w:
        w.append(h.obs, h.action, h.reward, h.step_num)
        raise RuntimeError("simulated failure")
    assert list(tmp_path.iterdir()) == []


def test_killed_process_leaves_no_file_under_final_name(tmp_path):
    path = tmp_path / "h.h5"
    code = f"""
import os, numpy as np
from adaptkit.data.history import HistoryWriter
w = HistoryWriter({str(path)!r}, 3, 2, chunk_size=10)
w.append(np.zeros((25, 3)), np.zeros((25, 2)), np.zeros(25), np.arange(25))
os._exit(1)  # hard crash mid-write: no close, no cleanup
"""
    subprocess.run([sys.executable, "-c", code], check=False)
    assert not path.exists()
    with pytest.raises(AdaptkitError, match="no learning-history files"):
        list_history_files(tmp_path)  # the hidden temp file is not a history


def test_list_history_files_natural_order_and_errors(tmp_path):
    for i in (10, 2, 1):
        write_synthetic_history(tmp_path / f"history_{i}.h5", [20], obs_dim=3, act_dim=2)
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_history_files(tmp_path)] == [
        "history_1.h5",
        "history_2.h5",
        "history_10.h5",
    ]
    with pytest.raises(AdaptkitError, match="not found"):
        list_history_files(tmp_path / "missing")
    with pytest.raises(AdaptkitError, match="not found"):
        read_history(tmp_path / "missing.h5")
    (tmp_path / "bad.h5").write_text("not hdf5")
    with pytest.raises(AdaptkitError, match="bad.h5: not a readable HDF5"):
        read_history(tmp_path / "bad.h5")


def test_append_rejects_wrong_shapes(tmp_path):
    with HistoryWriter(tmp_path / "h.h5", 3, 2) as w, pytest.raises(ValueError, match="obs"):
        w.append(np.zeros((4, 5)), np.zeros((4, 2)), np.zeros(4), np.arange(4))


def test_task_metadata_round_trip(tmp_path):
    folder = tmp_path / "minicheetah_trajectories"
    assert read_task_metadata(folder) is None
    write_task_metadata(folder, {"robot": "minicheetah", "obs_dim": 45})
    assert (folder / "minicheetah_trajectories.json").is_file()
    assert read_task_metadata(folder) == {"robot": "minicheetah", "obs_dim": 45}
