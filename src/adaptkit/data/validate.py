"""Dataset validation: every history file checked against its layout, the robot plugin (in the
observation layout the data selects) and (optionally) a checkpoint's group metadata, plus a
per-task summary of what the data holds. The quadruped fork's extra observation row per chunk
(adaptkit.data.history) is named as a warning: readable, aligned by the documented rule.

The one checker of learning histories: `adaptkit data validate`, `data stats` and the pre-flight
of `pretrain`/`finetune` all go through `check_history_file`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from adaptkit.checkpoint import METADATA_FILE, resolve_checkpoint
from adaptkit.data.config import DatasetEntry
from adaptkit.data.history import (
    ACTION_KEY,
    DATASET_KEYS,
    OBS_KEY,
    REWARD_KEY,
    STEP_KEY,
    History,
    list_history_files,
    parse_chunk_name,
    sorted_chunk_names,
)
from adaptkit.data.layout import spec_for_data
from adaptkit.data.stats import RunningMoments, stats_from_moments
from adaptkit.errors import AdaptkitError
from adaptkit.meta import CheckpointMeta, Stats
from adaptkit.plugins import Registry
from adaptkit.robot import RobotSpec


@dataclass
class TaskSummary:
    task: str
    group: str
    robot: str | None
    obs_layout: str | None = None  # the robot's layout the data is in (None: no plugin)
    obs_dim: int | None = None
    act_dim: int | None = None
    histories: int = 0
    episodes: int = 0
    steps: int = 0
    # mean return per episode over the first / last 10% of each history's episodes (at least
    # one), averaged over histories: the learning progress the data should show
    return_start: float | None = None
    return_end: float | None = None


@dataclass
class ValidationReport:
    tasks: list[TaskSummary] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # filled only when asked (training's pre-flight): task -> its histories / computed stats
    histories: dict[str, list[History]] = field(default_factory=dict)
    stats: dict[str, Stats] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "tasks": [asdict(t) for t in self.tasks],
            "errors": list(self.errors),
            "warnings": list(self.warnings),
        }

    def error_line(self) -> str:
        """The first error, with a count of the others: one line for the CLI."""
        more = f" (and {len(self.errors) - 1} more problem(s))" if len(self.errors) > 1 else ""
        return self.errors[0] + more

    def raise_if_errors(self) -> None:
        if self.errors:
            raise AdaptkitError(self.error_line())


@dataclass
class FileCheck:
    """What one pass over a valid history file found (and, when asked, kept)."""

    obs_dim: int
    act_dim: int
    steps: int
    episode_returns: np.ndarray
    history: History | None = None  # the whole history in memory (keep=True)
    obs_moments: RunningMoments | None = None  # for stats (moments=True)
    act_moments: RunningMoments | None = None
    chunks: int = 0
    last_chunk: str = ""
    extra_obs_chunks: list[str] = field(default_factory=list)  # chunks with n+1 obs rows
    extra_obs_repeats: int = 0  # of those followed by a chunk: the dropped row = its first row


def checkpoint_meta(path: str | Path) -> CheckpointMeta:
    """The metadata of a checkpoint (an NNNN_epoch folder, or a run folder's newest complete
    one), without loading its weights."""
    return CheckpointMeta.read(resolve_checkpoint(path) / METADATA_FILE)


def _first_bad_row(arr: np.ndarray) -> tuple[int, str]:
    """Row (and, for 2-D data, column) of the first non-finite value."""
    bad = ~np.isfinite(arr)
    if arr.ndim == 1:
        return int(np.flatnonzero(bad)[0]), ""
    row = int(np.flatnonzero(bad.any(axis=1))[0])
    return row, f" (dim {int(np.flatnonzero(bad[row])[0])})"


def check_history_file(
    path: Path,
    obs_dim: int | None = None,
    act_dim: int | None = None,
    *,
    keep: bool = False,
    moments: bool = False,
) -> FileCheck:
    """Check one history file chunk by chunk; raise AdaptkitError at the first problem,
    naming the file, chunk, dataset and step.

    Checks: chunks contiguous from step 0; every dataset present with the rows its chunk name
    promises; obs/action 2-D floats of the expected dims (the first chunk sets them when none are
    given), reward 1-D float; no NaN/inf anywhere; step_num integer, 0 at the history's start and
    at each episode start, else the previous value + 1 (across chunk boundaries too).

    The same pass can keep the arrays (`keep`: training reads each file once) and the
    obs/action moments (`moments`: the stats), so checking costs almost nothing extra.
    """
    if not path.is_file():
        raise AdaptkitError(f"{path}: learning-history file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise AdaptkitError(f"{path}: not a readable HDF5 file ({exc})") from None
    returns: list[float] = []
    current, started = 0.0, False
    last_step: int | None = None
    expected_start = 0
    parts: dict[str, list[np.ndarray]] = {k: [] for k in DATASET_KEYS}
    obs_m = act_m = None
    extra: list[str] = []
    repeats = 0
    dropped: np.ndarray | None = None  # the extra observation row of the previous chunk
    with f:
        names = sorted_chunk_names(f, path)
        for name in names:
            where = f"{path}: chunk '{name}'"
            start, end = parse_chunk_name(name)  # type: ignore[misc]
            if start != expected_start:
                raise AdaptkitError(
                    f"{where} starts at step {start}, expected {expected_start} (chunks must be "
                    "contiguous from 0)"
                )
            if end < start:
                raise AdaptkitError(f"{where}: end before start")
            n = end - start + 1
            group = f[name]
            data = {}
            for key in DATASET_KEYS:
                if key not in group or not isinstance(group[key], h5py.Dataset):
                    raise AdaptkitError(f"{where} has no dataset '{key}'")
                try:
                    data[key] = group[key][()]  # one read of the whole dataset
                except OSError as exc:
                    raise AdaptkitError(f"{where}: dataset '{key}' is unreadable ({exc})") from None
            obs, act, rew, step = (data[k] for k in (OBS_KEY, ACTION_KEY, REWARD_KEY, STEP_KEY))
            if obs.ndim != 2 or act.ndim != 2 or rew.ndim != 1 or step.ndim != 1:
                raise AdaptkitError(
                    f"{where}: expected {OBS_KEY} [n,d], {ACTION_KEY} [n,a], {REWARD_KEY} [n], "
                    f"{STEP_KEY} [n]; got {obs.shape}, {act.shape}, {rew.shape}, {step.shape}"
                )
            if len(obs) == n + 1:  # the fork's writer: an extra final observation row
                extra.append(name)
                obs, next_first = obs[:n], obs[n]
                data[OBS_KEY] = obs  # what is kept for training is aligned the same way
            else:
                next_first = None
            if dropped is not None and len(obs) and np.array_equal(dropped, obs[0]):
                repeats += 1
            dropped = next_first
            for key, arr in (
                (OBS_KEY, obs),
                (ACTION_KEY, act),
                (REWARD_KEY, rew),
                (STEP_KEY, step),
            ):
                if len(arr) != n:
                    plus = f" (or {n + 1}: the fork's extra row)" if key == OBS_KEY else ""
                    raise AdaptkitError(
                        f"{where}: dataset '{key}' has {len(arr)} rows, expected {n}{plus} from "
                        "the chunk name"
                    )
            for key, arr in ((OBS_KEY, obs), (ACTION_KEY, act), (REWARD_KEY, rew)):
                if not np.issubdtype(arr.dtype, np.floating):
                    raise AdaptkitError(f"{where}: dataset '{key}' must be float, got {arr.dtype}")
                if not np.isfinite(arr).all():
                    row, dim = _first_bad_row(arr)
                    raise AdaptkitError(
                        f"{where}: dataset '{key}' has NaN/inf at step {start + row}{dim}"
                    )
            if not np.issubdtype(step.dtype, np.integer):
                raise AdaptkitError(
                    f"{where}: dataset '{STEP_KEY}' must be integer, got {step.dtype}"
                )
            if obs_dim is None:
                obs_dim, act_dim = obs.shape[1], act.shape[1]
            if obs.shape[1] != obs_dim:
                raise AdaptkitError(
                    f"{where}: '{OBS_KEY}' has dim {obs.shape[1]}, expected {obs_dim}"
                )
            if act.shape[1] != act_dim:
                raise AdaptkitError(
                    f"{where}: '{ACTION_KEY}' has dim {act.shape[1]}, expected {act_dim}"
                )
            # step_num: 0 at an episode start, else previous + 1 (also across chunk boundaries)
            prev = np.empty(n, np.int64)
            prev[0] = -1 if last_step is None else last_step
            prev[1:] = step[:-1]
            bad = ~((step == 0) | ((step == prev + 1) & (prev >= 0)))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                expected = "0" if prev[i] < 0 else f"0 or {prev[i] + 1}"
                raise AdaptkitError(
                    f"{where}: '{STEP_KEY}' at step {start + i} is {int(step[i])}, "
                    f"expected {expected}"
                )
            last_step = int(step[-1])
            # per-episode returns, streamed across chunks
            r = rew.astype(np.float64)
            starts = np.flatnonzero(step == 0)
            if len(starts) == 0:
                current += r.sum()
            else:
                current += r[: starts[0]].sum()
                if started:
                    returns.append(current)
                sums = np.add.reduceat(r, starts)
                returns.extend(sums[:-1].tolist())
                current, started = float(sums[-1]), True
            if moments:
                if obs_m is None or act_m is None:
                    obs_m, act_m = RunningMoments(obs.shape[1]), RunningMoments(act.shape[1])
                obs_m.update(obs)
                act_m.update(act)
            if keep:
                for key in DATASET_KEYS:
                    parts[key].append(data[key])
            expected_start = end + 1
    returns.append(current)
    assert obs_dim is not None and act_dim is not None
    history = None
    if keep:
        history = History(
            obs=np.concatenate(parts[OBS_KEY]).astype(np.float32, copy=False),
            action=np.concatenate(parts[ACTION_KEY]).astype(np.float32, copy=False),
            reward=np.concatenate(parts[REWARD_KEY]).astype(np.float32, copy=False),
            step_num=np.concatenate(parts[STEP_KEY]).astype(np.int32, copy=False),
        )
    return FileCheck(
        obs_dim, act_dim, expected_start, np.asarray(returns), history, obs_m, act_m,
        len(names), names[-1], extra, repeats,
    )  # fmt: skip


def extra_rows_warning(path: Path, fs: FileCheck) -> str:
    """The warning naming a file's n+1 observation rows (see adaptkit.data.history)."""
    k = len(fs.extra_obs_chunks)
    boundaries = k - (fs.extra_obs_chunks[-1] == fs.last_chunk)
    seen = (
        f"; at {fs.extra_obs_repeats} of {boundaries} chunk boundaries that row equals the next "
        "chunk's first row"
        if boundaries
        else ""
    )
    return (
        f"{path}: {k} of {fs.chunks} chunks (e.g. '{fs.extra_obs_chunks[0]}') store one "
        f"observation row more than actions — the quadruped fork's writer appends the "
        f"observation after the chunk's last action; adaptkit drops each such chunk's last "
        f"observation row, so o_t pairs with a_t{seen}"
    )


def _edge_means(returns: list[np.ndarray]) -> tuple[float | None, float | None]:
    if not returns:
        return None, None
    starts, ends = [], []
    for r in returns:
        k = max(1, len(r) // 10)
        starts.append(r[:k].mean())
        ends.append(r[-k:].mean())
    return float(np.mean(starts)), float(np.mean(ends))


def validate_dataset(
    entries: Mapping[str, DatasetEntry] | Iterable[DatasetEntry],
    registry: Registry | Iterable[RobotSpec],
    checkpoint: CheckpointMeta | None = None,
    raise_on_error: bool = True,
    *,
    keep: bool = False,
    compute_stats_for: Iterable[str] = (),
) -> ValidationReport:
    """Check every history of every entry; errors name the file (and chunk/dataset/step).

    Dims come from the robot plugin declaring each task (`registry`: a Registry, or the robot
    specs to consider) and, when given, the checkpoint's group;
    tasks of one group must agree. With raise_on_error=False the problems are returned in the
    report (the CLI renders the table first, then fails).

    Training calls this as its pre-flight: `keep` holds every history's arrays in
    `report.histories` and `compute_stats_for` fills `report.stats` for those tasks, from the
    same single pass.
    """
    specs = registry.robots.values() if isinstance(registry, Registry) else registry
    by_task = {spec.task: spec for spec in specs}
    ckpt_groups = checkpoint.groups if checkpoint is not None else {}
    want_stats = set(compute_stats_for)
    report = ValidationReport()
    group_dims: dict[str, tuple[int, int, str]] = {}  # group -> (obs, act, first task)
    values = list(entries.values()) if isinstance(entries, Mapping) else list(entries)
    for entry in values:
        spec = by_task.get(entry.task)
        if spec is None and isinstance(registry, Registry):  # a family member's task
            spec = registry.robot_for_task(entry.task)
        summary = TaskSummary(entry.task, entry.group, spec.name if spec else None)
        report.tasks.append(summary)
        obs_dim = act_dim = None
        source = ""
        try:
            files = list_history_files(entry.path)
        except AdaptkitError as exc:
            report.errors.append(f"task '{entry.task}': {exc}")
            continue
        if spec is not None:
            try:  # the data's width selects the robot's observation layout
                spec, _why = spec_for_data(spec, entry.path, files)
            except AdaptkitError as exc:
                report.errors.append(f"task '{entry.task}': {exc}")
                continue
            summary.obs_layout = spec.obs_layout or "custom"
            obs_dim, act_dim = spec.obs_dim, spec.action_dim
            source = f"robot plugin '{spec.name}' ({summary.obs_layout})"
            if spec.group != entry.group:
                report.warnings.append(
                    f"{entry.source}: '{entry.task}.group' is '{entry.group}' but robot "
                    f"'{spec.name}' declares group '{spec.group}'"
                )
        else:
            report.warnings.append(
                f"task '{entry.task}': no robot plugin declares it; "
                "dims checked for consistency only"
            )
        if entry.group in ckpt_groups:
            c_obs, c_act = ckpt_groups[entry.group].obs_dim, ckpt_groups[entry.group].act_dim
            if obs_dim is not None and (obs_dim, act_dim) != (c_obs, c_act):
                report.errors.append(
                    f"task '{entry.task}': {source} has obs/action dims {obs_dim}/{act_dim} but "
                    f"the checkpoint's group '{entry.group}' has {c_obs}/{c_act}"
                )
                continue
            obs_dim, act_dim = c_obs, c_act
            source = source or f"checkpoint group '{entry.group}'"
        summary.obs_dim, summary.act_dim = obs_dim, act_dim
        returns = []
        histories: list[History] = []
        obs_m = act_m = None
        for path in files:
            try:
                fs = check_history_file(
                    path, obs_dim, act_dim, keep=keep, moments=entry.task in want_stats
                )
            except AdaptkitError as exc:
                report.errors.append(
                    str(exc) + (f" ({source})" if source and "dim" in str(exc) else "")
                )
                continue
            obs_dim, act_dim = fs.obs_dim, fs.act_dim  # later files must agree with the first
            if fs.extra_obs_chunks:
                report.warnings.append(extra_rows_warning(path, fs))
            summary.histories += 1
            summary.steps += fs.steps
            summary.episodes += len(fs.episode_returns)
            returns.append(fs.episode_returns)
            if fs.history is not None:
                histories.append(fs.history)
            if fs.obs_moments is not None and fs.act_moments is not None:
                obs_m = fs.obs_moments if obs_m is None else obs_m.merge(fs.obs_moments)
                act_m = fs.act_moments if act_m is None else act_m.merge(fs.act_moments)
        summary.obs_dim, summary.act_dim = obs_dim, act_dim
        summary.return_start, summary.return_end = _edge_means(returns)
        if obs_dim is not None and act_dim is not None:
            first = group_dims.setdefault(entry.group, (obs_dim, act_dim, entry.task))
            if first[:2] != (obs_dim, act_dim):
                report.errors.append(
                    f"task '{entry.task}' has obs/action dims {obs_dim}/{act_dim} but task "
                    f"'{first[2]}' of the same group '{entry.group}' has {first[0]}/{first[1]}"
                )
        if keep:
            report.histories[entry.task] = histories
        if obs_m is not None and act_m is not None:
            report.stats[entry.task] = stats_from_moments(obs_m, act_m, str(files[0]))
    if raise_on_error:
        report.raise_if_errors()
    return report
