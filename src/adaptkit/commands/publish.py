"""`adaptkit push`: parse, call adaptkit.share.push, render."""

from __future__ import annotations

from pathlib import Path

import typer

from adaptkit.commands.render import console, print_json


def push_cmd(
    run: str = typer.Argument(..., help="Run folder (latest epoch) or NNNN_epoch folder."),
    target: str = typer.Argument(..., help="The Hub repo: hf://ORG/NAME."),
    what: str = typer.Option(
        "auto", "--what", help="adapter, full, or auto (the adapter when the run saved one)."
    ),
    evaluation: list[Path] = typer.Option(
        [],
        "--eval",
        help="compare.json or summary.json for the card's table (repeatable).",
        show_default="RUN/compare/compare.json",
    ),
    command: str | None = typer.Option(
        None,
        "--command",
        help="The command that trained it, for the card, when the run recorded none.",
        show_default="the one the run recorded",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder the upload is laid out in.", show_default="push/NAME"
    ),
    with_export: bool = typer.Option(
        False,
        "--with-export",
        help="Also export the policy (adaptkit export) into the folder's export/ and upload it.",
    ),
    export_format: list[str] = typer.Option(
        ["torchscript"], "--export-format", help="With --with-export: formats (repeatable)."
    ),
    robot: str | None = typer.Option(
        None, "--robot", help="With --with-export: the robot.", show_default="the run's robot"
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Write the folder only (offline)."),
    private: bool = typer.Option(False, "--private", help="Create the repo private."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Upload a run's adapter or checkpoint to the Hugging Face Hub, with a model card."""
    from adaptkit.share.push import exports_writer, parse_target, prepare_push, upload

    repo_id = parse_target(target)
    folder = out or Path("push") / repo_id.split("/")[-1]
    exports = exports_writer(run, repo_id, list(export_format), robot) if with_export else None
    plan = prepare_push(run, target, folder, what, list(evaluation), command, exports)
    url = None if dry_run else upload(plan, private=private)
    info = {"folder": str(plan.folder), "repo": plan.repo_id, "kind": plan.kind,
            "files": list(plan.files), "uploaded": url}  # fmt: skip
    if json_out:
        print_json(info)
        return
    done = f"uploaded to hf://{plan.repo_id} ({url})" if url else "dry run: nothing uploaded"
    console.print(
        f"wrote {plan.folder} ({plan.kind}: {', '.join(plan.files)}); {done}", highlight=False
    )


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("push")(push_cmd)
