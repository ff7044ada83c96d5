"""The `adaptkit` command line: parses, calls the library, renders. No logic of its own."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import typer
import typer.core
from rich.markup import escape

from adaptkit.commands import (
    data,
    evaluate,
    export,
    model,
    onboard,
    publish,
    registry,
    sim,
    study,
    train,
)
from adaptkit.commands.render import err_console, stop_live_displays
from adaptkit.errors import AdaptkitError
from adaptkit.fileio import os_cause
from adaptkit.plugins import load_registry, set_registry
from adaptkit.version import __version__


class _Group(typer.core.TyperGroup):
    """One line on stderr for bad input anywhere below: an AdaptkitError or an OS error (disk
    full, read-only, ...) exits 1, an option value of the wrong type or outside its choices exits
    2 (the usage-error convention)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except AdaptkitError as exc:
            _one_line(str(exc))
            raise typer.Exit(1) from None
        except typer.BadParameter as exc:
            _one_line(exc.format_message())
            raise typer.Exit(2) from None
        except BrokenPipeError:  # the reader left (`adaptkit ... | head`): stop without a word
            _drop_stdout()
            raise typer.Exit(1) from None  # what rich's console does on a broken pipe too
        except OSError as exc:  # a writer without its own wording: still the path and the cause
            where = exc.filename if exc.filename is not None else "file system"
            _one_line(f"{where}: {os_cause(exc)}")
            raise typer.Exit(1) from None
        finally:
            stop_live_displays()


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush fails no more."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _one_line(message: str) -> None:
    stop_live_displays()
    # escaped: a message may hold brackets, e.g. "pip install 'adaptkit[video]'"
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


app = typer.Typer(
    cls=_Group,
    help="Adapt pretrained Vintix-style in-context RL transformers to new robots.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"adaptkit {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    plugin: list[Path] = typer.Option(
        [], "--plugin", help="Load a robot plugin from a Python file (repeatable)."
    ),
    disable_plugin: list[str] = typer.Option(
        [], "--disable-plugin", help="Skip a plugin by name (repeatable)."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Load plugins once, before any command runs."""
    set_registry(load_registry(plugin_files=list(plugin), disabled=list(disable_plugin)))


for _module in (registry, onboard, model, data, sim, train, evaluate, export, publish, study):
    _module.register(app)


def main() -> None:
    app()
