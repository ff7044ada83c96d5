"""Dataset-config YAML: the seed's file, merging, strict errors, writing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adaptkit.data.config import (
    load_dataset_configs,
    test_entries,
    train_entries,
    write_dataset_config,
)
from adaptkit.errors import AdaptkitError

SEED_CONFIG = Path(__file__).parent.parent / "configs" / "minicheetah_finetune_config.yaml"

ENTRY = {
    "type": "default",
    "path": "go1_trajectories",
    "group": "quadruped_locomotion",
    "reward_scale": 1.0,
    "episode_sparsity": 2,
}


def _write(path: Path, data) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_seed_config_loads_unchanged(tmp_path):
    entries = load_dataset_configs([SEED_CONFIG], tmp_path)
    e = entries["minicheetah_walking_ad"]
    assert (e.type, e.group, e.reward_scale, e.episode_sparsity) == (
        "default",
        "minicheetah_locomotion",
        1.0,
        1,
    )
    assert e.path == (tmp_path / "minicheetah_trajectories").resolve()
    assert e.raw_path == "minicheetah_trajectories"


def test_several_files_merge_and_test_entries_held_out(tmp_path):
    other = _write(tmp_path / "b.yaml", {"go1_walking_ad": {**ENTRY, "type": "test"}})
    entries = load_dataset_configs([SEED_CONFIG, other], tmp_path)
    assert list(entries) == ["minicheetah_walking_ad", "go1_walking_ad"]
    assert [e.task for e in train_entries(entries)] == ["minicheetah_walking_ad"]
    assert [e.task for e in test_entries(entries)] == ["go1_walking_ad"]


def test_absolute_path_is_kept(tmp_path):
    cfg = _write(tmp_path / "a.yaml", {"t": {**ENTRY, "path": str(tmp_path / "abs")}})
    assert load_dataset_configs([cfg], "elsewhere")["t"].path == (tmp_path / "abs").resolve()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weight": 2}, r"'t\.weight' is not a known key"),
        ({"reward_scale": "big"}, r"'t\.reward_scale' must be a number"),
        ({"reward_scale": True}, r"'t\.reward_scale' must be a number"),
        ({"reward_scale": -1.0}, r"'t\.reward_scale' must be a finite number > 0"),
        ({"episode_sparsity": 1.5}, r"'t\.episode_sparsity' must be an integer >= 1"),
        ({"episode_sparsity": 0}, r"'t\.episode_sparsity' must be an integer >= 1"),
        ({"type": "train"}, r"'t\.type' must be 'default' or 'test'"),
        ({"path": 3}, r"'t\.path' must be a non-empty string"),
        ({"group": None}, r"'t\.group' must be a non-empty string"),
    ],
)
def test_bad_entries_name_file_and_key(tmp_path, change, message):
    cfg = _write(tmp_path / "a.yaml", {"t": {**ENTRY, **change}})
    with pytest.raises(AdaptkitError, match=message) as info:
        load_dataset_configs([cfg], tmp_path)
    assert str(cfg) in str(info.value) and "\n" not in str(info.value)


def test_missing_key_duplicate_task_and_bad_files(tmp_path):
    entry = dict(ENTRY)
    del entry["group"]
    cfg = _write(tmp_path / "a.yaml", {"t": entry})
    with pytest.raises(AdaptkitError, match=r"a\.yaml: 't' is missing key 'group'"):
        load_dataset_configs([cfg], tmp_path)
    a = _write(tmp_path / "b.yaml", {"t": ENTRY})
    b = _write(tmp_path / "c.yaml", {"t": ENTRY})
    with pytest.raises(AdaptkitError, match=r"c\.yaml: task 't' is already defined in .*b\.yaml"):
        load_dataset_configs([a, b], tmp_path)
    with pytest.raises(AdaptkitError, match=r"nope\.yaml: dataset config not found"):
        load_dataset_configs([tmp_path / "nope.yaml"], tmp_path)
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(AdaptkitError, match=r"list\.yaml: expected a mapping"):
        load_dataset_configs([tmp_path / "list.yaml"], tmp_path)
    (tmp_path / "evil.yaml").write_text("t: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(AdaptkitError, match=r"evil\.yaml: not valid YAML"):
        load_dataset_configs([tmp_path / "evil.yaml"], tmp_path)


def test_write_merges_without_losing_entries(tmp_path):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(SEED_CONFIG.read_text())
    write_dataset_config(cfg, {"go1_walking_ad": ENTRY})
    entries = load_dataset_configs([cfg], tmp_path)
    assert list(entries) == ["minicheetah_walking_ad", "go1_walking_ad"]
    # DatasetEntry objects write back their relative path
    write_dataset_config(tmp_path / "new.yaml", [entries["go1_walking_ad"]])
    assert yaml.safe_load((tmp_path / "new.yaml").read_text()) == {"go1_walking_ad": ENTRY}
    with pytest.raises(AdaptkitError, match="episode_sparsity"):
        write_dataset_config(cfg, {"x": {**ENTRY, "episode_sparsity": 0}})
    assert list(load_dataset_configs([cfg], tmp_path)) == [
        "minicheetah_walking_ad",
        "go1_walking_ad",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.yaml", "new.yaml"]
