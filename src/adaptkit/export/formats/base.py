"""What an export format is: the file it writes, how it writes a policy's step, how a control
loop runs the file (its runner), and what the sidecar tells that loop about the state."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np


class Runner(Protocol):
    """An exported file running: what adaptkit.export.runtime.ExportedPolicy steps."""

    def sizes(self) -> dict[str, int]: ...  # what the file itself says (sidecar keys)
    def reset(self, n: int) -> None: ...
    def act(self, obs: np.ndarray, reward: np.ndarray) -> np.ndarray: ...
    def start_episode(self, done: np.ndarray) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class ExportFormat:
    """One export format (adaptkit.export.formats holds the table)."""

    name: str  # --format, and the sidecar's "runtime"
    file: str  # the policy file's name in the export folder (its suffix marks an exported file)
    needs: str  # what writing and running it needs, for --help
    # write(step, path): the policy's step (adaptkit.export.step.PolicyStep) into the file
    write: Callable[[Any, Path], None]
    # runner(path, sidecar, threads): the file run by a control loop (its runtime only)
    runner: Callable[[Path, dict[str, Any], int], Runner]
    in_place: bool  # the step keeps its state inside (TorchScript) or takes and returns it
    state: dict[str, Any] = field(default_factory=dict)  # the sidecar's "state": how to drive it
