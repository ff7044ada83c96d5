"""Which runner and report belong to a plan: one table from the plan's type, so the CLI
dispatches on what a preset builds (adaptkit.study.presets), not on its name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptkit.errors import AdaptkitError
from adaptkit.study.embodiments import run_embodiments
from adaptkit.study.embodiments_plan import EmbodimentPlan
from adaptkit.study.embodiments_report import write_embodiment_report
from adaptkit.study.leave_one_out import run_study
from adaptkit.study.plan import StudyPlan
from adaptkit.study.report import write_report


@dataclass(frozen=True)
class StudyKind:
    """A kind of study: its runner, its report, and the study command's options it has no
    use for (refused in one line)."""

    name: str
    run: Callable[..., Path]  # run(plan, out, registry, reporter, executor, workers, keep_runs)
    report: Callable[[Path], Any]
    refuses: tuple[str, ...] = ()


# run(plan, out, registry, reporter, executor, workers, keep_runs): the two runners in one shape
def _leave_one_out(
    plan: StudyPlan, out: Path, registry: Any, reporter: Any, executor: str, workers: Any,
    keep_runs: bool,
) -> Path:  # fmt: skip
    return run_study(plan, out, registry, reporter, keep_runs, executor, workers)


def _embodiments(
    plan: EmbodimentPlan, out: Path, registry: Any, reporter: Any, executor: str, workers: Any,
    keep_runs: bool,  # refused before (StudyKind.refuses): the cells' runs are never kept
) -> Path:  # fmt: skip
    return run_embodiments(plan, out, registry, reporter, executor, workers)


KINDS: dict[type, StudyKind] = {
    StudyPlan: StudyKind("leave-one-out", _leave_one_out, write_report),
    EmbodimentPlan: StudyKind(
        "embodiments",
        _embodiments,
        write_embodiment_report,
        refuses=("--keep-runs", "--icl", "--icl-robot", "--icl-size"),
    ),
}


def kind_of(plan: Any) -> StudyKind:
    """The kind of study `plan` is."""
    try:
        return KINDS[type(plan)]
    except KeyError:
        raise AdaptkitError(f"no kind of study runs a {type(plan).__name__}") from None
