"""Pre-flight of a training run: one checked pass over exactly the data it will train on.

Before `pretrain` or `finetune` writes anything, every history of every training task goes
through the one history checker (`adaptkit.data.validate`): dims against the robot plugin and the
checkpoint, NaN/inf in every field, `step_num` (0 at each episode start, else +1), row counts
that agree. The same pass keeps the arrays training needs and computes the stats of tasks that
have none, so the check costs almost nothing on top of reading the data once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from adaptkit.data.config import DatasetEntry
from adaptkit.data.history import History
from adaptkit.data.moments import RunningMoments
from adaptkit.data.validate import validate_dataset
from adaptkit.errors import AdaptkitError
from adaptkit.meta import CheckpointMeta, Stats
from adaptkit.model import GroupDims
from adaptkit.progress import SILENT, Reporter
from adaptkit.robot import RobotSpec

COMPUTED = "computed from the learning histories"


@dataclass
class CheckedData:
    """The checked histories of every task, and each task's stats with where they came from."""

    histories: dict[str, list[History]]
    stats: dict[str, Stats]
    sources: dict[str, str]
    dims: dict[str, GroupDims]
    # the computed stats' moments, mergeable with other processes' (sharded data)
    moments: dict[str, tuple[RunningMoments, RunningMoments]] = field(default_factory=dict)

    @property
    def computed(self) -> list[str]:
        return [task for task, source in self.sources.items() if source == COMPUTED]


def check_training_data(
    entries: Sequence[DatasetEntry],
    robots: Iterable[RobotSpec],
    checkpoint: CheckpointMeta | None,
    stats: Mapping[str, tuple[Stats, str] | None],
    reporter: Reporter = SILENT,
) -> CheckedData:
    """Check the entries' histories and return them with every task's stats.

    `stats`: task → (stats, source) already chosen, or None to compute them in this pass.
    Raises an AdaptkitError at the first problem (file, chunk, dataset, step)."""
    need = [e.task for e in entries if stats.get(e.task) is None]
    report = validate_dataset(
        entries, list(robots), checkpoint, raise_on_error=True, keep=True, compute_stats_for=need
    )
    for warning in report.warnings:
        reporter.note(warning)
    chosen: dict[str, Stats] = {}
    sources: dict[str, str] = {}
    dims: dict[str, GroupDims] = {}
    for summary in report.tasks:
        task = summary.task
        assert summary.obs_dim is not None and summary.act_dim is not None
        dims[task] = GroupDims(summary.obs_dim, summary.act_dim)
        given = stats.get(task)
        if given is None:
            chosen[task], sources[task] = report.stats[task], COMPUTED
            continue
        chosen[task], sources[task] = given
        found = given[0]
        if (found.obs_dim, found.act_dim) != (summary.obs_dim, summary.act_dim):
            raise AdaptkitError(
                f"stats of '{task}' in {given[1]} have obs/action dims "
                f"{found.obs_dim}/{found.act_dim} but its histories have "
                f"{summary.obs_dim}/{summary.act_dim}"
            )
    moments = {t: report.moments[t] for t in need if t in report.moments}
    return CheckedData(report.histories, chosen, sources, dims, moments)
