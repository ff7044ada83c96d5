"""Every study preset by name, across the kinds of study: the leave-one-out study's
(adaptkit.study.plan) and the embodiment study's (adaptkit.study.embodiments_plan), each table
beside its plan. Light (no torch): the CLI's --preset help is made from it."""

from __future__ import annotations

from typing import Any

from adaptkit.errors import AdaptkitError
from adaptkit.study import embodiments_plan, plan

# a new kind of study adds its plan module's table here, and its runner to adaptkit.study.kinds
TABLES = (plan.PRESETS, embodiments_plan.PRESETS)
PRESETS = {name: preset for table in TABLES for name, preset in table.items()}


def preset_plan(name: str) -> Any:
    """The plan of the preset `name` (a StudyPlan or an EmbodimentPlan), or a one-line error
    listing every preset."""
    if name not in PRESETS:
        raise AdaptkitError(f"--preset: expected one of {', '.join(PRESETS)}, got {name!r}")
    return PRESETS[name].build()


def presets_help() -> str:
    """The presets with their notes, one kind after the other (for --help)."""
    return "; ".join(
        ", ".join(f"{n} ({p.note})" if p.note else n for n, p in table.items()) for table in TABLES
    )
