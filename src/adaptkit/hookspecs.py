"""The hooks a plugin can implement. Project name and entry-point group: `adaptkit`."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from adaptkit.family.core import RobotFamily
from adaptkit.robot import RobotSpec

hookspec = pluggy.HookspecMarker("adaptkit")
hookimpl = pluggy.HookimplMarker("adaptkit")


@hookspec
def register_robots(register: Callable[[RobotSpec], None]) -> None:
    """Call ``register(RobotSpec(...))`` once per robot this plugin provides."""


@hookspec
def register_families(register: Callable[[RobotFamily], None]) -> None:
    """Call ``register(RobotFamily(...))`` once per procedural robot family this plugin provides
    (its members are built on demand, named ``<family>_<index>``)."""
