"""The empty job of bench/bench_executor.py (module-level: worker processes import it)."""

from pathlib import Path


def touch(done: str) -> None:
    Path(done).write_text("")
