"""TorchScript: `policy.pt`, a scripted StatefulPolicy that keeps its context inside; running it
needs torch only."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from adaptkit.errors import AdaptkitError
from adaptkit.export.formats.base import ExportFormat
from adaptkit.fileio import atomic_path


def write(step: Any, path: Path) -> None:
    import torch  # the table stays torch-free for the CLI's --help

    from adaptkit.export.step import StatefulPolicy

    with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript; robots still run it
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(StatefulPolicy(step))
    with atomic_path(path, "TorchScript policy") as tmp:
        scripted.save(str(tmp))


class Runner:
    """policy.pt through torch.jit, on `threads` torch threads while it runs (restored by
    close)."""

    def __init__(self, path: Path, meta: dict[str, Any], threads: int) -> None:
        import torch

        self.torch = torch
        self.threads = threads
        self._saved_threads: int | None = None
        try:
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except (RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AdaptkitError(f"{path}: not a loadable TorchScript policy ({first})") from None

    def reset(self, n: int) -> None:
        if self._saved_threads is None:
            self._saved_threads = self.torch.get_num_threads()
            self.torch.set_num_threads(self.threads)
        self.module.reset(n)

    def act(self, obs: np.ndarray, reward: np.ndarray) -> np.ndarray:
        t = self.torch
        out = self.module.act(
            t.as_tensor(obs, dtype=t.float32), t.as_tensor(reward, dtype=t.float32)
        )
        return out.numpy()

    def start_episode(self, done: np.ndarray) -> None:
        self.module.start_episode(self.torch.as_tensor(done, dtype=self.torch.bool))

    def close(self) -> None:
        if self._saved_threads is not None:
            self.torch.set_num_threads(self._saved_threads)
            self._saved_threads = None


FORMAT = ExportFormat(
    name="torchscript",
    file="policy.pt",
    needs="torch",
    write=write,
    runner=Runner,
    in_place=True,
    state={
        "reset(batch=1)": "forget the context",
        "start_episode(mask=None)": "next act() begins an episode, context kept",
        "act(obs, reward)": "obs [obs_dim] or [B, obs_dim], reward of the previous action",
    },
)
