"""Learning histories on disk: one HDF5 file per history, in the Vintix chunked layout.

A file holds groups named ``"start-end"`` (inclusive global step indices; 10k steps each as the
reference and adaptkit write them, 50k in the quadruped fork's files), each with
``proprio_observation`` f32[n,d], ``action`` f32[n,a], ``reward`` f32[n], ``step_num`` i32[n].
A task folder holds the files plus a task metadata JSON: ``<folder>/<folder name>.json``, or the
fork's ``trajectories_env_*.json``.

The fork's writer stores n+1 observation rows per n actions in each chunk: the observation after
the chunk's last action is appended as an extra final row (it is the next chunk's first row
again), so concatenating chunks as stored would pair every later action with an observation from
one step earlier per chunk. The one rule adaptkit reads such files by: **a chunk whose
observation dataset has exactly one row more than its action dataset has its last observation
row dropped**, so row i of every dataset is step start+i (o_t pairs with a_t). Any other row
mismatch is an error. `extra_observation_rows` counts such chunks from the file's shapes alone,
and `adaptkit data validate` names them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.fileio import (
    commit,
    make_temp_file,
    missing_cause,
    not_a_file,
    os_errors,
    remove_quietly,
    write_json,
)

OBS_KEY = "proprio_observation"
ACTION_KEY = "action"
REWARD_KEY = "reward"
STEP_KEY = "step_num"
DATASET_KEYS = (OBS_KEY, ACTION_KEY, REWARD_KEY, STEP_KEY)
HISTORY_SUFFIXES = (".h5", ".hdf5")
DEFAULT_CHUNK_SIZE = 10_000
FORK_CHUNK_SIZE = 50_000  # the quadruped fork's histories
FORK_TASK_METADATA = "trajectories_env_*.json"  # the fork's task metadata file name(s)

_CHUNK_RE = re.compile(r"^([0-9]+)-([0-9]+)$")  # ASCII digits: \d takes ０-４９ too


@dataclass
class History:
    """One learning history, fully in memory: contiguous arrays over all its steps."""

    obs: np.ndarray  # f32 [n, obs_dim]
    action: np.ndarray  # f32 [n, act_dim]
    reward: np.ndarray  # f32 [n]
    step_num: np.ndarray  # i32 [n], 0 at each episode start

    def __len__(self) -> int:
        return len(self.reward)

    @property
    def obs_dim(self) -> int:
        return int(self.obs.shape[1])

    @property
    def act_dim(self) -> int:
        return int(self.action.shape[1])

    def select(self, rows: slice | np.ndarray) -> History:
        """The steps `rows` (a slice or an index array) of every array, as a history."""
        return History(self.obs[rows], self.action[rows], self.reward[rows], self.step_num[rows])

    def episode_starts(self) -> np.ndarray:
        """Indices where an episode starts (step_num == 0; index 0 always counts)."""
        starts = np.flatnonzero(self.step_num == 0)
        if len(self) and (len(starts) == 0 or starts[0] != 0):
            starts = np.concatenate([[0], starts])
        return starts


# -- reading ------------------------------------------------------------------------------------
def parse_chunk_name(name: str) -> tuple[int, int] | None:
    """``"0-9999"`` -> (0, 9999); None when the name is not a chunk name."""
    m = _CHUNK_RE.match(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise AdaptkitError(f"{path}: learning-history file {not_a_file(path)}")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise AdaptkitError(f"{path}: not a readable HDF5 file ({exc})") from None


def sorted_chunk_names(f: h5py.File, path: Path) -> list[str]:
    """Chunk group names in step order; anything else at the top level is an error."""
    keyed = []
    for name in f:
        span = parse_chunk_name(name)
        if span is None or not isinstance(f[name], h5py.Group):
            raise AdaptkitError(
                f"{path}: top-level entry {name!r} is not a chunk group named 'start-end'"
            )
        keyed.append((span[0], name))
    if not keyed:
        raise AdaptkitError(f"{path}: no chunk groups ('start-end') in the file")
    return [name for _, name in sorted(keyed)]


def _read_chunk(f: h5py.File, name: str, path: Path) -> dict[str, np.ndarray]:
    group = f[name]
    out = {}
    for key in DATASET_KEYS:
        if key not in group:
            raise AdaptkitError(f"{path}: chunk {name!r} has no dataset {key!r}")
        out[key] = group[key][()]  # whole dataset in one read: far faster than slicing rows
    n = len(out[ACTION_KEY])
    for key in (REWARD_KEY, STEP_KEY):
        if len(out[key]) != n:
            raise AdaptkitError(
                f"{path}: chunk {name!r}: dataset '{key}' has {len(out[key])} rows, "
                f"'{ACTION_KEY}' has {n}"
            )
    rows = len(out[OBS_KEY])
    if rows == n + 1:  # the fork's extra final observation row (module docstring)
        out[OBS_KEY] = out[OBS_KEY][:n]
    elif rows != n:
        raise AdaptkitError(
            f"{path}: chunk {name!r}: dataset '{OBS_KEY}' has {rows} rows for {n} actions "
            f"(expected {n}, or {n + 1} as the quadruped fork writes)"
        )
    return out


def extra_observation_rows(path: str | Path) -> tuple[int, int]:
    """(chunks with one observation row more than actions, all chunks) of a history file, read
    from the dataset shapes only (no data is loaded)."""
    path = Path(path)
    extra = 0
    with _open(path) as f:
        names = sorted_chunk_names(f, path)
        for name in names:
            group = f[name]
            if OBS_KEY in group and ACTION_KEY in group:
                extra += group[OBS_KEY].shape[0] == group[ACTION_KEY].shape[0] + 1
    return extra, len(names)


def iter_chunks(path: str | Path) -> Iterator[tuple[str, dict[str, np.ndarray]]]:
    """Yield (chunk name, {dataset key: array}) in step order, one chunk in memory at a time."""
    path = Path(path)
    with _open(path) as f:
        for name in sorted_chunk_names(f, path):
            yield name, _read_chunk(f, name, path)


def read_history(path: str | Path) -> History:
    """Read a whole history into contiguous arrays (obs/action/reward f32, step_num i32)."""
    path = Path(path)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in DATASET_KEYS}
    for _, chunk in iter_chunks(path):
        for key in DATASET_KEYS:
            parts[key].append(chunk[key])
    try:
        return History(
            obs=np.concatenate(parts[OBS_KEY]).astype(np.float32, copy=False),
            action=np.concatenate(parts[ACTION_KEY]).astype(np.float32, copy=False),
            reward=np.concatenate(parts[REWARD_KEY]).astype(np.float32, copy=False).reshape(-1),
            step_num=np.concatenate(parts[STEP_KEY]).astype(np.int32, copy=False).reshape(-1),
        )
    except ValueError as exc:  # chunks with different widths
        raise AdaptkitError(f"{path}: chunks disagree in shape ({exc})") from None


def _natural_key(p: Path) -> list[Any]:
    # history_2 before history_10
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def list_history_files(folder: str | Path) -> list[Path]:
    """The history files (*.h5, *.hdf5) of a task folder, in natural name order.

    Hidden files (the writer's temp files among them) are skipped.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise AdaptkitError(f"{folder}: the learning-history folder is a file, not a folder")
    if not folder.is_dir():
        raise AdaptkitError(
            f"{folder}: learning-history folder not found ({missing_cause(folder)})"
        )
    files = [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix in HISTORY_SUFFIXES and not p.name.startswith(".")
    ]
    if not files:
        raise AdaptkitError(f"{folder}: no learning-history files (*.h5) in the folder")
    return sorted(files, key=_natural_key)


def task_metadata_path(folder: str | Path) -> Path:
    """``<folder>/<folder name>.json``: where adaptkit writes a task folder's metadata."""
    folder = Path(folder)
    return folder / f"{folder.name}.json"


def find_task_metadata(folder: str | Path) -> Path | None:
    """The task folder's metadata file: ``<folder name>.json``, else the fork's first
    ``trajectories_env_*.json`` (natural order); None when there is none."""
    own = task_metadata_path(folder)
    if own.is_file():
        return own
    fork = sorted(Path(folder).glob(FORK_TASK_METADATA), key=_natural_key)
    return fork[0] if fork else None


def write_task_metadata(
    folder: str | Path, metadata: dict[str, Any], name: str | None = None
) -> Path:
    """Write the task folder's metadata JSON atomically (`name`: the folder's final name, when
    it is written in a temp folder first)."""
    path = Path(folder) / f"{name}.json" if name else task_metadata_path(folder)
    return write_json(path, metadata, "task metadata")


def read_task_metadata(folder: str | Path) -> dict[str, Any] | None:
    """The task folder's metadata (see `find_task_metadata`), or None when there is none."""
    path = find_task_metadata(folder)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdaptkitError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise AdaptkitError(f"{path}: expected a JSON object of task metadata")
    return data


# -- writing ------------------------------------------------------------------------------------
class HistoryWriter:
    """Append transitions to a new history file, one chunk group per ``chunk_size`` steps.

    Holds at most one chunk in memory. Writes to a hidden temp file in the same folder and renames
    it to ``path`` only on a clean ``close()``; an exception inside the ``with`` block (or
    ``abort()``) deletes the temp file, so a half-written history never appears under its name.
    """

    def __init__(
        self,
        path: str | Path,
        obs_dim: int,
        act_dim: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        attrs: dict[str, Any] | None = None,
    ) -> None:
        if obs_dim < 1 or act_dim < 1 or chunk_size < 1:
            raise ValueError("obs_dim, act_dim and chunk_size must be >= 1")
        self.path = Path(path)
        self.obs_dim, self.act_dim, self.chunk_size = obs_dim, act_dim, chunk_size
        self._file: h5py.File | None = None
        self._tmp = make_temp_file(self.path.parent, self.path.name)
        try:
            with os_errors(self.path, "write the learning history"):
                self._file = h5py.File(self._tmp, "w")
                for key, value in (attrs or {}).items():
                    self._file.attrs[key] = value
        except BaseException:
            self.abort()
            raise
        self._obs = np.empty((chunk_size, obs_dim), np.float32)
        self._act = np.empty((chunk_size, act_dim), np.float32)
        self._rew = np.empty(chunk_size, np.float32)
        self._step = np.empty(chunk_size, np.int32)
        self._fill = 0  # rows used in the buffer
        self._written = 0  # steps already flushed to the file

    @property
    def num_steps(self) -> int:
        return self._written + self._fill

    def append(
        self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, step_num: np.ndarray
    ) -> None:
        """Append n >= 0 transitions: obs [n,do], action [n,da], reward [n], step_num [n]."""
        if self._file is None:
            raise RuntimeError(f"{self.path}: writer is closed")
        obs = np.asarray(obs, np.float32)
        action = np.asarray(action, np.float32)
        reward = np.asarray(reward, np.float32).reshape(-1)
        step_num = np.asarray(step_num).reshape(-1)
        n = len(reward)
        if (
            obs.shape != (n, self.obs_dim)
            or action.shape != (n, self.act_dim)
            or len(step_num) != n
        ):
            raise ValueError(
                f"append: expected obs [{n},{self.obs_dim}], action [{n},{self.act_dim}], "
                f"step_num [{n}]; got {obs.shape}, {action.shape}, {step_num.shape}"
            )
        i = 0
        while i < n:
            take = min(n - i, self.chunk_size - self._fill)
            sl = slice(self._fill, self._fill + take)
            self._obs[sl] = obs[i : i + take]
            self._act[sl] = action[i : i + take]
            self._rew[sl] = reward[i : i + take]
            self._step[sl] = step_num[i : i + take]
            self._fill += take
            i += take
            if self._fill == self.chunk_size:
                self._flush()

    def _flush(self) -> None:
        try:
            with os_errors(self.path, "write the learning history"):
                self._write_chunk()
        except BaseException:
            self.abort()  # a chunk that failed half-way (disk full): the temp file is useless
            raise

    def _write_chunk(self) -> None:
        if self._fill == 0:
            return
        assert self._file is not None
        start, end = self._written, self._written + self._fill - 1
        group = self._file.create_group(f"{start}-{end}")
        group.create_dataset(OBS_KEY, data=self._obs[: self._fill])
        group.create_dataset(ACTION_KEY, data=self._act[: self._fill])
        group.create_dataset(REWARD_KEY, data=self._rew[: self._fill])
        group.create_dataset(STEP_KEY, data=self._step[: self._fill])
        self._written += self._fill
        self._fill = 0

    def close(self) -> Path:
        """Flush the last partial chunk and move the file to its final name."""
        if self._file is None:
            return self.path
        try:
            self._flush()
            with os_errors(self.path, "write the learning history"):
                self._file.close()
            self._file = None
            commit(self._tmp, self.path, "learning history")  # fsync, rename, fsync the folder
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Drop everything written so far; nothing appears under the final name."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError:  # e.g. the disk is full: the temp file is removed below anyway
                pass
            finally:
                self._file = None
        remove_quietly(self._tmp)

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # a writer dropped without close() must not leave its temp file
        try:
            if getattr(self, "_file", None) is not None:
                self.abort()
        except Exception:
            pass


def write_history(
    path: str | Path,
    obs: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    step_num: np.ndarray,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Path:
    """Write a whole in-memory history in one go (convenience over HistoryWriter)."""
    obs, action = np.asarray(obs), np.asarray(action)
    with HistoryWriter(path, obs.shape[1], action.shape[1], chunk_size) as w:
        w.append(obs, action, reward, step_num)
    return Path(path)
