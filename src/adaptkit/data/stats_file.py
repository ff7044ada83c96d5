"""stats.json files ({task: {obs_mean, obs_std, acs_mean, acs_std}}) and which stats a task uses.

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
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from adaptkit.errors import AdaptkitError
from adaptkit.fileio import not_a_file, read_json, write_json
from adaptkit.meta import CheckpointMeta, Stats
from adaptkit.model import GroupDims


def load_stats_file(path: str | Path) -> dict[str, Stats]:
    """A stats.json: {task: {obs_mean, obs_std, acs_mean, acs_std}}."""
    path = Path(path)
    if not path.is_file():
        raise AdaptkitError(f"{path}: stats file {not_a_file(path)}")
    data = read_json(path)
    if not isinstance(data, dict):
        raise AdaptkitError(f"{path}: expected a mapping of task -> stats")
    return {task: Stats.parse(s, f"{path}: '{task}'") for task, s in data.items()}


def save_stats_file(path: str | Path, stats: Mapping[str, Stats], merge: bool = True) -> Path:
    """Write {task: stats}; with merge, tasks already in the file and not in `stats` are kept."""
    path = Path(path)
    current = load_stats_file(path) if merge and path.is_file() else {}
    current.update(stats)
    return write_json(path, {t: s.to_dict() for t, s in current.items()}, "stats file")


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
        raise AdaptkitError(f"stats file {explicit}: {not_a_file(explicit)}")
    for i, path in enumerate((explicit, plugin_file, data_file)):
        if path is not None and Path(path).is_file():
            found = load_stats_file(path)
            # what the user named explicitly is never skipped: a mismatch is their error to see
            if task in found and (i == 0 or fits(found[task])):
                return found[task], str(path)
    if compute is not None:
        return compute(), "computed from the learning histories"
    return None
