"""adaptkit: adapt pretrained Vintix-style in-context RL transformers to new robots."""

from adaptkit.errors import AdaptkitError
from adaptkit.hookspecs import hookimpl
from adaptkit.robot import (
    CANONICAL_JOINTS,
    FORK_OBS_NAMES,
    LOCOMOTION_OBS_NAMES,
    OBS_LAYOUTS,
    GaitParams,
    RobotSpec,
    compose_obs,
)
from adaptkit.version import __version__

__all__ = [
    "CANONICAL_JOINTS",
    "FORK_OBS_NAMES",
    "LOCOMOTION_OBS_NAMES",
    "OBS_LAYOUTS",
    "AdaptkitError",
    "GaitParams",
    "RobotSpec",
    "__version__",
    "compose_obs",
    "hookimpl",
    "load_policy",
]


def __getattr__(name: str):
    # adaptkit.load_policy loads torch and the model code: imported on first use, so that
    # `import adaptkit` (plugins, the CLI's start-up) stays light
    if name == "load_policy":
        from adaptkit.export.robot_policy import load_policy

        return load_policy
    raise AttributeError(f"module 'adaptkit' has no attribute {name!r}")
