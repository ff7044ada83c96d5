"""A collected task folder is written as a whole or not at all, by one writer at a time.

`collect` writes every history and the task JSON into a hidden folder beside the target (the same
file system), and swaps it in at the end (`fileio.atomic_dir`: the old folder renamed away, the
new one renamed in, the old one removed). A kill or a full disk leaves the old folder untouched
and a hidden leftover the next collect sweeps. A lock file beside the folder (`.NAME.lock`) lets
one collect write it at a time; a second one is refused in one line.

A folder is replaced only when collect wrote it (its task JSON records a `collector`, or it holds
only collect-named histories: an older collect killed half-way); a folder holding anyone else's
files is refused, never mixed with or deleted. The task JSON lists exactly the files present, and
`files_disagree` lets `data validate` and training's pre-flight refuse a folder where it does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from adaptkit import lockfile
from adaptkit.data.history import read_task_metadata, task_metadata_path
from adaptkit.errors import AdaptkitError, Interrupted, signal_name, signal_of
from adaptkit.fileio import atomic_dir, make_dirs, missing_cause, sweep_temps

# the names collect gives its histories (ASCII digits: \d takes history_００１.h5, a user's, too)
COLLECTED_NAME = re.compile(r"^history_[0-9]{3,}\.h5$")


def lock_path(folder: Path) -> Path:
    """The lock file of a task folder: beside it, so it survives the folder's swap."""
    return folder.parent / f".{folder.name}.lock"


def _check_replaceable(folder: Path) -> None:
    """Refuse a folder collect did not write (module docstring)."""
    if not folder.exists() and not folder.is_symlink():
        return
    if not folder.is_dir():
        why = "it exists and is not a directory" if folder.exists() else missing_cause(folder)
        raise AdaptkitError(f"{folder}: cannot collect into it: {why}")
    meta = read_task_metadata(folder) if task_metadata_path(folder).is_file() else None
    if isinstance(meta, dict) and isinstance(meta.get("collector"), dict):
        return  # an earlier collection: replaced as a whole
    # no collector recorded: only collect-named histories (a killed older collect) may go
    foreign = sorted(
        p.name
        for p in folder.iterdir()
        if not p.name.startswith(".") and not COLLECTED_NAME.match(p.name)
    )
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise AdaptkitError(
            f"{folder}: holds files collect did not write ({shown}); collect replaces only a "
            "folder it wrote, as a whole: choose another --out / --data-dir, or move them away"
        )


@contextmanager
def collecting_into(folder: Path) -> Iterator[Path]:
    """Hold the folder's lock and yield an empty temp folder that replaces `folder` as a whole
    when the block completes; on any failure `folder` is left exactly as it was."""
    folder = Path(folder)
    make_dirs(folder.parent, "data folder")
    lock = lock_path(folder)
    busy = (  # noqa: E731 - a message, built only when refused
        lambda who: (
            f"{folder} is being collected by another process ({who}); wait for it to "
            "end, or choose another --data-dir"
        )
    )
    with lockfile.held(lock, busy, "data folder's lock file"):
        # leftovers of a collect killed half-way (we hold the lock: nobody is writing them)
        sweep_temps(folder.parent, f".{folder.name}.tmp-*")
        old = sorted(folder.parent.glob(f".{folder.name}.old-*"))
        if old and not folder.exists():  # killed between the swap's two renames: put it back
            old[-1].rename(folder)
        sweep_temps(folder.parent, f".{folder.name}.old-*")
        _check_replaceable(folder)
        earlier = folder.exists()
        try:
            with atomic_dir(folder, "dataset folder") as tmp:
                yield tmp
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM through the CLI's handler
            signum = signal_of(exc)
            kept = "the earlier collection there is untouched" if earlier else "nothing written"
            raise Interrupted(
                f"{folder}: interrupted by {signal_name(signum)} before the collection was "
                f"complete: none of it was kept ({kept}); the same command starts over",
                signum,
            ) from None


def files_disagree(folder: Path, files: Sequence[Path]) -> str | None:
    """Why the task JSON adaptkit wrote does not describe exactly `files` (None: it does, or
    the folder has no such JSON)."""
    meta_path = task_metadata_path(folder)
    if not meta_path.is_file():
        return None
    meta = read_task_metadata(folder)
    listed = meta.get("histories") if isinstance(meta, dict) else None
    if not isinstance(listed, list) or not all(isinstance(h, dict) for h in listed):
        return None
    named = sorted(str(h.get("file")) for h in listed)
    present = sorted(p.name for p in files)
    if named == present:
        return None
    missing = [n for n in named if n not in present]
    unlisted = [n for n in present if n not in named]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing[:3])}" + (", ..." if len(missing) > 3 else ""))
    if unlisted:
        parts.append(
            f"not listed {', '.join(unlisted[:3])}" + (", ..." if len(unlisted) > 3 else "")
        )
    return (
        f"{meta_path}: lists {len(named)} history file(s) but {folder} holds {len(present)} "
        f"({'; '.join(parts)}): the files and the task JSON disagree (a collect that did not "
        "finish, or files changed by hand); collect again, or fix the JSON"
    )
