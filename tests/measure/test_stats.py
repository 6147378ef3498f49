"""initcli.measure.stats: exact statistics, every random scheme against its law, the verdict."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from torch import nn

from initcli.init import schemes
from initcli.init.schemes import parse_scheme
from initcli.measure import stats
from initcli.measure.stats import Status, TensorStats, judge, tensor_stats, tolerance

RTOL = 1e-6
ATOL = 1e-12  # for a reference that is exactly 0


def reference(t: torch.Tensor) -> tuple[float, float]:
    """(mean, unbiased var) in float64 with exactly rounded sums (math.fsum), corrected two-pass."""
    if t.is_complex():
        t = torch.view_as_real(t)
    vals = t.detach().double().reshape(-1).tolist()
    n = len(vals)
    mean = math.fsum(vals) / n
    if n == 1:
        return mean, 0.0
    dev = [v - mean for v in vals]
    m2 = math.fsum(d * d for d in dev) - math.fsum(dev) ** 2 / n
    return mean + math.fsum(dev) / n, m2 / (n - 1)


def close(got: float | None, want: float, floor: float = 0.0) -> bool:
    """Within RTOL of `want` (ATOL if `want` is exactly 0), or within an absolute `floor`."""
    if got is None:
        return False
    return abs(got - want) <= (RTOL * abs(want) if want else ATOL) or abs(got - want) <= floor


def assert_exact(t: torch.Tensor) -> TensorStats:
    """tensor_stats(t) matches the reference: mean/var within 1e-6, min/max exact."""
    s = tensor_stats(t)
    mean, var = reference(t)
    flat = (torch.view_as_real(t) if t.is_complex() else t).detach().double().reshape(-1)
    assert s.numel == flat.numel()
    assert s.nonfinite == 0
    assert close(s.mean, mean), (s.mean, mean)
    assert close(s.var, var), (s.var, var)
    assert s.std is not None and s.var is not None and s.std == math.sqrt(s.var)
    assert s.min == flat.min().item()
    assert s.max == flat.max().item()
    return s


def sample(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.rand(shape, generator=g) > 0.3
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, generator=g, dtype=dtype)
    if not dtype.is_floating_point:
        return torch.randint(-1000, 1000, shape, generator=g, dtype=dtype)
    return (torch.randn(shape, generator=g, dtype=torch.float64) * 0.7 + 0.2).to(dtype)


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Make chunks tiny so that chunk boundaries and the cross-chunk combination are exercised."""
    monkeypatch.setattr(stats, "_CHUNK", 64)
    return 64


DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.int64,
    torch.int32,
    torch.uint8,
    torch.bool,
]
SHAPES = [(), (1,), (1000,), (8, 3, 5, 5), (7, 11), (64,), (65,), (63,), (3, 64), (1, 1, 129)]


# ---------------------------------------------------------------- tensor_stats: exactness


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_exact_across_dtypes_and_shapes(dtype: torch.dtype, shape: tuple[int, ...]) -> None:
    assert_exact(sample(shape, dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_exact_across_chunk_boundaries(
    dtype: torch.dtype, shape: tuple[int, ...], small_chunks: int
) -> None:
    assert_exact(sample(shape, dtype))


def test_exact_at_default_chunk_size_not_a_multiple() -> None:
    assert_exact(sample((stats._CHUNK * 2 + 12345,), torch.float32))


@pytest.mark.parametrize(
    "view",
    [
        lambda x: x[0, 0].T,  # transposed: dense, read in memory order
        lambda x: x.mT,
        lambda x: x.permute(2, 0, 3, 1),
        lambda x: x.contiguous(memory_format=torch.channels_last),
        lambda x: x[:, ::2, 1:],  # not dense: strided chunks
        lambda x: x[::3, :, :, ::2],
        lambda x: x[0, 0, 0].expand(4, 7),  # stride 0: repeated elements count repeatedly
        lambda x: x.reshape(-1)[::7],  # 1-D strided
    ],
    ids=["T", "mT", "permute", "channels_last", "slice", "step-slice", "expand", "1d-step"],
)
@pytest.mark.parametrize("chunk", [64, None], ids=["chunk64", "default-chunk"])
def test_non_contiguous_views(
    view: object, chunk: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if chunk is not None:
        monkeypatch.setattr(stats, "_CHUNK", chunk)
    x = sample((6, 10, 9, 7), torch.float32)
    v = view(x)  # type: ignore[operator]
    assert isinstance(v, torch.Tensor)
    assert_exact(v)


def test_wide_rows_larger_than_a_chunk(small_chunks: int) -> None:
    x = sample((5, 300), torch.float64)
    assert_exact(x[:, ::2])  # each non-dense row (150) is split again
    assert_exact(x.T[::2])


def test_zero_elements() -> None:
    for t in [
        torch.empty(0),
        torch.empty(3, 0, 2, dtype=torch.float16),
        torch.empty(0, dtype=torch.int64),
    ]:
        s = tensor_stats(t)
        assert s == TensorStats(0, None, None, None, None, None, 0)
        assert not s.constant


@pytest.mark.parametrize("shape", [(), (1,), (1, 1, 1)])
def test_single_element(shape: tuple[int, ...]) -> None:
    s = tensor_stats(torch.full(shape, -2.5))
    assert s == TensorStats(1, -2.5, 0.0, 0.0, -2.5, -2.5, 0)
    assert not s.constant  # one value says nothing about symmetry


@pytest.mark.parametrize(
    "dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64]
)
@pytest.mark.parametrize("value", [0.0, 0.1, -3.0, 1e4])
@pytest.mark.parametrize("n", [2, 64, 1000, 4097])
def test_constants_have_variance_exactly_zero(
    dtype: torch.dtype, value: float, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stats, "_CHUNK", 256)
    t = torch.full((n,), value).to(dtype)
    stored = t[0].item()
    s = tensor_stats(t)
    assert s.var == 0.0 and s.std == 0.0
    assert s.mean == s.min == s.max == stored
    assert s.constant


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk", [64, 1000, None])
def test_large_mean_tiny_variance(
    dtype: torch.dtype, chunk: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if chunk is not None:
        monkeypatch.setattr(stats, "_CHUNK", chunk)
    g = torch.Generator().manual_seed(3)
    t = (1e4 + 1e-3 * torch.randn(20_000, generator=g, dtype=torch.float64)).to(dtype)
    s = assert_exact(t)
    assert s.var is not None and 0.5e-6 < s.var < 2e-6


def test_chunks_with_very_different_means(small_chunks: int) -> None:
    # Sorted data: each chunk's mean is far from the overall mean, so the between-chunk term of the
    # parallel formula carries almost all of the variance.
    g = torch.Generator().manual_seed(4)
    t = torch.cat(
        [torch.zeros(100), 1e6 + 1e-2 * torch.randn(300, generator=g, dtype=torch.float64)]
    )
    assert_exact(t)
    assert_exact(torch.sort(sample((1000,), torch.float32)).values)


def test_float64_spread_in_the_last_bits(small_chunks: int) -> None:
    # A spread of a few ulps around 1e6: the rounding of each chunk mean is comparable to the
    # spread itself, which the corrected two-pass sum must absorb.
    # Two neighbouring doubles, 30% / 70%: the mean lies between them, so any float64 shift is off
    # by ~0.3 ulp against a standard deviation of ~0.46 ulp.
    ulp = math.ulp(1e6)
    g = torch.Generator().manual_seed(5)
    t = 1e6 + ulp * (torch.rand(500, generator=g) < 0.7).double()
    assert_exact(t)
    assert_exact(2**52 + (t != 1e6).long())  # int64 near 2**53 alike


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        # Magnitudes below 1e-100 would make squares subnormal (imprecise in any float64 code).
        st.floats(-1e6, 1e6, allow_nan=False).filter(lambda v: v == 0 or abs(v) >= 1e-100),
        min_size=1,
        max_size=200,
    ),
    st.sampled_from([2, 3, 64, 1 << 19]),
)
def test_matches_exact_rational_arithmetic(values: list[float], chunk: int) -> None:
    old = stats._CHUNK
    stats._CHUNK = chunk  # hypothesis re-runs the body, so no function-scoped fixture here
    try:
        s = tensor_stats(torch.tensor(values, dtype=torch.float64))
    finally:
        stats._CHUNK = old
    exact = [Fraction(v) for v in values]
    n = len(exact)
    mean = sum(exact) / n
    var = sum((v - mean) ** 2 for v in exact) / (n - 1) if n > 1 else Fraction(0)
    # A float64 sum is exact only up to rounding at the scale of its largest terms, so a mean that
    # cancels to nearly nothing ([1e6, 1e-300, -1e6]) is judged against that scale instead.
    assert close(s.mean, float(mean), floor=1e-15 * max(abs(v) for v in values))
    assert close(s.var, float(var))
    assert s.min == min(values) and s.max == max(values)


def test_integer_and_bool_are_cast() -> None:
    s = tensor_stats(torch.tensor([True, False, True, True]))
    assert (s.mean, s.min, s.max) == (0.75, 0.0, 1.0)
    assert s.var == pytest.approx(0.25)
    s = tensor_stats(torch.tensor([1, 2, 3, 4], dtype=torch.int32))
    assert s.mean == 2.5
    assert s.var == pytest.approx(5 / 3)


def test_complex_pools_real_and_imaginary_parts() -> None:
    z = torch.complex(torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 5.0]))
    s = tensor_stats(z)
    assert s.numel == 4
    assert (s.mean, s.min, s.max) == (2.0, -1.0, 5.0)
    assert_exact(
        torch.randn(5, 7, dtype=torch.complex128, generator=torch.Generator().manual_seed(0))
    )
    assert tensor_stats(z.conj()).min == -5.0  # the conjugate bit is honoured


def test_parameter_with_grad_is_not_tracked() -> None:
    p = torch.nn.Parameter(torch.randn(10, 10))
    s = tensor_stats(p)
    assert s.numel == 100
    assert p.grad is None


def test_meta_tensor_is_refused() -> None:
    with pytest.raises(ValueError, match="meta"):
        tensor_stats(torch.empty(3, device="meta"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_nonfinite_are_counted(dtype: torch.dtype, small_chunks: int) -> None:
    t = sample((300,), torch.float32).to(dtype)
    t[5] = math.nan
    t[70] = math.inf
    t[200] = -math.inf
    t[299] = math.nan
    s = tensor_stats(t)
    assert s.numel == 300 and s.nonfinite == 4
    assert s.mean is not None and math.isnan(s.mean)
    assert s.var is not None and math.isnan(s.var)
    assert s.std is not None and math.isnan(s.std)
    assert s.min is not None and math.isnan(s.min)  # NaN propagates, as in torch.aminmax


def test_infinities_without_nan() -> None:
    s = tensor_stats(torch.tensor([1.0, math.inf, -math.inf, 2.0]))
    assert s.nonfinite == 2
    assert (s.min, s.max) == (-math.inf, math.inf)
    assert s.mean is not None and math.isnan(s.mean)


def test_finite_tensors_report_zero_nonfinite() -> None:
    assert tensor_stats(torch.tensor([3.4e38, -3.4e38, 1.0])).nonfinite == 0
    assert tensor_stats(torch.arange(10)).nonfinite == 0


# ---------------------------------------------------------------- judge


def normal(n: int, std: float, seed: int, mean: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g) * std + mean


def uniform(n: int, bound: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, generator=g) * 2 - 1) * bound


def test_symmetric_only_for_constant_tensors_of_two_or_more_dims() -> None:
    w = tensor_stats(torch.full((4, 3), 0.5))
    assert judge(w, 2, 0.0, 0.1, 3.0) is Status.SYMMETRIC
    assert judge(w, 2, 0.5, 0.0, None) is Status.SYMMETRIC  # a constant init still leaves symmetry
    assert judge(w, 4, None, None, None) is Status.SYMMETRIC  # even with no expectation
    assert judge(w, 1, 0.5, 0.0, None) is Status.OK  # the same values as a 1-D tensor
    one = tensor_stats(torch.full((1, 1), 0.5))
    assert judge(one, 2, 0.5, 0.0, None) is Status.OK  # a single value breaks no symmetry


def test_zero_bias_with_expected_zero_is_ok() -> None:
    s = tensor_stats(torch.zeros(64))
    assert judge(s, 1, 0.0, 0.0, None) is Status.OK
    assert judge(s, 1, 0.1, 0.0, None) is Status.OFF  # the wrong constant


def test_constant_init_allows_float32_rounding() -> None:
    s = tensor_stats(torch.full((10,), 0.1))  # 0.1 as float32 is 0.10000000149...
    assert s.mean != 0.1
    assert judge(s, 1, 0.1, 0.0, None) is Status.OK
    assert judge(tensor_stats(torch.full((10,), 1e4 + 0.1)), 1, 1e4 + 0.1, 0.0, None) is Status.OK
    assert judge(tensor_stats(torch.randn(10) * 1e-3), 1, 0.0, 0.0, None) is Status.OFF


def test_constant_init_slightly_off_is_off_not_ok() -> None:
    # Every element equal (variance exactly 0) but not the init's constant: only the mean's
    # tolerance, float32 rounding (relative 2**-24 ≈ 6e-8, allowed up to 1e-6), tells them apart.
    for expected in (0.1, -3.0, 1e4 + 0.1):
        for rel in (1e-5, 1e-4, 1e-3):
            off = tensor_stats(torch.full((10,), expected * (1 + rel), dtype=torch.float64))
            assert judge(off, 1, expected, 0.0, None) is Status.OFF, (expected, rel)
        near = torch.full((10,), expected * (1 + 5e-7), dtype=torch.float64)
        assert judge(tensor_stats(near), 1, expected, 0.0, None) is Status.OK
    # One element off by 1e-4: a variance above zero, whatever the mean.
    one_off = torch.full((10,), 0.1, dtype=torch.float64)
    one_off[3] += 1e-4
    assert judge(tensor_stats(one_off), 1, 0.1, 0.0, None) is Status.OFF


def test_unknown_and_off_cases() -> None:
    s = tensor_stats(normal(100, 1.0, 0))
    assert judge(s, 2, 0.0, None, None) is Status.UNKNOWN
    assert judge(tensor_stats(torch.empty(0, 5)), 2, 0.0, 1.0, 3.0) is Status.UNKNOWN
    t = normal(100, 1.0, 0)
    t[3] = math.nan
    assert judge(tensor_stats(t), 1, 0.0, 1.0, 3.0) is Status.OFF
    assert judge(tensor_stats(t), 1, 0.0, None, 3.0) is Status.UNKNOWN


def test_normal_large_sample() -> None:
    std = 0.05
    ok = tensor_stats(normal(100_000, std, 1))
    assert judge(ok, 2, 0.0, std**2, 3.0) is Status.OK
    assert judge(ok, 2, 0.0, std**2, None) is Status.OK  # kurtosis None means normal
    assert judge(ok, 2, None, std**2, 3.0) is Status.OK
    wide = tensor_stats(normal(100_000, std * 1.5, 1))
    assert judge(wide, 2, 0.0, std**2, 3.0) is Status.OFF
    shifted = tensor_stats(normal(100_000, std, 1, mean=0.01))
    assert judge(shifted, 2, 0.0, std**2, 3.0) is Status.OFF
    assert judge(shifted, 2, None, std**2, 3.0) is Status.OK  # mean not checked


def test_uniform_large_sample() -> None:
    bound = math.sqrt(6 / (256 + 128))  # xavier_uniform for a 128x256 weight
    s = tensor_stats(uniform(128 * 256, bound, 2))
    assert judge(s, 2, 0.0, bound**2 / 3, 1.8) is Status.OK


def test_wrong_fan_mode_is_off() -> None:
    # kaiming_normal(relu) expected with fan_in = 256, but drawn with fan_out = 64.
    s = tensor_stats(normal(64 * 256, math.sqrt(2 / 64), 3).reshape(64, 256))
    assert judge(s, 2, 0.0, 2 / 256, 3.0) is Status.OFF
    assert judge(s, 2, 0.0, 2 / 64, 3.0) is Status.OK


def off_rate(draws: torch.Tensor, expected_var: float, kurtosis: float) -> float:
    verdicts = [judge(tensor_stats(row), 1, 0.0, expected_var, kurtosis) for row in draws]
    return sum(v is Status.OFF for v in verdicts) / len(verdicts)


SEEDS = 500


@pytest.mark.parametrize("n", [2, 5, 20, 1000])
def test_false_alarm_rate_is_below_one_percent(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    std = 0.3
    assert off_rate(torch.randn(SEEDS, n, generator=g) * std, std**2, 3.0) < 0.01
    bound = 0.3
    draws = (torch.rand(SEEDS, n, generator=g) * 2 - 1) * bound
    assert off_rate(draws, bound**2 / 3, 1.8) < 0.01


def test_std_one_and_a_half_times_too_large_is_caught() -> None:
    g = torch.Generator().manual_seed(7)
    std = 0.1
    assert off_rate(torch.randn(SEEDS, 10_000, generator=g) * std * 1.5, std**2, 3.0) >= 0.99


def test_tiny_tensors_get_wide_bands() -> None:
    # A 1.5x std cannot be told apart from chance in 5 values; the band must not pretend it can.
    s = tensor_stats(torch.tensor([0.1, -0.2, 0.15, 0.05, -0.1]) * 1.5)
    assert judge(s, 1, 0.0, 0.15**2, 3.0) is Status.OK


def _verdict(shape: tuple[int, ...], std: float, expected_var: float, seed: int) -> str:
    tensor = normal(math.prod(shape), std, seed).reshape(shape)
    return str(judge(tensor_stats(tensor), len(shape), 0.0, expected_var, 3.0))


def test_false_alarm_rate_under_one_percent_over_200_seeds() -> None:
    """Right init → ok; measured over 200 seeds on a small and a large tensor."""
    for shape in [(8, 5), (256, 128)]:
        fan_in = shape[1]
        std = math.sqrt(2.0 / fan_in)
        alarms = sum(_verdict(shape, std, 2.0 / fan_in, seed) != "ok" for seed in range(200))
        assert alarms / 200 < 0.01, (shape, alarms)


def test_std_too_large_by_half_is_off() -> None:
    shape = (256, 128)
    std = math.sqrt(2.0 / 128)
    misses = sum(_verdict(shape, std * 1.5, 2.0 / 128, seed) == "ok" for seed in range(200))
    assert misses == 0


def test_kaiming_normal_fan_out_judged_as_fan_in_is_off() -> None:
    """kaiming_normal with fan_out on a (256, 64) weight, judged against the fan_in promise."""
    flagged = 0
    for seed in range(200):
        tensor = torch.empty(256, 64)
        torch.manual_seed(seed)
        nn.init.kaiming_normal_(tensor, mode="fan_out")
        right = schemes.expectation(parse_scheme("kaiming_normal:mode=fan_out"), tensor)
        wrong = schemes.expectation(parse_scheme("kaiming_normal:mode=fan_in"), tensor)
        measured = tensor_stats(tensor)
        assert judge(measured, 2, right.mean, right.var, right.kurtosis) == "ok"
        flagged += judge(measured, 2, wrong.mean, wrong.var, wrong.kurtosis) == "off"
    assert flagged == 200


# ---------------------------------------------------------------- schemes against their laws


# p-value floor for the Kolmogorov–Smirnov tests: seeded, so a pass is a pass, and low enough that
# a correct implementation fails one shape in ten thousand.
P_MIN = 1e-4
SCHEME_SHAPES = [(64, 32), (512, 16), (16, 512), (32, 16, 3, 3), (8, 4, 5, 5), (1024, 1024)]


def _scale(scheme: str, tensor: torch.Tensor) -> float:
    """The standard deviation / bound the scheme should use, computed here from first principles."""
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(tensor)
    parsed = parse_scheme(scheme)
    if parsed.name.startswith("xavier"):
        gain = schemes.gain_of(parsed.get("gain"))
        return gain * math.sqrt(2.0 / (fan_in + fan_out))
    gain = nn.init.calculate_gain(parsed.text("nonlinearity"), parsed.number("a"))  # type: ignore[arg-type]
    fan = fan_in if parsed.text("mode") == "fan_in" else fan_out
    return gain / math.sqrt(fan)


def _ks(scheme: str, shape: tuple[int, ...], seed: int) -> tuple[float, torch.Tensor]:
    parsed = parse_scheme(scheme)
    tensor = torch.empty(shape)
    torch.manual_seed(seed)
    schemes.apply(parsed, tensor)
    values = tensor.flatten().double().numpy()
    if parsed.name.endswith("_uniform"):
        bound = _scale(scheme, tensor) * math.sqrt(3.0)
        result = sps.kstest(values, sps.uniform(loc=-bound, scale=2 * bound).cdf)
    else:
        result = sps.kstest(values, sps.norm(loc=0.0, scale=_scale(scheme, tensor)).cdf)
    return float(result.pvalue), tensor


FAN_SCHEMES = [
    "xavier_uniform", "xavier_normal", "xavier_uniform:gain=tanh", "xavier_normal:gain=0.5",
    "kaiming_uniform", "kaiming_normal", "kaiming_normal:mode=fan_out,nonlinearity=relu",
    "kaiming_uniform:mode=fan_out,nonlinearity=leaky_relu,a=0.2",
    "kaiming_normal:nonlinearity=tanh", "kaiming_uniform:nonlinearity=selu",
]  # fmt: skip


@pytest.mark.parametrize("shape", SCHEME_SHAPES, ids=str)
@pytest.mark.parametrize("scheme", FAN_SCHEMES)
def test_fan_schemes_follow_their_distribution(scheme: str, shape: tuple[int, ...]) -> None:
    pvalue, tensor = _ks(scheme, shape, seed=sum(shape))
    assert pvalue > P_MIN, (scheme, shape, pvalue)
    exp = schemes.expectation(parse_scheme(scheme), tensor)
    assert judge(tensor_stats(tensor), tensor.dim(), exp.mean, exp.var, exp.kurtosis) == "ok"


@pytest.mark.parametrize(
    ("scheme", "dist"),
    [
        ("uniform:a=-0.3,b=0.7", sps.uniform(loc=-0.3, scale=1.0)),
        ("normal:mean=0.1,std=0.02", sps.norm(loc=0.1, scale=0.02)),
        ("trunc_normal:std=1,a=-2,b=2", sps.truncnorm(-2, 2)),
        ("trunc_normal:mean=0.5,std=2,a=-1,b=3", sps.truncnorm(-0.75, 1.25, loc=0.5, scale=2)),
        ("lecun_normal", sps.norm(scale=1 / math.sqrt(32))),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_elementwise_schemes_follow_their_distribution(
    scheme: str, dist: object, seed: int
) -> None:
    tensor = torch.empty(64, 32)
    torch.manual_seed(seed)
    schemes.apply(parse_scheme(scheme), tensor)
    pvalue = sps.kstest(tensor.flatten().double().numpy(), dist.cdf).pvalue  # type: ignore[attr-defined]
    assert pvalue > P_MIN
    # The closed-form moments initcli reports agree with scipy's.
    exp = schemes.expectation(parse_scheme(scheme), tensor)
    assert exp.mean == pytest.approx(dist.mean(), abs=1e-12)  # type: ignore[attr-defined]
    assert exp.var == pytest.approx(dist.var(), rel=1e-9)  # type: ignore[attr-defined]


@pytest.mark.parametrize("shape", [(64, 32), (256, 64), (16, 8, 3, 3)], ids=str)
@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_orthogonal_rows_or_columns_are_orthonormal(shape: tuple[int, ...], gain: float) -> None:
    tensor = torch.empty(shape)
    torch.manual_seed(0)
    schemes.apply(parse_scheme(f"orthogonal:gain={gain}"), tensor)
    flat = tensor.reshape(shape[0], -1).double() / gain
    rows, cols = flat.shape
    gram = flat @ flat.T if rows <= cols else flat.T @ flat
    assert torch.allclose(gram, torch.eye(min(rows, cols), dtype=torch.float64), atol=1e-5)


# ---------------------------------------------------------------- tolerance


def test_tolerance_shrinks_like_one_over_sqrt_n() -> None:
    m1, v1 = tolerance(10_000, 0.5, 3.0)
    m4, v4 = tolerance(40_000, 0.5, 3.0)
    assert m4 / m1 == pytest.approx(0.5)
    assert v4 / v1 == pytest.approx(0.5, rel=1e-3)
    widths = [tolerance(n, 0.5, 3.0) for n in (2, 5, 20, 1000, 10**6)]
    assert all(a[0] > b[0] and a[1] > b[1] for a, b in itertools.pairwise(widths))


def test_tolerance_formula() -> None:
    sigma2, k, n = 0.04, 1.8, 50
    mean_tol, var_tol = tolerance(n, sigma2, k)
    assert mean_tol == pytest.approx(stats.Z * math.sqrt(sigma2 / n))
    assert var_tol == pytest.approx(stats.Z * math.sqrt(sigma2**2 * (k - (n - 3) / (n - 1)) / n))
    # Normal, large n: Var(s^2) -> 2 sigma^4 / (n - 1).
    assert tolerance(10**6, 1.0, 3.0)[1] == pytest.approx(stats.Z * math.sqrt(2 / (10**6 - 1)))


def test_tolerance_edge_cases() -> None:
    assert tolerance(1, 1.0, 3.0) == (stats.Z, math.inf)
    assert tolerance(2, 1.0, 1.0)[1] > 0  # the smallest possible kurtosis still has a band
    with pytest.raises(ValueError):
        tolerance(0, 1.0, 3.0)
    with pytest.raises(ValueError):
        tolerance(10, -1.0, 3.0)


def test_status_values_are_the_json_strings() -> None:
    assert [s.value for s in Status] == [
        "ok",
        "off",
        "symmetric",
        "unknown",
        "custom",
        "uninitialized",
    ]
    assert f"{Status.SYMMETRIC}" == "symmetric"


# Mutation testing (docs/mutation.md) found these claims untested: every field of the NaN/Inf and
# constant returns, one-sided infinities, the exact boundaries of the bands, kurtosis reaching
# the variance band, the error messages.


def test_meta_tensor_message_in_full() -> None:
    with pytest.raises(ValueError, match=r"^tensor_stats needs a tensor with data; this one is "
                       r"on the meta device$"):  # fmt: skip
        tensor_stats(torch.empty(3, device="meta"))


def test_one_infinity_with_finite_minimum_is_counted() -> None:
    s = tensor_stats(torch.tensor([1.0, math.inf, 0.0]))
    assert (s.nonfinite, s.min, s.max, s.zeros) == (1, 0.0, math.inf, 1)
    assert math.isnan(s.mean) and math.isnan(s.var) and math.isnan(s.std)  # type: ignore[arg-type]
    assert (s.m3, s.m4) == (None, None)
    assert s.sample is not None and s.sample.tolist() == [1.0, math.inf, 0.0]


def test_nan_stats_keep_their_zeros_and_sample() -> None:
    s = tensor_stats(torch.tensor([0.0, math.nan, 1.0, 0.0]))
    assert (s.nonfinite, s.zeros, s.m3, s.m4) == (1, 2, None, None)
    assert s.sample is not None and s.sample.numel() == 4


def test_constant_stats_have_zero_moments_zeros_and_sample() -> None:
    s = tensor_stats(torch.zeros(3, 5))
    assert (s.mean, s.var, s.std, s.m3, s.m4, s.zeros) == (0.0, 0.0, 0.0, 0.0, 0.0, 15)
    assert s.sample is not None and s.sample.tolist() == [0.0] * 15
    s = tensor_stats(torch.full((4,), 0.5))
    assert (s.mean, s.m3, s.m4, s.zeros) == (0.5, 0.0, 0.0, 0)


def test_a_single_non_dense_row_is_walked() -> None:
    # Shape (1, 4, 3), strides (24, 6, 2): no flat view; the row walk starts at row 0.
    t = torch.arange(24, dtype=torch.float32).reshape(1, 4, 6)[:, :, ::2]
    assert stats._flat_view(t) is None
    s = tensor_stats(t)
    assert (s.numel, s.mean, s.min, s.max) == (12, 11.0, 0.0, 22.0)


def test_transposed_and_channels_last_tensors_get_a_flat_view_without_a_copy() -> None:
    t = torch.randn(3, 4, 5, 6)
    for view in (t.mT, t.permute(3, 1, 0, 2), t.to(memory_format=torch.channels_last)):
        flat = stats._flat_view(view)
        assert flat is not None and flat.numel() == view.numel()
        assert flat.untyped_storage().data_ptr() == view.untyped_storage().data_ptr()


def test_tolerance_messages_and_a_zero_variance() -> None:
    with pytest.raises(ValueError, match=r"^tolerance needs n >= 1 samples, got 0$"):
        tolerance(0, 1.0, 3.0)
    with pytest.raises(ValueError, match=r"^expected_var must be >= 0, got -1.0$"):
        tolerance(5, -1.0, 3.0)
    assert tolerance(5, 0.0, 3.0) == (0.0, 0.0)


def _summary(numel: int, mean: float, var: float) -> TensorStats:
    return TensorStats(numel, mean, var, math.sqrt(var), mean - 3.0, mean + 3.0, 0)


def test_kurtosis_sets_the_variance_band() -> None:
    # n = 100, variance 1: the band's half-width is 0.711 for normal draws (kurtosis 3), 0.453
    # for uniform ones (1.8), 0.869 at kurtosis 4.
    assert judge(_summary(100, 0.0, 1.6), 2, 0.0, 1.0, None) is Status.OK
    assert judge(_summary(100, 0.0, 1.6), 2, 0.0, 1.0, 1.8) is Status.OFF
    assert judge(_summary(100, 0.0, 1.8), 2, 0.0, 1.0, None) is Status.OFF
    assert judge(_summary(100, 0.0, 1.8), 2, 0.0, 1.0, 4.0) is Status.OK


def test_a_nonzero_expected_mean_is_compared_by_difference() -> None:
    assert judge(_summary(100, 1.0, 1.0), 2, 1.0, 1.0, None) is Status.OK
    assert judge(_summary(100, -1.0, 1.0), 2, 1.0, 1.0, None) is Status.OFF


def test_band_edges_are_inside() -> None:
    mean_tol, var_tol = tolerance(100, 1.0, 3.0)
    var = 1.0 + var_tol
    assert abs(var - 1.0) == var_tol  # exactly on the edge in float64
    assert stats.consistent(100, 0.0, var, 0.0, 1.0, None)
    assert stats.consistent(100, mean_tol, 1.0, 0.0, 1.0, None)
    # A constant init: the variance up to 1e-30 and the mean within 1e-6 (relative) are in.
    assert stats.consistent(10, 1e-6, 1e-30, 0.0, 0.0, None)
    assert not stats.consistent(10, 1e-6, 2e-30, 0.0, 0.0, None)
    assert not stats.consistent(10, 2e-6, 0.0, 0.0, 0.0, None)
