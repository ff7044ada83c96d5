"""`adaptkit push`: a run's checkpoint (its adapter, or the full checkpoint) and its model card
(adaptkit.share.card), laid out in a folder and uploaded to a Hugging Face Hub repo.

The folder is what `hf://ORG/NAME` then loads (adaptkit.ckpt.hub). `dry_run`: the folder only,
offline."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adaptkit.ckpt.checkpoint import resolve_checkpoint
from adaptkit.ckpt.hub import INSTALL_HINT, PREFIX, parse_hub_ref
from adaptkit.ckpt.layout import ADAPTER_FILES, REQUIRED_FILES
from adaptkit.errors import AdaptkitError
from adaptkit.export.formats import FORMATS
from adaptkit.fileio import atomic_dir, read_json, write_json
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


# what a push folder holds: the card, a checkpoint's or an adapter's files, the exports
EXPORT_DIR = "export"


def _ours(out: Path) -> bool:
    """`out` is a push folder adaptkit wrote: nothing in it but the names a push writes, and a
    README.md that is adaptkit's card (its YAML header says library_name: adaptkit)."""
    allowed = {CARD_FILE, *ADAPTER_FILES, *REQUIRED_FILES, EXPORT_DIR}
    entries = list(out.iterdir())
    if any(p.name not in allowed or p.is_symlink() for p in entries):
        return False
    exported = {n for f in FORMATS.values() for n in (f.file, f.file + ".json")}
    for p in entries:
        if p.name == EXPORT_DIR and (
            not p.is_dir() or any(q.name not in exported or not q.is_file() for q in p.iterdir())
        ):
            return False  # an export/ of someone else's files
    card = out / CARD_FILE
    try:
        head = card.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return card.is_file() and head.startswith("---\n") and "\nlibrary_name: adaptkit\n" in head


def check_out_folder(out: Path, ckpt: Path) -> None:
    """The push folder is replaced whole, so it must be one adaptkit wrote (or be new or
    empty): never the working folder, the run, or any folder holding something else."""
    if not out.exists():
        return
    if not out.is_dir():
        raise AdaptkitError(f"--out {out}: exists and is not a folder")
    here, target = Path.cwd().resolve(), out.resolve()
    if (
        target == here
        or target in here.parents
        or target == ckpt.resolve()
        or (target in ckpt.resolve().parents)
    ):
        raise AdaptkitError(
            f"--out {out}: is the working folder, the checkpoint or a folder above them; "
            "give a folder of its own (default push/NAME)"
        )
    if any(out.iterdir()) and not _ours(out):
        raise AdaptkitError(
            f"--out {out}: exists and is not an earlier push folder (it holds files adaptkit's "
            "push did not write); give a new or empty folder"
        )


def prepare_push(
    run: str | Path,
    target: str,
    out_dir: str | Path,
    what: str = "auto",
    evaluations: list[Path] | None = None,
    command: str | None = None,
    write_exports: Callable[[Path], list[Path]] | None = None,
) -> PushPlan:
    """Lay out the folder to upload in `out_dir`: the checkpoint's files and README.md, and with
    `write_exports` (called with the folder's export/ subfolder) the exported policies."""
    if what not in WHAT:
        raise AdaptkitError(f"--what: expected one of {', '.join(WHAT)}, got {what!r}")
    repo_id = parse_target(target)
    ckpt = resolve_checkpoint(run)
    kind, files = _files(ckpt, what)
    out = Path(out_dir)
    check_out_folder(out, ckpt)
    rows = evaluation_rows(ckpt, list(evaluations or []))  # a bad --eval file: before exporting
    with atomic_dir(out_dir, "push folder") as tmp:
        for name in files:
            shutil.copy2(ckpt / name, tmp / name)
        exported = []
        if write_exports is not None:
            exported = [p.relative_to(tmp).as_posix() for p in write_exports(tmp / EXPORT_DIR)]
        card = model_card(ckpt, repo_id, kind, rows, command, exports=exported)
        (tmp / CARD_FILE).write_text(card, encoding="utf-8")
    return PushPlan(Path(out_dir), repo_id, kind, (*files, *exported, CARD_FILE), card)


def exports_writer(
    run: str | Path,
    repo_id: str,
    formats: list[str],
    robot: str | None = None,
    base: str | None = None,
) -> Callable[[Path], list[Path]]:
    """What `prepare_push(write_exports=...)` calls: the checkpoint exported in each format
    (adaptkit.export) into the push folder's export/, each sidecar naming the pushed repo
    instead of the checkpoint's local path. The robot is the run's unless given."""
    from adaptkit.evaluate import EvalSettings
    from adaptkit.export.build import export_checkpoint, recorded_robot
    from adaptkit.export.formats import get_format
    from adaptkit.plugins import get_registry

    for fmt in formats:
        get_format(fmt)  # an unknown format fails before anything is written
    name = robot or recorded_robot(run)
    if name is None:
        raise AdaptkitError(f"--with-export: {run} records no robot; pass --robot")
    registry = get_registry()
    spec = registry.robot(name)

    def write(folder: Path) -> list[Path]:
        written = []
        settings = EvalSettings.from_options(base=base, threads=None)
        for fmt in formats:
            res = export_checkpoint(
                run, spec, folder, fmt, settings, robots=list(registry.robots.values())
            )
            side = read_json(res.sidecar_file)
            side["checkpoint"] = f"{PREFIX}{repo_id}"  # not this machine's path
            write_json(res.sidecar_file, side, "export sidecar")
            written += [res.policy_file, res.sidecar_file]
        return written

    return write


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
