"""The one checker of learning histories: `adaptkit data validate`, `data stats`, the training
windows and the pre-flight of `pretrain`/`finetune` all read a history file through
`check_history_file` (layout, dims, NaN/inf, step_num; optionally the data and its moments)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from adaptkit.data.history import (
    ACTION_KEY,
    DATASET_KEYS,
    OBS_KEY,
    REWARD_KEY,
    STEP_KEY,
    History,
    parse_chunk_name,
    sorted_chunk_names,
)
from adaptkit.data.moments import RunningMoments
from adaptkit.errors import AdaptkitError
from adaptkit.fileio import not_a_file


@dataclass
class FileCheck:
    """What one pass over a valid history file found (and, when asked, kept)."""

    obs_dim: int
    act_dim: int
    steps: int
    episode_returns: np.ndarray
    history: History | None = None  # the whole history in memory (keep=True)
    obs_moments: RunningMoments | None = None  # for stats (moments=True)
    act_moments: RunningMoments | None = None
    chunks: int = 0
    last_chunk: str = ""
    extra_obs_chunks: list[str] = field(default_factory=list)  # chunks with n+1 obs rows
    extra_obs_repeats: int = 0  # of those followed by a chunk: the dropped row = its first row


# Sane bounds no physical signal of a robot's history crosses (measured: Mini Cheetah's collected
# observations have |x| < 10 and a largest/median per-dim std ratio of about 7). A value beyond
# them is a unit, logging or corruption error, and it would poison the normalisation stats.
MAX_ABS_VALUE = 1e6
MAX_STD_RATIO = 1e4  # a dim's std over the median of the chunk's (non-constant) dims' stds


def _first_bad_row(arr: np.ndarray, bad: np.ndarray) -> tuple[int, str]:
    """Row (and, for 2-D data, column) of the first True in `bad`."""
    if arr.ndim == 1:
        return int(np.flatnonzero(bad)[0]), ""
    row = int(np.flatnonzero(bad.any(axis=1))[0])
    return row, f" (dim {int(np.flatnonzero(bad[row])[0])})"


def check_history_file(
    path: Path,
    obs_dim: int | None = None,
    act_dim: int | None = None,
    *,
    keep: bool = False,
    moments: bool = False,
) -> FileCheck:
    """Check one history file chunk by chunk; raise AdaptkitError at the first problem,
    naming the file, chunk, dataset and step.

    Checks: chunks contiguous from step 0; every dataset present with the rows its chunk name
    promises; obs/action 2-D floats of the expected dims (the first chunk sets them when none are
    given), reward 1-D float; no NaN/inf anywhere; step_num integer, 0 at the history's start and
    at each episode start, else the previous value + 1 (across chunk boundaries too).

    The same pass can keep the arrays (`keep`: training reads each file once) and the
    obs/action moments (`moments`: the stats), so checking costs almost nothing extra.
    """
    if not path.is_file():
        raise AdaptkitError(f"{path}: learning-history file {not_a_file(path)}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise AdaptkitError(f"{path}: not a readable HDF5 file ({exc})") from None
    returns: list[float] = []
    current, started = 0.0, False
    last_step: int | None = None
    expected_start = 0
    parts: dict[str, list[np.ndarray]] = {k: [] for k in DATASET_KEYS}
    obs_m = act_m = None
    extra: list[str] = []
    repeats = 0
    dropped: np.ndarray | None = None  # the extra observation row of the previous chunk
    with f:
        names = sorted_chunk_names(f, path)
        for name in names:
            where = f"{path}: chunk '{name}'"
            start, end = parse_chunk_name(name)  # type: ignore[misc]
            if start != expected_start:
                raise AdaptkitError(
                    f"{where} starts at step {start}, expected {expected_start} (chunks must be "
                    "contiguous from 0)"
                )
            if end < start:
                raise AdaptkitError(f"{where}: end before start")
            n = end - start + 1
            group = f[name]
            data = {}
            for key in DATASET_KEYS:
                if key not in group or not isinstance(group[key], h5py.Dataset):
                    raise AdaptkitError(f"{where} has no dataset '{key}'")
                try:
                    data[key] = group[key][()]  # one read of the whole dataset
                except OSError as exc:
                    raise AdaptkitError(f"{where}: dataset '{key}' is unreadable ({exc})") from None
            obs, act, rew, step = (data[k] for k in (OBS_KEY, ACTION_KEY, REWARD_KEY, STEP_KEY))
            if obs.ndim != 2 or act.ndim != 2 or rew.ndim != 1 or step.ndim != 1:
                raise AdaptkitError(
                    f"{where}: expected {OBS_KEY} [n,d], {ACTION_KEY} [n,a], {REWARD_KEY} [n], "
                    f"{STEP_KEY} [n]; got {obs.shape}, {act.shape}, {rew.shape}, {step.shape}"
                )
            if len(obs) == n + 1:  # the fork's writer: an extra final observation row
                extra.append(name)
                obs, next_first = obs[:n], obs[n]
                data[OBS_KEY] = obs  # what is kept for training is aligned the same way
            else:
                next_first = None
            if dropped is not None and len(obs) and np.array_equal(dropped, obs[0]):
                repeats += 1
            dropped = next_first
            for key, arr in (
                (OBS_KEY, obs),
                (ACTION_KEY, act),
                (REWARD_KEY, rew),
                (STEP_KEY, step),
            ):
                if len(arr) != n:
                    plus = f" (or {n + 1}: the fork's extra row)" if key == OBS_KEY else ""
                    raise AdaptkitError(
                        f"{where}: dataset '{key}' has {len(arr)} rows, expected {n}{plus} from "
                        "the chunk name"
                    )
            for key, arr in ((OBS_KEY, obs), (ACTION_KEY, act), (REWARD_KEY, rew)):
                if not np.issubdtype(arr.dtype, np.floating):
                    raise AdaptkitError(f"{where}: dataset '{key}' must be float, got {arr.dtype}")
                _check_bounds(arr, key, where, start)
            if not np.issubdtype(step.dtype, np.integer):
                raise AdaptkitError(
                    f"{where}: dataset '{STEP_KEY}' must be integer, got {step.dtype}"
                )
            if obs_dim is None:
                obs_dim, act_dim = obs.shape[1], act.shape[1]
            if obs.shape[1] != obs_dim:
                raise AdaptkitError(
                    f"{where}: '{OBS_KEY}' has dim {obs.shape[1]}, expected {obs_dim}"
                )
            if act.shape[1] != act_dim:
                raise AdaptkitError(
                    f"{where}: '{ACTION_KEY}' has dim {act.shape[1]}, expected {act_dim}"
                )
            # step_num: 0 at an episode start, else previous + 1 (also across chunk boundaries)
            prev = np.empty(n, np.int64)
            prev[0] = -1 if last_step is None else last_step
            prev[1:] = step[:-1]
            bad = ~((step == 0) | ((step == prev + 1) & (prev >= 0)))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                expected = "0" if prev[i] < 0 else f"0 or {prev[i] + 1}"
                raise AdaptkitError(
                    f"{where}: '{STEP_KEY}' at step {start + i} is {int(step[i])}, "
                    f"expected {expected}"
                )
            last_step = int(step[-1])
            # per-episode returns, streamed across chunks
            r = rew.astype(np.float64)
            starts = np.flatnonzero(step == 0)
            if len(starts) == 0:
                current += r.sum()
            else:
                current += r[: starts[0]].sum()
                if started:
                    returns.append(current)
                sums = np.add.reduceat(r, starts)
                returns.extend(sums[:-1].tolist())
                current, started = float(sums[-1]), True
            if moments:
                if obs_m is None or act_m is None:
                    obs_m, act_m = RunningMoments(obs.shape[1]), RunningMoments(act.shape[1])
                obs_m.update(obs)
                act_m.update(act)
            if keep:
                for key in DATASET_KEYS:
                    parts[key].append(data[key])
            expected_start = end + 1
    returns.append(current)
    assert obs_dim is not None and act_dim is not None
    history = None
    if keep:
        history = History(
            obs=np.concatenate(parts[OBS_KEY]).astype(np.float32, copy=False),
            action=np.concatenate(parts[ACTION_KEY]).astype(np.float32, copy=False),
            reward=np.concatenate(parts[REWARD_KEY]).astype(np.float32, copy=False),
            step_num=np.concatenate(parts[STEP_KEY]).astype(np.int32, copy=False),
        )
    return FileCheck(
        obs_dim, act_dim, expected_start, np.asarray(returns), history, obs_m, act_m,
        len(names), names[-1], extra, repeats,
    )  # fmt: skip


def _check_bounds(arr: np.ndarray, key: str, where: str, start: int) -> None:
    """No NaN/inf, no |x| > MAX_ABS_VALUE, no dim whose spread no physical signal has; the
    error names the chunk (`where`), field, step and dim. One comparison covers NaN too."""
    bad = ~(np.abs(arr) <= MAX_ABS_VALUE)
    if bad.any():
        row, dim = _first_bad_row(arr, bad)
        value = arr[row] if arr.ndim == 1 else arr[row, int(np.flatnonzero(bad[row])[0])]
        if not np.isfinite(value):
            raise AdaptkitError(f"{where}: dataset '{key}' has NaN/inf at step {start + row}{dim}")
        raise AdaptkitError(
            f"{where}: dataset '{key}' has {float(value):.3g} at step {start + row}{dim}, beyond "
            f"the sane bound |x| <= {MAX_ABS_VALUE:.0e} (a unit, logging or corruption error?)"
        )
    if arr.ndim != 2 or len(arr) < 2:
        return
    std = arr.std(axis=0, dtype=np.float64)
    moving = std[std > 0]
    if len(moving) < 2:
        return
    ratio = std / np.median(moving)
    if ratio.max() > MAX_STD_RATIO:
        d = int(np.argmax(ratio))
        col = arr[:, d].astype(np.float64)
        row = int(np.argmax(np.abs(col - np.median(col))))
        raise AdaptkitError(
            f"{where}: dataset '{key}' dim {d} spreads {ratio[d]:.3g}× more than the median dim "
            f"(std {std[d]:.3g}; most extreme value {col[row]:.3g} at step {start + row}), beyond "
            f"the sane ratio {MAX_STD_RATIO:.0e} no physical signal has"
        )


def extra_rows_warning(path: Path, fs: FileCheck) -> str:
    """The warning naming a file's n+1 observation rows (see adaptkit.data.history)."""
    k = len(fs.extra_obs_chunks)
    boundaries = k - (fs.extra_obs_chunks[-1] == fs.last_chunk)
    seen = (
        f"; at {fs.extra_obs_repeats} of {boundaries} chunk boundaries that row equals the next "
        "chunk's first row"
        if boundaries
        else ""
    )
    return (
        f"{path}: {k} of {fs.chunks} chunks (e.g. '{fs.extra_obs_chunks[0]}') store one "
        f"observation row more than actions — the quadruped fork's writer appends the "
        f"observation after the chunk's last action; adaptkit drops each such chunk's last "
        f"observation row, so o_t pairs with a_t{seen}"
    )
