"""How much memory is free for new allocations: the one probe the model-size check (before
anything is built) and the KV-cache plan (before a rollout) share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


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
