"""A demonstrator for every member of a robot family, derived automatically and cached.

For each body: the family's geometric trot prior (its RobotSpec.gait) and the registered robots'
tuned gaits seed a bounded `tune_gait` search (a few rounds, a small batch, short episodes); the
best gait is then checked on fresh seeds against standing still. A body is **accepted** when its
demonstrator never falls there, walks at >= MIN_SPEED m/s, and earns more than standing; else it
is rejected with the reason. Either way the record (gait, figures, wall time) is written beside
the body's MJCF in the family's cache folder, keyed by the body's fingerprint, so a body is tuned
once per cache; RobotFamily.member() then returns the spec with the tuned gait.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adaptkit.errors import AdaptkitError
from adaptkit.execute import Job
from adaptkit.family.core import (
    RobotFamily,
    body_fingerprint,
    gait_file,
    read_gait,
    write_if_changed,
)
from adaptkit.plugins import get_registry
from adaptkit.robot import GaitParams, RobotSpec
from adaptkit.sim.demonstrator import TrotDemonstrator
from adaptkit.sim.env import one_episode_each
from adaptkit.sim.gait_tuning import tune_gait
from adaptkit.sim.policy import StandPolicy

MIN_SPEED = 0.3  # m/s over the check episodes (the `walk` command is 0.5)


@dataclass(frozen=True)
class SearchBudget:
    """How much tuning one body gets (tune_gait's arguments) and how it is checked."""

    rounds: int = 3
    batch: int = 32
    seconds: float = 6.0
    check_envs: int = 8
    check_seconds: float = 10.0
    seed: int = 0
    check_seed: int = 4242  # check episodes use seeds no tuning round used


@dataclass(frozen=True)
class DemonstratorRecord:
    robot: str
    accepted: bool
    reason: str  # "" when accepted
    gait: GaitParams
    speed: float  # mean forward speed of the check episodes (m/s)
    falls: int  # check episodes that fell
    episodes: int
    return_demo: float  # mean return per check episode
    return_stand: float  # the same episodes standing still
    tune_score: float
    seconds: float  # wall time: search + check
    fingerprint: str
    budget: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def builtin_gaits() -> list[GaitParams]:
    """The registered robots' tuned gaits: good first candidates for any quadruped."""
    return [s.gait for s in get_registry().robots.values() if s.gait is not None]


def derive_demonstrator(
    spec: RobotSpec,
    budget: SearchBudget = SearchBudget(),
    starts: Sequence[GaitParams] | None = None,
    margin: float = 0.0,
    progress: Callable[[int, dict[str, float]], None] | None = None,
) -> DemonstratorRecord:
    """Tune `spec`'s trot CPG from its own gait (the geometric prior) and `starts` (default:
    builtin_gaits()), then accept or reject it (module docstring; `margin`: how much more than
    standing still a check episode must earn, 0 for the family). Nothing is cached here."""
    t0 = time.perf_counter()
    starts = builtin_gaits() if starts is None else list(starts)
    result = tune_gait(
        spec,
        rounds=budget.rounds,
        batch=budget.batch,
        seconds=budget.seconds,
        seed=budget.seed,
        starts=starts,
        progress=progress,
    )
    steps = max(1, round(budget.check_seconds / 0.02))
    demo = one_episode_each(
        spec, TrotDemonstrator(spec, result.gait), budget.check_envs, steps, budget.check_seed
    )
    stand = one_episode_each(
        spec, StandPolicy(spec.action_dim), budget.check_envs, steps, budget.check_seed
    )
    if demo["falls"]:
        reason = f"falls in {demo['falls']} of {budget.check_envs} check episodes"
    elif demo["speed"] < MIN_SPEED:
        reason = f"walks at {demo['speed']:.2f} m/s < {MIN_SPEED}"
    elif demo["return"] <= stand["return"] + margin:
        more = f" + {margin:.2f}" if margin else ""
        reason = f"return {demo['return']:.2f} <= standing still {stand['return']:.2f}{more}"
    else:
        reason = ""
    return DemonstratorRecord(
        robot=spec.name,
        accepted=not reason,
        reason=reason,
        gait=result.gait,
        speed=demo["speed"],
        falls=demo["falls"],
        episodes=budget.check_envs,
        return_demo=demo["return"],
        return_stand=stand["return"],
        tune_score=result.score,
        seconds=time.perf_counter() - t0,
        fingerprint=body_fingerprint(spec),
        budget=asdict(budget),
    )


def cached_demonstrator(
    family: RobotFamily,
    index: int,
    cache: Path | None = None,
    budget: SearchBudget = SearchBudget(),
) -> DemonstratorRecord:
    """Member `index`'s demonstrator record: read from the cache when its body and the search
    budget are unchanged, else derived and written there."""
    spec = family.member(index, cache)
    path = gait_file(family.cache_dir(cache), spec.name)
    record = read_gait(path)
    same_search = record is not None and record.get("budget") == asdict(budget)
    if same_search and record.get("fingerprint") == body_fingerprint(spec):
        return DemonstratorRecord(**record)
    fresh = derive_demonstrator(spec, budget)
    write_if_changed(path, json.dumps(fresh.as_dict(), indent=1) + "\n")
    return fresh


def derive_member(family: RobotFamily, index: int, cache: str | None, budget: SearchBudget) -> None:
    """`cached_demonstrator` as a job function (adaptkit.execute): module-level, picklable."""
    cached_demonstrator(family, index, Path(cache) if cache else None, budget)


def gait_search_job(
    family: RobotFamily,
    index: int,
    cache: Path | None = None,
    budget: SearchBudget = SearchBudget(),
) -> Job:
    """Member `index`'s gait search as a job for `adaptkit.execute.run_jobs` (bodies are
    independent: tune many at once, then `accepted_members` reads the cache). Done when the
    body's gait record is in the cache (one for an older body is re-derived by
    `accepted_members` itself, which checks the fingerprint)."""
    name = family.member_name(index)
    return Job(
        id=f"gait-{name}",
        done=gait_file(family.cache_dir(cache), name),
        fn=derive_member,
        kwargs={
            "family": family,
            "index": index,
            "cache": str(cache) if cache else None,
            "budget": budget,
        },
    )


def accepted_members(
    family: RobotFamily,
    count: int,
    cache: Path | None = None,
    budget: SearchBudget = SearchBudget(),
    progress: Callable[[DemonstratorRecord], None] | None = None,
) -> tuple[list[RobotSpec], list[DemonstratorRecord]]:
    """The first `count` accepted members (in index order, with their tuned gaits), and the
    record of every member looked at on the way (rejected ones included)."""
    specs: list[RobotSpec] = []
    records: list[DemonstratorRecord] = []
    for index in range(family.size):
        if len(specs) == count:
            break
        record = cached_demonstrator(family, index, cache, budget)
        records.append(record)
        if progress is not None:
            progress(record)
        if record.accepted:
            specs.append(family.member(index, cache))
    if len(specs) < count:
        raise AdaptkitError(
            f"family {family.name!r}: only {len(specs)} of its {family.size} members have an "
            f"accepted demonstrator, {count} asked for"
        )
    return specs, records
