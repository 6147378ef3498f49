"""The reports behind each command: load, build, initialize, measure and count — as dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from initcli import loading, schemes, stats
from initcli.counting import Counts, count_model
from initcli.errors import SchemeError, TargetError
from initcli.spec import parameter_count


@dataclass(frozen=True)
class ParamReport:
    """One parameter's shape, fans and statistics against what its init implies."""

    name: str
    module: str
    shape: tuple[int, ...] | None  # None: an uninitialized lazy parameter
    numel: int | None
    fan_in: int | None
    fan_out: int | None
    mean: float | None
    var: float | None
    std: float | None
    min: float | None
    max: float | None
    expected_mean: float | None
    expected_var: float | None
    init: str
    requires_grad: bool
    dtype: str
    status: str


@dataclass(frozen=True)
class CountReport:
    target: str
    counts: Counts


@dataclass(frozen=True)
class InspectReport:
    target: str
    scheme: str
    seed: int
    params: tuple[ParamReport, ...]
    counts: CountReport


@dataclass(frozen=True)
class SchemeRow:
    name: str
    aliases: tuple[str, ...]
    params: tuple[str, ...]  # "key=default"
    values: str
    expected_var: str


def _measure(
    name: str, module: nn.Module, param: torch.Tensor, exp: schemes.Expectation
) -> ParamReport:
    dtype = str(param.dtype).removeprefix("torch.")
    if schemes.is_uninitialized(param):
        return ParamReport(
            name,
            type(module).__name__,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            exp.init,
            param.requires_grad,
            dtype,
            stats.Status.UNKNOWN.value,
        )
    measured = stats.tensor_stats(param.detach())
    fan = schemes.fans(param)
    status = stats.judge(measured, param.dim(), exp.mean, exp.var, exp.kurtosis)
    return ParamReport(
        name=name,
        module=type(module).__name__,
        shape=tuple(param.shape),
        numel=param.numel(),
        fan_in=fan[0] if fan else None,
        fan_out=fan[1] if fan else None,
        mean=measured.mean,
        var=measured.var,
        std=measured.std,
        min=measured.min,
        max=measured.max,
        expected_mean=exp.mean,
        expected_var=exp.var,
        init=exp.init,
        requires_grad=param.requires_grad,
        dtype=dtype,
        status=status.value,
    )


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _check_spec_fits(source: loading.ModelSource, copies: int, hint: str) -> None:
    """Refuse to build a spec that cannot fit in memory, before building a single layer."""
    if source.spec is None:
        return
    params = parameter_count(source.spec)
    needed = params * 4 * copies  # float32
    available = _available_bytes()
    if available is not None and needed > available * 0.8:
        raise TargetError(
            f"{source.target} has {params:,} parameters: building it needs about "
            f"{needed / 2**30:,.1f} GiB, more than the {available / 2**30:,.1f} GiB free; {hint}"
        )


def count(target: str, args: Mapping[str, object] | None = None) -> CountReport:
    """`initcli count`: build TARGET and count its parameters."""
    source = loading.resolve(target, args)
    _check_spec_fits(source, copies=1, hint="make the spec smaller")
    return CountReport(source.target, count_model(source.build()))


def resolve_schemes(
    init: str | None, bias_init: str | None, spec_init: str | None
) -> tuple[schemes.Scheme, schemes.Scheme]:
    """The weight and bias schemes: --init, else the spec's init:, else default."""
    weight = schemes.parse_scheme(init or spec_init or "default")
    if weight.is_default:
        if bias_init is not None and not schemes.parse_scheme(bias_init).is_default:
            raise SchemeError(
                "--bias-init needs a named --init: with default, the modules' own "
                "constructors set the biases (add e.g. --init kaiming_normal)"
            )
        return weight, weight
    bias = schemes.parse_scheme(bias_init or "zeros")
    if bias.info.min_dims > 1:
        raise SchemeError(
            f"--bias-init {bias.name} needs ≥2-D tensors and biases are 1-D; use "
            "zeros, ones, constant, uniform, normal, trunc_normal or default"
        )
    return weight, bias


def inspect(
    target: str,
    init: str | None = None,
    bias_init: str | None = None,
    seed: int = 0,
    args: Mapping[str, object] | None = None,
) -> InspectReport:
    """`initcli inspect`: build TARGET, apply the scheme under the seeding contract, measure."""
    if seed < 0:
        raise SchemeError(f"--seed must be ≥ 0, got {seed}")
    source = loading.resolve(target, args)
    _check_spec_fits(source, copies=1, hint="'initcli count' counts it without inspecting")
    weight, bias = resolve_schemes(init, bias_init, source.spec.init if source.spec else None)
    if weight.is_default:
        # The constructors are the init, so the seed goes before the build (DESIGN §4).
        torch.manual_seed(seed)
        model = source.build()
        expected = schemes.default_expectations(model)
    else:
        model = source.build()
        expected = schemes.initialize(model, weight, bias, seed)
    held = schemes.owners(model)
    params = tuple(
        _measure(name, held[id(param)][1], param, expected[name])
        for name, param in model.named_parameters()
    )
    return InspectReport(
        source.target,
        weight.describe(),
        seed,
        params,
        CountReport(source.target, count_model(model)),
    )


def scheme_rows() -> tuple[SchemeRow, ...]:
    """`initcli schemes`: every scheme with its aliases, parameters and formulas."""
    return tuple(
        SchemeRow(
            info.name,
            info.aliases,
            tuple(f"{p.name}={schemes.format_value(p.default)}" for p in info.params),
            info.values,
            info.expected_var,
        )
        for info in schemes.SCHEMES.values()
    )
