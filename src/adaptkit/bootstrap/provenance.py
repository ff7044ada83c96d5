"""A base's `provenance.json`, the one record of how a base model folder was built (recipe or
plan, command, data fingerprint, adaptkit version; `complete` once pretraining finished)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adaptkit.ckpt.layout import PROVENANCE_FILE, latest_checkpoint, read_record
from adaptkit.fileio import write_json

BUILD_MARKER = PROVENANCE_FILE  # written into a base model folder adaptkit builds


def read_provenance(base: Path) -> dict[str, Any] | None:
    """The provenance.json of a base this module built (None: there is none). A damaged one is
    a one-line error naming it, never taken for "none": that would make a shipped base look
    missing and send the main job off to build a whole new base."""
    return read_record(Path(base))


def write_provenance(base: Path, info: dict[str, Any]) -> None:
    write_json(base / BUILD_MARKER, info, "provenance")


def base_is_built(base: Path | str) -> bool:
    """A checkpoint is there and, if this module built it, the build finished."""
    marker = read_provenance(Path(base))
    return latest_checkpoint(Path(base)) is not None and (marker is None or marker.get("complete"))
