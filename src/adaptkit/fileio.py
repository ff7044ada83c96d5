"""How adaptkit touches the file system: durable atomic writes, OS errors as one line, strict YAML.

Every writer (checkpoint dirs, adapters, stats.json, dataset YAML, task JSON, metrics, HDF5
histories, provenance) goes through `atomic_file` / `atomic_path` / `atomic_dir`: the content is
written to a hidden temp name beside the target, fsync'ed, renamed over the target, and the folder
is fsync'ed, so after a crash or power loss the target holds either the old or the new content,
never a mix. A failure removes the temp and raises an AdaptkitError naming the path and the cause
(disk full, read-only file system, permission denied, not a directory).

JSON has one writer (`write_json`, through `atomic_file`) and one reader (`read_json`: a missing,
malformed or duplicate-keyed file is one line).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import stat
import sys
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import yaml

from adaptkit.errors import AdaptkitError

# The causes users hit, worded for them; anything else uses the OS's own text.
_CAUSES = {
    errno.ENOSPC: "no space left on device (disk full)",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a path component is a file, not a directory",
    errno.EISDIR: "is a directory",
    errno.EEXIST: "already exists",
    errno.ENOENT: "no such file or directory",
    errno.ELOOP: "a symlink loop (too many levels of symbolic links)",
}


def os_cause(exc: BaseException) -> str:
    """The reason an OSError happened, in a few words."""
    if isinstance(exc, OSError) and exc.errno in _CAUSES:
        return _CAUSES[exc.errno]
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    first = str(exc).strip().splitlines()
    return first[0] if first else type(exc).__name__


def missing_cause(path: Path | str) -> str:
    """Why `path` cannot be opened, in a few words: a symlink loop or a dangling link is named
    as such, not as a plain "not found"."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT and os.path.islink(path):
            return f"a symbolic link to {os.readlink(path)}, which does not exist"
        return os_cause(exc)
    return "no such file or directory"


def not_a_file(path: Path | str) -> str:
    """Why `path` is no readable file, in a few words: "a directory, not a file", or "not
    found" with the cause (a dangling link, a symlink loop)."""
    if os.path.isdir(path):
        return "a directory, not a file"
    cause = missing_cause(path)
    return "not found" if cause == _CAUSES[errno.ENOENT] else f"not found ({cause})"


def resolve_path(path: Path | str) -> Path:
    """path.resolve(), except that a symlink loop (Python's RuntimeError) yields the absolute
    path unresolved: the code that opens it then names the loop (`missing_cause`)."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError):
        return Path(os.path.abspath(path))


def os_error(path: Path | str, doing: str, exc: BaseException) -> AdaptkitError:
    """`{path}: cannot {doing}: {cause}` — the one-line form of an OS failure."""
    return AdaptkitError(f"{path}: cannot {doing}: {os_cause(exc)}")


@contextmanager
def os_errors(path: Path | str, doing: str) -> Iterator[None]:
    """Turn an OSError raised inside the block into a one-line AdaptkitError."""
    try:
        yield
    except OSError as exc:
        raise os_error(path, doing, exc) from None


def check_folder_name(name: str, what: str = "name") -> str:
    """`name` if it is one plain folder name (it cannot leave the folder it is joined to)."""
    if not isinstance(name, str) or not name.strip():
        raise AdaptkitError(f"the {what} must not be empty")
    if name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
        raise AdaptkitError(
            f"the {what} must be one folder name (no '/', not '.' or '..'), got {name!r}"
        )
    return name


def fsync_dir(path: Path | str) -> None:
    """Make a rename/creation inside `path` durable (a no-op where directories cannot be
    opened, e.g. on Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories; the rename still happened
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path | str, what: str = "folder") -> Path:
    """mkdir -p with a one-line error (a parent that is a file, read-only, no permission)."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise AdaptkitError(f"{path}: cannot create the {what}: {missing_cause(path)}")
    if path.exists() and not path.is_dir():
        raise AdaptkitError(f"{path}: cannot create the {what}: it exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a parent is a file
        parent = next((p for p in path.parents if p.exists() and not p.is_dir()), path)
        raise AdaptkitError(
            f"{path}: cannot create the {what}: {parent} is a file, not a directory"
        ) from None
    except OSError as exc:
        raise os_error(path, f"create the {what}", exc) from None
    return path


def _is_special(path: Path) -> bool:
    """An existing non-regular, non-directory file (a device, a FIFO): it cannot be replaced by
    rename, and it holds nothing a half-write could corrupt, so it is written in place."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def remove_quietly(path: Path) -> None:
    """Remove a temp file if it is there; never raise (on a read-only file system even a missing
    file's unlink fails, and that must not hide the error being reported)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def commit(tmp: Path, path: Path, what: str = "file") -> None:
    """Make the finished temp file `tmp` durable and rename it over `path`."""
    with os_errors(path, f"write the {what}"):
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)


@contextmanager
def atomic_path(path: Path | str, what: str = "file") -> Iterator[Path]:
    """Yield a temp path beside `path` for a writer that wants a file name (h5py, torch);
    on success it is fsync'ed and renamed over `path`, on any failure removed."""
    path = Path(path)
    if path.is_dir():
        raise AdaptkitError(f"{path}: cannot write the {what}: it is a directory")
    make_dirs(path.parent)
    tmp = path.parent / f".{path.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        yield tmp
        commit(tmp, path, what)
    except OSError as exc:
        raise os_error(path, f"write the {what}", exc) from None
    finally:
        remove_quietly(tmp)


@contextmanager
def atomic_file(
    path: Path | str, mode: str = "w", what: str = "file", newline: str | None = None
) -> Iterator[IO[Any]]:
    """Yield an open file; its content replaces `path` only when the block completes.

    `mode` is "w" (text, UTF-8) or "wb". An existing device or FIFO (e.g. /dev/stdout) is
    written in place instead."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    kw: dict[str, Any] = {"encoding": "utf-8", "newline": newline} if mode == "w" else {}
    if _is_special(path):
        try:
            with open(path, mode, **kw) as fh:
                yield fh
        except OSError as exc:
            raise os_error(path, f"write the {what}", exc) from None
        return
    with atomic_path(path, what) as tmp:
        try:
            with open(tmp, mode, **kw) as fh:
                yield fh
        except OSError as exc:
            raise os_error(path, f"write the {what}", exc) from None


def write_text_atomic(path: Path | str, text: str, what: str = "file") -> Path:
    with atomic_file(path, "w", what) as fh:
        fh.write(text)
    return Path(path)


# -- JSON: the one writer and the one reader ---------------------------------------------------
def plain_json(x: Any) -> Any:
    """`x` as plain JSON values: numpy scalars and arrays (and tensors) as numbers and lists,
    paths as strings, NaN and ±inf as null (they are not JSON: e.g. the return of a policy that
    finished no episode), anything else unknown as its str()."""
    if isinstance(x, float):  # numpy's float64 too
        return x if math.isfinite(x) else None
    if isinstance(x, str | int | bool) or x is None:
        return x
    if isinstance(x, dict):
        return {k: plain_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [plain_json(v) for v in x]
    if hasattr(x, "tolist"):  # numpy arrays/scalars, tensors
        return plain_json(x.tolist())
    return str(x)


def to_json_text(data: Any) -> str:
    """`data` as indented JSON text (see `plain_json` for what is converted)."""
    return json.dumps(plain_json(data), indent=2)


def write_json(path: Path | str, data: Any, what: str = "JSON") -> Path:
    """Write `data` as a JSON file, atomically (`atomic_file`)."""
    return write_text_atomic(path, to_json_text(data) + "\n", what)


def _unique_keys(where: Path | str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:  # plain json lets the last one silently win
                raise AdaptkitError(f"{where}: duplicate key {key!r}")
            out[key] = value
        return out

    return hook


def read_json(path: Path | str) -> Any:
    """A JSON file, with a missing or malformed file (or a key given twice in one object) as a
    one-line AdaptkitError."""
    try:
        return json.loads(Path(path).read_text(), object_pairs_hook=_unique_keys(path))
    except FileNotFoundError:
        raise AdaptkitError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise AdaptkitError(f"{path}: unreadable ({os_cause(exc)})") from None
    except json.JSONDecodeError as exc:
        raise AdaptkitError(f"{path}: invalid JSON ({exc})") from None


def canonical(obj: Any) -> Any:
    """`obj` with every dict, list and tuple a fresh copy and every string interned, so that
    pickle's memo (it writes an object seen before as a back-reference, by identity) sees the
    same sharing whatever the objects' history: a run resumed from its checkpoint holds equal
    strings and lists that are other objects than the uninterrupted run's, and its state.pth
    differed in bytes with identical contents. Tensors and numbers are kept as they are."""
    if type(obj) is str:
        return sys.intern(obj)
    if type(obj) in (dict, OrderedDict):
        return type(obj)((canonical(k), canonical(v)) for k, v in obj.items())
    if type(obj) in (list, tuple):
        return type(obj)(canonical(v) for v in obj)
    return obj


def torch_save_to(obj: Any, fh: IO[bytes], path: Path | str, what: str = "file") -> None:
    """torch.save into the open file `fh` (written for `path`). When the file system refuses a
    write, torch's zip writer may raise its own RuntimeError (`[enforce fail at
    inline_container.cc] unexpected pos`) instead of the OSError: it becomes the one-line OS
    error, with the cause found by flushing the file (disk full, quota, ...)."""
    import torch

    try:
        torch.save(canonical(obj), fh)
    except RuntimeError as exc:
        if "inline_container" not in str(exc) and "PytorchStreamWriter" not in str(exc):
            raise
        try:  # the write that failed inside torch fails again here, with its errno
            fh.flush()
            os.fsync(fh.fileno())
        except OSError as os_exc:
            raise os_error(path, f"write the {what}", os_exc) from None
        try:
            vfs = os.fstatvfs(fh.fileno())
            full = vfs.f_bavail == 0
        except (OSError, AttributeError, ValueError):
            full = False
        cause = "no space left on device (disk full)" if full else "torch's writer failed"
        first = str(exc).strip().splitlines()[0]
        raise AdaptkitError(f"{path}: cannot write the {what}: {cause} ({first})") from None


def torch_save_atomic(obj: Any, path: Path | str, what: str = "file") -> Path:
    """torch.save through a Python file object (so a full disk is an OSError, not torch's
    opaque RuntimeError), atomically."""
    with atomic_file(path, "wb", what) as fh:
        torch_save_to(obj, fh, path, what)
    return Path(path)


@contextmanager
def atomic_dir(path: Path | str, what: str = "folder") -> Iterator[Path]:
    """Yield an empty temp folder beside `path`; when the block completes, every file in it and
    the folder are fsync'ed and it replaces `path` (an existing `path` is moved aside first and
    removed after). A failure removes the temp folder and leaves `path` as it was."""
    path = Path(path)
    make_dirs(path.parent)
    tag = uuid.uuid4().hex[:8]
    tmp = path.parent / f".{path.name}.tmp-{tag}"
    try:
        with os_errors(path, f"write the {what}"):
            tmp.mkdir()
        yield tmp
        with os_errors(path, f"write the {what}"):
            for f in tmp.rglob("*"):
                if f.is_file():
                    fsync_file(f)
            fsync_dir(tmp)
            if path.exists():
                old = path.parent / f".{path.name}.old-{tag}"
                path.rename(old)
                tmp.rename(path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(path)
            fsync_dir(path.parent)
    except OSError as exc:
        raise os_error(path, f"write the {what}", exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SET_TEMP = ".outputs.tmp-"  # the hidden folder a file set is written in


def _hold(folder: Path) -> int | None:
    """An flock on `folder` (a directory fd), so a sweep knows a live writer's temp from a dead
    one's; the kernel drops it with the process. None where directories cannot be locked."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return None
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):
        os.close(fd)
        return None
    return fd


def sweep_dead_sets(folder: Path) -> None:
    """Remove the temp folders of file sets whose writer died (killed, SIGTERM): those no live
    writer holds a lock on."""
    for tmp in folder.glob(SET_TEMP + "*"):
        fd = _hold(tmp) if tmp.is_dir() and not tmp.is_symlink() else None
        if fd is not None:
            try:
                shutil.rmtree(tmp, ignore_errors=True)
            finally:
                os.close(fd)


@contextmanager
def file_set(
    folder: Path | str, what: str = "outputs", replaces: tuple[str, ...] = ()
) -> Iterator[Path]:
    """Write a set of files as one: yield a hidden temp folder inside `folder` (the same file
    system); when the block completes, every file in it is fsync'ed and renamed into `folder`
    (renames need no space, so a full disk cannot stop half-way), and the names in `replaces`
    the new set lacks are removed (an earlier run's leftovers). On any failure `folder` keeps
    the earlier set, untouched. The temp folders of earlier writers that died half-way are
    swept first (a live writer's is locked, and kept)."""
    folder = make_dirs(folder, "output folder")
    sweep_dead_sets(folder)
    tmp = folder / f"{SET_TEMP}{uuid.uuid4().hex[:8]}"
    held: int | None = None
    try:
        with os_errors(folder, f"write the {what}"):
            tmp.mkdir()
        held = _hold(tmp)
        yield tmp
        with os_errors(folder, f"write the {what}"):
            new = sorted(f for f in tmp.iterdir() if f.is_file())
            for f in new:
                fsync_file(f)
            names = {f.name for f in new}
            for name in replaces:
                if name not in names:
                    (folder / name).unlink(missing_ok=True)
            for f in new:
                os.replace(f, folder / f.name)
            fsync_dir(folder)
    except OSError as exc:
        raise os_error(folder, f"write the {what}", exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if held is not None:
            os.close(held)


def file_sha256(path: Path | str) -> str:
    """sha256 of a file's bytes, read in blocks (a policy file's check in its sidecar)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sweep_temps(folder: Path | str, pattern: str) -> None:
    """Remove the leftovers of writes killed half-way (temp names match `pattern`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for tmp in folder.glob(pattern):
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            remove_quietly(tmp)


def make_temp_file(folder: Path, name: str) -> Path:
    """A new empty hidden temp file beside `folder/name` (for writers that hold it open long)."""
    make_dirs(folder)
    with os_errors(folder / name, "create a temp file"):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        os.close(fd)
    return Path(tmp)


# -- strict YAML -----------------------------------------------------------------------------
class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a mapping with the same key twice (plain YAML lets the last
    one silently win)."""


def _construct_unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep=False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        try:
            hash(key)
        except TypeError:
            continue  # SafeLoader itself reports unhashable keys
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} on line {line} (first on line {seen[key]})",
                key_node.start_mark,
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


# Values a YAML document may expand to, aliases counted at every use: far above any config, far
# below what an alias bomb (`&a [*a, *a, ...]` nested) expands to.
MAX_YAML_VALUES = 100_000


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Values `node` stands for once every alias is expanded (each node counted once, so this
    is linear in the document, not in its expansion)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1  # a recursive alias: counted once, SafeLoader reports it
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    memo[key] = min(size, MAX_YAML_VALUES + 1)
    return memo[key]


def _load_bounded(text: str, path: Path) -> Any:
    """yaml.load with UniqueKeyLoader (a SafeLoader subclass), refusing a document that
    expands past MAX_YAML_VALUES before any of it is built."""
    loader = UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_YAML_VALUES:
            raise AdaptkitError(
                f"{path}: the YAML expands to more than {MAX_YAML_VALUES:,} values through its "
                "aliases (*name); refused (an alias bomb?)"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: Path | str, what: str = "file") -> Any:
    """A YAML file, safe types only, duplicate keys refused; errors are one line naming it."""
    path = Path(path)
    if not path.exists():
        raise AdaptkitError(f"{path}: {what} not found ({missing_cause(path)})")
    if not path.is_file():
        raise AdaptkitError(f"{path}: the {what} is a directory, not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise os_error(path, f"read the {what}", exc) from None
    try:
        return _load_bounded(text, path)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None)
        mark = getattr(exc, "problem_mark", None)
        if problem and mark is not None and "duplicate key" in problem:
            raise AdaptkitError(f"{path}: {problem}") from None
        detail = f"{problem} (line {mark.line + 1})" if problem and mark is not None else None
        first = detail or (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise AdaptkitError(f"{path}: not valid YAML ({first})") from None
