"""What long-running library calls tell their caller: notes, training events, progress bars.

The library calls a `Reporter`; the base class does nothing, so Python callers pass nothing and
the CLI passes one that renders with rich. One object instead of a callback per concern.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Advance = Callable[[int], None]  # advance(k): k more units done
Update = Callable[[int, int], None]  # update(done, total)


class Reporter:
    """Override what you want to show; every method has a silent default."""

    def note(self, message: str) -> None:
        """Something the user should know (a default that was built, a choice that was made)."""

    def event(self, name: str, data: dict[str, Any]) -> None:
        """A training event: trainable, start, step, epoch, checkpoint, done."""

    def collecting(self, label: str, total: int) -> Advance | None:
        """A simulation of `total` env-steps starts; return advance(k), or None."""
        return None

    def rolling_out(self, label: str) -> Update | None:
        """An evaluation rollout starts; return update(step, total), or None."""
        return None


SILENT = Reporter()


class NoteCollector(Reporter):
    """Keeps the notes it is given (and passes everything on to `inner`)."""

    def __init__(self, inner: Reporter = SILENT) -> None:
        self.inner = inner
        self.notes: list[str] = []

    def note(self, message: str) -> None:
        self.notes.append(message)
        self.inner.note(message)

    def event(self, name: str, data: dict[str, Any]) -> None:
        self.inner.event(name, data)

    def collecting(self, label: str, total: int) -> Advance | None:
        return self.inner.collecting(label, total)

    def rolling_out(self, label: str) -> Update | None:
        return self.inner.rolling_out(label)
