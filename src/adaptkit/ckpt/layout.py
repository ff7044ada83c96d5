"""The `NNNN_epoch` layout of a run folder and the file names of a checkpoint, written once.

A run folder holds `NNNN_epoch/` dirs; each is a full checkpoint (model.pth, metadata.json,
config.json, + state.pth while training) or an adapter (adapter_config.json +
adapter_model.safetensors: one group on top of a base). Torch-free, so the CLI and the Hub
lookup can name these files without loading torch (adaptkit.ckpt.checkpoint reads and writes
them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from adaptkit.errors import AdaptkitError
from adaptkit.fileio import read_json

MODEL_FILE, METADATA_FILE, CONFIG_FILE, STATE_FILE = (
    "model.pth",
    "metadata.json",
    "config.json",
    "state.pth",
)
REQUIRED_FILES = (MODEL_FILE, METADATA_FILE, CONFIG_FILE)
ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE = "adapter_config.json", "adapter_model.safetensors"
ADAPTER_FILES = (ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE)
EPOCH_RE = re.compile(r"^([0-9]+)_epoch$")  # ASCII digits: \d takes ０００３ and ٣ too
# A base folder's record of how it was built (adaptkit.bootstrap.provenance writes it); a shipped
# base's also records the fingerprint of the epoch it ships ("shipped_from", "fingerprint"),
# which loading that epoch checks (adaptkit.ckpt.checkpoint.check_recorded_fingerprint).
PROVENANCE_FILE = "provenance.json"


def epoch_dir(save_dir: Path | str, name: str, epoch: int) -> Path:
    """`{save_dir}/{name}/{epoch:04d}_epoch`, the reference layout."""
    return Path(save_dir) / name / f"{epoch:04d}_epoch"


def is_full(path: Path) -> bool:
    """A complete checkpoint in the reference layout (model.pth, metadata.json, config.json)."""
    return path.is_dir() and all((path / f).is_file() for f in REQUIRED_FILES)


def is_adapter(path: Path) -> bool:
    """An adapter dir (adapter_config.json + adapter_model.safetensors) without a model.pth."""
    return (
        path.is_dir()
        and not (path / MODEL_FILE).exists()
        and all((path / f).is_file() for f in ADAPTER_FILES)
    )


def is_complete(path: Path) -> bool:
    """A full checkpoint or an adapter-sized epoch."""
    return is_full(path) or is_adapter(path)


def epoch_dirs(run_dir: Path | str) -> list[tuple[int, Path]]:
    """Every complete `NNNN_epoch` dir of a run, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    return sorted(
        (int(m.group(1)), p)
        for p in run_dir.iterdir()
        if (m := EPOCH_RE.match(p.name)) and is_complete(p)
    )


def latest_checkpoint(run_dir: Path | str) -> Path | None:
    """The complete `NNNN_epoch` dir with the highest epoch in `run_dir`, or None."""
    found = epoch_dirs(run_dir)
    return found[-1][1] if found else None


RESTORE_HINT = (
    "restore the folder from where it came (the base adaptkit ships: pip install "
    "--force-reinstall --no-deps adaptkit, or git checkout -- src/adaptkit/bases in a source "
    "checkout)"
)


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """A run folder's provenance.json (adaptkit.ckpt.layout.PROVENANCE_FILE), None when it has
    none; a damaged one (unreadable, not JSON, not an object) is an error naming it."""
    path = run_dir / PROVENANCE_FILE
    if not path.exists() and not path.is_symlink():
        return None
    try:
        record = read_json(path)
    except AdaptkitError as exc:
        raise AdaptkitError(f"{exc}: the base's record is damaged; {RESTORE_HINT}") from None
    if not isinstance(record, dict):
        raise AdaptkitError(f"{path}: expected a JSON object; {RESTORE_HINT}")
    return record
