"""What this machine has: the torch devices a name may mean, and the memory free for new
allocations.

- `check_device`: `cpu`, `cuda`, `cuda:N`, `mps`, checked before any work. A CUDA device on a
  torch built without CUDA (or an index past the last GPU) is refused here in one line, instead
  of torch's AttributeError/AssertionError from deep inside a run.
- `available_memory`: the one probe the model-size check (before anything is built) and the
  KV-cache plan (before a rollout) share.

Both stay torch-free for the CPU (the CLI checks `--device cpu` without loading torch).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from adaptkit.errors import AdaptkitError, short_repr

_DEVICE = re.compile(r"^(cpu|mps|cuda)(:([0-9]+))?$")


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


# -- memory ----------------------------------------------------------------------------------
def _cgroup_free() -> int | None:
    """Memory left under a cgroup v2/v1 limit, if this process runs under one."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            return max(int(limit) - usage, 0)
    return None


def available_memory(device: Any = "cpu") -> int:
    """Bytes free for new allocations on `device` (a torch.device or its name; CPU: MemAvailable
    within a cgroup limit if one is set; CUDA: the free device memory)."""
    if str(device).startswith("cuda"):
        import torch  # only for a CUDA device: the CPU probe stays torch-free

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    free = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    except OSError:
        pass
    if free is None:  # not Linux: physical memory as the bound
        free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cgroup = _cgroup_free()
    return min(free, cgroup) if cgroup is not None else free
