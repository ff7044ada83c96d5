"""Which observation layout a task's learning histories use: the one recorded in the task
folder's metadata (`adaptkit collect` writes `obs_layout`), else the one the histories' width
selects among the robot's layouts (`RobotSpec.for_obs_dim`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py

from adaptkit.data.history import (
    OBS_KEY,
    find_task_metadata,
    list_history_files,
    read_task_metadata,
    sorted_chunk_names,
)
from adaptkit.errors import AdaptkitError
from adaptkit.robot import RobotSpec


def history_obs_dim(path: Path) -> int:
    """The observation width of a history file, from its first chunk's shape (no data read)."""
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise AdaptkitError(f"{path}: not a readable HDF5 file ({exc})") from None
    with f:
        first = f[sorted_chunk_names(f, path)[0]]
        if OBS_KEY not in first or len(first[OBS_KEY].shape) != 2:
            raise AdaptkitError(f"{path}: first chunk has no 2-D dataset '{OBS_KEY}'")
        return int(first[OBS_KEY].shape[1])


def spec_for_data(
    spec: RobotSpec, folder: str | Path, files: Sequence[Path] | None = None
) -> tuple[RobotSpec, str]:
    """`spec` in the observation layout of the histories in `folder`, and why that one."""
    folder = Path(folder)
    files = list(files) if files is not None else list_history_files(folder)
    dim = history_obs_dim(files[0])
    recorded = (read_task_metadata(folder) or {}).get("obs_layout")
    if isinstance(recorded, str) and recorded in spec.layouts():
        chosen = spec.for_layout(recorded)
        where = find_task_metadata(folder)
        if chosen.obs_dim != dim:
            raise AdaptkitError(
                f"{where}: records obs_layout '{recorded}' ({chosen.obs_dim} dims) but "
                f"{files[0]} holds {dim}-dim observations"
            )
        return chosen, f"recorded in {where}"
    chosen = spec.for_obs_dim(dim, f"data in {folder}")
    return chosen, f"the histories in {folder} are {dim}-dim"
