"""RobotFamily: a procedural family of robots, declared by a plugin (`register_families`), and
the cache its generated members live in.

A family is a deterministic function (family seed, index) -> RobotSpec. Its members are not
listed one by one in the registry: `adaptkit robots` shows a family as one line with its member
count, and a member is built on demand when a command names it (`<family>_<index>`, e.g.
`quadfam_0007`). Every member of a family shares the family's group, so one pretrained group
serves them all.

Generated simulator models and tuned demonstrators live in a cache folder (`cache_root()`):
MJCF text is written there on demand (RobotSpec.mjcf is a file path) and rewritten only when
its content would change, atomically, so parallel processes can build the same member.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adaptkit.errors import AdaptkitError
from adaptkit.robot import GaitParams, RobotSpec

CACHE_ENV = "ADAPTKIT_CACHE_DIR"  # where generated models and tuned gaits live
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
INDEX_DIGITS = 4


def cache_root() -> Path:
    """$ADAPTKIT_CACHE_DIR, else $XDG_CACHE_HOME/adaptkit, else ~/.cache/adaptkit."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "adaptkit"


def write_if_changed(path: Path, text: str) -> Path:
    """Write `text` to `path` unless it already holds exactly that; atomic (rename)."""
    path = Path(path)
    if path.is_file() and path.read_text() == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class RobotFamily:
    """A family of robots built on demand: `build(seed, index, cache_dir)` -> RobotSpec.

    `size` is how many members the family offers (indices 0..size-1); `seed` picks one family
    out of the generator's space (two seeds: two unrelated sets of bodies)."""

    name: str
    group: str
    size: int
    build: Callable[[int, int, Path], RobotSpec] = field(repr=False)
    seed: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        for attr in ("name", "group"):
            value = getattr(self, attr)
            if not isinstance(value, str) or not _NAME_RE.match(value):
                raise AdaptkitError(
                    f"family {self.name!r}: field '{attr}' must be lower-case letters, digits "
                    f"and '_', got {value!r}"
                )
        if not isinstance(self.size, int) or not 1 <= self.size <= 10**INDEX_DIGITS:
            raise AdaptkitError(
                f"family {self.name!r}: field 'size' must be an integer 1..{10**INDEX_DIGITS}"
            )
        if not callable(self.build):
            raise AdaptkitError(f"family {self.name!r}: field 'build' must be callable")
        # numpy's generators take non-negative seeds only: a negative one failed deep inside
        # the first member's build
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise AdaptkitError(
                f"family {self.name!r}: field 'seed' must be an integer >= 0, got {self.seed!r}"
            )

    def member_name(self, index: int) -> str:
        return f"{self.name}_{index:0{INDEX_DIGITS}d}"

    def member_names(self, count: int | None = None) -> list[str]:
        return [self.member_name(i) for i in range(self.size if count is None else count)]

    def parse_index(self, robot_name: str) -> int | None:
        """The index a member name stands for, or None when it is no member of this family."""
        prefix = f"{self.name}_"
        tail = robot_name[len(prefix) :] if robot_name.startswith(prefix) else ""
        # ASCII digits only: str.isdigit() (and int()) take ０００１ or ١٢٣٤ as numbers too
        if len(tail) != INDEX_DIGITS or not (tail.isascii() and tail.isdigit()):
            return None
        return int(tail)

    def cache_dir(self, cache: Path | None = None) -> Path:
        """This family's (and seed's) folder in the cache."""
        return (Path(cache) if cache else cache_root()) / "families" / f"{self.name}-{self.seed}"

    def member(self, index: int, cache: Path | None = None) -> RobotSpec:
        """Member `index`, its MJCF written into the cache; its gait is the cached tuned one
        (adaptkit.sim.family_gait; then extra["accepted"] says whether that demonstrator passed)
        when there is one, else the family's geometric prior (extra["gait"] == "prior")."""
        if not isinstance(index, int) or not 0 <= index < self.size:
            raise AdaptkitError(
                f"family {self.name!r}: member index must be 0..{self.size - 1}, got {index!r}"
            )
        folder = self.cache_dir(cache)
        spec = self.build(self.seed, index, folder)
        if not isinstance(spec, RobotSpec):
            raise AdaptkitError(
                f"family {self.name!r}: build() must return a RobotSpec, got {type(spec).__name__}"
            )
        if spec.name != self.member_name(index):
            raise AdaptkitError(
                f"family {self.name!r}: member {index} is named {spec.name!r}, expected "
                f"{self.member_name(index)!r}"
            )
        if spec.group != self.group:
            raise AdaptkitError(
                f"family {self.name!r}: member {index} has group {spec.group!r}, expected the "
                f"family's {self.group!r}"
            )
        tuned = read_gait(gait_file(folder, spec.name))
        if tuned is not None and tuned.get("fingerprint") == body_fingerprint(spec):
            extra = {**spec.extra, "gait": "tuned", "accepted": bool(tuned.get("accepted"))}
            spec = replace(spec, gait=tuned["gait"], extra=extra)
        return spec

    def members(self, count: int, cache: Path | None = None) -> list[RobotSpec]:
        return [self.member(i, cache) for i in range(count)]

    def summary(self) -> dict[str, Any]:
        return {
            "family": self.name,
            "group": self.group,
            "members": self.size,
            "seed": self.seed,
            "member_names": f"{self.member_name(0)} .. {self.member_name(self.size - 1)}",
            "description": self.description,
        }


# -- the tuned-demonstrator cache (written by adaptkit.sim.family_gait) ---------------------------
def gait_file(folder: Path, robot_name: str) -> Path:
    return Path(folder) / f"{robot_name}.gait.json"


def body_fingerprint(spec: RobotSpec) -> str:
    """A hash of everything that decides how a body moves (its MJCF text, pose, gains,
    limits): a cached gait tuned for another body (e.g. an older generator) is not reused."""
    h = hashlib.sha256(spec.mjcf.read_bytes() if spec.mjcf else b"")
    fields = (spec.default_joint_angles, spec.kp, spec.kd, spec.torque_limits, spec.action_scale)
    h.update(repr(fields).encode())
    h.update(repr((spec.base_init_height, spec.base_height_target)).encode())
    return h.hexdigest()[:16]


def read_gait(path: Path) -> dict[str, Any] | None:
    """A cached demonstrator record {gait: GaitParams, accepted, ...}, or None if absent."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        record["gait"] = GaitParams(**record["gait"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AdaptkitError(f"{path}: not a tuned-gait record ({exc}); delete it") from None
    return record
