"""The one owner of checkpoint metadata: tasks, groups, normalisation stats, reward scale, token
order and observation layout.

`metadata.json` (reference layout: task → {group_name, observation_shape, action_dim,
action_type, reward_scale, obs_mean, obs_std, acs_mean, acs_std, ...}), `config.json` and
`stats.json` are parsed and validated here and nowhere else; everything else in adaptkit works
with the typed objects below.

Rules, written once:
- a task entry is complete (every reference field present), dims are positive integers, the
  stats are lists of finite numbers of the right lengths, and every std is >= 0 (a zero std is
  legal: the reference divides by std + 1e-6; stats adaptkit computes are floored at 1e-3);
- all tasks of a group have the same obs/action dims (the group's dims are its first task's);
- unknown keys of a task entry pass through unchanged.

Which stats a task uses, in this order (`choose_stats`):
1. the checkpoint's own entry for the task (a fine-tuned or resumed model keeps its stats);
2. an explicitly given stats.json (`--stats`) that has the task;
3. the robot plugin's stats file, if it has the task;
4. `stats.json` in the data folder, if it has the task;
5. computed from the task's learning histories (and recorded in the checkpoint);
6. evaluation of a robot the checkpoint has never seen, with no data: the mean of the chosen
   group's task stats (`CheckpointMeta.group_mean_stats`).
A source whose entry for the task has other dims than wanted (e.g. a stats.json of the 45-dim
histories when the task runs 33-dim ones) is skipped.

The token order of a checkpoint (`config_token_order`), in this order:
1. given explicitly (`--token-order`);
2. recorded in config.json (`token_order`; adaptkit always records it);
3. not recorded: the quadruped fork's own training keys in config.json (`random_sample_frac`,
   `finetune_*`) mean the fork's act,rew,obs; otherwise the released obs,act,rew. Such a guess is
   unsettled: with data of the checkpoint's own tasks at hand, adaptkit.token_order's loss check
   decides instead.

A task adaptkit writes records its robot's observation layout (`obs_layout`, an extra key) so
evaluation picks the layout without guessing from dims.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.fileio import os_cause, read_yaml, write_json_atomic
from adaptkit.model.config import TOKEN_ORDERS, GroupDims, ModelConfig

STATS_KEYS = ("obs_mean", "obs_std", "acs_mean", "acs_std")
REFERENCE_FIELDS = (
    "group_name",
    "observation_shape",
    "action_dim",
    "action_type",
    "reward_scale",
    *STATS_KEYS,
)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _unique_keys(where: Path) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:  # plain json lets the last one silently win
                raise AdaptkitError(f"{where}: duplicate key {key!r}")
            out[key] = value
        return out

    return hook


def read_json(path: Path) -> Any:
    """A JSON file, with a missing or malformed file (or a key given twice in one object) as a
    one-line AdaptkitError."""
    try:
        return json.loads(Path(path).read_text(), object_pairs_hook=_unique_keys(path))
    except FileNotFoundError:
        raise AdaptkitError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AdaptkitError(f"{path}: unreadable ({os_cause(exc)})") from None
    except json.JSONDecodeError as exc:
        raise AdaptkitError(f"{path}: invalid JSON ({exc})") from None


# -- stats ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stats:
    """Per-task normalisation stats: observation and action mean / std (float tuples)."""

    obs_mean: tuple[float, ...]
    obs_std: tuple[float, ...]
    acs_mean: tuple[float, ...]
    acs_std: tuple[float, ...]

    @property
    def obs_dim(self) -> int:
        return len(self.obs_mean)

    @property
    def act_dim(self) -> int:
        return len(self.acs_mean)

    @classmethod
    def parse(cls, raw: Any, where: str, dims: GroupDims | None = None) -> Stats:
        """From a mapping with the four STATS_KEYS (lists of finite numbers, std >= 0), of the
        lengths `dims` gives (else: each mean as long as its std)."""
        if not isinstance(raw, Mapping):
            raise AdaptkitError(f"{where} must map {', '.join(STATS_KEYS)} to lists")
        values: dict[str, tuple[float, ...]] = {}
        for key in STATS_KEYS:
            v = raw.get(key)
            if hasattr(v, "tolist"):
                v = v.tolist()
            if not isinstance(v, list | tuple) or not v or not all(_is_number(x) for x in v):
                raise AdaptkitError(f"{where}: '{key}' must be a non-empty list of finite numbers")
            values[key] = tuple(float(x) for x in v)
        if dims is not None:
            cls(**values).check_dims(dims, where)
        for prefix in ("obs", "acs"):
            if len(values[f"{prefix}_mean"]) != len(values[f"{prefix}_std"]):
                raise AdaptkitError(f"{where}: {prefix}_mean and {prefix}_std differ in length")
            if min(values[f"{prefix}_std"]) < 0:
                raise AdaptkitError(f"{where}: '{prefix}_std' must be >= 0")
        return cls(**values)

    def check_dims(self, dims: GroupDims, where: str) -> Stats:
        for key in STATS_KEYS:
            n, want = len(getattr(self, key)), dims.obs_dim if key[:3] == "obs" else dims.act_dim
            if n != want:
                raise AdaptkitError(f"{where}: '{key}' has {n} values, expected {want}")
        return self

    def to_dict(self) -> dict[str, list[float]]:
        return {k: list(getattr(self, k)) for k in STATS_KEYS}

    def array(self, key: str) -> np.ndarray:
        return np.asarray(getattr(self, key), np.float32)

    @classmethod
    def mean_of(cls, stats: Iterable[Stats]) -> Stats:
        items = list(stats)
        return cls(
            **{
                k: tuple(np.mean([getattr(s, k) for s in items], axis=0).tolist())
                for k in STATS_KEYS
            }
        )


def load_stats_file(path: str | Path) -> dict[str, Stats]:
    """A stats.json: {task: {obs_mean, obs_std, acs_mean, acs_std}}."""
    path = Path(path)
    if not path.is_file():
        raise AdaptkitError(f"{path}: stats file not found")
    data = read_json(path)
    if not isinstance(data, dict):
        raise AdaptkitError(f"{path}: expected a mapping of task -> stats")
    return {task: Stats.parse(s, f"{path}: '{task}'") for task, s in data.items()}


def save_stats_file(path: str | Path, stats: Mapping[str, Stats], merge: bool = True) -> Path:
    """Write {task: stats}; with merge, tasks already in the file and not in `stats` are kept."""
    path = Path(path)
    current = load_stats_file(path) if merge and path.is_file() else {}
    current.update(stats)
    return write_json_atomic(path, {t: s.to_dict() for t, s in current.items()}, "stats file")


# -- task and checkpoint metadata ------------------------------------------------------------------
@dataclass(frozen=True)
class TaskMeta:
    """One task of a checkpoint: its group, dims, reward scale and stats (+ pass-through keys)."""

    task: str
    group: str
    dims: GroupDims
    reward_scale: float
    stats: Stats
    extra: Mapping[str, Any] = field(default_factory=dict)  # episode_sparsity, robot, others

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @classmethod
    def new(
        cls,
        task: str,
        group: str,
        dims: GroupDims,
        stats: Stats,
        reward_scale: float = 1.0,
        episode_sparsity: int = 1,
        robot: str | None = None,
        obs_layout: str | None = None,
    ) -> TaskMeta:
        """A complete entry for a task adaptkit trains; the stats must fit the dims."""
        stats.check_dims(dims, f"stats for task {task!r}")
        if not _is_number(reward_scale):
            raise AdaptkitError(f"task {task!r}: reward_scale must be a finite number")
        extra: dict[str, Any] = {"episode_sparsity": int(episode_sparsity)}
        if robot:
            extra["robot"] = robot
        if obs_layout:
            extra["obs_layout"] = obs_layout
        return cls(task, group, dims, float(reward_scale), stats, extra)

    @classmethod
    def parse(cls, task: str, entry: Any, where: str) -> TaskMeta:
        """One metadata.json entry, checked complete and self-consistent."""
        at = f"{where}: task {task!r}"
        if not isinstance(entry, dict):
            raise AdaptkitError(f"{at} must be an object, got {type(entry).__name__}")
        missing = [f for f in REFERENCE_FIELDS if f not in entry]
        if missing:
            raise AdaptkitError(
                f"{at} is incomplete, missing {', '.join(missing)} (the reference add_task writes "
                "such entries; add the robot with adaptkit to get a complete one)"
            )
        group = entry["group_name"]
        if not isinstance(group, str) or not group:
            raise AdaptkitError(f"{at} field 'group_name' must be a non-empty string")
        shape = entry["observation_shape"]
        proprio = shape.get("proprio") if isinstance(shape, dict) else None
        if (
            not isinstance(proprio, list | tuple)
            or len(proprio) != 1
            or not isinstance(proprio[0], int)
            or isinstance(proprio[0], bool)
            or proprio[0] < 1
        ):
            raise AdaptkitError(
                f"{at} field 'observation_shape' must be {{\"proprio\": [d]}}, got {shape!r}"
            )
        act_dim = entry["action_dim"]
        if not isinstance(act_dim, int) or isinstance(act_dim, bool) or act_dim < 1:
            raise AdaptkitError(f"{at} field 'action_dim' must be a positive integer")
        if entry["action_type"] != "continuous":
            raise AdaptkitError(
                f"{at} field 'action_type' must be 'continuous', got {entry['action_type']!r}"
            )
        if not _is_number(entry["reward_scale"]):
            raise AdaptkitError(f"{at} field 'reward_scale' must be a finite number")
        dims = GroupDims(int(proprio[0]), int(act_dim))
        stats = Stats.parse(entry, at, dims)
        extra = {k: v for k, v in entry.items() if k not in REFERENCE_FIELDS}
        return cls(task, group, dims, float(entry["reward_scale"]), stats, extra)

    @property
    def robot(self) -> str | None:
        return self.extra.get("robot")

    @property
    def obs_layout(self) -> str | None:
        """The observation layout recorded for the task (None: not recorded, e.g. the fork's)."""
        layout = self.extra.get("obs_layout")
        return layout if isinstance(layout, str) else None

    def to_json(self) -> dict[str, Any]:
        """The reference entry (extra keys after the reference fields)."""
        return {
            "group_name": self.group,
            "observation_shape": {"proprio": [self.dims.obs_dim]},
            "action_dim": self.dims.act_dim,
            "action_type": "continuous",
            "reward_scale": self.reward_scale,
            **self.stats.to_dict(),
            **self.extra,
        }


class CheckpointMeta:
    """All tasks of a checkpoint (metadata.json), with the groups derived from them."""

    def __init__(self, tasks: Iterable[TaskMeta] = ()) -> None:
        self.tasks: dict[str, TaskMeta] = {}
        for t in tasks:
            self.add(t)

    @classmethod
    def parse(cls, raw: Any, where: str = "metadata.json") -> CheckpointMeta:
        if not isinstance(raw, dict) or not raw:
            raise AdaptkitError(
                f"{where}: expected an object of task → metadata with at least one task"
            )
        return cls(TaskMeta.parse(task, entry, where) for task, entry in raw.items())

    @classmethod
    def read(cls, path: Path) -> CheckpointMeta:
        return cls.parse(read_json(path), str(path))

    def add(self, task: TaskMeta, where: str = "metadata") -> None:
        """Add (or replace) a task; its dims must agree with its group's other tasks."""
        for other in self.tasks.values():
            if other.group == task.group and other.task != task.task and other.dims != task.dims:
                raise AdaptkitError(
                    f"{where}: task {task.task!r} has obs/act dims {task.dims.obs_dim}/"
                    f"{task.dims.act_dim} but group {task.group!r} (from task {other.task!r}) "
                    f"has {other.dims.obs_dim}/{other.dims.act_dim}"
                )
        self.tasks[task.task] = task

    def copy(self) -> CheckpointMeta:
        return CheckpointMeta(self.tasks.values())

    def __contains__(self, task: object) -> bool:
        return task in self.tasks

    def __getitem__(self, task: str) -> TaskMeta:
        return self.tasks[task]

    def __len__(self) -> int:
        return len(self.tasks)

    @property
    def groups(self) -> dict[str, GroupDims]:
        """group → dims, in the order groups first appear."""
        out: dict[str, GroupDims] = {}
        for t in self.tasks.values():
            out.setdefault(t.group, t.dims)
        return out

    @property
    def task2group(self) -> dict[str, str]:
        return {t.task: t.group for t in self.tasks.values()}

    def group_tasks(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for t in self.tasks.values():
            out.setdefault(t.group, []).append(t.task)
        return out

    def group_mean_stats(self, group: str) -> Stats:
        return Stats.mean_of(t.stats for t in self.tasks.values() if t.group == group)

    def subset(self, group: str) -> CheckpointMeta:
        return CheckpointMeta(t for t in self.tasks.values() if t.group == group)

    def to_json(self) -> dict[str, dict[str, Any]]:
        return {name: t.to_json() for name, t in self.tasks.items()}

    def check_model_groups(self, model_groups: Mapping[str, GroupDims], where: str) -> None:
        """Every group with tasks has modules of the same dims, and every module group has tasks."""
        groups = self.groups
        for g, dims in groups.items():
            if g not in model_groups:
                raise AdaptkitError(
                    f"{where}: group {g!r} has tasks but the model has no such group"
                )
            if model_groups[g] != dims:
                m = model_groups[g]
                raise AdaptkitError(
                    f"{where}: group {g!r} declares obs/act {dims.obs_dim}/{dims.act_dim}, "
                    f"the model's modules have {m.obs_dim}/{m.act_dim}"
                )
        orphans = [g for g in model_groups if g not in groups]
        if orphans:
            raise AdaptkitError(
                f"{where}: model groups {orphans} have no task entry (a new group needs a "
                "complete metadata entry — use adaptkit.surgery.add_group)"
            )


# -- config.json ---------------------------------------------------------------------------------
# Keys the quadruped fork's training script leaves in config.json (SPEC.md); `finetune_*` prefixed.
FORK_CONFIG_KEYS = ("random_sample_frac",)
FORK_CONFIG_PREFIX = "finetune_"
FORK_TOKEN_ORDER, RELEASED_TOKEN_ORDER = "act,rew,obs", "obs,act,rew"


@dataclass(frozen=True)
class TokenOrder:
    """A checkpoint's token order and why. `settled`: given or recorded (no check needed)."""

    order: str
    reason: str
    settled: bool

    def describe(self) -> str:
        return f"{self.order} ({self.reason})"


def config_token_order(raw: Mapping[str, Any], given: str | None = None) -> TokenOrder:
    """The token order of a config.json object (module docstring's order)."""
    if given is not None:
        if given not in TOKEN_ORDERS:
            raise AdaptkitError(
                f"--token-order: expected one of {', '.join(TOKEN_ORDERS)}, got {given!r}"
            )
        return TokenOrder(given, "given with --token-order", True)
    if "token_order" in raw:
        value = raw["token_order"]
        if isinstance(value, list | tuple):
            value = ",".join(map(str, value))
        return TokenOrder(value, "recorded in config.json", True)
    fork = [k for k in raw if k in FORK_CONFIG_KEYS or str(k).startswith(FORK_CONFIG_PREFIX)]
    if fork:
        keys = ", ".join(fork[:3]) + (", ..." if len(fork) > 3 else "")
        return TokenOrder(
            FORK_TOKEN_ORDER,
            f"not recorded; config.json has the quadruped fork's training keys ({keys}), and "
            "the fork orders tokens act,rew,obs",
            False,
        )
    return TokenOrder(
        RELEASED_TOKEN_ORDER,
        "not recorded and config.json has no quadruped-fork training keys: the released "
        "Vintix order",
        False,
    )


def parse_config(raw: Any, where: str) -> ModelConfig:
    """A config.json object → ModelConfig (strict types; unknown keys kept in `extra`)."""
    if not isinstance(raw, dict):
        raise AdaptkitError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    try:
        return ModelConfig.from_dict(raw)
    except AdaptkitError as exc:
        raise AdaptkitError(f"{where}: {exc}") from None


def checkpoint_config(
    path: Path, overrides: Mapping[str, Any] | None = None, token_order: str | None = None
) -> tuple[ModelConfig, TokenOrder]:
    """config.json (with `overrides` patching its keys) and its token order: `token_order`
    given, recorded, or inferred (`config_token_order`); the config carries the order used."""
    raw = read_json(path)
    if not isinstance(raw, dict):
        return parse_config(raw, str(path)), TokenOrder(RELEASED_TOKEN_ORDER, "", False)
    raw = {**raw, **(overrides or {})}
    if token_order is None and overrides and "token_order" in overrides:
        token_order = overrides["token_order"]
    order = config_token_order(raw, token_order)
    return parse_config({**raw, "token_order": order.order}, str(path)), order


def read_config(path: Path, overrides: Mapping[str, Any] | None = None) -> ModelConfig:
    """config.json, with `overrides` patching its keys before validation."""
    return checkpoint_config(path, overrides)[0]


# config.json keys of the reference that are training settings, not model sizes: a model config
# that sets one is told which option to use instead of having it silently ignored
TRAINING_KEYS = {
    "lr": "--lr",
    "epochs": "--epochs",
    "batch_size": "--batch-size",
    "grad_accum_steps": "--grad-accum",
    "warmup_ratio": "--warmup-ratio",
    "weight_decay": "--weight-decay",
    "precision": "--precision",
    "save_every": "--save-every",
    "seed": "--seed",
    "trajectory_sparsity": "--trajectory-sparsity",
    "dataset_config_paths": "the CONFIG arguments",
}


def read_model_config(source: Mapping[str, Any] | str | Path | None) -> ModelConfig:
    """A model size: a dict of model keys, or a YAML/JSON file of them; None: the default.

    Strict, unlike a checkpoint's config.json (whose other keys pass through): a key that is not
    a model key is an error naming it, and so is a key given twice."""
    if source is None:
        return ModelConfig()
    if isinstance(source, Mapping):
        raw: Any = dict(source)
        where = "model config"
    else:
        path = Path(source)
        where = f"model config {path}"
        if not path.is_file():
            raise AdaptkitError(f"{where}: file not found")
        try:
            raw = read_yaml(path, "model config")  # YAML is a superset of JSON
        except AdaptkitError as exc:
            raise AdaptkitError(f"model config {exc}") from None
        if not isinstance(raw, dict):
            raise AdaptkitError(f"{where}: expected a mapping of model config keys")
    names = ModelConfig.field_names()
    for key in raw:
        if key not in names:
            hint = (
                f"it is a training setting: pass {TRAINING_KEYS[key]}"
                if key in TRAINING_KEYS
                else f"model keys are {', '.join(names)}"
            )
            raise AdaptkitError(f"{where}: unknown key {key!r} ({hint})")
    return parse_config(raw, where)


# -- which stats -----------------------------------------------------------------------------------
def choose_stats(
    task: str,
    *,
    checkpoint: CheckpointMeta | None = None,
    explicit: Path | None = None,
    plugin_file: Path | None = None,
    data_file: Path | None = None,
    compute: Callable[[], Stats] | None = None,
    dims: GroupDims | None = None,
) -> tuple[Stats, str] | None:
    """The task's stats and where they came from, in the module docstring's order (1–5).

    None when no source has them (the caller decides: an error, or the group mean).
    An explicit file must exist; the others are skipped when absent. With `dims`, a checkpoint,
    plugin or data-folder entry with other dims is skipped (an explicit file's or a computed one
    is returned as is: the caller checks it).
    """

    def fits(stats: Stats) -> bool:
        return dims is None or (stats.obs_dim, stats.act_dim) == (dims.obs_dim, dims.act_dim)

    if checkpoint is not None and task in checkpoint and fits(checkpoint[task].stats):
        return checkpoint[task].stats, f"checkpoint task '{task}'"
    if explicit is not None and not Path(explicit).is_file():
        raise AdaptkitError(f"stats file {explicit}: not found")
    for i, path in enumerate((explicit, plugin_file, data_file)):
        if path is not None and Path(path).is_file():
            found = load_stats_file(path)
            # what the user named explicitly is never skipped: a mismatch is their error to see
            if task in found and (i == 0 or fits(found[task])):
                return found[task], str(path)
    if compute is not None:
        return compute(), "computed from the learning histories"
    return None
