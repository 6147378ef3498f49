"""DTensor parameters (FSDP2 `fully_shard`): exact global statistics from per-rank partial ones."""

from __future__ import annotations

import math
import sys

import torch

from initcli.measure import stats

__all__ = ["global_stats", "is_dtensor", "is_primary"]

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
    """Whether this process prints: rank 0 of an initialized process group, or no group."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


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
