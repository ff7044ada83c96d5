"""Bases shipped inside the package, named portably: `adaptkit:NAME@FINGERPRINT`.

An adapter trained on a shipped base must not name it by the absolute path it had on the
training machine (site-packages, a checkout): another machine installs adaptkit elsewhere. It
names it `adaptkit:default@52e3301582843e6e` — the shipped base's name and the first 16 hex
digits of its weights' fingerprint (the full one is the adapter's `base_fingerprint`) — and this
module finds it wherever this adaptkit is installed: `bases/NAME/` beside this package, whose
`provenance.json` records the weights' fingerprint (adaptkit.bootstrap.ship writes it). Loading
still hashes the weights and refuses a base whose fingerprint differs (adaptkit.ckpt.adapter).
Torch-free."""

from __future__ import annotations

import re
from pathlib import Path

from adaptkit.ckpt.layout import PROVENANCE_FILE
from adaptkit.errors import AdaptkitError
from adaptkit.fileio import read_json

# bases/<name>/ beside the package's modules: the default base ships as bases/default
SHIPPED_BASES = Path(__file__).resolve().parents[1] / "bases"
SCHEME = "adaptkit:"
PREFIX_LEN = 16  # hex digits of the fingerprint in a portable name
_NAME = re.compile(r"^adaptkit:(?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)(?:@(?P<fp>[0-9a-f]{4,64}))?$")


def shipped_folder(name: str) -> Path:
    """bases/NAME of this installation (it may not exist)."""
    return SHIPPED_BASES / name


def recorded_fingerprint(folder: Path) -> str | None:
    """The weights' fingerprint a shipped base's provenance.json records (None: none)."""
    try:
        info = read_json(folder / PROVENANCE_FILE)
    except AdaptkitError:
        return None
    fp = info.get("fingerprint") if isinstance(info, dict) else None
    return fp if isinstance(fp, str) else None


def portable_name(path: Path | str, fingerprint: str) -> str | None:
    """`adaptkit:NAME@FP16` when `path` is (inside) a base this installation ships, else None."""
    try:
        rel = Path(path).resolve().relative_to(SHIPPED_BASES.resolve())
    except (ValueError, OSError):
        return None
    if not rel.parts:
        return None
    return f"{SCHEME}{rel.parts[0]}@{fingerprint[:PREFIX_LEN]}"


def is_shipped_name(text: str | Path) -> bool:
    return str(text).startswith(SCHEME)


def resolve_shipped(text: str | Path) -> Path:
    """The folder `adaptkit:NAME[@FP]` names in this installation; one line when this adaptkit
    ships no such base, or ships it with other weights."""
    m = _NAME.match(str(text))
    if m is None:
        raise AdaptkitError(
            f"{text}: expected adaptkit:NAME[@FINGERPRINT] (a base shipped with adaptkit, "
            "e.g. adaptkit:default)"
        )
    name, fp = m.group("name"), m.group("fp")
    folder = shipped_folder(name)
    if not folder.is_dir():
        known = sorted(p.name for p in SHIPPED_BASES.glob("*") if p.is_dir())
        raise AdaptkitError(
            f"{text}: this adaptkit ships no base {name!r} (shipped: {', '.join(known) or 'none'})"
        )
    if fp is not None:
        have = recorded_fingerprint(folder)
        if have is None or not have.startswith(fp):
            other = find_by_fingerprint(fp)
            if other is not None:
                return other
            raise AdaptkitError(
                f"{text}: the base {name!r} shipped with this adaptkit has fingerprint "
                f"{(have or 'unrecorded')[:PREFIX_LEN]}, not {fp} (another adaptkit version?); "
                "install the adaptkit that shipped it, or pass the base with --base"
            )
    return folder


def find_by_fingerprint(fingerprint: str) -> Path | None:
    """The shipped base whose recorded fingerprint is (or starts with) `fingerprint`."""
    if not fingerprint:
        return None
    for folder in sorted(SHIPPED_BASES.glob("*")):
        have = recorded_fingerprint(folder) if folder.is_dir() else None
        if have is not None and have.startswith(fingerprint):
            return folder
    return None
