"""stats._blocked_stats: float32 block sums combined in float64, against a float64 reference on
adversarial data (the bounds docs/speed.md quotes)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from initcli import threads
from initcli.measure import stats
from initcli.measure.stats import tensor_stats

# The worst errors measured on the cases below were 1.3e-7 (mean, relative to max(|mean|, std))
# and 2.5e-7 (var, relative), both on bfloat16 values of ±1e3; the bounds leave a margin of 4x.
# The statuses' bands are far wider: Z standard errors, 5 / sqrt(n) of the std for the mean and
# 5 * sqrt(2 / n) of the var, above 1e-4 for every tensor of fewer than 1e9 elements.
MEAN_BOUND = 5e-7
VAR_BOUND = 1e-6

BLOCK = 4096  # small blocks: many blocks and their combination, in a fast test
N = 5 * BLOCK + 123


def reference(t: torch.Tensor) -> tuple[float, float]:
    """(mean, unbiased var) by the corrected two-pass algorithm in float64."""
    d = t.double().reshape(-1)
    n = d.numel()
    mu = d.sum() / n
    e = d - mu
    r = e.sum()
    return float(mu + r / n), float((e.dot(e) - r * r / n) / (n - 1))


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


CASES: dict[str, Callable[[int], torch.Tensor]] = {
    "normal": lambda n: 0.02 * torch.randn(n, generator=_gen(1)),
    "large mean, tiny spread": lambda n: (
        1e4 + 1e-3 * torch.randn(n, generator=_gen(2), dtype=torch.float64)
    ).float(),
    "layer norm": lambda n: 1 + 0.1 * torch.randn(n, generator=_gen(3)),
    "1e30": lambda n: 1e30 * torch.randn(n, generator=_gen(4)),
    "1e-30": lambda n: 1e-30 * torch.randn(n, generator=_gen(5)),
    "denormal": lambda n: 1e-40 * torch.randn(n, generator=_gen(6)),
    "mixed signs ±1e3": lambda n: torch.cat(
        [torch.full((n // 2,), -1e3), torch.full((n - n // 2,), 1e3)]
    )
    + torch.randn(n, generator=_gen(7)),
    "sorted": lambda n: torch.sort(3 * torch.randn(n, generator=_gen(8)) + 1).values,
    "blocks far apart": lambda n: torch.cat(
        [1e-3 * torch.randn(BLOCK, generator=_gen(9)),
         1e6 + torch.randn(n - BLOCK, generator=_gen(10))]
    ),
    "one outlier": lambda n: torch.cat([torch.zeros(n - 1), torch.tensor([1e20])]),
    "huge and tiny blocks": lambda n: torch.cat(
        [3e38 * torch.rand(BLOCK, generator=_gen(11)),
         1e-3 * torch.randn(n - BLOCK, generator=_gen(12))]
    ),
}  # fmt: skip


@pytest.fixture
def blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(stats, "_BLOCK", BLOCK)
    return BLOCK


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
@pytest.mark.parametrize("case", list(CASES))
def test_within_the_stated_bounds(case: str, dtype: torch.dtype, blocks: int) -> None:
    t = CASES[case](N).to(dtype)
    finite = torch.isfinite(t)
    if not bool(finite.all()):  # float16 overflows on 1e30 / 1e40 and underflows on the tiny ones
        t = torch.where(finite, t, torch.zeros((), dtype=dtype))
    got = tensor_stats(t)
    mean, var = reference(t)
    assert got.numel == N and got.nonfinite == 0
    assert got.min == float(t.min()) and got.max == float(t.max())
    assert got.mean is not None and got.var is not None
    scale = max(abs(mean), math.sqrt(var))
    if scale == 0:
        assert got.mean == mean and got.var == 0.0
        return
    assert abs(got.mean - mean) <= MEAN_BOUND * scale, (got.mean, mean)
    assert abs(got.var - var) <= VAR_BOUND * var, (got.var, var)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_constant_tensors_are_exact(dtype: torch.dtype, blocks: int) -> None:
    got = tensor_stats(torch.full((N,), 0.3, dtype=dtype))
    value = float(torch.tensor(0.3, dtype=dtype))
    assert (got.mean, got.var, got.std, got.min, got.max) == (value, 0.0, 0.0, value, value)


def test_nan_and_inf_are_counted(blocks: int) -> None:
    t = torch.randn(N, generator=_gen(13))
    t[5] = math.nan
    t[3 * BLOCK + 1] = math.inf
    t[4 * BLOCK] = -math.inf
    got = tensor_stats(t)
    assert got.nonfinite == 3 and math.isnan(got.mean or 0.0) and math.isnan(got.min or 0.0)
    t[5] = 0.0
    got = tensor_stats(t)
    assert got.nonfinite == 2 and (got.min, got.max) == (-math.inf, math.inf)


def test_sample_and_moments_match_the_float64_path(blocks: int) -> None:
    # The strided sample is the same values either way; moments follow from it and the mean.
    t = 0.5 * torch.randn(N, generator=_gen(14)) + 0.1
    t[:100] = 0.0
    fast = tensor_stats(t)
    slow = tensor_stats(t.double())  # float64 keeps the float64 path
    assert fast.sample is not None and slow.sample is not None
    assert torch.equal(fast.sample, slow.sample)
    assert fast.zeros == slow.zeros
    assert fast.m3 == pytest.approx(slow.m3, rel=1e-5, abs=1e-9)
    assert fast.m4 == pytest.approx(slow.m4, rel=1e-6)


def test_non_contiguous_tensors_are_blocked_too(blocks: int) -> None:
    base = torch.randn(64, 3 * BLOCK // 32, generator=_gen(15))
    view = base[:, ::2]  # not dense: gathered row-block by row-block
    got = tensor_stats(view)
    mean, var = reference(view)
    assert got.mean == pytest.approx(mean, rel=1e-6, abs=1e-9)
    assert got.var == pytest.approx(var, rel=VAR_BOUND)
    assert got.min == float(view.min()) and got.max == float(view.max())


def test_one_block_or_less_stays_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    # A tensor of at most one block keeps the float64 path, so its digits (the golden files)
    # are those of the exact computation.
    t = 0.02 * torch.randn(stats._BLOCK, generator=_gen(16))
    fast = tensor_stats(t)
    monkeypatch.setattr(stats, "_BLOCKED_DTYPES", frozenset())
    assert fast == tensor_stats(t)
    assert fast.m3 == tensor_stats(t).m3


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_default_block_size(dtype: torch.dtype) -> None:
    t = (1 + 0.1 * torch.randn(2 * stats._BLOCK + 777, generator=_gen(17))).to(dtype)
    got = tensor_stats(t)
    mean, var = reference(t)
    assert got.mean is not None and got.var is not None
    assert abs(got.mean - mean) <= MEAN_BOUND * abs(mean)
    assert abs(got.var - var) <= VAR_BOUND * var


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.floats(width=32, allow_nan=False, allow_infinity=False),
        min_size=65,
        max_size=200,
    )
)
def test_any_float32_values_within_the_bounds(values: list[float]) -> None:
    old = stats._BLOCK
    stats._BLOCK = 64  # hypothesis re-runs the body, so no function-scoped fixture here
    try:
        got = tensor_stats(torch.tensor(values, dtype=torch.float32))
    finally:
        stats._BLOCK = old
    exact = [Fraction(v) for v in values]
    n = len(exact)
    mean = sum(exact) / n
    var = sum((v - mean) ** 2 for v in exact) / (n - 1)
    assert got.mean is not None and got.var is not None
    scale = max(abs(float(mean)), math.sqrt(float(var)))
    assert abs(Fraction(got.mean) - mean) <= Fraction(MEAN_BOUND) * Fraction(scale)
    assert abs(Fraction(got.var) - var) <= Fraction(VAR_BOUND) * var
    assert got.min == min(values) and got.max == max(values)


@pytest.fixture
def one_thread() -> Iterator[None]:
    # How inspect measures (report.weights, report.measuring): torch at one intra-op thread.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.usefixtures("one_thread")
def test_digits_do_not_depend_on_the_number_of_threads(
    case: str, dtype: torch.dtype, blocks: int
) -> None:
    t = CASES[case](N).to(dtype)
    one = tensor_stats(t, workers=1)
    for workers in (2, 4):
        got = tensor_stats(t, workers=workers)
        assert (got.mean, got.var, got.min, got.max, got.m3, got.m4, got.zeros) == (
            one.mean, one.var, one.min, one.max, one.m3, one.m4, one.zeros
        ), (case, workers)  # fmt: skip
        assert got.sample is not None and one.sample is not None
        assert torch.equal(got.sample, one.sample)


@pytest.mark.usefixtures("one_thread")
def test_default_block_size_threads_agree_bit_for_bit() -> None:
    # Real blocks (2**18 elements, one torch reduction each at one intra-op thread) measured by
    # worker threads give the digits the calling thread gives alone.
    t = 0.02 * torch.randn(5 * stats._BLOCK + 999, generator=_gen(21))
    for dtype in (torch.float32, torch.bfloat16):
        x = t.to(dtype)
        one = tensor_stats(x, workers=1)
        for workers in (2, 4):
            assert tensor_stats(x, workers=workers) == one
            assert tensor_stats(x, workers=workers).m4 == one.m4
    assert tensor_stats(t) == tensor_stats(t, workers=1)  # the free cores decide only the speed


def test_free_cores_is_at_least_one_and_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.free_cores() == 1
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert 1 <= threads.free_cores() <= len(os.sched_getaffinity(0))
    assert threads.measuring_workers(2) == 1  # torch parallelizes each operation itself
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert threads.measuring_workers(1) == threads.free_cores() == 1


def test_item_order_puts_strided_shares_back() -> None:
    """Thread w took items w, w + k, …: the results come back in item order, also when the
    shares are of unequal length."""
    assert threads.in_item_order([[0, 3, 6], [1, 4], [2, 5]]) == list(range(7))
    assert threads.in_item_order([["a", "b"]]) == ["a", "b"]
    assert threads.in_item_order([]) == []


def _same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("case", ["nan", "inf", "constant", "zeros"])
def test_blocked_and_float64_paths_give_the_same_record_on_special_tensors(
    case: str, blocks: int
) -> None:
    # Every field, NaN for NaN: the counts, the None moments of a NaN tensor, the zero moments and
    # zero count of a constant one, the sample.
    t = torch.full((N,), 0.75)
    if case == "nan":
        t = torch.randn(N, generator=_gen(18))
        t[2 * BLOCK + 3] = math.nan
        t[:7] = 0.0
    elif case == "inf":
        t = torch.randn(N, generator=_gen(19))
        t[BLOCK] = math.inf
    elif case == "zeros":
        t = torch.zeros(N)
    fast, slow = tensor_stats(t), tensor_stats(t.double())
    for field in ("numel", "mean", "var", "std", "min", "max", "nonfinite", "m3", "m4", "zeros"):
        assert _same(getattr(fast, field), getattr(slow, field)), field
    assert _same(fast.sample, slow.sample)


def test_the_sample_strides_on_across_float64_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every step-th value in memory order, whatever chunk it falls in: chunks of 999 values here
    # (no multiple of the step, 4), so the stride's phase changes from chunk to chunk.
    monkeypatch.setattr(stats, "_CHUNK", 999)
    n = 3 * stats.SAMPLE + 17
    t = torch.randn(n, generator=_gen(20), dtype=torch.float64)
    got = tensor_stats(t)
    step = -(-n // stats.SAMPLE)
    assert step == 4
    assert got.sample is not None and torch.equal(got.sample, t[::step])
