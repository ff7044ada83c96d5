"""Under torchrun: rank 0 builds what is missing while the other ranks wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from adaptkit.errors import AdaptkitError
from adaptkit.train import distributed as dd

BUILD_FAILED = ".defaults-build-failed"  # under torchrun: rank 0 tells the waiting ranks it failed
WAIT_POLL_S = 1.0


def build_on_rank_zero(
    build: Callable[[], None], ready: Callable[[], bool], failed_flag: Path, rank: int
) -> None:
    """Under torchrun: rank 0 builds what is missing as a one-process job while the other ranks
    wait until `ready()` (polling files, not a collective: a build can outlast any collective's
    timeout, and no process group exists yet). A failure on rank 0 is written to `failed_flag`,
    so the waiting ranks stop with its message instead of waiting forever."""
    started = time.time()
    if rank == 0:
        try:
            with dd.solo():
                build()
        except BaseException as exc:
            failed_flag.parent.mkdir(parents=True, exist_ok=True)
            failed_flag.write_text(f"{type(exc).__name__}: {exc}")
            raise
        failed_flag.unlink(missing_ok=True)
        return
    while not ready():
        try:
            # a flag older than this launch is a leftover of an earlier run
            if failed_flag.stat().st_mtime >= started - 1.0:
                raise AdaptkitError(
                    f"rank {rank}: rank 0 failed to build the missing defaults "
                    f"({failed_flag.read_text().strip()})"
                )
        except FileNotFoundError:
            pass
        time.sleep(WAIT_POLL_S)
