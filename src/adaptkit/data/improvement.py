"""Is in-context improvement visible inside one training window? A measure over histories.

A training window is `context_len + 1` consecutive steps of one history (adaptkit.data.windows),
after `episode_sparsity`. For every window start (every `stride` steps) this takes the episodes
that lie wholly inside the window (a history's last episode counts only if it is as long as its
longest other one: else the history's end may have cut it), in order, and compares the return
of each with the next: an in-context learner can only learn to improve from windows where the
later episodes are better.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adaptkit.data.history import read_history
from adaptkit.data.windows import keep_episodes
from adaptkit.errors import AdaptkitError


@dataclass(frozen=True)
class WindowImprovement:
    windows: int  # windows looked at
    windows_with_pairs: int  # windows holding >= 2 whole episodes
    pairs: int  # consecutive (k, k+1) whole-episode pairs inside a window, over all windows
    improving: float  # share of those pairs where episode k+1 returns more than episode k
    mean_gain: float  # mean return(k+1) − return(k) over the pairs
    mean_return_by_position: list[float]  # mean return of the 1st, 2nd, ... whole episode
    episodes_per_window: float  # mean whole episodes per window

    def as_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


def in_window_improvement(
    paths: Iterable[str | Path], context_len: int, stride: int = 1, episode_sparsity: int = 1
) -> WindowImprovement:
    """The measure over every window of every history in `paths` (module docstring)."""
    span = context_len + 1
    gains: list[float] = []
    by_pos: list[list[float]] = []
    windows = with_pairs = whole = 0
    for path in paths:
        h = keep_episodes(read_history(path), episode_sparsity)
        starts = h.episode_starts()
        ends = np.append(starts[1:], len(h))
        returns = np.add.reduceat(h.reward.astype(np.float64), starts) if len(h) else []
        lengths = ends - starts
        complete = np.ones(len(starts), dtype=bool)
        # the last episode may be cut off by the history's end: whole only when it is as long
        # as the longest other episode (it ran to the time limit)
        complete[-1] = len(lengths) > 1 and lengths[-1] >= lengths[:-1].max()
        for w0 in range(0, len(h) - span + 1, stride):
            w1 = w0 + span
            inside = np.flatnonzero((starts >= w0) & (ends <= w1) & complete)
            windows += 1
            whole += len(inside)
            if len(inside) >= 2:
                with_pairs += 1
                r = returns[inside]
                gains += list(np.diff(r))
            for k, i in enumerate(inside):
                if len(by_pos) <= k:
                    by_pos.append([])
                by_pos[k].append(float(returns[i]))
    g = np.array(gains)
    return WindowImprovement(
        windows=windows,
        windows_with_pairs=with_pairs,
        pairs=len(g),
        improving=float((g > 0).mean()) if len(g) else float("nan"),
        mean_gain=float(g.mean()) if len(g) else float("nan"),
        mean_return_by_position=[float(np.mean(v)) for v in by_pos],
        episodes_per_window=whole / max(windows, 1),
    )


@dataclass(frozen=True)
class PositionPredictability:
    """How much of the quality of the behaviour at a window position the position alone tells.

    Every step of every training window (adaptkit.data.windows.window_starts) gets the mean
    per-step reward of the episode it belongs to (how good the behaviour there was). R² of the
    position (in bins of `bin_steps`) is the share of that quality's variance the position
    explains; R² of the previous episode is the share a linear fit on the previous episode's
    quality in the same window explains (what a model reading its context can know)."""

    windows: int
    steps: int
    r2_position: float
    r2_previous_episode: float
    quality_by_position: list[float]  # mean quality per position bin

    def as_dict(self) -> dict[str, object]:
        return self.__dict__.copy()


def position_predictability(
    paths: Iterable[str | Path], context_len: int, stride: int, bin_steps: int = 16
) -> PositionPredictability:
    from adaptkit.data.windows import window_starts

    pos_rows: list[np.ndarray] = []
    q_rows: list[np.ndarray] = []
    prev_pairs: list[tuple[float, float]] = []
    windows = 0
    for path in paths:
        h = read_history(path)
        starts = h.episode_starts()
        ends = np.append(starts[1:], len(h))
        quality = np.repeat(
            np.add.reduceat(h.reward.astype(np.float64), starts) / (ends - starts), ends - starts
        )
        episode_of = np.repeat(np.arange(len(starts)), ends - starts)
        for w0 in window_starts(len(h), context_len, stride):
            windows += 1
            idx = np.arange(w0 + 1, w0 + context_len + 1)  # the positions a window predicts
            pos_rows.append((idx - w0 - 1) // bin_steps)
            q_rows.append(quality[idx])
            eps = np.unique(episode_of[idx])
            for a, b in itertools.pairwise(eps):
                prev_pairs.append((quality[starts[a]], quality[starts[b]]))
    if not windows:
        raise AdaptkitError(
            f"position predictability: no training window of {context_len} steps fits in these "
            "histories (each must be longer than the context)"
        )
    pos, q = np.concatenate(pos_rows), np.concatenate(q_rows)
    total = float(q.var())
    bins = np.unique(pos)
    means = np.array([q[pos == b].mean() for b in bins])
    explained = float(((means[np.searchsorted(bins, pos)] - q.mean()) ** 2).mean())
    r2_prev = float("nan")
    if len(prev_pairs) > 2:
        x, y = np.array(prev_pairs).T
        r = np.corrcoef(x, y)[0, 1] if x.std() > 0 and y.std() > 0 else 0.0
        r2_prev = float(r * r)
    return PositionPredictability(
        windows=windows,
        steps=len(q),
        r2_position=explained / total if total > 0 else float("nan"),
        r2_previous_episode=r2_prev,
        quality_by_position=[float(m) for m in means],
    )
