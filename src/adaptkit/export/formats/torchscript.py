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


def _last_line(exc: BaseException) -> str:
    """The message of an error raised inside TorchScript: its last line, without the
    interpreter's `builtins.ValueError: ` (the lines above are TorchScript's traceback)."""
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else type(exc).__name__
    return last.split(": ", 1)[1] if last.startswith("builtins.") and ": " in last else last


class Runner:
    """policy.pt through torch.jit, on `threads` torch threads while it runs (restored by
    close)."""

    def __init__(self, path: Path, meta: dict[str, Any], threads: int) -> None:
        import torch

        self.torch = torch
        self.path = path
        self.threads = threads
        self._saved_threads: int | None = None
        try:
            with warnings.catch_warnings():  # torch 2.13 deprecates TorchScript
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except (RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AdaptkitError(f"{path}: not a loadable TorchScript policy ({first})") from None

    def sizes(self) -> dict[str, int]:
        """obs/act dims, window and model sizes the scripted module holds."""
        m, step = self.module, self.module.step
        try:
            return {
                "obs_dim": int(m.obs_dim), "act_dim": int(m.act_dim),
                "context_len": int(step.window), "model.layers": int(step.n_layers),
                "model.heads": int(step.n_heads), "model.head_dim": int(step.head_dim),
            }  # fmt: skip
        except (AttributeError, RuntimeError):
            raise AdaptkitError(
                f"{self.path}: not an adaptkit TorchScript policy (no obs_dim/step.window)"
            ) from None

    def reset(self, n: int) -> None:
        if self._saved_threads is None:
            self._saved_threads = self.torch.get_num_threads()
            self.torch.set_num_threads(self.threads)
        self.module.reset(n)

    def act(self, obs: np.ndarray, reward: np.ndarray) -> np.ndarray:
        t = self.torch
        try:
            out = self.module.act(
                t.as_tensor(obs, dtype=t.float32), t.as_tensor(reward, dtype=t.float32)
            )
        except (RuntimeError, self.torch.jit.Error) as exc:  # the file's own refusal (a
            # ValueError inside TorchScript comes out as torch.jit.Error)
            raise AdaptkitError(f"{self.path}: {_last_line(exc)}") from None
        return out.numpy()

    def start_episode(self, done: np.ndarray) -> None:
        try:
            self.module.start_episode(self.torch.as_tensor(done, dtype=self.torch.bool))
        except (RuntimeError, self.torch.jit.Error) as exc:
            raise AdaptkitError(f"{self.path}: {_last_line(exc)}") from None

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
