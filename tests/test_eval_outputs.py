"""Group/stats resolution (native, zero-shot) and the written CSV / JSON / PNG."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from helpers_eval import (
    FakeEnv,
    in_memory_checkpoint,
    meta,
    resolution,
    stats,
    task_entry,
    tiny_model,
)

from adaptkit.errors import AdaptkitError
from adaptkit.evaluate import EvalSettings, ModelPolicy, compare, evaluate_policy, resolve
from adaptkit.model import GroupDims

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_resolve_native_uses_task_group_and_stats(registry):
    m = meta({"minicheetah_walking_ad": task_entry("mc_group", seed=3, reward_scale=0.5)})
    res = resolve(m, registry.robot("minicheetah"))
    assert (res.mode, res.group, res.reward_scale) == ("native", "mc_group", 0.5)
    assert res.task == "minicheetah_walking_ad"
    np.testing.assert_allclose(res.stats.obs_mean, stats(3)["obs_mean"], rtol=1e-6)


def test_resolve_zero_shot_without_data_averages_group_tasks(registry):
    m = meta(
        {
            "go1_walking_ad": task_entry("quad", seed=1),
            "go2_walking_ad": task_entry("quad", seed=2),
        }
    )
    res = resolve(m, registry.robot("minicheetah"))
    assert (res.mode, res.group, res.task) == ("zero-shot", "quad", None)
    assert "average of checkpoint tasks go1_walking_ad, go2_walking_ad" in res.stats_source
    expected = (np.asarray(stats(1)["obs_std"]) + np.asarray(stats(2)["obs_std"])) / 2
    np.testing.assert_allclose(res.stats.obs_std, expected, rtol=1e-6)


def test_resolve_zero_shot_with_robot_data_uses_its_stats(registry, tmp_path):
    from helpers_data import write_synthetic_dataset

    write_synthetic_dataset(tmp_path, robots=("minicheetah",), histories=1, episode_lengths=(20,))
    m = meta({"go1_walking_ad": task_entry("quad")})
    res = resolve(m, registry.robot("minicheetah"), data_dir=tmp_path / "data")
    assert res.mode == "zero-shot" and res.stats_source.startswith("robot data")
    assert not np.allclose(res.stats.obs_mean, stats(1)["obs_mean"])


def test_resolve_errors_name_the_field(registry):
    mc = registry.robot("minicheetah")
    two = meta({"a_task": task_entry("g_a"), "b_task": task_entry("g_b")})
    with pytest.raises(AdaptkitError, match="several groups fit it.*--group"):
        resolve(two, mc)
    assert resolve(two, mc, group="g_b").group == "g_b"
    with pytest.raises(
        AdaptkitError, match="--group: 'nope' is not in the checkpoint; groups: g_a"
    ):
        resolve(two, mc, group="nope")
    narrow = meta(
        {
            "x_task": {
                **task_entry("g_x"),
                "action_dim": 6,
                "acs_mean": [0.0] * 6,
                "acs_std": [1.0] * 6,
            }
        }
    )
    with pytest.raises(AdaptkitError, match="no group whose dims fit robot .minicheetah."):
        resolve(narrow, mc)


def _csv(path):
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_evaluate_writes_consistent_csv_json_png(registry, tmp_path):
    policy = ModelPolicy(tiny_model(), resolution(), context_len=6, name="tiny")
    rep = evaluate_policy(
        policy,
        registry.robot("minicheetah"),
        EvalSettings(episodes=3, seed=7),
        env=FakeEnv(4),
        out_dir=tmp_path,
        label="tiny",
    )
    rows = _csv(tmp_path / "episodes.csv")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (tmp_path / "curve.png").read_bytes()[:8] == PNG_MAGIC
    assert list(rows[0]) == ["episode", "env", "return", "length", "fell", "speed"]
    assert len(rows) == summary["num_episodes"] == 12
    for p in summary["per_episode"]:
        rets = [float(r["return"]) for r in rows if int(r["episode"]) == p["episode"]]
        assert p["n"] == len(rets) == 4
        assert p["mean"] == pytest.approx(np.mean(rets), abs=1e-5)
        assert p["std"] == pytest.approx(np.std(rets), abs=1e-5)
    assert summary["falls"] == sum(int(r["fell"]) for r in rows) == 6
    assert summary["fall_rate"] == 0.5
    assert summary["mean_return"] == pytest.approx(
        np.mean([float(r["return"]) for r in rows]), 1e-5
    )
    assert (
        summary["seed"] == 7 and summary["stats_source"] == "test" and summary["context_len"] == 6
    )
    assert summary["steps_per_s"] > 0 and rep.summary["label"] == "tiny"


def test_compare_same_envs_table_and_files(registry, tmp_path):
    model = tiny_model({"quadruped_locomotion": GroupDims(45, 12)})
    ckpt = in_memory_checkpoint(model, {"go1_walking_ad": task_entry("quadruped_locomotion")})
    rep = compare(
        registry.robot("minicheetah"),
        [("zero-shot", ckpt), ("again", ckpt)],
        EvalSettings(num_envs=2, episodes=2, episode_length=8, seed=5),
        out_dir=tmp_path,
    )
    table = {r["label"]: r for r in rep.rows}
    assert list(table) == ["demonstrator", "stand", "zero-shot", "again"]
    # same seeds and envs: the same deterministic policy gives the same returns
    assert table["zero-shot"]["per_episode_mean"] == table["again"]["per_episode_mean"]
    demo, stand = table["demonstrator"]["mean_return"], table["stand"]["mean_return"]
    r = table["zero-shot"]["mean_return"]
    assert table["zero-shot"]["normalised_score"] == pytest.approx((r - stand) / (demo - stand))
    assert table["zero-shot"]["pct_demonstrator"] == pytest.approx(100 * r / demo)
    assert table["demonstrator"]["normalised_score"] == pytest.approx(1.0)
    assert table["zero-shot"]["mode"] == "zero-shot"
    for name in ("compare.json", "compare.csv", "episodes.csv"):
        assert (tmp_path / name).is_file()
    assert (tmp_path / "compare.png").read_bytes()[:8] == PNG_MAGIC
    saved = json.loads((tmp_path / "compare.json").read_text())
    assert [row["label"] for row in saved["table"]] == list(table)
    labels = {row["label"] for row in _csv(tmp_path / "episodes.csv")}
    assert labels == set(table)
