"""Is in-context improvement visible inside one training window? A measure over histories.

A training window is `context_len + 1` consecutive steps of one history (adaptkit.data.windows),
after `episode_sparsity`. For every window start (every `stride` steps) this takes the episodes
that lie wholly inside the window (a history's last episode counts only if it is as long as its
longest other one: else the history's end may have cut it), in order, and compares the return
of each with the next: an in-context learner can only learn to improve from windows where the
later episodes are better.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adaptkit.data.history import read_history
from adaptkit.data.windows import keep_episodes


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
