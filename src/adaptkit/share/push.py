"""`adaptkit push`: a run's checkpoint (its adapter, or the full checkpoint) and its model card
(adaptkit.share.card), laid out in a folder and uploaded to a Hugging Face Hub repo.

The folder is what `hf://ORG/NAME` then loads (adaptkit.ckpt.hub). `dry_run`: the folder only,
offline."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from adaptkit.ckpt.checkpoint import resolve_checkpoint
from adaptkit.ckpt.hub import INSTALL_HINT, PREFIX, parse_hub_ref
from adaptkit.ckpt.layout import ADAPTER_FILES, REQUIRED_FILES
from adaptkit.errors import AdaptkitError
from adaptkit.fileio import atomic_dir
from adaptkit.share.card import CARD_FILE, evaluation_rows, model_card

WHAT = ("auto", "adapter", "full")


@dataclass(frozen=True)
class PushPlan:
    folder: Path  # what is uploaded
    repo_id: str
    kind: str  # "adapter" or "full"
    files: tuple[str, ...]
    card: str


def parse_target(target: str) -> str:
    """hf://ORG/NAME (or ORG/NAME) → the repo id; no revision or subfolder."""
    text = target if target.startswith(PREFIX) else PREFIX + target
    ref = parse_hub_ref(text)
    if ref is None or ref.revision or ref.subfolder:
        raise AdaptkitError(f"push target {target!r}: expected hf://ORG/NAME")
    return ref.repo_id


def _files(ckpt: Path, what: str) -> tuple[str, tuple[str, ...]]:
    has_adapter = all((ckpt / f).is_file() for f in ADAPTER_FILES)
    has_full = all((ckpt / f).is_file() for f in REQUIRED_FILES)
    if what == "auto":
        what = "adapter" if has_adapter else "full"
    if what == "adapter" and not has_adapter:
        raise AdaptkitError(f"--what adapter: {ckpt} holds no adapter ({', '.join(ADAPTER_FILES)})")
    if what == "full" and not has_full:
        raise AdaptkitError(f"--what full: {ckpt} is an adapter; it holds no model.pth")
    return what, ADAPTER_FILES if what == "adapter" else REQUIRED_FILES


def prepare_push(
    run: str | Path,
    target: str,
    out_dir: str | Path,
    what: str = "auto",
    evaluations: list[Path] | None = None,
    command: str | None = None,
) -> PushPlan:
    """Lay out the folder to upload in `out_dir`: the checkpoint's files and README.md."""
    if what not in WHAT:
        raise AdaptkitError(f"--what: expected one of {', '.join(WHAT)}, got {what!r}")
    repo_id = parse_target(target)
    ckpt = resolve_checkpoint(run)
    kind, files = _files(ckpt, what)
    card = model_card(ckpt, repo_id, kind, evaluation_rows(ckpt, list(evaluations or [])), command)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not (out / CARD_FILE).is_file():
        # the folder is replaced whole: never one that holds something else
        raise AdaptkitError(f"--out: {out} exists and is not an earlier push folder")
    with atomic_dir(out_dir, "push folder") as tmp:
        for name in files:
            shutil.copy2(ckpt / name, tmp / name)
        (tmp / CARD_FILE).write_text(card)
    return PushPlan(Path(out_dir), repo_id, kind, (*files, CARD_FILE), card)


def upload(plan: PushPlan, private: bool = False) -> str:
    """Create the repo (if needed) and upload the folder; returns the commit URL."""
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise AdaptkitError(f"push: needs huggingface_hub: {INSTALL_HINT}") from None
    api = HfApi()
    try:
        api.create_repo(plan.repo_id, private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=plan.repo_id,
            folder_path=str(plan.folder),
            commit_message=f"adaptkit push ({plan.kind})",
        )
    except Exception as exc:  # auth, network, permissions: huggingface_hub's own exceptions
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AdaptkitError(
            f"push hf://{plan.repo_id}: {first} (log in with `hf auth login`)"
        ) from None
    return str(getattr(info, "commit_url", info))
