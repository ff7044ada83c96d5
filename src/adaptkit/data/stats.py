"""Per-task normalisation stats (stats.json): obs/action mean and std over all histories of a task.

One streaming pass: each chunk's moments (count, mean, sum of squared deviations, in float64) are
merged into the running ones with Chan et al.'s parallel formula, which stays accurate where the
naive sum-of-squares form cancels catastrophically. std uses ddof=1, like the reference.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.data.config import DatasetEntry
from adaptkit.data.history import ACTION_KEY, OBS_KEY, iter_chunks, list_history_files
from adaptkit.errors import AdaptkitError

STATS_KEYS = ("obs_mean", "obs_std", "acs_mean", "acs_std")
# A constant dimension (e.g. the locomotion command) has std 0; the model divides by (std + 1e-6),
# so float noise in such a dim would be amplified ~1e6x. Flooring std at 1e-3 caps that at 1e3x
# while leaving every real signal (std >> 1e-3 after the env's own scaling) untouched.
STD_FLOOR = 1e-3


class RunningMoments:
    """Mergeable count/mean/M2 per column (float64)."""

    def __init__(self, dim: int) -> None:
        self.n = 0
        self.mean = np.zeros(dim, np.float64)
        self.m2 = np.zeros(dim, np.float64)

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64)
        nb = len(x)
        if nb == 0:
            return
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        n = self.n + nb
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (nb / n)
        self.m2 = self.m2 + m2_b + delta**2 * (self.n * nb / n)
        self.n = n

    def std(self, ddof: int = 1) -> np.ndarray:
        if self.n <= ddof:
            return np.zeros_like(self.mean)
        return np.sqrt(self.m2 / (self.n - ddof))


def compute_stats(
    files: Iterable[str | Path], std_floor: float = STD_FLOOR
) -> dict[str, list[float]]:
    """obs/action mean and std (ddof=1, floored at std_floor) over every step of the files."""
    obs_m: RunningMoments | None = None
    act_m: RunningMoments | None = None
    files = list(files)
    if not files:
        raise AdaptkitError("compute_stats: no history files given")
    for path in files:
        for name, chunk in iter_chunks(path):
            obs, act = chunk[OBS_KEY], chunk[ACTION_KEY]
            if obs.ndim != 2 or act.ndim != 2:
                raise AdaptkitError(f"{path}: chunk {name!r}: observation/action must be 2-D")
            if obs_m is None or act_m is None:
                obs_m, act_m = RunningMoments(obs.shape[1]), RunningMoments(act.shape[1])
            if obs.shape[1] != len(obs_m.mean) or act.shape[1] != len(act_m.mean):
                raise AdaptkitError(
                    f"{path}: chunk {name!r} has obs/action dims {obs.shape[1]}/{act.shape[1]}, "
                    f"expected {len(obs_m.mean)}/{len(act_m.mean)} like the first file {files[0]}"
                )
            if not (np.isfinite(obs).all() and np.isfinite(act).all()):
                raise AdaptkitError(f"{path}: chunk {name!r} contains NaN or inf")
            obs_m.update(obs)
            act_m.update(act)
    assert obs_m is not None and act_m is not None
    if obs_m.n < 2:
        raise AdaptkitError(f"{files[0]}: need at least 2 steps to compute a std")
    return {
        "obs_mean": obs_m.mean.tolist(),
        "obs_std": np.maximum(obs_m.std(), std_floor).tolist(),
        "acs_mean": act_m.mean.tolist(),
        "acs_std": np.maximum(act_m.std(), std_floor).tolist(),
    }


def _check_stats(where: str, task: str, stats: Any) -> dict[str, list[float]]:
    if not isinstance(stats, Mapping):
        raise AdaptkitError(f"{where}: '{task}' must map {', '.join(STATS_KEYS)} to lists")
    out = {}
    for key in STATS_KEYS:
        value = stats.get(key)
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            or not all(math.isfinite(v) for v in value)
        ):
            raise AdaptkitError(
                f"{where}: '{task}.{key}' must be a non-empty list of finite numbers"
            )
        out[key] = [float(v) for v in value]
    for prefix in ("obs", "acs"):
        if len(out[f"{prefix}_mean"]) != len(out[f"{prefix}_std"]):
            raise AdaptkitError(
                f"{where}: '{task}': {prefix}_mean and {prefix}_std differ in length"
            )
        if min(out[f"{prefix}_std"]) < 0:
            raise AdaptkitError(f"{where}: '{task}.{prefix}_std' must be >= 0")
    # extra keys (e.g. counts written by other tools) pass through
    return {**{k: v for k, v in stats.items() if k not in STATS_KEYS}, **out}


def load_stats(path: str | Path) -> dict[str, dict[str, list[float]]]:
    """Read and check a stats.json: {task: {obs_mean, obs_std, acs_mean, acs_std}}."""
    path = Path(path)
    if not path.is_file():
        raise AdaptkitError(f"{path}: stats file not found")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise AdaptkitError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AdaptkitError(f"{path}: expected a mapping of task -> stats")
    return {task: _check_stats(str(path), task, s) for task, s in data.items()}


def save_stats(
    path: str | Path, stats: Mapping[str, Mapping[str, Any]], merge: bool = True
) -> Path:
    """Write {task: stats}; with merge, tasks already in the file and not in `stats` are kept."""
    path = Path(path)
    current = load_stats(path) if merge and path.exists() else {}
    for task, s in stats.items():
        current[task] = _check_stats(f"{path} (new entry)", task, s)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(current, fh, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def stats_for_entry(
    entry: DatasetEntry, stats_path: str | Path | None = None
) -> dict[str, list[float]]:
    """The task's stats from stats_path when that file exists and has the task; else computed."""
    if stats_path is not None and Path(stats_path).is_file():
        loaded = load_stats(stats_path)
        if entry.task in loaded:
            return loaded[entry.task]
    return compute_stats(list_history_files(entry.path))
