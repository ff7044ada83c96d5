"""Training windows over learning histories, and a sampler that keeps each batch in one group.

Each history is read (and checked) once into contiguous arrays (obs pre-normalised, rewards
pre-scaled, only the kept episodes), so a window is a slice and a batch one fancy-index per task:
no file reads after construction. Windows are L+1 consecutive steps that cross episode boundaries
(the cross-episode context is what in-context RL learns from) but never cross from one history
into the next.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from adaptkit.data.check import check_history_file
from adaptkit.data.config import DatasetEntry
from adaptkit.data.history import History, list_history_files
from adaptkit.errors import AdaptkitError
from adaptkit.meta import Stats
from adaptkit.model import GroupDims

OBS_EPS = 1e-6  # the reference normalises with (x - mean) / (std + 1e-6)


def window_starts(length: int, context_len: int, stride: int) -> np.ndarray:
    """Where the training windows of one history start: every `stride` steps, each window
    [s, s + context_len] ending inside the history (the one window rule)."""
    return np.arange(0, max(length - context_len, 0), stride)


def count_windows(lengths: Sequence[int], context_len: int, stride: int) -> int:
    """How many training windows histories of these lengths give (`window_starts`' rule)."""
    return sum(len(window_starts(n, context_len, stride)) for n in lengths)


def keep_episodes(history: History, sparsity: int) -> History:
    """Keep every `sparsity`-th episode (the 1st, (k+1)-th, ...), in order."""
    if sparsity == 1:
        return history
    starts = history.episode_starts()
    ends = np.append(starts[1:], len(history))
    idx = np.concatenate(
        [np.arange(s, e) for s, e in zip(starts[::sparsity], ends[::sparsity], strict=True)]
    )
    return history.select(idx)


@dataclass
class _TaskData:
    task: str
    group: str
    obs: np.ndarray  # f32 [N, do], normalised; all kept histories of the task back to back
    action: np.ndarray  # f32 [N, da]
    reward: np.ndarray  # f32 [N], already times reward_scale
    step_num: np.ndarray  # i64 [N]


class WindowDataset(Dataset):
    """Windows of context_len+1 steps; sample i is a dict of tensors plus `group` and `task`.

    obs = normalised o[1:] [L,do], prev_action = a[:-1] [L,da], prev_reward = r[:-1]*scale [L],
    target = a[1:] [L,da], step_num = s[1:] [L] (int64). Window starts every `stride` steps.
    """

    def __init__(
        self,
        entries: Sequence[DatasetEntry],
        stats: Mapping[str, Stats],
        context_len: int,
        stride: int = 1,
        histories: Mapping[str, Sequence[History]] | None = None,
    ) -> None:
        if context_len < 1 or stride < 1:
            raise AdaptkitError(
                f"context_len and stride must be >= 1, got {context_len} and {stride}"
            )
        self.context_len, self.stride = context_len, stride
        self.tasks: list[_TaskData] = []
        task_ids, starts = [], []
        group_dims: dict[str, tuple[int, int, str]] = {}
        for entry in entries:
            given = histories.get(entry.task) if histories is not None else None
            data, win_starts = self._load_task(entry, stats, given)
            if data is None:
                continue
            dims = (data.obs.shape[1], data.action.shape[1])
            if group_dims.setdefault(entry.group, (*dims, entry.task))[:2] != dims:
                other = group_dims[entry.group]
                raise AdaptkitError(
                    f"{entry.path}: task '{entry.task}' has obs/action dims {dims[0]}/{dims[1]} "
                    f"but '{other[2]}' of the same group '{entry.group}' has {other[0]}/{other[1]}"
                )
            task_ids.append(np.full(len(win_starts), len(self.tasks), np.int32))
            starts.append(win_starts)
            self.tasks.append(data)
        if not self.tasks or sum(len(s) for s in starts) == 0:
            raise AdaptkitError(
                f"no training windows: no history has {context_len + 1} steps "
                "(after episode_sparsity); use shorter context_len or more data"
            )
        self._task_of = np.concatenate(task_ids)
        self._start = np.concatenate(starts)
        self._offsets = np.arange(context_len + 1)

    def _load_task(
        self,
        entry: DatasetEntry,
        stats: Mapping[str, Stats],
        given: Sequence[History] | None,
    ) -> tuple[_TaskData | None, np.ndarray]:
        if entry.task not in stats:
            raise AdaptkitError(f"no normalisation stats for task '{entry.task}'")
        mean = stats[entry.task].array("obs_mean")
        denom = stats[entry.task].array("obs_std") + np.float32(OBS_EPS)
        parts: list[History] = []
        win_starts: list[np.ndarray] = []
        offset, L = 0, self.context_len
        for path, full in self._histories(entry, given):
            h = keep_episodes(full, entry.episode_sparsity)
            if h.obs_dim != len(mean):
                raise AdaptkitError(
                    f"{path}: observation dim {h.obs_dim} but stats for '{entry.task}' have "
                    f"{len(mean)}"
                )
            if parts and (h.obs_dim, h.act_dim) != (parts[0].obs_dim, parts[0].act_dim):
                raise AdaptkitError(
                    f"{path}: obs/action dims {h.obs_dim}/{h.act_dim} differ from the task's "
                    f"other histories ({parts[0].obs_dim}/{parts[0].act_dim})"
                )
            win_starts.append(offset + window_starts(len(h), L, self.stride))
            parts.append(h)
            offset += len(h)
        if not parts:
            return None, np.empty(0, np.int64)
        obs = np.concatenate([p.obs for p in parts])
        obs -= mean  # in place: the concatenation is already a private copy
        obs /= denom
        data = _TaskData(
            task=entry.task,
            group=entry.group,
            obs=obs,
            action=np.concatenate([p.action for p in parts]),
            reward=np.concatenate([p.reward for p in parts]) * np.float32(entry.reward_scale),
            step_num=np.concatenate([p.step_num for p in parts]).astype(np.int64),
        )
        return data, np.concatenate(win_starts).astype(np.int64)

    @staticmethod
    def _histories(
        entry: DatasetEntry, given: Sequence[History] | None
    ) -> Iterator[tuple[str, History]]:
        """(label, history) of the task: the pre-flight's arrays, or each file read and checked
        here (so a malformed file is a clear error, never an IndexError mid-training)."""
        if given is not None:
            for i, h in enumerate(given):
                yield f"{entry.path} (history {i})", h
            return
        for path in list_history_files(entry.path):
            checked = check_history_file(path, keep=True)
            assert checked.history is not None
            yield str(path), checked.history

    # -- access ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._start)

    @property
    def groups(self) -> list[str]:
        return sorted({t.group for t in self.tasks})

    @property
    def dims(self) -> dict[str, GroupDims]:
        """task → obs/action dims, as found in the histories."""
        return {t.task: GroupDims(t.obs.shape[1], t.action.shape[1]) for t in self.tasks}

    def group_of(self, index: int) -> str:
        return self.tasks[self._task_of[index]].group

    def group_indices(self) -> dict[str, np.ndarray]:
        """Window indices of each group, ascending."""
        task_group = np.array([t.group for t in self.tasks])
        window_group = task_group[self._task_of]
        return {g: np.flatnonzero(window_group == g) for g in self.groups}

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        t = self.tasks[self._task_of[index]]
        s = int(self._start[index])
        L = self.context_len
        return {
            "obs": torch.from_numpy(t.obs[s + 1 : s + L + 1].copy()),
            "prev_action": torch.from_numpy(t.action[s : s + L].copy()),
            "prev_reward": torch.from_numpy(t.reward[s : s + L].copy()),
            "target": torch.from_numpy(t.action[s + 1 : s + L + 1].copy()),
            "step_num": torch.from_numpy(t.step_num[s + 1 : s + L + 1].copy()),
            "group": t.group,
            "task": t.task,
        }

    def get_batch(self, indices: Sequence[int]) -> dict[str, Any]:
        """A collated batch of windows from one group, gathered with one fancy index per task."""
        indices = np.asarray(indices, np.int64)
        task_ids = self._task_of[indices]
        groups = {self.tasks[i].group for i in np.unique(task_ids)}
        if len(groups) != 1:
            raise ValueError(f"get_batch: a batch must hold one group, got {sorted(groups)}")
        first = self.tasks[task_ids[0]]
        B, L = len(indices), self.context_len
        do, da = first.obs.shape[1], first.action.shape[1]
        obs = np.empty((B, L, do), np.float32)
        prev_a = np.empty((B, L, da), np.float32)
        target = np.empty((B, L, da), np.float32)
        prev_r = np.empty((B, L), np.float32)
        steps = np.empty((B, L), np.int64)
        for tid in np.unique(task_ids):
            rows = np.flatnonzero(task_ids == tid)
            t = self.tasks[tid]
            pos = self._start[indices[rows]][:, None] + self._offsets  # [b, L+1]
            obs[rows] = t.obs[pos[:, 1:]]
            act = t.action[pos]
            prev_a[rows], target[rows] = act[:, :-1], act[:, 1:]
            prev_r[rows] = t.reward[pos[:, :-1]]
            steps[rows] = t.step_num[pos[:, 1:]]
        return {
            "obs": torch.from_numpy(obs),
            "prev_action": torch.from_numpy(prev_a),
            "prev_reward": torch.from_numpy(prev_r),
            "target": torch.from_numpy(target),
            "step_num": torch.from_numpy(steps),
            "group": first.group,
            "task": [self.tasks[i].task for i in task_ids],
        }


def collate_windows(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack samples of one group: tensors get a batch dim, `group` stays a str, `task` a list."""
    groups = {s["group"] for s in samples}
    if len(groups) != 1:
        raise ValueError(f"collate_windows: a batch must hold one group, got {sorted(groups)}")
    out: dict[str, Any] = {
        k: torch.stack([s[k] for s in samples])
        for k in ("obs", "prev_action", "prev_reward", "target", "step_num")
    }
    out["group"] = samples[0]["group"]
    out["task"] = [s["task"] for s in samples]
    return out


def split_batch(batch: Mapping[str, Any], size: int) -> list[dict[str, Any]]:
    """A collated batch as consecutive pieces of at most `size` windows (the last may be
    smaller): tensors and the `task` list sliced along the batch, the one `group` name kept."""
    n = len(batch["obs"])

    def part(value: Any, start: int) -> Any:
        if isinstance(value, torch.Tensor | list | tuple) and len(value) == n:
            return value[start : start + size]
        return value  # the batch's one group name

    return [{k: part(v, i) for k, v in batch.items()} for i in range(0, n, max(1, size))]


class GroupBatchSampler(Sampler[list[int]]):
    """Batches of window indices, each from a single group; deterministic given (seed, epoch).

    Per epoch: every group's indices are shuffled and cut into batches, then the batches of all
    groups are shuffled together. For DDP, rank r takes batches r, r+W, ...; every rank gets the
    same count (padded by repeating batches, or truncated with drop_last) so none waits forever.
    Resume with set_epoch(epoch, skip_batches=k) to continue after the k-th batch of that epoch.
    """

    def __init__(
        self,
        dataset: WindowDataset,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} not in [0, {world_size})")
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.drop_last, self.rank, self.world_size = drop_last, rank, world_size
        self._groups = dataset.group_indices()
        self.epoch = 0
        self.skip_batches = 0
        # at most this many batches per epoch: ranks that each read only their shard of the data
        # agree on the smallest count (DDP needs lock-step)
        self.max_batches: int | None = None

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip_batches = epoch, skip_batches

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "seed": self.seed, "skip_batches": self.skip_batches}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.seed = int(state["seed"])
        self.set_epoch(int(state["epoch"]), int(state.get("skip_batches", 0)))

    def _all_batches(self) -> list[np.ndarray]:
        rng = np.random.default_rng([self.seed, self.epoch])
        batches: list[np.ndarray] = []
        for group in sorted(self._groups):
            idx = self._groups[group]
            if self.shuffle:
                idx = rng.permutation(idx)
            cut = range(0, len(idx), self.batch_size)
            parts = [idx[i : i + self.batch_size] for i in cut]
            if self.drop_last and parts and len(parts[-1]) < self.batch_size:
                parts.pop()
            batches.extend(parts)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        W = self.world_size
        if W > 1 and batches and len(batches) % W:
            if self.drop_last:
                batches = batches[: len(batches) // W * W]
            else:
                extra = W - len(batches) % W
                batches += [batches[i % len(batches)] for i in range(extra)]
        return batches[self.rank :: W][: self.max_batches]

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._all_batches()[self.skip_batches :]:
            yield batch.tolist()

    def __len__(self) -> int:
        # arithmetic, so len() does not reshuffle the epoch
        n = 0
        for idx in self._groups.values():
            full, rest = divmod(len(idx), self.batch_size)
            n += full + (1 if rest and not self.drop_last else 0)
        W = self.world_size
        if n % W:
            n = n // W * W if self.drop_last else (n // W + 1) * W
        n //= W
        if self.max_batches is not None:
            n = min(n, self.max_batches)
        return max(n - self.skip_batches, 0)


class _BatchView(Dataset):
    """dataset[list of indices] -> collated batch (for DataLoader with batch_size=None)."""

    def __init__(self, dataset: WindowDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, indices: list[int]) -> dict[str, Any]:
        return self.dataset.get_batch(indices)


def make_loader(
    dataset: WindowDataset,
    batch_size: int,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """A DataLoader of single-group collated batches; its `.sampler` is the GroupBatchSampler."""
    sampler = GroupBatchSampler(dataset, batch_size, shuffle, seed, drop_last, rank, world_size)
    return DataLoader(
        _BatchView(dataset),
        sampler=sampler,
        batch_size=None,
        num_workers=num_workers,
        pin_memory=pin_memory,
    )
