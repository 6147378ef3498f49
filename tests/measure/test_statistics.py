"""Statistical self-tests: every random scheme against its distribution, and the ok/off verdict."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats as sps
from torch import nn

from initcli.init import schemes
from initcli.init.schemes import parse_scheme
from initcli.measure.stats import judge, tensor_stats

# p-value floor for the Kolmogorov–Smirnov tests: seeded, so a pass is a pass, and low enough that
# a correct implementation fails one shape in ten thousand.
P_MIN = 1e-4
SHAPES = [(64, 32), (512, 16), (16, 512), (32, 16, 3, 3), (8, 4, 5, 5), (1024, 1024)]


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


@pytest.mark.parametrize("shape", SHAPES, ids=str)
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


def _verdict(shape: tuple[int, ...], std: float, expected_var: float, seed: int) -> str:
    gen = torch.Generator().manual_seed(seed)
    tensor = torch.randn(shape, generator=gen) * std
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


def test_wrong_fan_mode_is_off() -> None:
    """kaiming_normal with fan_out on a (256, 64) weight, judged against the fan_in promise."""
    flagged = 0
    for seed in range(200):
        tensor = torch.empty(256, 64)
        torch.manual_seed(seed)
        nn.init.kaiming_normal_(tensor, mode="fan_out")
        right = schemes.expectation(parse_scheme("kaiming_normal:mode=fan_out"), tensor)
        wrong = schemes.expectation(parse_scheme("kaiming_normal:mode=fan_in"), tensor)
        stats = tensor_stats(tensor)
        assert judge(stats, 2, right.mean, right.var, right.kurtosis) == "ok"
        flagged += judge(stats, 2, wrong.mean, wrong.var, wrong.kurtosis) == "off"
    assert flagged == 200
