"""Exclusive advisory locks on a lock file (`flock`): one writer per run folder or data folder.

The kernel drops an `flock` with its process (kill -9 included), so a dead writer never blocks
the next one. The holder writes its pid, host, start time and command into the file, so a refusal
can say who holds it. POSIX only; elsewhere nothing is locked.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from adaptkit.errors import AdaptkitError
from adaptkit.fileio import os_errors, remove_quietly

try:  # POSIX; on other systems nothing is locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]


def holder(lock_path: Path) -> str:
    """Who holds a lock, from what it wrote into the lock file."""
    try:
        info = json.loads(lock_path.read_text())
        return f"pid {info['pid']} on {info['host']}, since {info['started']}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that is just starting"


def acquire(path: Path, busy: Callable[[str], str], what: str = "lock file") -> int:
    """Take the exclusive lock on `path` (created if needed) and return its fd, or raise an
    AdaptkitError `busy(holder)` when another live process holds it. -1 where there is no flock."""
    if fcntl is None:  # pragma: no cover
        return -1
    while True:
        with os_errors(path, f"create the {what}"):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AdaptkitError(busy(holder(path))) from None
        except OSError as exc:
            os.close(fd)
            raise AdaptkitError(f"{path}: cannot lock it ({exc})") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed it as we opened it: lock the new file
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    with os_errors(path, f"write the {what}"):
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode())
    return fd


def release(path: Path, fd: int) -> None:
    """Drop the lock taken by `acquire` and remove its file."""
    if fd < 0:
        return
    # unlink while still holding it: a process that opened the old file sees a stale inode in
    # `acquire` and retries on the new one
    remove_quietly(path)
    os.close(fd)  # releases the flock


@contextmanager
def held(path: Path, busy: Callable[[str], str], what: str = "lock file") -> Iterator[None]:
    """Hold the lock on `path` for the block (`acquire` / `release`)."""
    fd = acquire(path, busy, what)
    try:
        yield
    finally:
        release(path, fd)
