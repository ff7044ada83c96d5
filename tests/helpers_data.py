"""Small synthetic learning histories for tests (any area may import these)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from adaptkit.data.config import write_dataset_config
from adaptkit.data.history import History, HistoryWriter


def make_history(
    episode_lengths: Sequence[int],
    obs_dim: int = 45,
    act_dim: int = 12,
    seed: int = 0,
) -> History:
    """Random obs/actions; rewards improve over the history (so return_end > return_start)."""
    rng = np.random.default_rng(seed)
    n = int(sum(episode_lengths))
    step_num = np.concatenate([np.arange(k) for k in episode_lengths]).astype(np.int32)
    progress = np.repeat(np.linspace(0.0, 1.0, len(episode_lengths)), episode_lengths).astype(
        np.float32
    )
    return History(
        obs=rng.normal(size=(n, obs_dim)).astype(np.float32),
        action=rng.uniform(-1, 1, size=(n, act_dim)).astype(np.float32),
        reward=(0.02 * progress + 0.001 * rng.normal(size=n)).astype(np.float32),
        step_num=step_num,
    )


def write_synthetic_history(
    path: str | Path,
    episode_lengths: Sequence[int] = (50, 50, 50, 50),
    obs_dim: int = 45,
    act_dim: int = 12,
    seed: int = 0,
    chunk_size: int = 64,
) -> History:
    """Write one history file (small chunks, so tests cross chunk boundaries); return its data."""
    h = make_history(episode_lengths, obs_dim, act_dim, seed)
    with HistoryWriter(path, obs_dim, act_dim, chunk_size=chunk_size) as w:
        w.append(h.obs, h.action, h.reward, h.step_num)
    return h


def write_synthetic_dataset(
    root: str | Path,
    robots: Sequence[str] = ("minicheetah",),
    histories: int = 2,
    episode_lengths: Sequence[int] = (50, 50, 50, 50),
    chunk_size: int = 64,
    config_name: str = "dataset.yaml",
) -> Path:
    """`root/data/<robot data_path>/history_<i>.h5` for registered robots + `root/<config_name>`.

    Dims, task, group and folder come from the robot plugins. Returns the config path; use
    `root / "data"` as --data-dir.
    """
    from adaptkit.plugins import get_registry

    root = Path(root)
    registry = get_registry()
    entries = {}
    for r, name in enumerate(robots):
        spec = registry.robot(name)
        for i in range(histories):
            write_synthetic_history(
                root / "data" / spec.data_path / f"history_{i}.h5",
                episode_lengths,
                spec.obs_dim,
                spec.action_dim,
                seed=100 * r + i,
                chunk_size=chunk_size,
            )
        entries.update(spec.dataset_entry())
    return write_dataset_config(root / config_name, entries)
