"""Plugin loading (entry points, local files) and the robot registry built from it."""

from __future__ import annotations

import difflib
import importlib.metadata
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from adaptkit import hookspecs
from adaptkit.errors import AdaptkitError
from adaptkit.family.core import RobotFamily
from adaptkit.fileio import not_a_file
from adaptkit.robot import RobotSpec, paths_relative_to

ENTRY_POINT_GROUP = "adaptkit"
PLUGINS_ENV = "ADAPTKIT_PLUGINS"  # extra plugin files, joined by os.pathsep
DISABLE_ENV = "ADAPTKIT_DISABLE_PLUGINS"  # plugin names, comma separated


@dataclass
class PluginInfo:
    name: str
    origin: str  # "entry point" or "file"
    source: str  # distribution name or file path
    version: str | None
    robots: list[str] = field(default_factory=list)
    families: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "origin": self.origin,
            "source": self.source,
            "version": self.version,
            "robots": list(self.robots),
            "families": list(self.families),
        }


class Registry:
    """Loaded plugins and the robots they registered."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.robots: dict[str, RobotSpec] = {}
        self.families: dict[str, RobotFamily] = {}
        self._robot_owner: dict[str, str] = {}

    # -- loading ---------------------------------------------------------------------------
    def load_entry_points(self, disabled: set[str] = frozenset()) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in disabled or ep.name in self.plugins:
                continue
            try:
                with paths_relative_to(_module_dir(ep.module)):
                    module = ep.load()
            except Exception as exc:  # a broken third-party plugin must not crash with a traceback
                raise AdaptkitError(
                    f"plugin {ep.name!r} (entry point {ep.value}) failed to import: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            dist = ep.dist
            self.add(
                module,
                PluginInfo(
                    name=ep.name,
                    origin="entry point",
                    source=dist.name if dist else ep.value,
                    version=dist.version if dist else None,
                ),
            )

    def load_file(self, path: str | Path, disabled: set[str] = frozenset()) -> None:
        path = Path(path)
        name = path.stem
        if name in disabled:
            return
        if not path.is_file():
            raise AdaptkitError(f"plugin file {path}: {not_a_file(path)}")
        if name in self.plugins:
            raise AdaptkitError(
                f"plugin file {path}: a plugin named {name!r} is already loaded "
                f"({self.plugins[name].source}); rename the file"
            )
        spec = importlib.util.spec_from_file_location(f"adaptkit_local_plugin_{name}", path)
        if spec is None or spec.loader is None:
            raise AdaptkitError(f"plugin file {path}: not a Python file")
        module = importlib.util.module_from_spec(spec)
        try:
            with paths_relative_to(path.resolve().parent):
                spec.loader.exec_module(module)
        except Exception as exc:
            raise AdaptkitError(
                f"plugin file {path} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        self.add(module, PluginInfo(name=name, origin="file", source=str(path), version=None))

    def add(self, plugin: ModuleType | object, info: PluginInfo) -> None:
        """Register one plugin object and collect the robots it declares."""
        try:
            self.pm.register(plugin, name=info.name)
            self.pm.check_pending()  # catches typos such as `register_robot`
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=info.name)
            raise AdaptkitError(f"plugin {info.name!r}: {exc}") from exc
        self.plugins[info.name] = info
        # Call this plugin's hooks alone, so every robot is attributed to the plugin that made it.
        hooks = (
            ("register_robots", self._register),
            ("register_families", self._register_family),
        )
        for hook, accept in hooks:
            impls = getattr(self.pm.hook, hook).get_hookimpls()
            for impl in (i for i in impls if i.plugin_name == info.name):
                try:
                    with paths_relative_to(_object_dir(plugin)):
                        impl.function(register=lambda obj, _n=info.name, _a=accept: _a(obj, _n))
                except AdaptkitError as exc:
                    raise AdaptkitError(f"plugin {info.name!r}: {exc}") from exc
                except Exception as exc:
                    raise AdaptkitError(
                        f"plugin {info.name!r}: {hook} failed: {type(exc).__name__}: {exc}"
                    ) from exc

    def _register_family(self, family: RobotFamily, plugin_name: str) -> None:
        if not isinstance(family, RobotFamily):
            raise AdaptkitError(f"register() expects a RobotFamily, got {type(family).__name__}")
        if family.name in self.families or family.name in self.robots:
            raise AdaptkitError(f"family {family.name!r} is already registered")
        self.families[family.name] = family
        self._robot_owner[family.name] = plugin_name
        self.plugins[plugin_name].families.append(family.name)

    def _register(self, spec: RobotSpec, plugin_name: str) -> None:
        if not isinstance(spec, RobotSpec):
            raise AdaptkitError(f"register() expects a RobotSpec, got {type(spec).__name__}")
        if spec.name in self.robots:
            raise AdaptkitError(
                f"robot {spec.name!r} is already registered by plugin "
                f"{self._robot_owner[spec.name]!r}"
            )
        self.robots[spec.name] = spec
        self._robot_owner[spec.name] = plugin_name
        self.plugins[plugin_name].robots.append(spec.name)

    # -- queries ---------------------------------------------------------------------------
    def robot(self, name: str) -> RobotSpec:
        """A registered robot, or a family member named `<family>_<index>` (built on demand)."""
        if name in self.robots:
            return self.robots[name]
        for family in self.families.values():
            index = family.parse_index(name)
            if index is not None:
                return family.member(index)
        try:
            return self.robots[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.robots), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            known = ", ".join(sorted(self.robots)) or "none"
            if self.families:
                members = ", ".join(f"{f.member_name(0)}.." for f in self.families.values())
                known += f"; family members {members}"
            raise AdaptkitError(f"unknown robot {name!r}{hint} (registered: {known})") from None

    def robot_for_task(self, task: str) -> RobotSpec | None:
        """The robot declaring `task`: a registered robot, or a family member whose task it
        is (`<family>_<index>_...`); None when no plugin declares it."""
        for spec in self.robots.values():
            if spec.task == task:
                return spec
        for family in self.families.values():
            head = task[: len(family.member_name(0))]
            index = family.parse_index(head)
            if index is not None and index < family.size:
                spec = family.member(index)
                if spec.task == task:
                    return spec
        return None

    def owner(self, robot_name: str) -> str:
        """The plugin that registered a robot, a family, or a family member's family."""
        if robot_name in self._robot_owner:
            return self._robot_owner[robot_name]
        for family in self.families.values():
            if family.parse_index(robot_name) is not None:
                return self._robot_owner[family.name]
        raise KeyError(robot_name)


def plugin_record(registry: Registry, robot_name: str) -> dict[str, Any] | None:
    """Which plugin provides a robot, as a run records it so that another machine knows what to
    install: the plugin's name, its distribution and version (an installed package), or the
    file's name (a `--plugin FILE`, not installable by name). None: no plugin registered it."""
    try:
        info = registry.plugins[registry.owner(robot_name)]
    except KeyError:
        return None
    if info.origin == "file":
        return {"plugin": info.name, "file": Path(info.source).name, "distribution": None}
    return {"plugin": info.name, "distribution": info.source, "version": info.version}


def _module_dir(name: str) -> Path | None:
    """The folder of a module's file, without importing it (None: not a file module)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = spec.origin if spec is not None else None
    if not origin or origin in ("built-in", "frozen"):
        return None
    return Path(origin).resolve().parent


def _object_dir(plugin: object) -> Path | None:
    file = getattr(plugin, "__file__", None)
    return Path(file).resolve().parent if file else None


def load_registry(
    plugin_files: list[str | Path] | None = None,
    disabled: list[str] | None = None,
    entry_points: bool = True,
) -> Registry:
    """Load entry-point plugins, then files from ADAPTKIT_PLUGINS and `plugin_files`."""
    off = {n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()}
    off |= set(disabled or [])
    registry = Registry()
    if entry_points:
        registry.load_entry_points(off)
    env_files = [p for p in os.environ.get(PLUGINS_ENV, "").split(os.pathsep) if p]
    for path in [*env_files, *(plugin_files or [])]:
        registry.load_file(path, off)
    return registry


_current: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry; loaded on first use (the CLI loads it in its root callback)."""
    global _current
    if _current is None:
        _current = load_registry()
    return _current


def set_registry(registry: Registry | None) -> None:
    global _current
    _current = registry


def plugin_files(registry: Registry) -> tuple[str, ...]:
    """The plugin files `registry` loaded (--plugin, ADAPTKIT_PLUGINS): what a worker process
    loads again to see the same robots (entry points it finds itself)."""
    return tuple(info.source for info in registry.plugins.values() if info.origin == "file")


def worker_registry(files: Sequence[str | Path] = ()) -> Registry:
    """The registry in a worker process (adaptkit.execute): the process-wide one, plus the
    plugin files the caller had loaded that it lacks (in the caller's own process: a no-op)."""
    registry = get_registry()
    for path in files:
        if Path(path).stem not in registry.plugins:
            registry.load_file(path)
    return registry
