"""Checks of flag values shared by the commands, as typer callbacks: a bad value is a usage
error (exit 2, one line naming the flag), the one rule for every bad flag."""

from __future__ import annotations

import typer

from adaptkit.errors import AdaptkitError

# numpy's and torch's seeding both take 0 .. 2**32 - 1 without surprises (negative seeds and
# seeds past 64 bits fail deep inside a run)
SEED_MAX = 2**32 - 1


def device(value: str | None) -> str | None:
    """--device: a device this machine has (adaptkit.machine)."""
    if value is None:
        return None
    from adaptkit.machine import check_device

    try:
        return check_device(value)
    except AdaptkitError as exc:
        raise typer.BadParameter(str(exc).split(": ", 1)[-1]) from None  # the flag is named


def run_name(value: str | None) -> str | None:
    """--name: one folder name under --save-dir (adaptkit.fileio.check_folder_name)."""
    if value is None:
        return None
    from adaptkit.fileio import check_folder_name

    try:
        return check_folder_name(value, "run name")
    except AdaptkitError as exc:
        raise typer.BadParameter(str(exc)) from None


def finetune_mode(value: str | None) -> str | None:
    """--mode: a fine-tune's adaptation mode from the table (adaptkit.adapt.modes)."""
    if value is None:
        return None
    from adaptkit.adapt.modes import mode_names

    names = mode_names(scratch=False)
    if value not in names:
        raise typer.BadParameter(f"expected one of {', '.join(names)}, got {value!r}")
    return value


def positive_seconds(value: float | None) -> float | None:
    """A duration in seconds: a finite number > 0 (nan and inf pass typer's own range check)."""
    import math

    if value is None:
        return None
    if not math.isfinite(value) or value <= 0:
        raise typer.BadParameter(f"must be a finite number of seconds > 0, got {value}")
    return value
