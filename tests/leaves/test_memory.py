"""The memory guard honours cgroup limits and RLIMIT_AS; a failed allocation is one error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from initcli import memory
from initcli.errors import MemoryLimitError

GB = 1 << 30


def _cgroup_v2(tmp_path: Path, limits: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    own = root / "user.slice" / "job"
    own.mkdir(parents=True)
    for folder, limit in limits.items():
        (root / folder / "memory.max").write_text(limit + "\n")
        (root / folder / "memory.current").write_text(f"{GB}\n")
        (root / folder / "memory.stat").write_text(f"anon 5\ninactive_file {GB // 4}\n")
    self_cgroup = tmp_path / "self"
    self_cgroup.write_text("0::/user.slice/job\n")
    return root, self_cgroup


def test_cgroup_v2_tightest_limit_of_the_cgroup_and_its_parents(tmp_path: Path) -> None:
    root, own = _cgroup_v2(tmp_path, {"user.slice/job": "max", "user.slice": str(3 * GB)})
    # 3 GB limit - 1 GB used + 0.25 GB reclaimable cache
    assert memory.cgroup_available(root, own) == 3 * GB - GB + GB // 4


def test_cgroup_v2_max_means_no_limit(tmp_path: Path) -> None:
    root, own = _cgroup_v2(tmp_path, {"user.slice/job": "max", "user.slice": "max"})
    assert memory.cgroup_available(root, own) is None


def test_cgroup_v1_limit(tmp_path: Path) -> None:
    folder = tmp_path / "cgroup" / "memory" / "docker" / "abc"
    folder.mkdir(parents=True)
    (folder / "memory.limit_in_bytes").write_text(f"{2 * GB}\n")
    (folder / "memory.usage_in_bytes").write_text(f"{GB // 2}\n")
    (folder / "memory.stat").write_text("total_inactive_file 0\n")
    own = tmp_path / "self"
    own.write_text("4:memory:/docker/abc\n0::/\n")
    assert memory.cgroup_available(tmp_path / "cgroup", own) == 2 * GB - GB // 2


def _under_rlimit_as(gib: int, body: str) -> subprocess.CompletedProcess[str]:
    script = (
        "import resource, torch\n"
        "from initcli import memory\n"
        "from initcli.errors import MemoryLimitError\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({gib} << 30, resource.RLIM_INFINITY))\n"
    ) + body
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )


def test_rlimit_as_bounds_what_is_available() -> None:
    body = (
        "left = memory.address_space_available()\n"
        "vm = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmSize:')]\n"
        "print(left == (64 << 30) - vm[0] * 1024, memory.available_cpu_bytes() <= left)\n"
    )
    done = _under_rlimit_as(64, body)
    assert done.stdout == "True True\n", done.stderr


def test_a_failed_allocation_is_a_memory_limit_error() -> None:
    body = (
        "try:\n"
        "    with memory.out_of_memory_is_an_error('building the model'):\n"
        "        torch.empty(8 << 30, dtype=torch.uint8)\n"
        "except MemoryLimitError as exc:\n"
        "    print(exc)\n"
    )
    done = _under_rlimit_as(4, body)
    assert done.stdout == (
        "ran out of memory while building the model; free memory, raise the limit (ulimit -v, "
        "the container's memory limit) or use a smaller model\n"
    ), done.stderr


def test_other_runtime_errors_pass_through() -> None:
    with pytest.raises(RuntimeError, match="shape"), memory.out_of_memory_is_an_error("x"):
        torch.zeros(2, 3) @ torch.zeros(2, 3)
    with pytest.raises(MemoryLimitError), memory.out_of_memory_is_an_error("x"):
        raise MemoryError
