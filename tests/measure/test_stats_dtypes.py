"""tensor_stats on float8, float4, sparse and meta tensors: measured, or a clear message."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from initcli.measure.stats import TensorStats, tensor_stats

FLOAT8 = [
    torch.float8_e4m3fn, torch.float8_e5m2, torch.float8_e4m3fnuz, torch.float8_e5m2fnuz,
    torch.float8_e8m0fnu,
]  # fmt: skip


def _reference(values: torch.Tensor) -> tuple[float, float, float, float]:
    v = values.to(torch.float64).reshape(-1)
    return v.mean().item(), v.var().item(), v.min().item(), v.max().item()


@pytest.mark.parametrize("dtype", FLOAT8)
def test_float8_is_measured_chunk_by_chunk(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(1)
    # 1.2 M elements: more than two chunks; non-contiguous (transposed) to take the strided path.
    t = (torch.randn(1200, 1000, generator=g) * 0.5 + 0.25).to(dtype).t()
    got = tensor_stats(t)
    mean, var, lo, hi = _reference(t.to(torch.float32))
    assert got.numel == 1_200_000 and got.nonfinite == 0
    assert got.mean == pytest.approx(mean, rel=1e-12)
    assert got.var == pytest.approx(var, rel=1e-12)
    assert (got.min, got.max) == (lo, hi)


def test_float8_nan_is_counted() -> None:
    t = torch.tensor([1.0, float("nan"), 2.0]).to(torch.float8_e4m3fn)
    assert tensor_stats(t).nonfinite == 1


def test_float4_packed_values_are_decoded() -> None:
    # 0x21: low nibble 1 (0.5), high nibble 2 (1.0); 0xF3: 3 (1.5) and F (sign + 7: -6.0).
    t = torch.tensor([0x21, 0xF3], dtype=torch.uint8).view(torch.float4_e2m1fn_x2)
    got = tensor_stats(t)
    assert (got.numel, got.mean, got.min, got.max) == (4, -0.75, -6.0, 1.5)
    assert got.var == pytest.approx(37.25 / 3, rel=1e-15)


def test_every_float4_code_decodes_to_its_e2m1_value() -> None:
    codes = torch.arange(256, dtype=torch.uint8).view(torch.float4_e2m1fn_x2)
    got = tensor_stats(codes)
    magnitudes = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
    # Each of the 16 codes appears 16 times in each nibble: 512 values, symmetric about 0.
    assert (got.numel, got.mean, got.min, got.max) == (512, 0.0, -6.0, 6.0)
    assert got.var == pytest.approx(2 * 32 * sum(m * m for m in magnitudes) / 511, rel=1e-15)


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_sparse_tensor_stats_equal_the_dense_ones(layout: str) -> None:
    g = torch.Generator().manual_seed(2)
    dense = torch.randn(50, 40, generator=g)
    dense[dense < 0.7] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        sparse = dense.to_sparse() if layout == "coo" else dense.to_sparse_csr()
        got = tensor_stats(sparse)
    want = tensor_stats(dense)
    assert (got.numel, got.min, got.max, got.nonfinite) == (2000, want.min, want.max, 0)
    assert got.mean == pytest.approx(want.mean, rel=1e-12)
    assert got.var == pytest.approx(want.var, rel=1e-12)


def test_all_zero_sparse_tensor() -> None:
    assert tensor_stats(torch.zeros(3, 4).to_sparse()) == TensorStats(
        12, 0.0, 0.0, 0.0, 0.0, 0.0, 0
    )


def test_meta_tensor_says_it_has_no_data() -> None:
    with pytest.raises(ValueError, match="needs a tensor with data; this one is on the meta"):
        tensor_stats(torch.empty(3, device="meta"))


def _dense_equal(got: TensorStats, want: TensorStats) -> None:
    assert (got.numel, got.min, got.max, got.nonfinite) == (
        want.numel, want.min, want.max, want.nonfinite
    )  # fmt: skip
    assert (got.mean, got.var, got.std) == pytest.approx((want.mean, want.var, want.std), rel=1e-12)


@pytest.mark.parametrize(
    "dense",
    [
        torch.tensor([[0.5, -0.25], [0.75, 0.125]]),  # every value stored: no implicit zero
        torch.tensor([[0.5, 0.25], [0.75, 0.125]]),  # and all positive: the minimum is no zero
        torch.tensor([[0.5, 0.25], [0.0, 0.125]]),  # one implicit zero
        torch.tensor([[0.0, -0.5, 0.0], [0.0, -0.25, 0.0]]),  # negatives only
        torch.tensor([[0.0, 0.5, 0.0], [0.25, 0.0, 0.0]]),  # below 1 only
        torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.375, 0.0]]),  # one stored value
        torch.tensor([[0.0, 1.0 + 2.0j], [0.0, -0.5j]]),  # complex: real and imaginary pooled
    ],
    ids=[
        "no-implicit-zero",
        "positive",
        "one-zero",
        "negative",
        "below-one",
        "one-value",
        "complex",
    ],
)
def test_sparse_stats_equal_the_dense_ones_in_every_field(dense: torch.Tensor) -> None:
    _dense_equal(tensor_stats(dense.to_sparse()), tensor_stats(dense))


def test_sparse_with_stored_zeros_and_a_nan() -> None:
    i = torch.tensor([[0, 1], [0, 1]])
    zeros = torch.sparse_coo_tensor(i, torch.zeros(2), (3, 3), check_invariants=True)
    assert tensor_stats(zeros) == TensorStats(9, 0.0, 0.0, 0.0, 0.0, 0.0, 0)
    nan = tensor_stats(
        torch.sparse_coo_tensor(i, torch.tensor([1.0, math.nan]), (3, 3), check_invariants=True)
    )
    assert (nan.numel, nan.nonfinite) == (9, 1)
    assert math.isnan(nan.mean) and math.isnan(nan.var) and math.isnan(nan.std)  # type: ignore[arg-type]
