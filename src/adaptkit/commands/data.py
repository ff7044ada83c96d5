"""`adaptkit data validate` and `adaptkit data stats`."""

from __future__ import annotations

from pathlib import Path

import typer

from adaptkit.commands.render import console, err_console, print_json, table
from adaptkit.plugins import get_registry

data_app = typer.Typer(
    help="Learning-history datasets: validate them, compute stats.json.",
    no_args_is_help=True,
)

_CONFIGS = typer.Argument(
    ..., metavar="CONFIG", help="Dataset config YAML file(s), merged.", show_default=False
)
_DATA_DIR = typer.Option(
    Path("data"), "--data-dir", "--data_dir", help="Folder that config `path`s are relative to."
)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


@data_app.command("validate")
def validate(
    configs: list[Path] = _CONFIGS,
    data_dir: Path = _DATA_DIR,
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Also check dims against this checkpoint's group metadata."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check every history: layout, dims vs robot plugin (in the observation layout the data
    selects) and checkpoint, NaN/inf, step_num; the fork's extra observation rows named."""
    from adaptkit.ckpt.checkpoint import read_checkpoint_meta
    from adaptkit.data.config import load_dataset_configs
    from adaptkit.data.validate import validate_dataset

    entries = load_dataset_configs(configs, data_dir)
    meta = read_checkpoint_meta(checkpoint) if checkpoint else None
    report = validate_dataset(entries, get_registry(), meta, raise_on_error=False)
    if json_out:
        print_json(report.as_dict())
    else:
        rows = [
            (
                t.task,
                t.group,
                t.robot or "-",
                t.obs_layout or "-",
                t.obs_dim,
                t.act_dim,
                t.histories,
                t.episodes,
                t.steps,
                _fmt(t.return_start),
                _fmt(t.return_end),
            )
            for t in report.tasks
        ]
        cols = [
            "task",
            "group",
            "robot",
            "layout",
            "obs",
            "act",
            "histories",
            "episodes",
            "steps",
            "return start",
            "return end",
        ]
        console.print(table("datasets", cols, rows))
        for w in report.warnings:
            err_console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    report.raise_if_errors()


@data_app.command("stats")
def stats(
    configs: list[Path] = _CONFIGS,
    data_dir: Path = _DATA_DIR,
    out: Path = typer.Option(Path("stats.json"), "--out", help="stats.json to write (merged)."),
    json_out: bool = typer.Option(False, "--json", help="Print the computed stats as JSON."),
) -> None:
    """Per-task obs/action mean and std (ddof=1) over all histories; merged into --out."""
    from adaptkit.data.config import load_dataset_configs
    from adaptkit.data.stats import compute_stats
    from adaptkit.data.stats_file import save_stats_file

    entries = load_dataset_configs(configs, data_dir)
    computed = {task: compute_stats(e.history_files()) for task, e in entries.items()}
    save_stats_file(out, computed, merge=True)
    if json_out:
        print_json({task: s.to_dict() for task, s in computed.items()})
        return
    rows = [
        (task, s.obs_dim, s.act_dim, f"{min(s.obs_std):.3g}", f"{min(s.acs_std):.3g}")
        for task, s in computed.items()
    ]
    console.print(
        table(f"stats -> {out}", ["task", "obs", "act", "min obs std", "min acs std"], rows)
    )


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(data_app, name="data")
