"""`adaptkit groups` and `adaptkit inspect`: what is inside a checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer

from adaptkit.commands.render import console, print_json, table

CKPT = typer.Argument(..., help="An NNNN_epoch checkpoint dir, or a run dir (takes the latest).")


def groups(
    ckpt: Path = CKPT,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Groups and tasks inside a checkpoint, their obs/act dims and parameter counts."""
    from adaptkit.checkpoint import load_checkpoint
    from adaptkit.surgery import describe_groups

    loaded = load_checkpoint(ckpt, hash_weights=False)  # shapes only: reads no weights
    rows = describe_groups(loaded)
    if json_out:
        print_json(rows)
        return
    cols = ["group", "tasks", "obs", "act", "params"]
    data = [
        (r["group"], ", ".join(r["tasks"]), r["obs_dim"], r["act_dim"], f"{r['params']:,}")
        for r in rows
    ]
    console.print(table(f"groups in {loaded.path}", cols, data))


def inspect(
    ckpt: Path = CKPT,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Model config, parameters per module and the weights' fingerprint."""
    from adaptkit.checkpoint import load_checkpoint
    from adaptkit.surgery import describe_checkpoint

    info = describe_checkpoint(load_checkpoint(ckpt))
    if json_out:
        print_json(info)
        return
    console.print(f"[bold]{info['path']}[/]  fingerprint {info['fingerprint'][:16]}")
    cfg = info["model_config"]
    console.print(table("model config", ["key", "value"], cfg.items()))
    params = [
        (r["module"], f"{r['params']:,}", f"{r['trainable']:,}", r["trainable_pct"])
        for r in info["parameters"]
    ]
    console.print(table("parameters", ["module", "params", "trainable", "%"], params))
    g = [(r["group"], ", ".join(r["tasks"]), r["obs_dim"], r["act_dim"]) for r in info["groups"]]
    console.print(table("groups", ["group", "tasks", "obs", "act"], g))


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.command("groups")(groups)
    app.command("inspect")(inspect)
