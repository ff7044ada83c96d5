"""`adaptkit export`: parse, call adaptkit.export, render."""

from __future__ import annotations

from pathlib import Path

import typer

from adaptkit.commands.evaluate import (
    OPT_BASE,
    OPT_CONTEXT,
    OPT_DATA_DIR,
    OPT_GROUP,
    OPT_JSON,
    OPT_TOKEN_ORDER,
    _order,
)
from adaptkit.commands.registry import complete_robot
from adaptkit.commands.render import RichReporter, console, print_json
from adaptkit.defaults import TokenOrderChoice
from adaptkit.errors import AdaptkitError
from adaptkit.export.formats import FORMATS, formats_help
from adaptkit.plugins import get_registry


def export_cmd(
    checkpoint: str = typer.Argument(
        ..., help="Run folder (latest epoch), NNNN_epoch folder, adapter or hf://ORG/NAME."
    ),
    fmt: str = typer.Option("torchscript", "--format", help=formats_help() + "."),
    robot: str | None = typer.Option(
        None,
        "--robot",
        help="Robot the policy drives.",
        show_default="the run's robot",
        autocompletion=complete_robot,
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Output folder.", show_default="export/ROBOT"
    ),
    group: str | None = OPT_GROUP,
    context_len: int | None = OPT_CONTEXT,
    data_dir: Path = OPT_DATA_DIR,
    token_order: TokenOrderChoice | None = OPT_TOKEN_ORDER,
    base: str | None = OPT_BASE,
    json_out: bool = OPT_JSON,
) -> None:
    """A standalone policy for a robot's control loop: raw observation in, raw action out."""
    from adaptkit.evaluate import EvalSettings
    from adaptkit.export.build import export_checkpoint, recorded_robot

    if fmt not in FORMATS:
        raise typer.BadParameter(
            f"expected one of {', '.join(FORMATS)}, got {fmt!r}", param_hint="--format"
        )
    name = robot or recorded_robot(checkpoint)
    if name is None:
        raise AdaptkitError(f"--robot: {checkpoint} records no robot; name the one to drive")
    registry = get_registry()
    settings = EvalSettings.from_options(
        group=group, context_len=context_len, data_dir=data_dir, token_order=_order(token_order),
        base=base, threads=None,
    )  # fmt: skip
    result = export_checkpoint(
        checkpoint,
        registry.robot(name),
        out or Path("export") / name,
        fmt,
        settings,
        robots=list(registry.robots.values()),
        reporter=RichReporter(quiet=json_out),
    )
    if json_out:
        print_json({"policy": str(result.policy_file), "sidecar": str(result.sidecar_file)})
        return
    s = result.sidecar
    console.print(
        f"wrote {result.policy_file} ({fmt}) and {result.sidecar_file.name}: {s['robot']} via "
        f"group {s['group']}, obs {s['obs_dim']} → action {s['act_dim']}, context "
        f"{s['context_len']}, {s['control_rate_hz']:g} Hz",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("export")(export_cmd)
