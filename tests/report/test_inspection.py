"""Every scheme × every sample model: fans, expected variance, observed statistics, seeding."""

from __future__ import annotations

import math

import pytest
import torch
from sample_targets import SAMPLES
from torch import nn

from initcli import report
from initcli.errors import ArgError, SchemeError
from initcli.init import norms, schemes
from initcli.model import resolve

# auto picks a different scheme per weight; tests/init/test_auto.py checks what it picks.
NAMED = [name for name in schemes.SCHEMES if name not in ("default", "auto")]
CONSTANT = {"zeros": 0.0, "ones": 1.0, "constant": 0.0}


def formula_var(name: str, fan_in: int, fan_out: int, shape: tuple[int, ...]) -> float:
    """docs/contract/schemes.md's expected variance, written out apart from initcli.init.schemes."""
    leaky0_gain2 = 2.0  # calculate_gain('leaky_relu', 0) ** 2, torch's kaiming default
    rows = shape[0]
    cols = math.prod(shape) // rows
    return {
        "xavier_uniform": 2.0 / (fan_in + fan_out),
        "xavier_normal": 2.0 / (fan_in + fan_out),
        "kaiming_uniform": leaky0_gain2 / fan_in,
        "kaiming_normal": leaky0_gain2 / fan_in,
        "orthogonal": 1.0 / max(rows, cols),
        "lecun_normal": 1.0 / fan_in,
        "uniform": 1.0 / 12,
        "normal": 1.0,
        "trunc_normal": 0.7737413,  # N(0,1) truncated to [-2, 2]
        "zeros": 0.0,
        "ones": 0.0,
        "constant": 0.0,
    }[name]


def _norm_param(model: nn.Module, name: str) -> bool:
    owner = schemes.owners(model)
    params = dict(model.named_parameters())
    return norms.norm_of(owner[id(params[name])][1]) is not None


@pytest.mark.parametrize("target", SAMPLES)
@pytest.mark.parametrize("scheme", NAMED)
def test_scheme_on_sample(target: str, scheme: str) -> None:
    result = report.inspect(target, init=scheme, seed=0)
    model = resolve.resolve(target).build()
    named = dict(model.named_parameters())
    assert [p.name for p in result.params] == list(named)
    for p in result.params:
        tensor = named[p.name]
        assert p.shape == tuple(tensor.shape)
        assert p.numel == tensor.numel()
        if tensor.dim() >= 2:
            assert (p.fan_in, p.fan_out) == nn.init._calculate_fan_in_and_fan_out(tensor)
        else:
            assert (p.fan_in, p.fan_out) == (None, None)
        if _norm_param(model, p.name):
            assert (p.expected_mean, p.expected_var) == (
                1.0 if p.name.endswith("weight") else 0.0,
                0.0,
            )
            assert p.status == "ok"
            continue
        if tensor.dim() < 2:  # biases: --bias-init defaults to zeros
            assert (p.init, p.expected_mean, p.expected_var, p.mean, p.var) == (
                "zeros",
                0.0,
                0.0,
                0.0,
                0.0,
            )
            assert p.status == "ok"
            continue
        assert p.init == scheme
        assert p.fan_in is not None and p.fan_out is not None
        assert p.expected_var == pytest.approx(
            formula_var(scheme, p.fan_in, p.fan_out, p.shape), rel=1e-6
        )
        if scheme in CONSTANT:
            assert p.status == "symmetric"
            assert p.var == 0.0 and p.mean == CONSTANT[scheme]
        else:
            assert p.status == "ok", (p.name, p.var, p.expected_var)


@pytest.mark.parametrize("target", SAMPLES)
def test_default_init_on_sample(target: str) -> None:
    result = report.inspect(target)
    assert result.scheme == "default"
    for p in result.params:
        assert p.status == "ok", (p.name, p.init, p.var, p.expected_var)


@pytest.mark.parametrize(
    "target",
    [
        "sample_models.lenet:LeNet5",
        "sample_models/mlp.yaml",
        "sample_models.transformer:TinyTransformer",
    ],
)
@pytest.mark.parametrize(
    "scheme",
    [
        "kaiming_normal:nonlinearity=relu",
        "xavier_uniform",
        "orthogonal:gain=2",
        "trunc_normal:std=0.02",
    ],
)
def test_seed_reproduces_the_plain_pytorch_script(target: str, scheme: str) -> None:
    """inspect's statistics equal those of: build, manual_seed(N), torch.nn.init per parameter."""
    result = report.inspect(target, init=scheme, bias_init="normal:std=0.5", seed=42)
    model = resolve.resolve(target).build()
    parsed = schemes.parse_scheme(scheme)
    torch.manual_seed(42)
    for name, p in model.named_parameters():
        if _norm_param(model, name):
            nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
        elif p.dim() >= 2:
            schemes.apply(parsed, p)
        else:
            nn.init.normal_(p, 0.0, 0.5)
    for row in result.params:
        tensor = dict(model.named_parameters())[row.name].detach().double()
        assert row.min == tensor.min().item()
        assert row.max == tensor.max().item()
        assert row.mean == pytest.approx(tensor.mean().item(), rel=1e-12, abs=1e-15)


def test_default_seed_goes_before_the_build() -> None:
    result = report.inspect("sample_models.lenet:LeNet5", seed=3)
    torch.manual_seed(3)
    from sample_models.lenet import LeNet5

    model = LeNet5()
    for row in result.params:
        tensor = dict(model.named_parameters())[row.name].detach().double()
        assert (row.min, row.max) == (tensor.min().item(), tensor.max().item())


def test_spec_init_is_used_without_init_option(tmp_path: pytest.TempPathFactory) -> None:
    spec = tmp_path / "s.yaml"  # type: ignore[operator]
    spec.write_text("input: 8\ninit: xavier_normal\nlayers:\n  - {units: 4, activation: tanh}\n")
    result = report.inspect(str(spec))
    assert result.scheme == "xavier_normal(gain=1)"
    assert result.params[0].expected_var == pytest.approx(2 / 12)
    # --init wins over the spec's init:
    assert report.inspect(str(spec), init="zeros").scheme == "zeros"


def test_bias_init_rules() -> None:
    with pytest.raises(SchemeError, match="--bias-init needs a named --init"):
        report.inspect("sample_models/mlp.yaml", bias_init="normal")
    with pytest.raises(SchemeError, match="biases are 1-D"):
        report.inspect("sample_models/mlp.yaml", init="xavier", bias_init="kaiming_normal")
    with pytest.raises(ArgError, match="--seed -1 is out of range"):
        report.inspect("sample_models/mlp.yaml", seed=-1)
    result = report.inspect("sample_models/mlp.yaml", init="xavier", bias_init="constant:val=0.1")
    bias = result.params[1]
    assert (bias.init, bias.mean, bias.expected_mean, bias.status) == (
        "constant",
        pytest.approx(0.1),
        0.1,
        "ok",
    )


def test_counts_ride_along_with_inspect() -> None:
    result = report.inspect("sample_models.tied_lm:TiedLM", init="normal:std=0.02")
    assert result.counts.counts.total == 68160
    assert [p.name for p in result.params] == ["embed.weight", "hidden.weight", "hidden.bias"]


def test_scaled_default_is_custom_with_what_it_looks_like() -> None:
    """A model whose constructor scales its weights: not torch's default, so `custom`
    (docs/contract/statuses.md:
    never `off` under default), and identified as the uniform it now is, U(±1.5/√256)."""
    target = "tests/models_for_tests.py:ScaledLinear"
    result = report.inspect(target)
    weight = result.params[0]
    assert weight.status == "custom"
    assert weight.var == pytest.approx(weight.expected_var * 2.25, rel=0.1)  # type: ignore[operator]
    assert weight.fit is not None and weight.fit.family == "uniform"
    assert weight.fit.bound == pytest.approx(1.5 / 16, rel=0.01)
    assert weight.looks_like == "uniform(±0.0937)"


def test_scheme_rows_cover_the_registry() -> None:
    rows = report.scheme_rows()
    assert [r.name for r in rows] == list(schemes.SCHEMES)
    kaiming = next(r for r in rows if r.name == "kaiming_normal")
    assert kaiming.aliases == ("kaiming", "he", "he_normal")
    assert kaiming.params == ("mode=fan_in", "nonlinearity=leaky_relu", "a=0")
    assert kaiming.expected_var == "gain² / fan"


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_the_api_bounds_the_seed_as_the_cli_does(seed: int) -> None:
    # One check (limits.check_seed) on both paths: torch.manual_seed takes 0 ≤ seed < 2**64.
    import initcli
    from initcli.report.baseline import snapshot
    from initcli.report.sweeping import sweep_report

    message = f"--seed {seed} is out of range; give a seed from 0 to {2**64 - 1}"
    target = "sample_models/mlp.yaml"
    with pytest.raises(ArgError, match=message):
        initcli.inspect(target, seed=seed)
    with pytest.raises(ArgError, match=message):
        initcli.probe_report(target, ["kaiming_normal"], seed=seed)
    with pytest.raises(ArgError, match=message):
        sweep_report(target, ["kaiming_normal"], "layers.0.units=4,8", seed=seed)
    with pytest.raises(ArgError, match=message):
        snapshot([target], stats=True, seed=seed)


def test_biases_kept_at_default_follow_the_seed() -> None:
    # docs/contract/schemes.md: torch.manual_seed(N); build; torch.manual_seed(N); the scheme's
    # calls. The biases --bias-init default keeps are the seeded build's, whatever ran before.
    target = "sample_models/mlp.yaml"
    runs = []
    for noise in (1, 2):
        torch.manual_seed(noise)
        runs.append(report.inspect(target, init="kaiming_normal", bias_init="default", seed=3))
    assert runs[0] == runs[1]
    torch.manual_seed(3)
    model = resolve.resolve(target).build()
    torch.manual_seed(3)
    for param in model.parameters():
        if param.dim() >= 2:
            nn.init.kaiming_normal_(param)
    for p in runs[0].params:
        tensor = dict(model.named_parameters())[p.name].detach().double()
        assert p.mean == pytest.approx(float(tensor.mean()), rel=1e-9, abs=1e-12), p.name
        assert (p.init == "kaiming_normal") == (tensor.dim() >= 2), (p.name, p.init)


def test_probe_with_biases_kept_at_default_is_reproducible() -> None:
    runs = []
    for noise in (1, 2):
        torch.manual_seed(noise)
        runs.append(
            report.probe_report("sample_models/mlp.yaml", ["kaiming_normal"], bias_init="default")
        )
    assert runs[0] == runs[1]
