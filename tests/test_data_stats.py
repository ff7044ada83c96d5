"""stats.json: streaming moments equal numpy over the concatenated data; merge on save."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_data import write_synthetic_history

from adaptkit.data.config import DatasetEntry
from adaptkit.data.history import write_history
from adaptkit.data.stats import STD_FLOOR, compute_stats, load_stats, save_stats, stats_for_entry
from adaptkit.errors import AdaptkitError


def test_stats_equal_numpy_over_concatenated_histories(tmp_path):
    hs = [
        write_synthetic_history(tmp_path / f"h{i}.h5", lengths, obs_dim=6, act_dim=3, seed=i)
        for i, lengths in enumerate([(70, 30), (45,), (64, 64, 1)])
    ]
    stats = compute_stats(sorted(tmp_path.glob("*.h5")))
    obs = np.concatenate([h.obs for h in hs]).astype(np.float64)
    act = np.concatenate([h.action for h in hs]).astype(np.float64)
    np.testing.assert_allclose(stats["obs_mean"], obs.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(stats["obs_std"], obs.std(0, ddof=1), rtol=1e-10)
    np.testing.assert_allclose(stats["acs_mean"], act.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(stats["acs_std"], act.std(0, ddof=1), rtol=1e-10)
    assert set(stats) == {"obs_mean", "obs_std", "acs_mean", "acs_std"}


def test_large_offset_is_stable_and_constant_dim_is_floored(tmp_path):
    rng = np.random.default_rng(0)
    obs = (1e4 + 1e-2 * rng.normal(size=(500, 2))).astype(np.float32)
    obs[:, 1] = 1.0  # a constant dimension, like the locomotion command
    act = rng.normal(size=(500, 1)).astype(np.float32)
    write_history(tmp_path / "h.h5", obs, act, np.zeros(500), np.arange(500), chunk_size=37)
    stats = compute_stats([tmp_path / "h.h5"])
    expected = obs.astype(np.float64).std(0, ddof=1)
    np.testing.assert_allclose(stats["obs_std"][0], expected[0], rtol=1e-9)
    assert stats["obs_std"][1] == STD_FLOOR


def test_nan_is_an_error_naming_the_chunk(tmp_path):
    obs = np.zeros((10, 2), np.float32)
    obs[7, 1] = np.nan
    write_history(
        tmp_path / "h.h5", obs, np.ones((10, 1)), np.zeros(10), np.arange(10), chunk_size=5
    )
    with pytest.raises(AdaptkitError, match=r"h\.h5: chunk '5-9' contains NaN"):
        compute_stats([tmp_path / "h.h5"])


def test_save_merges_and_load_checks(tmp_path):
    path = tmp_path / "stats.json"
    a = {"obs_mean": [0.0], "obs_std": [1.0], "acs_mean": [0.0, 1.0], "acs_std": [1.0, 2.0]}
    save_stats(path, {"a": a})
    save_stats(path, {"b": {**a, "obs_mean": [5.0]}})
    loaded = load_stats(path)
    assert list(loaded) == ["a", "b"] and loaded["b"]["obs_mean"] == [5.0]
    save_stats(path, {"c": a}, merge=False)
    assert list(load_stats(path)) == ["c"]
    path.write_text(json.dumps({"a": {**a, "obs_std": [1.0, 2.0]}}))
    with pytest.raises(AdaptkitError, match="'a': obs_mean and obs_std differ"):
        load_stats(path)
    path.write_text(json.dumps({"a": {"obs_mean": [0.0]}}))
    with pytest.raises(AdaptkitError, match=r"stats\.json: 'a\.obs_std' must be"):
        load_stats(path)


def test_stats_for_entry_loads_or_computes(tmp_path):
    folder = tmp_path / "t_traj"
    write_synthetic_history(folder / "h.h5", (30, 30), obs_dim=2, act_dim=1)
    entry = DatasetEntry("t", "default", folder, "g", 1.0, 1)
    computed = stats_for_entry(entry)
    assert computed == compute_stats([folder / "h.h5"])
    fake = {"obs_mean": [9.0, 9.0], "obs_std": [1.0, 1.0], "acs_mean": [0.0], "acs_std": [1.0]}
    save_stats(tmp_path / "stats.json", {"t": fake})
    assert stats_for_entry(entry, tmp_path / "stats.json") == fake
    assert stats_for_entry(entry, tmp_path / "absent.json") == computed
