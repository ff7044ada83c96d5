"""The click exceptions typer's commands raise: typer ≥ 0.22 vendors its own copy of click
(typer._click), whose exceptions are not the `click` package's; an older typer raises click's
own. The CLI catches these, so it imports them from here."""

from __future__ import annotations

from typer import Abort, BadParameter

try:  # the vendored copy typer's commands are built from
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # an older typer: click itself
    from click.exceptions import ClickException, UsageError  # type: ignore[no-redef]

__all__ = ["Abort", "BadParameter", "ClickException", "UsageError"]
