"""Per-tensor statistics (float32 blocks or float64 chunks, combined in float64) and the verdict."""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum

import torch

from initcli import threads

__all__ = ["Status", "TensorStats", "Z", "judge", "tensor_stats", "tolerance"]

# Elements per chunk. The float64 work buffer is 8 bytes per element, so 2**19 elements is 4 MiB:
# small enough that the three passes made over it after the copy (sum, subtract, dot) run from
# cache, large enough that the per-chunk Python overhead is negligible. Measured on a 2-core
# AMD EPYC (2 MiB L2, 32 MiB L3): 2**18..2**20 are within ~10% of each other; 2**16 is ~50% slower.
_CHUNK = 1 << 19

# At most this many values are kept, evenly strided over the whole tensor, for the tests that need
# the values themselves (initcli.measure.identify's KS test and denormal check): a KS statistic
# on 20k values resolves a CDF difference of ~0.014 at p = 0.001, and copying them costs nothing
# next to the moments.
SAMPLE = 20_000

# Width of the acceptance band in standard errors. Five keeps the false-alarm rate per tensor far
# below 1% even where the normal approximation is poor (n = 2..5: a chi-square with 1..4 degrees of
# freedom passes a 5-sigma band over 99.5% of the time), and still flags a std that is 1.5x the
# expected one (normal draws) about half the time at n = 40, 96% at n = 100, > 99.5% from n = 150.
Z = 5.0

# A constant init in any float dtype gives a variance of exactly 0.0 here (see tensor_stats); the
# slack only forgives a caller who computed the statistics some other way.
_CONST_VAR_ATOL = 1e-30
# A constant `v` stored in float32 is `v` rounded to 24 bits: relative error <= 2**-24 ≈ 6e-8.
_CONST_MEAN_RTOL = 1e-6

# Float32, bfloat16 and float16 tensors on the CPU of more than this many elements are reduced in
# float32 blocks of this size (_blocked_stats); smaller ones in float64 as below, which costs
# microseconds at that size and keeps their digits those of the exact computation. A float32 block
# of 2**18 elements (1 MiB) plus its work buffer fit the 2 MiB L2 of the machine measured
# (docs/speed.md), so the passes after the first read from cache.
_BLOCK = 1 << 18
_BLOCKED_DTYPES = frozenset({torch.float32, torch.bfloat16, torch.float16})
# Largest magnitudes of a block for which float32 sums are safe: below 2**50 no square or block
# sum of squares (2**18 * 2**102) overflows float32; above 2**-30 the smallest spread float32 holds
# (an ulp, 2**-53) still squares to a normal number. Other blocks are reduced in float64.
_FLOAT32_SAFE = (2.0**-30, 2.0**50)

# float64 is unsupported on these devices; their chunks are reduced on the CPU instead.
_NO_FLOAT64_DEVICES = frozenset({"mps"})

# Low-precision floats torch stores but cannot reduce (no aminmax, sum or isfinite kernels): each
# chunk is upcast to float32 first, which holds every one of their values exactly.
_UPCAST = frozenset(
    getattr(torch, name)
    for name in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
                 "float8_e8m0fnu")
    if hasattr(torch, name)
)  # fmt: skip
# float4_e2m1fn_x2 packs two E2M1 values per byte and torch converts it to nothing: its nibbles
# are decoded with this table (sign bit 3, then 2 exponent and 1 mantissa bits).
_FP4 = getattr(torch, "float4_e2m1fn_x2", None)
_E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
_E2M1_VALUES = torch.tensor([*_E2M1, *(-v for v in _E2M1)], dtype=torch.float32)


class Status(StrEnum):
    """Verdict on one parameter tensor (the `status` field of the JSON contract)."""

    OK = "ok"
    OFF = "off"
    SYMMETRIC = "symmetric"
    UNKNOWN = "unknown"
    # Under `default`: not torch's default for the module, but a clean identified distribution.
    CUSTOM = "custom"
    # Values no init draws: torch.empty leftovers, denormals, |x| > 1e6, NaN/Inf.
    UNINITIALIZED = "uninitialized"


@dataclass(frozen=True)
class TensorStats:
    """Statistics of every element of a tensor.

    `var` is the unbiased sample variance (divisor n - 1), 0.0 for a single element. Every field
    but `numel` and `nonfinite` is None for an empty tensor. If any element is NaN or ±Inf,
    `nonfinite` counts them and mean/var/std are NaN, while min/max are what `torch.aminmax` gives
    (NaN if any NaN, else the infinities). Complex tensors are described by their real and
    imaginary parts pooled (`torch.view_as_real`), so `numel` is twice the complex element count.
    """

    numel: int
    mean: float | None
    var: float | None
    std: float | None
    min: float | None
    max: float | None
    nonfinite: int
    # Up to SAMPLE values (float64, evenly strided in memory order: every value when numel <=
    # SAMPLE), and of those values the central moments sum((x - mean)^k) / m for k = 3, 4 about
    # the exact mean, and the count of exact zeros. From the sample, not every value: exact
    # 3rd/4th moments and a zero count over all values doubled the time of tensor_stats (a
    # multiply and two dots plus a count_nonzero per chunk, ~2x the four passes it makes), while
    # 20,000 values pin the kurtosis to ±0.035 (normal), ample to tell normal (3), ±2σ-cut
    # normal (2.37) and uniform (1.8) apart. Filled by tensor_stats for strided tensors with
    # finite values; None where not measured. They take no part in equality: two TensorStats are
    # equal when their exact summary statistics are.
    m3: float | None = field(default=None, compare=False)
    m4: float | None = field(default=None, compare=False)
    zeros: int | None = field(default=None, compare=False)
    sample: torch.Tensor | None = field(default=None, compare=False, repr=False)

    @property
    def constant(self) -> bool:
        """Whether there are at least two elements and all of them are identical."""
        return self.numel >= 2 and self.min is not None and self.min == self.max


def tensor_stats(t: torch.Tensor, *, workers: int | None = None) -> TensorStats:
    """Exact mean, unbiased variance, std, min, max and NaN/Inf count of all elements of `t`,
    plus a strided sample of its values (same single pass) and that sample's 3rd/4th central
    moments and zero count.

    Works for float (float8 and float4 too: upcast chunk by chunk), integer, bool and complex
    tensors, contiguous or not, dense or sparse, on any device. Accumulation is float64, chunk by
    chunk: the extra memory is one float64 chunk of `_CHUNK` elements, whatever the size of `t`
    (non-contiguous tensors are read through strided views). Float32, bfloat16 and float16 CPU
    tensors of more than one block are reduced in float32 blocks instead (`_blocked_stats`):
    mean and variance within 5e-7 and 1e-6 of the float64 result (docs/speed.md), by `workers`
    threads (None: as many as the free cores allow); the digits do not depend on their number. A
    float4_e2m1fn_x2 tensor holds two values per element, so `numel` is twice its element count;
    a sparse tensor's implicit zeros count as elements.
    """
    t = t.detach()
    if t.device.type == "meta":
        raise ValueError("tensor_stats needs a tensor with data; this one is on the meta device")
    if t.layout != torch.strided:
        return _sparse_stats(t)
    if t.is_complex():
        t = torch.view_as_real(t.resolve_conj())
    per_element = 2 if t.dtype == _FP4 else 1  # values per stored element
    n = t.numel() * per_element
    if n == 0:
        return TensorStats(0, None, None, None, None, None, 0)

    work = torch.device("cpu") if t.device.type in _NO_FLOAT64_DEVICES else t.device
    if t.device.type == "cpu" and t.dtype in _BLOCKED_DTYPES and n > _BLOCK:
        return _blocked_stats(t, n, workers)
    buf = torch.empty(min(n, per_element * _CHUNK), dtype=torch.float64, device=work)
    step = -(-n // SAMPLE)  # ceil: every step-th value in memory order is sampled
    # The CPU has no vectorized float16 -> float64 conversion (it runs ~4x slower than float16 ->
    # float32 -> float64, both steps vectorized and exact), so float16 goes through float32.
    stage = (
        torch.empty(buf.shape, dtype=torch.float32, device=work)
        if t.dtype == torch.float16 and work.type == "cpu"
        else None
    )
    # For inputs of 4 bytes or fewer (at most 31 significant bits) the float64 chunk mean is off by
    # a negligible fraction of the smallest possible spread between distinct values. Float64 and
    # int64 values can differ only in their last bits, where that rounding is a sizeable part of
    # the spread; for them the corrected two-pass algorithm (Chan, Golub & LeVeque 1983) also sums
    # the deviations d and uses sum(d^2) - (sum d)^2 / m, at the cost of one more in-cache pass.
    corrected = t.dtype.itemsize >= 8
    shifts: list[torch.Tensor] = []
    resid: list[torch.Tensor] = []
    sqsums: list[torch.Tensor] = []
    mins: list[torch.Tensor] = []
    maxs: list[torch.Tensor] = []
    sizes: list[int] = []
    samples: list[torch.Tensor] = []
    seen = 0
    for chunk in _chunks(t, _CHUNK):
        # to(work) is a no-op except on float64-less devices, where it copies one chunk.
        c = _reducible(chunk.to(work))
        m = c.numel()
        b = buf[:m]
        # aminmax on the source dtype reads 4 (or 2) bytes per element instead of 8 and brings the
        # chunk into cache for the copy; min/max are exact in any dtype.
        lo, hi = torch.aminmax(c)
        if stage is not None:
            c = stage[:m].view(c.shape).copy_(c)
        b.view(c.shape).copy_(c)
        samples.append(b[(-seen) % step :: step].clone())
        seen += m
        # Two passes within the chunk, cheap because the chunk is in cache: the chunk's own float64
        # mean is the shift, so the sum of squares has no catastrophic cancellation even for a tiny
        # spread around a large mean (1e4 + 1e-3 * randn). dot() is a BLAS call, several times
        # faster than (b * b).sum() and with no temporary.
        shift = b.sum() / m
        b.sub_(shift)
        shifts.append(shift)
        if corrected:
            resid.append(b.sum() / m)
        sqsums.append(torch.dot(b, b))
        mins.append(lo)
        maxs.append(hi)
        sizes.append(m)

    # Chan et al.'s parallel combination of (count, mean, M2) over all chunks at once:
    # M2 = sum(M2_c) + sum(n_c * (mean_c - mean)^2). Chunk means are taken as offsets `e` from the
    # first chunk's shift, so that chunk means differing only in their last bits still give the
    # right between-chunk term. Everything stays on the device until the single .tolist() below,
    # so a GPU tensor costs one synchronisation, not one per chunk.
    counts = torch.tensor(sizes, dtype=torch.float64, device=work)
    shift_t = torch.stack(shifts)
    e = shift_t - shift_t[0]
    m2_t = torch.stack(sqsums).sum()
    if corrected:
        r = torch.stack(resid)
        e = e + r
        m2_t = m2_t - (counts * r.square()).sum()
    e_mean = (counts * e).sum() / n
    mean_t = shift_t[0] + e_mean
    m2_t = m2_t + (counts * (e - e_mean).square()).sum()
    lo_t = torch.stack(mins).min().to(torch.float64)
    hi_t = torch.stack(maxs).max().to(torch.float64)
    sample_t = torch.cat(samples)
    dev = sample_t - mean_t
    dev2 = dev * dev
    m3_t, m4_t = (dev2 * dev).mean(), (dev2 * dev2).mean()
    zeros_t = (sample_t == 0).sum().to(torch.float64)
    mean, m2, lo_v, hi_v, m3, m4, zeros_f = torch.stack(
        [mean_t, m2_t, lo_t, hi_t, m3_t, m4_t, zeros_t]
    ).tolist()
    zeros = int(zeros_f)
    sample = sample_t.cpu()

    if not (math.isfinite(lo_v) and math.isfinite(hi_v)):
        # NaN propagates through aminmax and ±Inf shows up in min/max, so finite min and max prove
        # every element finite; only then is this second, slower counting pass needed.
        nonfinite = sum(int((~torch.isfinite(_reducible(c))).sum()) for c in _chunks(t, _CHUNK))
        nan = math.nan
        return TensorStats(n, nan, nan, nan, lo_v, hi_v, nonfinite, None, None, zeros, sample)
    if lo_v == hi_v:
        # Exactly constant: report the value itself and a variance of exactly 0.0 rather than
        # whatever rounding the float64 division sum / n leaves for float64 inputs.
        return TensorStats(n, lo_v, 0.0, 0.0, lo_v, hi_v, 0, 0.0, 0.0, zeros, sample)
    var = m2 / (n - 1)  # n >= 2: a single value is constant, returned above
    return TensorStats(n, mean, var, math.sqrt(var), lo_v, hi_v, 0, m3, m4, zeros, sample)


@dataclass(frozen=True)
class _Block:
    """One block's results: its size, min, max, (mean, M2) and its share of the sample."""

    size: int
    low: float
    high: float
    mean: float
    m2: float
    sample: torch.Tensor


def _blocked_stats(t: torch.Tensor, n: int, workers: int | None) -> TensorStats:
    """`tensor_stats` of a float32, bfloat16 or float16 CPU tensor of more than one block: float32
    reductions over blocks that stay in cache, the block results combined in float64.

    Each block is measured from itself alone (`_measure_block`), by one of `workers` threads
    (None: `threads.free_cores()` while torch runs one intra-op thread, else 1, as torch then
    parallelizes each reduction itself); torch's kernels release the GIL, so the threads overlap.
    The block results are combined in block order, so every digit is the same whatever the
    number of threads. Blocks holding NaN/Inf are left to the counting pass at the end.
    """
    step = -(-n // SAMPLE)  # as in tensor_stats: every step-th value in memory order is sampled
    chunks = list(_chunks(t, _BLOCK))
    starts = list(itertools.accumulate((c.numel() for c in chunks), initial=0))
    if workers is None:
        workers = threads.measuring_workers(torch.get_num_threads())
    workers = max(1, min(workers, len(chunks)))

    # Each thread owns its buffers (2 MiB of float32, 2 MiB of float64 only where a block needs
    # the exact path) and takes every workers-th block.
    buffers = [_Buffers() for _ in range(workers)]

    def measure(i: int, w: int) -> _Block:
        return _measure_block(chunks[i], starts[i], step, buffers[w])

    if workers == 1:
        blocks = threads.split(measure, len(chunks), 1, None)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="initcli-block") as pool:
            blocks = threads.split(measure, len(chunks), workers, pool)

    count, mean, m2 = 0, 0.0, 0.0
    for b in blocks:
        if not (math.isfinite(b.low) and math.isfinite(b.high)):
            continue  # the moments are NaN whatever the other blocks hold
        # Chan et al.'s pairwise update of (count, mean, M2), in float64, in block order.
        total = count + b.size
        delta = b.mean - mean
        mean += delta * b.size / total
        m2 += b.m2 + delta * delta * count * b.size / total
        count = total

    lows = [b.low for b in blocks]
    highs = [b.high for b in blocks]
    lo_v = math.nan if any(math.isnan(v) for v in lows) else min(lows)
    hi_v = math.nan if any(math.isnan(v) for v in highs) else max(highs)
    sample = torch.cat([b.sample for b in blocks])
    zeros = int((sample == 0).sum())
    if not (math.isfinite(lo_v) and math.isfinite(hi_v)):
        nonfinite = sum(int((~torch.isfinite(c)).sum()) for c in _chunks(t, _CHUNK))
        nan = math.nan
        return TensorStats(n, nan, nan, nan, lo_v, hi_v, nonfinite, None, None, zeros, sample)
    if lo_v == hi_v:
        return TensorStats(n, lo_v, 0.0, 0.0, lo_v, hi_v, 0, 0.0, 0.0, zeros, sample)
    dev = sample - mean
    dev2 = dev * dev
    m3, m4 = (dev2 * dev).mean().item(), (dev2 * dev2).mean().item()
    var = m2 / (n - 1)
    return TensorStats(n, mean, var, math.sqrt(var), lo_v, hi_v, 0, m3, m4, zeros, sample)


class _Buffers:
    """One measuring thread's reused work buffers, the float64 one made on first need."""

    def __init__(self) -> None:
        self.stage = torch.empty(_BLOCK, dtype=torch.float32)
        self.shifted = torch.empty(_BLOCK, dtype=torch.float32)
        self._exact: torch.Tensor | None = None

    def exact(self, m: int) -> torch.Tensor:
        if self._exact is None:
            self._exact = torch.empty(_BLOCK, dtype=torch.float64)
        return self._exact[:m]


def _measure_block(chunk: torch.Tensor, start: int, step: int, buffers: _Buffers) -> _Block:
    """Min, max, (mean, M2) and sampled values of one block that starts at element `start`.

    The block is read from memory once (converted to float32 into `buffers.stage` if it is not
    float32 already); aminmax, the sum and the sum of squares then run from cache. The sums are
    taken about a float32 shift chosen from this block alone: 0 where the block straddles zero
    (the usual weight), else its midrange, re-taken from the block's mean where the shifted sums
    still show a mean large next to the spread (`_float32_block`). Blocks with magnitudes where
    float32 squares could overflow or lose bits are reduced in float64 (`_exact_block`).
    """
    m = chunk.numel()
    if chunk.dtype == torch.float32 and chunk.is_contiguous():
        c = chunk.view(-1)
    else:
        c = buffers.stage[:m]
        c.view(chunk.shape).copy_(chunk)
    sample = c[(-start) % step :: step].to(torch.float64)
    lo_t, hi_t = torch.aminmax(c)
    lo, hi = lo_t.item(), hi_t.item()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return _Block(m, lo, hi, math.nan, math.nan, sample)
    if lo == hi:
        return _Block(m, lo, hi, lo, 0.0, sample)
    if _FLOAT32_SAFE[0] <= max(-lo, hi) <= _FLOAT32_SAFE[1]:
        k = 0.0 if lo <= 0.0 <= hi else _float32(lo / 2 + hi / 2)
        mean, m2 = _float32_block(c, buffers.shifted[:m], k)
    else:
        mean, m2 = _exact_block(c, buffers.exact(m))
    return _Block(m, lo, hi, mean, m2, sample)


def _float32(x: float) -> float:
    """`x` rounded to the nearest float32 (so that values near it minus it are exact)."""
    return float(struct.unpack("f", struct.pack("f", x))[0])


def _float32_block(c: torch.Tensor, d: torch.Tensor, k: float) -> tuple[float, float]:
    """(mean, M2) of a float32 block from float32 sums about the shift `k` (a float32 number).

    M2 = sum(d^2) - sum(d)^2 / m with d = c - k loses the bits that sum(d)^2 / m takes from
    sum(d^2): at most half of them (one bit) is accepted, so the float32 rounding of the sums
    (relative ~1e-7 per block) at most doubles. Otherwise `k` moves to this block's mean (a
    float32 number, so that c - k is exact for values near it) and the sums are taken again.
    """
    m = c.numel()
    for _ in range(2):
        x = c if k == 0.0 else torch.sub(c, k, out=d)
        s = x.sum().item()
        # Squared into the buffer and summed: torch's sum adds pairwise (cascade), where a dot
        # product runs long float32 accumulators whose rounding, on repetitive values (bfloat16),
        # drifted one way: 1.8e-4 relative on a 2**18 block, against 6e-8 this way.
        q = torch.mul(x, x, out=d).sum().item()
        if s * s / m <= q / 2:
            return k + s / m, q - s * s / m
        k = _float32(k + s / m)
    # Two shifts never settled (only where float32 rounding of the shift itself is the spread).
    return _exact_block(c, torch.empty(m, dtype=torch.float64))


def _exact_block(c: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(mean, M2) of a block in float64 (corrected two-pass), `b` its float64 work buffer."""
    m = c.numel()
    b.copy_(c)
    shift = b.sum().item() / m
    b.sub_(shift)
    r = b.sum().item()
    return shift + r / m, torch.dot(b, b).item() - r * r / m


def _reducible(chunk: torch.Tensor) -> torch.Tensor:
    """`chunk` itself, or its values as float32 where torch cannot reduce its dtype."""
    if chunk.dtype in _UPCAST:
        return chunk.to(torch.float32)
    if chunk.dtype == _FP4:
        codes = chunk.contiguous().view(torch.uint8).to(torch.int64)
        table = _E2M1_VALUES.to(chunk.device)
        return torch.cat([table[codes & 0xF].reshape(-1), table[codes >> 4].reshape(-1)])
    return chunk


def _sparse_stats(t: torch.Tensor) -> TensorStats:
    """A sparse tensor: its stored values measured, its implicit zeros added analytically."""
    coo = (t if t.layout == torch.sparse_coo else t.to_sparse(layout=torch.sparse_coo)).coalesce()
    values = coo.values()
    n = t.numel() * (2 if t.is_complex() else 1)
    zeros = n - values.numel() * (2 if t.is_complex() else 1)
    stored = tensor_stats(values)
    if zeros == 0 or stored.nonfinite:
        return TensorStats(n, stored.mean, stored.var, stored.std, stored.min, stored.max,
                           stored.nonfinite)  # fmt: skip
    if stored.numel == 0 or stored.mean is None or stored.var is None:
        return TensorStats(n, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    k = stored.numel
    # Chan et al.'s combination of (k, mean, M2) with (zeros, 0, 0).
    mean = stored.mean * k / n
    m2 = stored.var * (k - 1) + stored.mean**2 * k * zeros / n
    var = m2 / (n - 1)
    lo = min(0.0, stored.min if stored.min is not None else 0.0)
    hi = max(0.0, stored.max if stored.max is not None else 0.0)
    if lo == hi:
        return TensorStats(n, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    return TensorStats(n, mean, var, math.sqrt(var), lo, hi, 0)


def _chunks(t: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    """Views of `t` with at most `size` elements each that together cover every element once."""
    flat = _flat_view(t)
    if flat is not None:
        yield from torch.split(flat, size)
    elif t.dim() == 1:
        yield from torch.split(t, size)
    else:
        # No dense layout (a slice with steps, an expanded tensor): walk the leading dimension,
        # taking as many rows per chunk as fit. The strided views are gathered by copy_ into the
        # buffer, so nothing larger than a chunk is ever copied.
        row = t[0].numel()  # > 0: tensor_stats returns before reading an empty tensor
        if row <= size:
            yield from torch.split(t, size // row)
        else:
            for i in range(t.shape[0]):
                yield from _chunks(t[i], size)


def _flat_view(t: torch.Tensor) -> torch.Tensor | None:
    """A 1-D view of `t`'s elements in memory order, when its layout allows one without a copy."""
    if t.is_contiguous():
        return t.view(-1)
    # The statistics do not depend on element order, so a transposed or channels-last tensor can be
    # read in memory order: permute its dimensions by decreasing stride and check for density.
    order = sorted(range(t.dim()), key=t.stride, reverse=True)
    permuted = t.permute(order)
    return permuted.view(-1) if permuted.is_contiguous() else None


def tolerance(n: int, expected_var: float, kurtosis: float) -> tuple[float, float]:
    """Half-widths (mean, var) of the band `judge` accepts for `n` i.i.d. draws.

    mean: Z standard errors of the sample mean, Z * sqrt(sigma^2 / n).
    var: Z standard deviations of the unbiased sample variance s^2, from the exact finite-sample
    formula Var(s^2) = sigma^4 * (kurtosis - (n - 3) / (n - 1)) / n, where `kurtosis` is the
    (non-excess) kurtosis of the scheme's distribution: 3 for normal, 1.8 for uniform. One draw
    says nothing about the variance, so n == 1 gives an infinite var half-width.
    """
    if n < 1:
        raise ValueError(f"tolerance needs n >= 1 samples, got {n}")
    if expected_var < 0:
        raise ValueError(f"expected_var must be >= 0, got {expected_var}")
    mean_tol = Z * math.sqrt(expected_var / n)
    if n == 1:
        return mean_tol, math.inf
    # kurtosis >= 1 for every distribution, so the bracket is > 0 for all n >= 2.
    var_of_s2 = expected_var**2 * (kurtosis - (n - 3) / (n - 1)) / n
    return mean_tol, Z * math.sqrt(max(var_of_s2, 0.0))


def judge(
    stats: TensorStats,
    ndim: int,
    expected_mean: float | None,
    expected_var: float | None,
    kurtosis: float | None,
) -> Status:
    """Whether observed statistics match what an init scheme predicts.

    SYMMETRIC for a >= 2-D tensor whose elements are all equal (symmetry between units is never
    broken, whatever was expected); UNKNOWN without an expected variance or without elements; OFF
    when any element is NaN/Inf. An expected variance of 0 (a constant init) needs a zero variance
    and the mean within float32 rounding of `expected_mean`; otherwise mean and variance must both
    lie within `tolerance(numel, expected_var, kurtosis)` (kurtosis None means normal, 3.0).
    `expected_mean` None skips the mean check.
    """
    if ndim >= 2 and stats.constant:
        return Status.SYMMETRIC
    if expected_var is None or stats.numel == 0:
        return Status.UNKNOWN
    if stats.nonfinite > 0:
        return Status.OFF
    mean, var = stats.mean, stats.var
    if mean is None or var is None:  # only when numel == 0, handled above; narrows the types
        return Status.UNKNOWN
    ok = consistent(stats.numel, mean, var, expected_mean, expected_var, kurtosis)
    return Status.OK if ok else Status.OFF


def consistent(
    numel: int,
    mean: float,
    var: float,
    expected_mean: float | None,
    expected_var: float,
    kurtosis: float | None,
) -> bool:
    """Whether a tensor's mean and variance lie within `tolerance` of an init's (for a constant
    init, expected_var 0: the variance zero and the mean within float32 rounding)."""
    if expected_var == 0:
        mean_ok = expected_mean is None or abs(mean - expected_mean) <= _CONST_MEAN_RTOL * max(
            1.0, abs(expected_mean)
        )
        return var <= _CONST_VAR_ATOL and mean_ok
    mean_tol, var_tol = tolerance(numel, expected_var, 3.0 if kurtosis is None else kurtosis)
    mean_ok = expected_mean is None or abs(mean - expected_mean) <= mean_tol
    return mean_ok and abs(var - expected_var) <= var_tol
