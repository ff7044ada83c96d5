"""The in-context base shipped beside the default one: a base pretrained on procedural bodies
whose gain along its context passes the controls (docs/in_context.md), where it is, and the
episodes it was trained to read (its provenance records them). Built and shipped by
`adaptkit build-base --recipe in-context [--ship]` (adaptkit.study.in_context_base)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adaptkit.bootstrap.provenance import read_provenance
from adaptkit.ckpt.layout import latest_checkpoint
from adaptkit.errors import AdaptkitError

IN_CONTEXT_BASE = Path(__file__).resolve().parents[1] / "bases" / "in-context"
IN_CONTEXT_EPISODES = 6  # episodes an in-context evaluation chains by default


def in_context_base(folder: Path = IN_CONTEXT_BASE) -> Path:
    """The shipped in-context base, or a one-line error saying how to build one."""
    if latest_checkpoint(folder) is None or read_provenance(folder) is None:
        raise AdaptkitError(
            f"{folder}: no in-context base shipped; build one with "
            "`adaptkit build-base --recipe in-context --out models/in-context` and pass it"
        )
    return folder


def shipped_in_context(folder: Path = IN_CONTEXT_BASE) -> Path | None:
    """The shipped in-context base, None when none is shipped."""
    try:
        return in_context_base(folder)
    except AdaptkitError:
        return None


def in_context_episode_length(folder: Path) -> int | None:
    """The episode length the base's training histories had (None: not recorded)."""
    info: dict[str, Any] = read_provenance(folder) or {}
    plan = info.get("plan") if isinstance(info.get("plan"), dict) else {}
    length = plan.get("episode_length")
    return length if isinstance(length, int) and length > 0 else None
