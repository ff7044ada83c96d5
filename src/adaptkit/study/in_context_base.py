"""Build (and ship) the in-context base: the embodiment study's base recipe at the K whose
in-context gain passes the controls (docs/in_context.md), one seed, nothing else of the study.

    OUT/plan.json, OUT/bodies.json, OUT/data/h<N>/   as the embodiment study writes them
    OUT/bases/k<K>-budget-s0/                        the base, with provenance.json

Resumable like the study: every stage's files are skipped when there."""

from __future__ import annotations

from pathlib import Path

from adaptkit.bootstrap.in_context import IN_CONTEXT_BASE
from adaptkit.bootstrap.ship import check_source_checkout, ship_base
from adaptkit.plugins import Registry
from adaptkit.progress import SILENT, Reporter
from adaptkit.study.common import check_plan_file
from adaptkit.study.embodiments import EmbodimentStudy
from adaptkit.study.embodiments_plan import PRESETS, EmbodimentPlan

IN_CONTEXT_K = 3  # bodies of the family (see docs/in_context.md for why this K)
# the same total data as the embodiment study's bases at every K (≈ 206k steps)
IN_CONTEXT_HISTORIES = round(800 / IN_CONTEXT_K)


def in_context_plan() -> EmbodimentPlan:
    """The recipe: `embodiments-small`'s data and pretraining at one K, one seed."""
    return (
        PRESETS["embodiments-small"]
        .build()
        .replace(
            preset="in-context",
            ks=(IN_CONTEXT_K,),
            base_seeds=(0,),
            top_seeds=None,
            curves=("budget",),
            histories_per_body=IN_CONTEXT_HISTORIES,
        )
    )


def build_in_context_base(
    out: Path | str,
    registry: Registry,
    reporter: Reporter = SILENT,
    executor: str = "local",
    workers: int | None = None,
) -> Path:
    """The in-context base in `out` (built, or resumed where a build stopped)."""
    plan = in_context_plan()
    out = Path(out).resolve()
    study = EmbodimentStudy(plan, out, registry, reporter, executor, workers)
    check_plan_file(out, plan.as_dict(), plan.data_key())
    bodies, _ = study.bodies()
    family = {s.name for s in bodies}
    jobs = [j for j in study.collections(bodies) if j.id.split("-")[1] in family]
    study.wave("collection", jobs)
    return study.base(plan.ks[0], "budget", plan.base_seeds[0])


def ship_in_context_base(built: Path | str, registry: Registry) -> Path:
    """Copy a finished in-context base into the package (maintainers, a source checkout)."""
    check_source_checkout(IN_CONTEXT_BASE)
    return ship_base(built, registry, IN_CONTEXT_BASE)
