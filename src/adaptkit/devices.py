"""Which torch device a name means, checked before any work: `cpu`, `cuda`, `cuda:N`, `mps`.

A CUDA device on a torch built without CUDA (or an index past the last GPU) is refused here in
one line, instead of torch's AttributeError/AssertionError from deep inside a run."""

from __future__ import annotations

import re

from adaptkit.errors import AdaptkitError, short_repr

_DEVICE = re.compile(r"^(cpu|mps|cuda)(:(\d+))?$")


def check_device(name: str) -> str:
    """`name` if it names a device this machine has; else an AdaptkitError saying why."""
    m = _DEVICE.match(name.strip()) if isinstance(name, str) else None
    if m is None:
        raise AdaptkitError(f"--device: expected cpu, cuda, cuda:N or mps, got {short_repr(name)}")
    kind, index = m.group(1), m.group(3)
    if kind == "cpu":
        return name.strip()
    import torch  # only when an accelerator is named: `cpu` stays torch-free

    if kind == "mps":
        if not torch.backends.mps.is_available():
            raise AdaptkitError("--device mps: this torch has no MPS (Apple GPU) support here")
        return name.strip()
    if not torch.cuda.is_available():
        why = "torch was built without CUDA" if torch.version.cuda is None else "no GPU is visible"
        raise AdaptkitError(f"--device {name}: CUDA is not available ({why}); use --device cpu")
    count = torch.cuda.device_count()
    if index is not None and int(index) >= count:
        raise AdaptkitError(
            f"--device {name}: this machine has {count} GPU(s) (cuda:0..{count - 1})"
        )
    return name.strip()
