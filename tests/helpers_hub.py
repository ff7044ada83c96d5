"""A Hugging Face Hub cache laid out by hand, from the layout's facts (huggingface_hub writes
models--ORG--NAME/{blobs,snapshots,refs}): blobs named by their sha256, snapshot files linking to
them, refs/<branch> holding the commit. Nothing touches the network."""

from __future__ import annotations

import hashlib
from pathlib import Path


def lay_out(cache: Path, repo: str, commit: str, files: dict[str, bytes], refs: list[str]) -> Path:
    """models--org--name/blobs/<sha256>, snapshots/<commit>/<file> → ../../blobs/<sha256>,
    refs/<name> holding the commit; returns the snapshot folder."""
    root = cache / f"models--{repo.replace('/', '--')}"
    for rel, data in files.items():
        sha = hashlib.sha256(data).hexdigest()
        blob = root / "blobs" / sha
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = root / "snapshots" / commit / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(blob)
    for ref in refs:
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / ref).write_text(commit)
    return root / "snapshots" / commit


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` by its relative POSIX path (what an upload of it holds)."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
