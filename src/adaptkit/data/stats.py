"""Per-task normalisation stats computed from learning histories: obs/action mean and std.

(The stats.json file format and the choice of which stats a task uses belong to adaptkit.meta.)
One streaming pass: each chunk's moments (count, mean, sum of squared deviations, in float64) are
merged into the running ones with Chan et al.'s parallel formula, which stays accurate where the
naive sum-of-squares form cancels catastrophically. std uses ddof=1, like the reference.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from adaptkit.data.history import ACTION_KEY, OBS_KEY, iter_chunks
from adaptkit.errors import AdaptkitError
from adaptkit.meta import Stats

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


def compute_stats(files: Iterable[str | Path], std_floor: float = STD_FLOOR) -> Stats:
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
    return Stats(
        obs_mean=tuple(obs_m.mean.tolist()),
        obs_std=tuple(np.maximum(obs_m.std(), std_floor).tolist()),
        acs_mean=tuple(act_m.mean.tolist()),
        acs_std=tuple(np.maximum(act_m.std(), std_floor).tolist()),
    )
