"""`adaptkit study`: parse the plan's options, run the study, print where its report is."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from adaptkit.adapt.modes import mode_names
from adaptkit.commands.config_file import OPT_CONFIG, OPT_PRINT_CONFIG, ConfigCommand, save_resolved
from adaptkit.commands.render import RichReporter, console
from adaptkit.plugins import get_registry
from adaptkit.study.presets import presets_help


class Executor(str, enum.Enum):
    """Where the study's jobs run (adaptkit.execute)."""

    INLINE = "inline"
    LOCAL = "local"
    RAY = "ray"


def register(app: typer.Typer) -> None:
    """Attach this module's command to the root app."""

    @app.command("study", cls=ConfigCommand)
    def study_cmd(
        preset: str = typer.Option(
            "readme",
            "--preset",
            help=presets_help() + ".",
        ),
        out: Path = typer.Option(
            None, "--out", help="Results folder (resumable).", show_default="study/PRESET"
        ),
        robots: str = typer.Option(
            None,
            "--robots",
            help="Robots to leave out and adapt to, e.g. go1,minicheetah.",
            show_default="the preset's",
        ),
        sizes: str = typer.Option(
            None, "--sizes", help="Data sizes: 1ep,10ep,1hist,all.", show_default="the preset's"
        ),
        modes: str = typer.Option(
            None,
            "--modes",
            help=f"Adaptation modes: {','.join(mode_names())}.",
            show_default="the preset's",
        ),
        seeds: str = typer.Option(
            None, "--seeds", help="Training seeds, e.g. 0,1,2.", show_default="the preset's"
        ),
        task: str = typer.Option(
            None,
            "--task",
            help="Task variant: walk, varied (see `adaptkit collect --help`).",
            show_default="the preset's",
        ),
        budget_steps: int = typer.Option(
            None,
            "--budget-steps",
            min=1,
            help="Optimiser steps every mode trains for.",
            show_default="the preset's",
        ),
        icl: bool = typer.Option(
            None, "--icl/--no-icl", help="The in-context stage.", show_default="the preset's"
        ),
        icl_robot: str = typer.Option(
            None,
            "--icl-robot",
            help="The robot of the in-context stage.",
            show_default="the first of --robots",
        ),
        icl_size: str = typer.Option(
            None,
            "--icl-size",
            help="The data the in-context stage adapts on.",
            show_default="1hist",
        ),
        ks: str = typer.Option(
            None,
            "--ks",
            help="embodiments presets: body counts of the bases, e.g. 3,10,30,100.",
            show_default="the preset's",
        ),
        keep_runs: bool = typer.Option(
            False, "--keep-runs", help="Keep every cell's checkpoints (OUT/runs)."
        ),
        report_only: bool = typer.Option(
            False, "--report-only", help="Only rewrite the report from the finished cells."
        ),
        executor: Executor = typer.Option(
            None,
            "--executor",
            help="Where cells run: inline (this process), local (worker processes), ray (a Ray "
            "cluster: pip install 'adaptkit[ray]').",
            show_default="local, or ray with --ray",
        ),
        workers: int = typer.Option(
            None,
            "--workers",
            min=1,
            help="Local worker processes.",
            show_default="as many as the cores allow",
        ),
        ray: str = typer.Option(
            None,
            "--ray",
            help="The Ray cluster: auto (the one `ray start` joined here) or its ADDRESS.",
            show_default="auto",
        ),
        config: Path = OPT_CONFIG,
        print_config: bool = OPT_PRINT_CONFIG,
    ) -> None:
        """Leave-one-out × data size × adaptation mode × seed, against same-budget scratch, on
        the same held-out env seed; then the in-context stage and a report (report.md,
        summary.json, study.png, icl.png)."""
        from adaptkit.study.kinds import kind_of
        from adaptkit.study.plan import parse_list
        from adaptkit.study.presets import preset_plan

        folder = out or Path("study") / preset
        kind = executor or (Executor.RAY if ray else Executor.LOCAL)
        if ray and kind is not Executor.RAY:
            raise typer.BadParameter(f"--ray goes with --executor ray, not {kind.value}")
        where = f"ray:{ray or 'auto'}" if kind is Executor.RAY else kind.value
        plan = preset_plan(preset)
        study = kind_of(plan)  # the runner and report of what the preset builds
        given = {"--keep-runs": keep_runs, "--icl": icl is not None, "--icl-robot": icl_robot,
                 "--icl-size": icl_size}  # fmt: skip
        for flag in (f for f in study.refuses if given.get(f)):
            raise typer.BadParameter(f"{flag} is not an option of the {study.name} presets")
        plan = plan.with_options(
            {
                "robots": parse_list("--robots", robots),
                "sizes": parse_list("--sizes", sizes),
                "modes": parse_list("--modes", modes),
                "seeds": parse_list("--seeds", seeds, int),
                "budget_steps": budget_steps,
                "ks": parse_list("--ks", ks, int),
                "task": task,
                "icl": icl,
                "icl_robot": icl_robot,
                "icl_size": icl_size,
            }
        )
        if report_only:
            study.report(folder)
        else:
            study.run(plan, folder, get_registry(), RichReporter(), where, workers, keep_runs)
            save_resolved(folder)
        console.print(f"report: {folder / 'report.md'}")
