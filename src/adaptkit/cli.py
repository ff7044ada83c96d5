"""The `adaptkit` command line: parses, calls the library, renders. No logic of its own."""

from __future__ import annotations

import os
import shlex
import signal
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
from adaptkit.commands.clicklib import Abort, ClickException, UsageError
from adaptkit.commands.config_file import remember_argv, remembered_argv
from adaptkit.commands.render import err_console, stop_live_displays
from adaptkit.errors import AdaptkitError, Interrupted, raise_on_signal, signal_name, signal_of
from adaptkit.fileio import os_cause
from adaptkit.plugins import load_registry, set_registry
from adaptkit.version import __version__


class _Group(typer.core.TyperGroup):
    """One line on stderr for bad input anywhere below: an AdaptkitError or an OS error (disk
    full, read-only, ...) exits 1, an option value of the wrong type or outside its choices exits
    2 (the usage-error convention)."""

    def main(self, args: Any = None, *a: Any, standalone_mode: bool = True, **kw: Any) -> Any:
        """Usage errors (a mistyped option, a missing argument, a bad --config) as the one line
        every other error is, exit 2, instead of a boxed panel; and the command line remembered
        as typed, for the runs that record it (adaptkit.commands.config_file)."""
        remember_argv(args)
        try:
            rv = super().main(args, *a, standalone_mode=False, **kw)
        except ClickException as exc:
            if not standalone_mode:
                raise
            hint = ""
            if isinstance(exc, UsageError) and exc.ctx is not None:
                hint = f" (see `{exc.ctx.command_path} --help`)"
            _one_line(exc.format_message() + hint)
            sys.exit(exc.exit_code)
        except Abort:
            if not standalone_mode:
                raise
            _one_line("aborted")
            sys.exit(1)
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Interrupted as exc:  # a signal: what was kept, and how to go on
            go_on = ""
            if exc.resume:
                argv = remembered_argv()
                again = [*argv, *([] if "--resume" in argv else ["--resume"])]
                go_on = f"; to continue: {shlex.join(['adaptkit', *again])}"
            _one_line(f"{exc}{go_on}")
            raise typer.Exit(128 + exc.signum) from None
        except KeyboardInterrupt as exc:  # a signal where no job said what it kept
            _one_line(f"interrupted by {signal_name(signal_of(exc))}")
            raise typer.Exit(128 + signal_of(exc)) from None
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
    # plain help: rich's panels cut long option names ("--dataset_con…") and kept the docstrings'
    # line breaks mid-sentence; click's formatter wraps every paragraph to the terminal instead
    rich_markup_mode=None,
    # help as wide as the terminal (click alone stops at 80 columns)
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 200},
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
    # SIGTERM (a scheduler's stop, `kill`) as Ctrl-C is: an exception, so temp files are
    # removed, locks released, and the job says in one line what it kept
    # SIGHUP (the terminal closed) too; a signal set to be ignored (nohup) stays ignored
    for signum in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if signum is not None and signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, raise_on_signal)
    app()
