"""The export formats, one table: each format in its own module (its file, writer, runner and
state description: adaptkit.export.formats.base.ExportFormat), registered here by one line.
Torch-free: the CLI's --format help is made from it."""

from __future__ import annotations

from adaptkit.errors import AdaptkitError
from adaptkit.export.formats import onnx, torchscript
from adaptkit.export.formats.base import ExportFormat

FORMATS: dict[str, ExportFormat] = {f.name: f for f in (torchscript.FORMAT, onnx.FORMAT)}


def get_format(name: str) -> ExportFormat:
    """The format called `name`, or a one-line error naming the formats."""
    if name not in FORMATS:
        raise AdaptkitError(f"--format: expected one of {', '.join(FORMATS)}, got {name!r}")
    return FORMATS[name]


def formats_help() -> str:
    """`name (needs ...)` for every format, for --help."""
    return " or ".join(f"{f.name} (needs {f.needs})" for f in FORMATS.values())
