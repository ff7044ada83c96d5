"""A subset of a learning history as a task folder of its own: the whole history, or its last k
episodes (the low-noise end of a noise-distillation history), with the source's task JSON."""

from __future__ import annotations

from pathlib import Path

from adaptkit.data.history import (
    read_history,
    read_task_metadata,
    write_history,
    write_task_metadata,
)
from adaptkit.errors import AdaptkitError


def write_subset(source: Path, folder: Path, last_episodes: int | None = None) -> Path:
    """`folder/<source's name>`: the history in `source`, or only its last `last_episodes`
    episodes; written once (an existing subset file is kept as it is). Returns the file."""
    out = folder / source.name
    if out.is_file():
        return out
    h = read_history(source)
    if last_episodes is not None:
        starts = h.episode_starts()
        if len(starts) < last_episodes:
            raise AdaptkitError(
                f"{source}: has {len(starts)} episodes, the subset needs {last_episodes}"
            )
        h = h.select(slice(int(starts[-last_episodes]), None))
    folder.mkdir(parents=True, exist_ok=True)
    meta = read_task_metadata(source.parent)
    if meta is not None:
        write_task_metadata(folder, meta)
    write_history(out, h.obs, h.action, h.reward, h.step_num)
    return out
