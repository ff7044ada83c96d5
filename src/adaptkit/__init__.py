"""adaptkit: adapt pretrained Vintix-style in-context RL transformers to new robots."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("adaptkit")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

from adaptkit.errors import AdaptkitError
from adaptkit.hookspecs import hookimpl
from adaptkit.robot import (
    CANONICAL_JOINTS,
    LOCOMOTION_OBS_NAMES,
    GaitParams,
    RobotSpec,
)

__all__ = [
    "CANONICAL_JOINTS",
    "LOCOMOTION_OBS_NAMES",
    "AdaptkitError",
    "GaitParams",
    "RobotSpec",
    "__version__",
    "hookimpl",
]
