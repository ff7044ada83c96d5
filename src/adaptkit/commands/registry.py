"""`adaptkit plugins` and `adaptkit robots`."""

from __future__ import annotations

import typer

from adaptkit.commands.render import console, print_json, table
from adaptkit.plugins import get_registry


def plugins(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Plugins loaded, where each comes from, and the robots it registers."""
    infos = list(get_registry().plugins.values())
    if json_out:
        print_json([i.as_dict() for i in infos])
        return
    rows = [(i.name, i.origin, i.source, i.version, ", ".join(i.robots)) for i in infos]
    console.print(table("plugins", ["plugin", "origin", "source", "version", "robots"], rows))


def robots(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Registered robots: task, group, dims, dataset and simulator."""
    registry = get_registry()
    specs = list(registry.robots.values())
    if json_out:
        print_json([{**s.summary(), "plugin": registry.owner(s.name)} for s in specs])
        return
    rows = [
        (
            s.name,
            s.task,
            s.group,
            s.obs_dim,
            s.action_dim,
            s.data_path,
            s.mjcf.name if s.mjcf else "-",
            registry.owner(s.name),
        )
        for s in specs
    ]
    cols = ["robot", "task", "group", "obs", "act", "data", "simulator", "plugin"]
    console.print(table("robots", cols, rows))


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
    app.command("robots")(robots)
