"""Where a run's training data came from, as its checkpoint records it (config.json's `data`,
the adapter's config, the model card): the task, its folder as configured, the dataset config
(or the robot plugin's own entry), how many history files, their bytes' sha256, and — for
histories adaptkit collected — the collector's record from the task JSON (method, expert,
noise, seeds, simulator, task variant)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adaptkit.data.history import read_task_metadata
from adaptkit.errors import AdaptkitError


def files_sha256(files: Sequence[Path]) -> str:
    """sha256 over every file's name and bytes, in the order given (sorted by the caller)."""
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode())
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def data_record(
    task: str, folder: Path, raw_path: str | None, configs: Sequence[Path], files: Sequence[Path]
) -> dict[str, Any]:
    """The record of one task's training data (see the module docstring)."""
    try:
        meta = read_task_metadata(folder) or {}
    except AdaptkitError:
        meta = {}  # an unreadable task JSON: the histories themselves were checked
    collector = meta.get("collector") if isinstance(meta, dict) else None
    return {
        "task": task,
        "path": raw_path or folder.name,
        "dataset_config": [str(p) for p in configs] or "the robot plugin's entry",
        "histories": len(files),
        "sha256": files_sha256(sorted(files)),
        "collected_by": (
            {"adaptkit": collector} if isinstance(collector, dict) else "not adaptkit (no record)"
        ),
    }
