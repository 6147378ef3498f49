"""How initcli shares the cores: OpenMP threads wait passively, measuring takes the free ones."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import TypeVar

__all__ = [
    "free_cores",
    "in_item_order",
    "measuring_workers",
    "restore_environment",
    "split",
    "wait_passively",
]

_T = TypeVar("_T")

# libgomp (the OpenMP runtime torch's CPU kernels use) reads its wait policy once, when
# `import torch` loads it. Its default lets a thread that finishes a parallel region spin for a
# while before it sleeps; on a machine whose cores other processes hold, those spinning threads
# take time slices from the threads still working (docs/speed.md). PASSIVE makes them sleep.
_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")
# The variables wait_passively set, for restore_environment to remove again.
_SET: list[str] = []
# Past this many threads, block statistics are limited by memory bandwidth, not cores.
_MAX_WORKERS = 8


def wait_passively() -> None:
    """Set OMP_WAIT_POLICY=PASSIVE for the coming `import torch`, where torch is not imported
    yet and the user has not chosen a policy. Called first thing by the `initcli` command, whose
    --help and argument errors never import torch: setting a variable costs nothing there."""
    key, value = _POLICY
    if "torch" in sys.modules or key in os.environ:
        return
    os.environ[key] = value
    _SET.append(key)


def restore_environment() -> None:
    """Remove what wait_passively set, once torch is imported (the runtime has read it then):
    called by initcli.report's import, before any user code runs, so that code and any process
    it starts see the environment they were given."""
    while _SET:
        os.environ.pop(_SET.pop(), None)


def free_cores() -> int:
    """How many threads may measure at once without taking cores other processes hold: the cores
    this process may run on, less the 1-minute load average other than this thread's own, capped
    by OMP_NUM_THREADS (torchrun sets 1 per rank) and at least 1. Only a speed choice: the
    digits of the statistics and of the spectral test do not depend on it (`in_item_order`)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # no load average on this platform: assume the cores are free
        load = 0.0
    # The load counts the thread asking (it is running), so one unit of it is ours.
    free = cores - round(max(load - 1.0, 0.0))
    cap = os.environ.get("OMP_NUM_THREADS", "")
    if cap.isdigit() and int(cap) > 0:
        free = min(free, int(cap))
    return max(1, min(free, cores, _MAX_WORKERS))


def measuring_workers(torch_threads: int) -> int:
    """How many threads measure blocks at once: the free cores while torch runs one intra-op
    thread (how initcli measures), else 1, as torch then parallelizes each operation itself."""
    return free_cores() if torch_threads == 1 else 1


def in_item_order(shares: Sequence[Sequence[_T]]) -> list[_T]:
    """The results of work split among len(shares) threads, thread w taking items w, w + k,
    w + 2k, … (k threads), put back in item order: adding them in that order gives the same
    digits whatever the number of threads (`split`)."""
    k = len(shares)
    return [shares[i % k][i // k] for i in range(sum(map(len, shares)))]


def split(
    work: Callable[[int, int], _T], count: int, workers: int, pool: Executor | None
) -> list[_T]:
    """`work(i, w)` for i = 0 … count − 1, in item order, thread w of `workers` (on `pool`)
    taking items w, w + k, w + 2k, … and passed w so that it can reuse buffers of its own; on
    the calling thread where there is one worker or no pool. Results added in this order give
    the same digits whatever the number of threads (initcli.measure.stats, spectrum)."""
    if workers == 1 or pool is None:
        return [work(i, 0) for i in range(count)]
    shares = pool.map(lambda w: [work(i, w) for i in range(w, count, workers)], range(workers))
    return in_item_order(list(shares))
