"""Shared rich rendering for the CLI: tables, JSON, and the Reporter that draws progress."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from adaptkit.progress import Advance, Reporter, Update

# Output to a pipe or a file is not cut at rich's 80-column default (a table cell read
# "demonstra/tor"): it gets a wide line, and a table only as wide as its cells need; a terminal
# (or a COLUMNS setting) keeps its own width.
PIPE_WIDTH = 200
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH)
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


def fmt(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def render_compare(rep: Any, title: str) -> None:
    """The comparison table (one row per policy) and the files written."""
    rows = [
        (
            r["label"],
            r["mode"] or "-",
            "-"
            if r["mean_return"] is None
            else f"{fmt(r['mean_return'])} ± {fmt(r['std_return'])}",
            " / ".join(fmt(m) for m in r["per_episode_mean"]),
            fmt(r["pct_demonstrator"], 1),
            fmt(r["normalised_score"]),
            fmt(r["mean_speed"]),
            "-" if r["num_episodes"] is None else f"{r['falls']}/{r['num_episodes']}",
        )
        for r in rep.rows
    ]
    cols = ["policy", "mode", "return", "per episode", "% demo", "norm", "speed", "falls"]
    console.print(table(title, cols, rows))
    for label, why in rep.not_applicable.items():
        console.print(f"[yellow]{label}:[/] {why}", highlight=False, soft_wrap=True)
    notes = {r.summary["note"] for r in rep.reports.values() if r.summary.get("note")}
    for note in sorted(notes):  # the same budget for every policy: usually one line
        console.print(f"[cyan]note:[/] {note}", highlight=False)
    console.print(f"wrote {', '.join(str(p) for p in rep.files.values())}", highlight=False)


def training_summary(result: Any) -> None:
    """A training run's outcome: time, losses, the frozen-weights check, where it saved."""
    losses = ", ".join(f"{x:.4f}" for x in result.epoch_losses)
    console.print(f"[bold]done[/] in {result.seconds:.1f}s — epoch losses: {losses}")
    if result.frozen_verified:
        console.print(f"[green]✓ frozen weights verified:[/] {result.frozen_report}")
    elif result.frozen_verified is None and result.frozen_report:
        console.print(f"frozen weights: {result.frozen_report}")
    if result.last_checkpoint:
        console.print(f"checkpoint: {result.last_checkpoint}", highlight=False)
    if result.adapter:
        console.print(f"adapter:    {result.adapter}", highlight=False)


_live: list[Progress] = []  # bars still drawing; stop_live_displays() ends them all


def _start(bar: Progress) -> Progress:
    bar.start()
    _live.append(bar)
    return bar


def _stop(bar: Progress | None) -> None:
    if bar is not None and bar in _live:
        _live.remove(bar)
        bar.stop()


def stop_live_displays() -> None:
    """Stop every bar still running (a command ended or failed mid-way): restores the cursor."""
    while _live:
        _live.pop().stop()


class RichReporter(Reporter):
    """Notes, a training bar, collection bars and evaluation bars, drawn with rich.

    `quiet`: notes and tables only on request (JSON output), no bars."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.train_bar: Progress | None = None
        self.train_task: Any = None
        self.eval_bar: Progress | None = None

    # -- notes ---------------------------------------------------------------------------------
    def note(self, message: str) -> None:
        if not self.quiet:
            console.print(f"[cyan]note:[/] {message}", highlight=False)

    def _print(self, message: str) -> None:
        (self.train_bar.console if self.train_bar is not None else console).print(
            message, highlight=False
        )

    # -- training ------------------------------------------------------------------------------
    def event(self, name: str, data: dict[str, Any]) -> None:
        getattr(self, f"_on_{name}", lambda d: None)(data)

    def _on_trainable(self, d: dict[str, Any]) -> None:
        if self.quiet:
            return
        rows = [
            (r["module"], f"{r['params']:,}", f"{r['trainable']:,}", f"{r['trainable_pct']:.1f}%")
            for r in d["rows"]
        ]
        mode = d["freeze"]["mode"] if d.get("freeze") else "none (training from scratch)"
        console.print(
            table(f"Parameters (freeze: {mode})", ["module", "params", "trainable", "%"], rows)
        )

    def _on_start(self, d: dict[str, Any]) -> None:
        if self.quiet:
            return
        console.print(
            f"training {d['epochs'] - d['start_epoch']} epoch(s) × {d['steps_per_epoch']} steps, "
            f"global batch {d['global_batch']} windows ({d['tokens_per_step']:,} timesteps/step), "
            f"{d['world_size']} process(es), {d.get('precision', 'fp32')}"
            + (" (auto)" if d.get("precision_asked") == "auto" else ""),
            highlight=False,
        )
        if d.get("emulated_bf16"):
            console.print(
                "note: this device has no native bf16, so bf16 runs emulated and slower than "
                "fp32 (--precision auto picks fp32 here)",
                highlight=False,
            )
        self.train_bar = _start(
            Progress(
                TextColumn("epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("{task.fields[tps]} tok/s"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=console,
            )
        )
        self.train_task = self.train_bar.add_task(
            "train",
            total=d["total_steps"],
            completed=d["global_step"],
            epoch=d["start_epoch"] + 1,
            epochs=d["epochs"],
            loss="-",
            tps="-",
        )

    def _on_step(self, d: dict[str, Any]) -> None:
        if self.train_bar is not None:
            self.train_bar.update(
                self.train_task,
                completed=d["step"],
                epoch=d["epoch"],
                loss=f"{d['loss']:.4f}",
                tps=f"{d['tokens_per_s']:,.0f}",
            )

    def _on_epoch(self, d: dict[str, Any]) -> None:
        if not self.quiet:
            self._print(f"epoch {d['epoch']}: mean loss {d['loss']:.5f}")

    def _on_checkpoint(self, d: dict[str, Any]) -> None:
        if not self.quiet:
            self._print(f"saved {d['path']}")

    def _on_done(self, d: dict[str, Any]) -> None:
        _stop(self.train_bar)
        self.train_bar = None
        if not self.quiet:  # now: a fine-tune's comparison comes after, in the order it ran
            training_summary(d["result"])

    # -- simulation ----------------------------------------------------------------------------
    def collecting(self, label: str, total: int) -> Advance | None:
        if self.quiet:
            return None
        bar = _start(
            Progress(
                TextColumn(f"[bold]{label}[/]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("env-steps"),
                TimeRemainingColumn(),
                console=console,
            )
        )
        task = bar.add_task(label, total=total)

        def advance(k: int) -> None:
            bar.advance(task, k)
            if bar.tasks[0].completed >= total:
                _stop(bar)

        return advance

    def rolling_out(self, label: str) -> Update | None:
        if self.quiet:
            return None
        if self.eval_bar is None or self.eval_bar not in _live:
            self.eval_bar = _start(
                Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    console=err_console,
                    transient=True,
                )
            )
        bar = self.eval_bar
        task = bar.add_task(label, total=None)

        def update(step: int, total: int) -> None:
            bar.update(task, completed=step, total=total)

        return update
