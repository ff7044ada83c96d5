"""Module-level job functions for tests/test_execute.py (spawned workers import them by name)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from adaptkit.errors import AdaptkitError


def write_done(done: str, log: str, seconds: float = 0.0) -> None:
    """Append "pid start end" to `log` (one line per run of the job), then write `done`."""
    t0 = time.time()
    time.sleep(seconds)
    with open(log, "a") as fh:
        fh.write(f"{os.getpid()} {t0:.3f} {time.time():.3f} {os.environ.get('OMP_NUM_THREADS')}\n")
    tmp = Path(done).with_suffix(".tmp")
    tmp.write_text("ok\n")
    os.replace(tmp, done)


def fail(message: str, adaptkit: bool) -> None:
    raise (AdaptkitError if adaptkit else ValueError)(message)


def forget_done(done: str) -> None:
    """Returns without writing its done file."""


def wait_to_be_killed(done: str, pid_file: str) -> None:
    """First run: write this worker's pid and sleep until killed. A rerun: finish at once."""
    pid_path = Path(pid_file)
    first = not pid_path.exists()
    pid_path.write_text(str(os.getpid()))
    if first:
        time.sleep(120)
    Path(done).write_text("ok\n")


def write_ray_node(done: str, seconds: float) -> None:
    """Write the Ray node this task ran on into `done` (after `seconds`, so tasks overlap)."""
    import ray

    time.sleep(seconds)
    Path(done).write_text(ray.get_runtime_context().get_node_id())


def sleep_and_log_pid(done: str, pid_file: str, seconds: float) -> None:
    """Append this worker's pid to `pid_file`, sleep, then write `done`."""
    with open(pid_file, "a") as fh:
        fh.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    Path(done).write_text("ok\n")
