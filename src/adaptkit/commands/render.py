"""Shared rich rendering for the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no rich markup), so it pipes into jq."""
    print(json.dumps(data, indent=2, default=str))


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


_live: list[Progress] = []  # bars started by collect_progress, stopped by stop_live_displays


def stop_live_displays() -> None:
    """Stop every bar still running (a command failed mid-way): restores the cursor."""
    while _live:
        _live.pop().stop()


def collect_progress(label: str, total: int) -> Callable[[int], None]:
    """A progress bar for `total` env-steps; returns advance(k) and closes itself when full."""
    bar = Progress(
        TextColumn(f"[bold]{label}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("env-steps"),
        TimeRemainingColumn(),
        console=console,
    )
    task = bar.add_task(label, total=total)
    bar.start()
    _live.append(bar)

    def advance(k: int) -> None:
        bar.advance(task, k)
        if bar.tasks[0].completed >= total and bar in _live:
            _live.remove(bar)
            bar.stop()

    return advance
