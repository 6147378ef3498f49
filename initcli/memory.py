"""Memory initcli may still use: the tightest of free RAM, the cgroup limit and RLIMIT_AS."""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from initcli.errors import MemoryLimitError

if TYPE_CHECKING:
    import torch

__all__ = [
    "MEMORY_SHARE",
    "REFUSE_SHARE",
    "address_space_available",
    "available_bytes",
    "available_cpu_bytes",
    "cgroup_available",
    "fits",
    "human_bytes",
    "is_out_of_memory",
    "meminfo_available",
    "out_of_memory_error",
    "out_of_memory_is_an_error",
]

# cgroup v1 writes "no limit" as a huge number (LONG_MAX rounded to a page), not "max".
_V1_UNLIMITED = 1 << 62
# What torch's CPU allocator and the C library say when an allocation fails.
_OOM_WORDS = ("can't allocate memory", "DefaultCPUAllocator", "out of memory")


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _stat_value(path: Path, key: str) -> int:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in path.read_text(encoding="ascii").splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    return 0


def _folders(base: Path, relative: str) -> list[Path]:
    # The process's own cgroup and its ancestors: a limit set on any of them applies. Inside a
    # container the cgroup file system is often mounted at the container's own cgroup, so the
    # path from /proc/self/cgroup may not exist below the mount: `base` itself is checked too.
    own = base / relative.lstrip("/")
    folders = [own, *own.parents] if own.is_relative_to(base) else []
    return [f for f in folders if f.is_relative_to(base)] or [base]


def cgroup_available(
    root: Path = Path("/sys/fs/cgroup"), self_cgroup: Path = Path("/proc/self/cgroup")
) -> int | None:
    """Bytes left under this process's cgroup memory limit (v2 `memory.max` or v1), or None.

    Usage counts reclaimable page cache (inactive files) as free, as `docker stats` does.
    """
    try:
        lines = self_cgroup.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    left: list[int] = []
    for line in lines:
        _, controllers, relative = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if controllers == "":  # v2: "0::/path"
            for folder in _folders(root, relative):
                limit = _read_int(folder / "memory.max")  # "max" (no limit) reads as None
                used = _read_int(folder / "memory.current")
                if limit is not None and used is not None:
                    free = _stat_value(folder / "memory.stat", "inactive_file")
                    left.append(limit - used + free)
        elif "memory" in controllers.split(","):  # v1: "4:memory:/path"
            for folder in _folders(root / "memory", relative):
                limit = _read_int(folder / "memory.limit_in_bytes")
                used = _read_int(folder / "memory.usage_in_bytes")
                if limit is not None and used is not None and limit < _V1_UNLIMITED:
                    free = _stat_value(folder / "memory.stat", "total_inactive_file")
                    left.append(limit - used + free)
    return max(0, min(left)) if left else None


def address_space_available() -> int | None:
    """Bytes the address space may still grow by under RLIMIT_AS (`ulimit -v`), or None."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    vm_size = 0
    with contextlib.suppress(OSError, UnicodeDecodeError, ValueError):
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmSize:"):
                vm_size = int(line.split()[1])  # kB
    return max(0, soft - vm_size * 1024)


def meminfo_available() -> int | None:
    """MemAvailable from /proc/meminfo (free RAM plus reclaimable cache), or None."""
    with contextlib.suppress(OSError, UnicodeDecodeError, ValueError):
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(ValueError, OSError):
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return None  # pragma: no cover - platforms with neither


def available_cpu_bytes() -> int | None:
    """The least of free RAM, the cgroup's remaining limit and RLIMIT_AS's headroom (None: none
    of them is known)."""
    known = [
        n
        for n in (meminfo_available(), cgroup_available(), address_space_available())
        if n is not None
    ]
    return min(known) if known else None


@contextlib.contextmanager
def out_of_memory_is_an_error(doing: str) -> Iterator[None]:
    """Turn a failed allocation inside the block into a MemoryLimitError (exit 2, one line).

    `doing` completes "ran out of memory while ...", e.g. "building the model".
    """
    try:
        yield
    except (MemoryError, RuntimeError) as exc:
        if not is_out_of_memory(exc):
            raise
        raise out_of_memory_error(doing) from None


def is_out_of_memory(exc: BaseException) -> bool:
    """A failed allocation: MemoryError, or torch's RuntimeError for one (CPU allocator, CUDA's
    torch.OutOfMemoryError), which code that wraps every error must let through as itself."""
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(word in str(exc) for word in _OOM_WORDS)


def out_of_memory_error(doing: str) -> MemoryLimitError:
    """The documented one-line error for a failed allocation: `ran out of memory while {doing}`."""
    return MemoryLimitError(
        f"ran out of memory while {doing}; free memory, raise the limit (ulimit -v, the "
        "container's memory limit) or use a smaller model"
    )


# A real build is only attempted when the model takes at most this share of the memory that is
# free right now: the rest is for torch itself, the statistics and whatever else runs.
MEMORY_SHARE = 0.5
# A single tensor, an input batch, --data's copies or a spec's build larger than this share of
# the free memory is refused up front.
REFUSE_SHARE = 0.8


def available_bytes(device: torch.device) -> int | None:
    """Memory free for new tensors on `device` now (None where unknown)."""
    if device.type == "cuda":
        import torch  # only for a CUDA device: memory stays torch-free on --help

        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    # Free RAM, the cgroup limit and RLIMIT_AS: whichever runs out first.
    return available_cpu_bytes()


def fits(nbytes: int, device: torch.device) -> bool:
    """Whether a real build of `nbytes` is worth trying: at most MEMORY_SHARE of what is free."""
    free = available_bytes(device)
    return free is None or nbytes <= MEMORY_SHARE * free


def human_bytes(n: float) -> str:
    """`n` bytes in decimal units, as `df -H` writes them (`1.2 GB`)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - loop always returns
