"""`adaptkit plugins` and `adaptkit robots` (`new-robot`, `tune-robot`: commands/onboard.py)."""

from __future__ import annotations

import typer

from adaptkit.commands.render import console, print_json, table
from adaptkit.plugins import get_registry


def complete_robot(incomplete: str) -> list[str]:
    """Shell completion of robot names (the installed plugins'; `--plugin` files are not
    loaded while completing)."""
    try:
        names = sorted(get_registry().robots)
    except Exception:  # a broken plugin must not break the shell: no suggestions then
        return []
    return [n for n in names if n.startswith(incomplete)]


def plugins(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Plugins loaded, where each comes from, and the robots it registers."""
    registry = get_registry()
    infos = list(registry.plugins.values())
    if json_out:
        print_json(
            [
                {**i.as_dict(), "families": [registry.families[f].summary() for f in i.families]}
                for i in infos
            ]
        )
        return
    rows = [
        (
            i.name,
            i.origin,
            i.source,
            i.version,
            ", ".join([*i.robots, *(f"{f} (family)" for f in i.families)]),
        )
        for i in infos
    ]
    console.print(table("plugins", ["plugin", "origin", "source", "version", "robots"], rows))


def robots(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Registered robots: task, group, dims, dataset and simulator; a procedural family is one
    line with its member count (members are named FAMILY_0000, FAMILY_0001, ...)."""
    registry = get_registry()
    specs = list(registry.robots.values())
    families = list(registry.families.values())
    if json_out:  # robots only (families: `adaptkit plugins --json`), as before families
        print_json([{**s.summary(), "plugin": registry.owner(s.name)} for s in specs])
        return
    rows = [
        (
            s.name,
            s.task,
            s.group,
            s.obs_dim,
            s.action_dim,
            ", ".join(s.layouts()),
            s.data_path,
            s.mjcf.name if s.mjcf else "-",
            registry.owner(s.name),
        )
        for s in specs
    ]
    rows += [
        (
            f"{f.name} ({f.size} members)",
            f"{f.member_name(0)}_walking_ad ..",
            f.group,
            "",
            "",
            "",
            f"{f.member_name(0)}_trajectories ..",
            "generated",
            registry.owner(f.name),
        )
        for f in families
    ]
    cols = ["robot", "task", "group", "obs", "act", "layouts", "data", "simulator", "plugin"]
    console.print(table("robots", cols, rows))


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
    app.command("robots")(robots)
