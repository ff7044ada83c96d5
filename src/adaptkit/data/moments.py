"""Mergeable per-column moments and the stats they give: the maths of normalisation stats.

One streaming pass: each chunk's moments (count, mean, sum of squared deviations, in float64) are
merged into the running ones with Chan et al.'s parallel formula, which stays accurate where the
naive sum-of-squares form cancels catastrophically. std uses ddof=1, like the reference.
"""

from __future__ import annotations

import numpy as np

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

    def merge(self, other: RunningMoments) -> RunningMoments:
        """Fold another set of moments (e.g. another file's) into these; returns self."""
        if other.n == 0:
            return self
        n = self.n + other.n
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.n / n)
        self.m2 = self.m2 + other.m2 + delta**2 * (self.n * other.n / n)
        self.n = n
        return self

    def std(self, ddof: int = 1) -> np.ndarray:
        if self.n <= ddof:
            return np.zeros_like(self.mean)
        return np.sqrt(self.m2 / (self.n - ddof))


def stats_from_moments(
    obs: RunningMoments, act: RunningMoments, where: str, std_floor: float = STD_FLOOR
) -> Stats:
    """Stats from accumulated moments: std with ddof=1, floored at std_floor."""
    if obs.n < 2:
        raise AdaptkitError(f"{where}: need at least 2 steps to compute a std")
    return Stats(
        obs_mean=tuple(obs.mean.tolist()),
        obs_std=tuple(np.maximum(obs.std(), std_floor).tolist()),
        acs_mean=tuple(act.mean.tolist()),
        acs_std=tuple(np.maximum(act.std(), std_floor).tolist()),
    )
