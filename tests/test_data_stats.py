"""Stats: streaming moments equal numpy over the concatenated data; stats.json merges on save;
the one order in which a task's stats are chosen."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_data import write_synthetic_history
from helpers_model import tiny_meta

from adaptkit.data.history import write_history
from adaptkit.data.moments import STD_FLOOR
from adaptkit.data.stats import compute_stats
from adaptkit.data.stats_file import choose_stats, load_stats_file, save_stats_file
from adaptkit.errors import AdaptkitError
from adaptkit.meta import Stats


def test_stats_equal_numpy_over_concatenated_histories(tmp_path):
    hs = [
        write_synthetic_history(tmp_path / f"h{i}.h5", lengths, obs_dim=6, act_dim=3, seed=i)
        for i, lengths in enumerate([(70, 30), (45,), (64, 64, 1)])
    ]
    stats = compute_stats(sorted(tmp_path.glob("*.h5")))
    obs = np.concatenate([h.obs for h in hs]).astype(np.float64)
    act = np.concatenate([h.action for h in hs]).astype(np.float64)
    np.testing.assert_allclose(stats.obs_mean, obs.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(stats.obs_std, obs.std(0, ddof=1), rtol=1e-10)
    np.testing.assert_allclose(stats.acs_mean, act.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(stats.acs_std, act.std(0, ddof=1), rtol=1e-10)
    assert set(stats.to_dict()) == {"obs_mean", "obs_std", "acs_mean", "acs_std"}


def test_large_offset_is_stable_and_constant_dim_is_floored(tmp_path):
    rng = np.random.default_rng(0)
    obs = (1e4 + 1e-2 * rng.normal(size=(500, 2))).astype(np.float32)
    obs[:, 1] = 1.0  # a constant dimension, like the locomotion command
    act = rng.normal(size=(500, 1)).astype(np.float32)
    write_history(tmp_path / "h.h5", obs, act, np.zeros(500), np.arange(500), chunk_size=37)
    stats = compute_stats([tmp_path / "h.h5"])
    expected = obs.astype(np.float64).std(0, ddof=1)
    np.testing.assert_allclose(stats.obs_std[0], expected[0], rtol=1e-9)
    assert stats.obs_std[1] == STD_FLOOR


def test_nan_is_an_error_naming_the_chunk(tmp_path):
    obs = np.zeros((10, 2), np.float32)
    obs[7, 1] = np.nan
    write_history(
        tmp_path / "h.h5", obs, np.ones((10, 1)), np.zeros(10), np.arange(10), chunk_size=5
    )
    with pytest.raises(
        AdaptkitError,
        match=r"h\.h5: chunk '5-9': dataset 'proprio_observation' has NaN/inf at step 7 \(dim 1\)",
    ):
        compute_stats([tmp_path / "h.h5"])


def test_save_merges_and_load_checks(tmp_path):
    path = tmp_path / "stats.json"
    a = {"obs_mean": [0.0], "obs_std": [1.0], "acs_mean": [0.0, 1.0], "acs_std": [1.0, 2.0]}
    save_stats_file(path, {"a": Stats.parse(a, "a")})
    save_stats_file(path, {"b": Stats.parse({**a, "obs_mean": [5.0]}, "b")})
    loaded = load_stats_file(path)
    assert list(loaded) == ["a", "b"] and loaded["b"].obs_mean == (5.0,)
    save_stats_file(path, {"c": Stats.parse(a, "c")}, merge=False)
    assert list(load_stats_file(path)) == ["c"]
    path.write_text(json.dumps({"a": {**a, "obs_std": [1.0, 2.0]}}))
    with pytest.raises(AdaptkitError, match="'a': obs_mean and obs_std differ"):
        load_stats_file(path)
    path.write_text(json.dumps({"a": {"obs_mean": [0.0]}}))
    with pytest.raises(AdaptkitError, match=r"stats\.json: 'a': 'obs_std' must be"):
        load_stats_file(path)


def test_choose_stats_follows_the_written_order(tmp_path):
    folder = tmp_path / "t_traj"
    write_synthetic_history(folder / "h.h5", (30, 30), obs_dim=2, act_dim=1)
    computed = compute_stats([folder / "h.h5"])

    def fake(v: float) -> Stats:
        return Stats((v, v), (1.0, 1.0), (0.0,), (1.0,))

    for name, v in (("explicit", 1.0), ("plugin", 2.0), ("data", 3.0)):
        save_stats_file(tmp_path / f"{name}.json", {"t": fake(v)})
    files = {n: tmp_path / f"{n}.json" for n in ("explicit", "plugin", "data")}

    def pick(**kw):
        return choose_stats("t", compute=lambda: computed, **kw)

    everything = dict(
        explicit=files["explicit"], plugin_file=files["plugin"], data_file=files["data"]
    )
    assert pick(**everything) == (fake(1.0), str(files["explicit"]))
    assert pick(plugin_file=files["plugin"], data_file=files["data"])[0] == fake(2.0)
    assert pick(data_file=files["data"])[0] == fake(3.0)
    assert pick(data_file=tmp_path / "absent.json") == (
        computed,
        "computed from the learning histories",
    )
    # the checkpoint's own entry beats everything (a resumed or fine-tuned model keeps its stats)
    meta = tiny_meta()
    assert pick(checkpoint=meta, **everything)[0] == fake(1.0)  # task 't' is not in it
    got = choose_stats("reach", checkpoint=meta, explicit=files["explicit"])
    assert got == (meta["reach"].stats, "checkpoint task 'reach'")
    assert choose_stats("t") is None
    with pytest.raises(AdaptkitError, match="stats file .*nope.json: not found"):
        choose_stats("t", explicit=tmp_path / "nope.json")
