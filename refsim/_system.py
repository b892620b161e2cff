"""What refsim asks of the machine, in one small module: physical memory, the loaders' and the
simulator's memory budget, free disk space. Every budget check in the package reads these, so a
test (or a user on a shared node) can see and change what refsim assumes in one place."""
from __future__ import annotations

import os
import shutil

#: assumed physical memory when the operating system does not say (8 GiB)
FALLBACK_PHYSICAL = 8 << 30


def physical_memory() -> int:
    """The machine's physical memory in bytes (``FALLBACK_PHYSICAL`` when it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return FALLBACK_PHYSICAL


def memory_budget() -> int:
    """Default budget for what a loader or a run may allocate from sizes a file or a request
    claims: half the machine's physical memory (at least 1 GiB)."""
    return max(1 << 30, physical_memory() // 2)


def disk_free(path) -> int:
    """Free bytes on the file system holding ``path`` (a file or folder that may not exist yet:
    its nearest existing parent is asked)."""
    p = os.path.abspath(os.fspath(path))
    while not os.path.exists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    return shutil.disk_usage(p).free


def process_bytes(key: str) -> int:
    """A size from Linux's /proc/self/status in bytes: ``"VmRSS"`` (resident now), ``"VmHWM"``
    (the resident peak since the last :func:`reset_peak_memory`) or ``"VmSize"`` (address space).
    Measurements only (tests, validation/fuzz_memory.py); raises OSError off Linux."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {key}")


def reset_peak_memory() -> None:
    """Set this process's resident peak (VmHWM) to what is resident now (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
