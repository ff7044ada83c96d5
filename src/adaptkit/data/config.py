"""Dataset-config YAML: task name -> {type, path, group, reward_scale, episode_sparsity}.

Exactly the Vintix seed's format; several files merge into one dict of tasks. Loading is strict
(unknown/missing/duplicate keys and wrong types are errors naming the file and key) and uses a
SafeLoader only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from adaptkit.data.history import list_history_files
from adaptkit.errors import AdaptkitError, short_repr
from adaptkit.fileio import atomic_file, read_yaml, resolve_path
from adaptkit.robot import RobotSpec

ENTRY_TYPES = ("default", "test")  # default = train on it; test = held out
ENTRY_KEYS = ("type", "path", "group", "reward_scale", "episode_sparsity")


@dataclass(frozen=True)
class DatasetEntry:
    """One task of a dataset config, with its data folder resolved against --data_dir."""

    task: str
    type: str
    path: Path  # resolved folder of the task's history files
    group: str
    reward_scale: float
    episode_sparsity: int
    raw_path: str = ""  # `path` as written in the YAML (relative to --data_dir), for rewriting
    source: Path | None = None  # the YAML file it came from, for error messages
    # (rank, ranks): this process reads only history files rank, rank + ranks, ... (pretraining
    # across nodes with sharded data); (0, 1): all of them
    shard: tuple[int, int] = (0, 1)

    @classmethod
    def for_robot(cls, spec: RobotSpec, data_dir: str | Path) -> DatasetEntry:
        """The entry a robot plugin declares, its folder under `data_dir`."""
        return cls(
            task=spec.task,
            type="default",
            path=resolve_path(Path(data_dir) / spec.data_path),
            group=spec.group,
            reward_scale=spec.reward_scale,
            episode_sparsity=spec.episode_sparsity,
            raw_path=spec.data_path,
        )

    @property
    def is_train(self) -> bool:
        return self.type == "default"

    def history_files(self, hint: str = "") -> list[Path]:
        """The task's history files; a missing folder or an empty one is an error (+ `hint`)."""
        if not self.path.is_dir():
            raise AdaptkitError(f"no data for task '{self.task}': {self.path} does not exist{hint}")
        try:
            return self.shard_of(list_history_files(self.path))
        except AdaptkitError as exc:
            raise AdaptkitError(f"no data for task '{self.task}': {exc}{hint}") from None

    def shard_of(self, files: list[Path]) -> list[Path]:
        """This process's part of the task's history files (`shard`); every rank needs one."""
        rank, ranks = self.shard
        if ranks > len(files):
            raise AdaptkitError(
                f"task '{self.task}': {len(files)} histories in {self.path} cannot be shared "
                f"among {ranks} processes reading only their part; give each at least one, or "
                "train without --shard-data"
            )
        return files[rank::ranks]

    def to_yaml(self) -> dict[str, Any]:
        """The YAML mapping of this entry (without its task key)."""
        return {
            "type": self.type,
            "path": self.raw_path or str(self.path),
            "group": self.group,
            "reward_scale": self.reward_scale,
            "episode_sparsity": self.episode_sparsity,
        }


def _check_entry(where: str, task: Any, raw: Any) -> dict[str, Any]:
    """Validate one raw YAML entry; return it with normalised value types."""
    if not isinstance(task, str) or not task:
        raise AdaptkitError(
            f"{where}: top-level key {short_repr(task)} must be a task name (a string)"
        )
    if not isinstance(raw, Mapping):
        raise AdaptkitError(
            f"{where}: '{task}' must be a mapping of {', '.join(ENTRY_KEYS)}, "
            f"got {type(raw).__name__}"
        )
    unknown = [k for k in raw if k not in ENTRY_KEYS]
    if unknown:
        raise AdaptkitError(
            f"{where}: '{task}.{unknown[0]}' is not a known key (expected {', '.join(ENTRY_KEYS)})"
        )
    missing = [k for k in ENTRY_KEYS if k not in raw]
    if missing:
        raise AdaptkitError(f"{where}: '{task}' is missing key '{missing[0]}'")

    def bad(key: str, expected: str) -> AdaptkitError:
        return AdaptkitError(
            f"{where}: '{task}.{key}' must be {expected}, got {short_repr(raw[key])}"
        )

    if raw["type"] not in ENTRY_TYPES:
        raise bad("type", "'default' or 'test'")
    for key in ("path", "group"):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise bad(key, "a non-empty string")
    scale = raw["reward_scale"]
    # bool is an int subclass: `reward_scale: yes` must not pass as 1
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise bad("reward_scale", "a number")
    if not math.isfinite(scale) or scale <= 0:
        raise bad("reward_scale", "a finite number > 0")
    sparsity = raw["episode_sparsity"]
    if isinstance(sparsity, bool) or not isinstance(sparsity, int) or sparsity < 1:
        raise bad("episode_sparsity", "an integer >= 1")
    return {
        "type": raw["type"],
        "path": raw["path"],
        "group": raw["group"],
        "reward_scale": float(scale),
        "episode_sparsity": int(sparsity),
    }


def _read_yaml(path: Path) -> dict[str, Any]:
    data = read_yaml(path, "dataset config")  # a task key given twice is an error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AdaptkitError(
            f"{path}: expected a mapping of task name -> entry, got {type(data).__name__}"
        )
    return data


def load_dataset_config(path: str | Path, data_dir: str | Path) -> dict[str, DatasetEntry]:
    """One dataset-config file; relative `path`s resolve against data_dir."""
    path = Path(path)
    data = _read_yaml(path)
    if not data:
        raise AdaptkitError(f"{path}: dataset config has no tasks")
    entries = {}
    for task, raw in data.items():
        e = _check_entry(str(path), task, raw)
        folder = Path(e["path"]).expanduser()
        resolved = folder if folder.is_absolute() else Path(data_dir) / folder
        entries[task] = DatasetEntry(
            task=task,
            type=e["type"],
            path=resolve_path(resolved),
            group=e["group"],
            reward_scale=e["reward_scale"],
            episode_sparsity=e["episode_sparsity"],
            raw_path=e["path"],
            source=path,
        )
    return entries


def load_dataset_configs(
    paths: Iterable[str | Path], data_dir: str | Path
) -> dict[str, DatasetEntry]:
    """Several config files merged, in order; a task defined in two files is an error."""
    merged: dict[str, DatasetEntry] = {}
    paths = list(paths)
    if not paths:
        raise AdaptkitError("no dataset config given")
    for path in paths:
        for task, entry in load_dataset_config(path, data_dir).items():
            if task in merged:
                raise AdaptkitError(
                    f"{path}: task '{task}' is already defined in {merged[task].source}"
                )
            merged[task] = entry
    return merged


def _values(entries: Mapping[str, DatasetEntry] | Iterable[DatasetEntry]) -> list[DatasetEntry]:
    return list(entries.values()) if isinstance(entries, Mapping) else list(entries)


def train_entries(
    entries: Mapping[str, DatasetEntry] | Iterable[DatasetEntry],
) -> list[DatasetEntry]:
    """Entries with type 'default' (trained on), in config order."""
    return [e for e in _values(entries) if e.type == "default"]


def test_entries(
    entries: Mapping[str, DatasetEntry] | Iterable[DatasetEntry],
) -> list[DatasetEntry]:
    """Entries with type 'test' (held out), in config order."""
    return [e for e in _values(entries) if e.type == "test"]


test_entries.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported


def robot_entry(
    spec: RobotSpec, data_dir: str | Path, config_paths: Iterable[str | Path] = ()
) -> tuple[DatasetEntry, list[str]]:
    """The robot's training entry: its task in the given configs, else its plugin's entry.

    Also returns the configs' other training tasks (which a fine-tune of this robot ignores).
    """
    config_paths = list(config_paths)
    if not config_paths:
        return DatasetEntry.for_robot(spec, data_dir), []
    train = {e.task: e for e in train_entries(load_dataset_configs(config_paths, data_dir))}
    if spec.task not in train:
        listed = ", ".join(sorted(train)) or "none"
        raise AdaptkitError(
            f"dataset config(s) {', '.join(map(str, config_paths))} have no training entry for "
            f"robot '{spec.name}' (task '{spec.task}'); tasks found: {listed}"
        )
    entry = train[spec.task]
    if entry.group != spec.group:
        raise AdaptkitError(
            f"{entry.source}: task '{spec.task}' is in group '{entry.group}' but robot "
            f"'{spec.name}' declares group '{spec.group}'"
        )
    return entry, sorted(t for t in train if t != spec.task)


def write_dataset_config(
    path: str | Path,
    entries: Mapping[str, DatasetEntry | Mapping[str, Any]] | Iterable[DatasetEntry],
) -> Path:
    """Add/replace entries in a dataset config, keeping the file's other tasks; atomic write.

    `entries` may be DatasetEntry objects or raw mappings such as RobotSpec.dataset_entry().
    """
    path = Path(path)
    current = _read_yaml(path) if path.is_file() else {}
    items = (
        list(entries.items()) if isinstance(entries, Mapping) else [(e.task, e) for e in entries]
    )
    for task, entry in items:
        raw = entry.to_yaml() if isinstance(entry, DatasetEntry) else dict(entry)
        current[task] = _check_entry(f"{path} (new entry)", task, raw)
    with atomic_file(path, "w", "dataset config") as fh:
        yaml.safe_dump(current, fh, sort_keys=False, default_flow_style=False)
    return path
