"""Model paths that name a Hugging Face Hub repo, resolved through the local Hub cache first.

Syntax (that of huggingface_hub's `hf://` file system):

    hf://ORG/NAME                  the repo's main branch
    hf://ORG/NAME@REVISION         a branch, tag or commit ('/' in a revision written %2F)
    hf://ORG/NAME@REVISION/SUB/DIR a folder inside the repo (e.g. a run's NNNN_epoch)
    ORG/NAME[@REVISION]            the same, when no local path of that name exists

Offline first: the snapshot in the Hub cache (HF_HUB_CACHE, HF_HOME, ~/.cache/huggingface/hub)
is used when it holds the files; only if it does not, and HF_HUB_OFFLINE is unset, is the Hub
asked. Not cached and no network: one line saying what to download and where.
huggingface_hub is an extra (`pip install 'adaptkit[hub]'`), imported only for Hub references.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from adaptkit.ckpt.layout import ADAPTER_CONFIG_FILE, CONFIG_FILE, EPOCH_RE
from adaptkit.errors import AdaptkitError

PREFIX = "hf://"
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REF = re.compile(rf"^(?P<org>{_NAME})/(?P<name>{_NAME})(?:@(?P<rev>[^/]+))?(?:/(?P<sub>.+))?$")
# what a checkpoint folder holds: a full one, or an adapter
_PATTERNS = ("*.json", "*.pth", "*.safetensors")
INSTALL_HINT = "pip install 'adaptkit[hub]'"


@dataclass(frozen=True)
class HubRef:
    """A model folder on the Hub: repo, revision (None: main) and a subfolder ('' = root)."""

    repo_id: str
    revision: str | None = None
    subfolder: str = ""

    def __str__(self) -> str:
        rev = f"@{self.revision.replace('/', '%2F')}" if self.revision else ""
        sub = f"/{self.subfolder}" if self.subfolder else ""
        return f"{PREFIX}{self.repo_id}{rev}{sub}"

    def download_command(self) -> str:
        """The shell command that downloads it: every part quoted (a revision or subfolder
        comes from the user and may hold `;`, spaces or quotes)."""
        rev = f" --revision {shlex.quote(self.revision)}" if self.revision else ""
        inc = f" --include {shlex.quote(self.subfolder + '/*')}" if self.subfolder else ""
        return f"hf download {shlex.quote(self.repo_id)}{rev}{inc}"


def parse_hub_ref(text: str | Path) -> HubRef | None:
    """A HubRef for `hf://…`, or for a bare `org/name[@rev]` that is not a local path; else None."""
    raw = str(text)
    if raw.startswith("hf:/") and not raw.startswith(PREFIX):  # pathlib folds '//' into '/'
        raw = PREFIX + raw[len("hf:/") :]
    explicit = raw.startswith(PREFIX)
    if explicit:
        raw = raw[len(PREFIX) :]
    elif (
        raw.count("/") != 1
        or raw.startswith(("/", ".", "~"))
        or Path(raw).exists()
        or Path(raw.split("/")[0]).exists()  # e.g. models/typo: a local path gone wrong
    ):
        return None  # a local path (bare Hub ids are exactly org/name, optionally @revision)
    m = _REF.match(raw.rstrip("/"))
    if m is None:
        if explicit:
            raise AdaptkitError(
                f"{text}: expected hf://ORG/NAME[@REVISION][/SUBFOLDER] (a Hugging Face repo id)"
            )
        return None
    sub = (m.group("sub") or "").strip("/")
    if any(part in ("", ".", "..") for part in sub.split("/")) and sub:
        raise AdaptkitError(f"{text}: the subfolder must be a plain relative path, got {sub!r}")
    rev = unquote(m.group("rev")) if m.group("rev") else None
    return HubRef(f"{m.group('org')}/{m.group('name')}", rev, sub)


def cache_dir() -> Path:
    """Where huggingface_hub keeps its cache (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache")), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true")


def _has_checkpoint_files(folder: Path) -> bool:
    """The folder holds a checkpoint, an adapter, or a run's NNNN_epoch folders."""
    if (folder / CONFIG_FILE).is_file() or (folder / ADAPTER_CONFIG_FILE).is_file():
        return True
    return any(p.is_dir() and EPOCH_RE.match(p.name) for p in folder.glob("*_epoch"))


def resolve_hub(ref: HubRef) -> Path:
    """The local folder of `ref`: its snapshot in the Hub cache, downloaded only when not
    cached and the Hub may be asked (HF_HUB_OFFLINE unset)."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise AdaptkitError(
            f"{ref}: a Hugging Face Hub model needs huggingface_hub: {INSTALL_HINT}"
        ) from None
    patterns = [f"{ref.subfolder}/{p}" if ref.subfolder else p for p in _PATTERNS]
    patterns += [f"{ref.subfolder}/**/{p}" if ref.subfolder else f"**/{p}" for p in _PATTERNS]
    cache = cache_dir()

    def snapshot(local_only: bool) -> Path | None:
        try:
            root = snapshot_download(
                ref.repo_id,
                revision=ref.revision,
                allow_patterns=patterns,
                local_files_only=local_only,
                cache_dir=cache,
                endpoint=os.environ.get("HF_ENDPOINT") or None,
            )
        except Exception as exc:  # not cached / offline / unreachable / no such repo
            if local_only:
                return None
            raise _not_available(ref, cache, exc) from None
        folder = Path(root) / ref.subfolder
        return folder if folder.is_dir() and _has_checkpoint_files(folder) else None

    found = snapshot(local_only=True)
    if found is not None:
        return found
    if _offline():
        raise _not_available(ref, cache, None)
    found = snapshot(local_only=False)
    if found is None:
        raise AdaptkitError(
            f"{ref}: the repo has no checkpoint there (expected config.json + model.pth + "
            "metadata.json, an adapter_config.json, or NNNN_epoch folders)"
        )
    return found


def resolve_hub_file(ref: HubRef, companions: tuple[str, ...] = (".json",)) -> Path:
    """The local copy of one file in a Hub repo (`ref.subfolder` names it, e.g.
    export/policy.pt) and of its companions (the same name + each suffix: its sidecar), from the
    Hub cache first, as `resolve_hub` does for folders."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise AdaptkitError(
            f"{ref}: a Hugging Face Hub file needs huggingface_hub: {INSTALL_HINT}"
        ) from None
    patterns = [ref.subfolder, *(ref.subfolder + c for c in companions)]
    cache = cache_dir()

    def snapshot(local_only: bool) -> Path | None:
        try:
            root = snapshot_download(
                ref.repo_id, revision=ref.revision, allow_patterns=patterns,
                local_files_only=local_only, cache_dir=cache,
                endpoint=os.environ.get("HF_ENDPOINT") or None,
            )  # fmt: skip
        except Exception as exc:  # not cached / offline / unreachable / no such repo
            if local_only:
                return None
            raise _not_available(ref, cache, exc) from None
        found = Path(root) / ref.subfolder
        return found if found.is_file() else None

    found = snapshot(local_only=True)
    if found is None and _offline():
        raise _not_available(ref, cache, None)
    found = found or snapshot(local_only=False)
    if found is None:
        raise AdaptkitError(f"{ref}: the repo has no file {ref.subfolder!r}")
    return found


def _not_available(ref: HubRef, cache: Path, exc: Exception | None) -> AdaptkitError:
    why = "HF_HUB_OFFLINE is set" if exc is None else f"the Hub was not reached ({_why(exc)})"
    return AdaptkitError(
        f"{ref}: not in the Hugging Face cache at {cache} and {why}; download it there with "
        f"`{ref.download_command()}` (HF_HUB_CACHE={cache}) where there is network, or pass a "
        "local checkpoint folder"
    )


def _why(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def resolve_model_path(path: str | Path) -> Path:
    """A local path as it is; a Hub reference → its local snapshot folder."""
    ref = parse_hub_ref(path)
    if ref is None:
        return Path(path)
    if str(path).startswith("hf:"):
        return resolve_hub(ref)
    try:
        return resolve_hub(ref)
    except AdaptkitError as exc:  # a bare org/name: say it is not a local path either
        raise AdaptkitError(f"{path}: no local path of that name; as a Hub repo, {exc}") from None
