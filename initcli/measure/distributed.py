"""torch.distributed: DTensor statistics from per-rank parts; torchrun ranks sharing the tensors."""

from __future__ import annotations

import atexit
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from typing import TypeVar

import torch

from initcli.errors import InitcliError, RankError, first_line
from initcli.measure import stats

__all__ = ["ItemError", "global_stats", "is_dtensor", "is_primary", "rank_of", "shared"]

R = TypeVar("R")

# How long a rank waits for the others at the one collective of `shared` (the gather of the
# rows): past it, every rank that is still alive exits with an error instead of hanging. The
# wait is the imbalance between the ranks' shares, seconds when they are balanced by bytes;
# the limit leaves room for a slow file system. INITCLI_RANK_TIMEOUT (seconds) overrides it.
RANK_TIMEOUT_S = 900.0

# One rank's share: numel, mean, sum of squared deviations, min, max, NaN/Inf count.
_Part = tuple[int, float, float, float, float, int]


def is_dtensor(t: torch.Tensor) -> bool:
    """Whether `t` is a DTensor (its shape and numel are then already the global ones).

    No DTensor exists before torch.distributed.tensor is imported, and importing it costs ~1.2 s
    (sympy and DTensor's op tables): paid on the first measured tensor, inside the measuring
    thread, it held up a 405M inspect by that much. So it is only looked up where already loaded.
    """
    module = sys.modules.get("torch.distributed.tensor")
    dtensor = getattr(module, "DTensor", None)
    return dtensor is not None and isinstance(t, dtensor)


def is_primary() -> bool:
    """Whether this process prints: rank 0 of an initialized process group, or with no group
    rank 0 of torchrun's (its RANK variable), or a process torchrun did not start."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    return os.environ.get("RANK", "0") == "0"


class ItemError(Exception):
    """The work of `shared` failed on the named item (the cause is chained: `raise ... from`)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _said(exc: BaseException) -> str:
    """An exception in one line: initcli's own message as it is, a foreign one with its type."""
    return " ".join(str(exc).split()) if isinstance(exc, InitcliError) else first_line(exc)


def rank_of(sizes: Sequence[int], ranks: int) -> list[int]:
    """The rank that measures each item, balanced by bytes: largest item first, each to the rank
    with the fewest bytes so far (the lowest rank on a tie). The same on every rank, since it
    depends only on the sizes. Greedy largest-first is within 4/3 of the best split, and within
    one item's size of an even one."""
    load = [0] * ranks
    found = [0] * len(sizes)
    for i in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        rank = min(range(ranks), key=lambda r: (load[r], r))
        found[i] = rank
        load[rank] += sizes[i]
    return found


def _group() -> tuple[int, int] | None:
    """(rank, world size) of the process group this process is in, joining torchrun's
    (gloo on CPU, nccl for CUDA tensors where there is a GPU) when it started this process;
    None for a single process."""
    import torch.distributed as dist

    if not dist.is_available():
        return None
    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1")) < 2 or "MASTER_ADDR" not in os.environ:
            return None
        timeout = float(os.environ.get("INITCLI_RANK_TIMEOUT", RANK_TIMEOUT_S))
        backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=timeout))
        # Left to the interpreter's teardown, gloo's threads were sometimes still running when
        # their owner was destroyed (std::terminate, SIGABRT, in ~1 run of 3 depending on which
        # modules were imported); atexit runs before that teardown, and only for a group
        # initcli made.
        atexit.register(dist.destroy_process_group)
    if dist.get_world_size() < 2:
        return None
    return dist.get_rank(), dist.get_world_size()


def shared(
    names: Sequence[str],
    sizes: Sequence[int],
    work: Callable[[list[str]], Iterator[tuple[str, R]]],
) -> dict[str, R]:
    """`work` over `names`, split across the ranks of torchrun's group by `sizes` (bytes), with
    every rank getting every result; in a single process, `work(names)` itself.

    `work` yields (name, result) for each name it is given, in any order, and raises
    ItemError(name) from the cause when one item fails. A rank whose work fails still joins
    the gather, with its failure instead of results, so that every rank
    raises the same RankError naming the first failed rank and its tensor; a rank that never
    arrives (killed) makes the others raise one when the group's timeout runs out.
    """
    group = _group()
    if group is None:
        try:
            return dict(work(list(names)))
        except ItemError as exc:
            if exc.__cause__ is None:
                raise
            raise exc.__cause__ from None  # alone, the failure is the cause's own
    import torch.distributed as dist

    rank, ranks = group
    mine = [n for n, r in zip(names, rank_of(sizes, ranks), strict=True) if r == rank]
    done: dict[str, R] = {}
    failure: tuple[int, str, str] | None = None
    try:
        for name, result in work(mine):
            done[name] = result
    except ItemError as exc:
        failure = (rank, f"on tensor {exc.name}", _said(exc.__cause__ or exc))
    except Exception as exc:
        # A read failed before it named its tensor: the first of this rank's tensors without a
        # result is the failed one or comes before it (the reader keeps the order within a file).
        left = next((n for n in mine if n not in done), "?")
        failure = (rank, f"reading tensor {left} or one after it", _said(exc))
    parts: list[tuple[dict[str, R], tuple[int, str, str] | None] | None] = [None] * ranks
    try:
        dist.all_gather_object(parts, (done if failure is None else {}, failure))
    except Exception as exc:  # a timeout or a lost peer, as gloo or nccl reports it
        raise RankError(
            f"rank {rank}: the other ranks did not answer ({first_line(exc)}); one of them may "
            "have been killed (see torchrun's log), or raise INITCLI_RANK_TIMEOUT"
        ) from None
    failures = [p[1] for p in parts if p is not None and p[1] is not None]
    if failures:
        who, where, message = min(failures)
        raise RankError(f"rank {who} failed {where}: {message}")
    merged: dict[str, R] = {}
    for part in parts:
        assert part is not None
        merged.update(part[0])
    return merged


def global_stats(t: torch.Tensor) -> stats.TensorStats:
    """The statistics of a DTensor's global tensor, never gathering it: each rank measures its
    local shard (float64 moments), the ranks exchange (n, mean, M2, min, max, nonfinite), and
    every rank combines them in rank order (Chan et al.'s pairwise update), so all agree
    exactly. A replicated dimension's copies are counted once (only its coordinate 0 adds);
    a Partial placement (pending sums) is reduced first, with `full_tensor()`.

    A collective: every rank of the mesh must call it, for the same tensors in the same order.
    """
    import torch.distributed as dist
    from torch.distributed.tensor import DTensor

    d = t.detach()
    assert isinstance(d, DTensor)
    if any(p.is_partial() for p in d.placements):
        return stats.tensor_stats(d.full_tensor())
    coord = d.device_mesh.get_coordinate()
    owns = coord is not None and all(
        c == 0 for c, p in zip(coord, d.placements, strict=True) if p.is_replicate()
    )
    local = d.to_local()
    mine: _Part | None = None
    if owns and local.numel():
        s = stats.tensor_stats(local)
        assert s.mean is not None and s.var is not None and s.min is not None
        assert s.max is not None
        mine = (s.numel, s.mean, s.var * (s.numel - 1), s.min, s.max, s.nonfinite)
    # A 1-D mesh's own group; a larger mesh's ranks are all in the world group (owners add).
    group = d.device_mesh.get_group() if d.device_mesh.ndim == 1 else None
    parts: list[_Part | None] = [None] * dist.get_world_size(group)
    dist.all_gather_object(parts, mine, group=group)
    return _combine([p for p in parts if p is not None])


def _combine(parts: list[_Part]) -> stats.TensorStats:
    if not parts:
        return stats.TensorStats(0, None, None, None, None, None, 0)
    n, mean, m2 = 0, 0.0, 0.0
    for count, part_mean, part_m2, *_ in parts:
        delta = part_mean - mean
        total = n + count
        mean += delta * count / total
        m2 += part_m2 + delta * delta * n * count / total
        n = total
    lows, highs = [p[3] for p in parts], [p[4] for p in parts]
    nonfinite = sum(p[5] for p in parts)
    low = math.nan if any(math.isnan(x) for x in lows) else min(lows)
    high = math.nan if any(math.isnan(x) for x in highs) else max(highs)
    if nonfinite:
        return stats.TensorStats(n, math.nan, math.nan, math.nan, low, high, nonfinite)
    var = m2 / (n - 1) if n > 1 else 0.0
    return stats.TensorStats(n, mean, var, math.sqrt(var), low, high, 0)
