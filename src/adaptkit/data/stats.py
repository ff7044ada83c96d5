"""Per-task normalisation stats computed from learning histories: obs/action mean and std.

(The maths: adaptkit.data.moments; the stats.json file and which stats a task uses:
adaptkit.data.stats_file.)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from adaptkit.data.check import check_history_file
from adaptkit.data.moments import STD_FLOOR, RunningMoments, stats_from_moments
from adaptkit.errors import AdaptkitError
from adaptkit.meta import Stats


def compute_stats(files: Iterable[str | Path], std_floor: float = STD_FLOOR) -> Stats:
    """obs/action mean and std (ddof=1, floored at std_floor) over every step of the files.

    Each file is checked by the one history checker on the way (layout, dims, NaN/inf,
    step_num): stats of data that training would refuse are refused too."""
    files = [Path(p) for p in files]
    if not files:
        raise AdaptkitError("compute_stats: no history files given")
    obs_m: RunningMoments | None = None
    act_m: RunningMoments | None = None
    for path in files:
        # later files must have the first file's dims
        obs_dim = len(obs_m.mean) if obs_m is not None else None
        act_dim = len(act_m.mean) if act_m is not None else None
        fs = check_history_file(path, obs_dim, act_dim, moments=True)
        assert fs.obs_moments is not None and fs.act_moments is not None
        obs_m = fs.obs_moments if obs_m is None else obs_m.merge(fs.obs_moments)
        act_m = fs.act_moments if act_m is None else act_m.merge(fs.act_moments)
    assert obs_m is not None and act_m is not None
    return stats_from_moments(obs_m, act_m, str(files[0]), std_floor)
