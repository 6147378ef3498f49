"""Scheme parsing, expected-variance formulas and the torch.nn.init call behind each scheme."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from initcli.errors import SchemeError
from initcli.init import assign, schemes
from initcli.init.schemes import parse_scheme


@pytest.mark.parametrize(
    ("text", "name"),
    [("xavier", "xavier_uniform"), ("glorot_uniform", "xavier_uniform"),
     ("glorot_normal", "xavier_normal"), ("he_uniform", "kaiming_uniform"),
     ("kaiming", "kaiming_normal"), ("he", "kaiming_normal"), ("he_normal", "kaiming_normal"),
     ("Kaiming-Normal", "kaiming_normal"), (" zeros ", "zeros")],
)  # fmt: skip
def test_aliases_resolve_to_canonical_names(text: str, name: str) -> None:
    assert parse_scheme(text).name == name


def test_every_alias_in_the_registry_resolves() -> None:
    for info in schemes.SCHEMES.values():
        for alias in info.aliases:
            assert parse_scheme(alias).name == info.name


def test_describe_fills_defaults_in_declared_order() -> None:
    assert (
        parse_scheme("kaiming_normal").describe()
        == "kaiming_normal(mode=fan_in, nonlinearity=leaky_relu, a=0)"
    )
    assert (
        parse_scheme("kaiming_normal:nonlinearity=relu,mode=fan_out").describe()
        == "kaiming_normal(mode=fan_out, nonlinearity=relu, a=0)"
    )
    assert parse_scheme("normal:std=0.01").describe() == "normal(mean=0, std=0.01)"
    assert parse_scheme("zeros").describe() == "zeros"
    assert parse_scheme("xavier_normal:gain=tanh").describe() == "xavier_normal(gain=tanh)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty scheme"),
        ("kaimin", "unknown scheme 'kaimin'; did you mean 'kaiming'?"),
        ("nosuch", "run 'initcli schemes' to list them"),
        ("kaiming_normal:moed=fan_in", "has no parameter 'moed'; did you mean 'mode'?"),
        ("kaiming_normal:mode=fan_inn", "mode='fan_inn' is not allowed; did you mean 'fan_in'?"),
        ("kaiming_normal:nonlinearity=swish", "choose one of: linear"),
        ("normal:std=abc", "std must be a number, got 'abc'"),
        ("normal:std=nan", "std must be a finite number"),
        ("kaiming_normal:a=1e154", "a=1e154 is out of range"),
        ("normal:std=-1", "std must be ≥ 0"),
        ("normal:std", "'std' is not key=value"),
        ("normal:", "nothing after ':'"),
        ("normal:std=1,std=2", "parameter 'std' is given twice"),
        ("zeros:val=1", "zeros takes no parameters"),
        ("uniform:a=1,b=0", "a must not exceed b"),
        ("trunc_normal:std=0", "std must be > 0"),
        ("xavier_uniform:gain=fast", "a number or a nonlinearity name"),
    ],
)
def test_bad_scheme_strings_say_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(SchemeError) as err:
        parse_scheme(text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("nonlinearity", schemes.NONLINEARITIES)
@pytest.mark.parametrize("slope", [None, 0.0, 0.2, math.sqrt(5)])
def test_gain_squared_matches_calculate_gain(nonlinearity: str, slope: float | None) -> None:
    expected = nn.init.calculate_gain(nonlinearity, slope) ** 2  # type: ignore[arg-type]
    assert schemes.gain_squared(nonlinearity, slope) == pytest.approx(expected, rel=1e-12)


def _expect(text: str, shape: tuple[int, ...]) -> schemes.Expectation:
    return schemes.expectation(parse_scheme(text), torch.empty(shape))


def test_expected_variance_formulas() -> None:
    gain_relu = math.sqrt(2.0)
    gain_leaky0 = math.sqrt(2.0)
    gain_tanh = 5.0 / 3.0
    # (out, in) = (64, 32): fan_in 32, fan_out 64; a conv (16, 8, 3, 3): fan_in 72, fan_out 144.
    assert _expect("kaiming_normal", (64, 32)).var == pytest.approx(gain_leaky0**2 / 32)
    assert _expect("kaiming_uniform:nonlinearity=relu,mode=fan_out", (64, 32)).var == pytest.approx(
        gain_relu**2 / 64
    )
    assert _expect(
        "kaiming_normal:nonlinearity=leaky_relu,a=0.2", (16, 8, 3, 3)
    ).var == pytest.approx(2.0 / (1 + 0.2**2) / 72)
    assert _expect("xavier_uniform", (64, 32)).var == pytest.approx(2.0 / 96)
    assert _expect("xavier_normal:gain=tanh", (16, 8, 3, 3)).var == pytest.approx(
        2 * gain_tanh**2 / (72 + 144)
    )
    assert _expect("xavier_normal:gain=2", (64, 32)).var == pytest.approx(8.0 / 96)
    assert _expect("orthogonal:gain=2", (64, 32)).var == pytest.approx(4.0 / 64)
    assert _expect("orthogonal", (16, 8, 3, 3)).var == pytest.approx(1.0 / 72)
    assert _expect("lecun_normal", (64, 32)).var == pytest.approx(1.0 / 32)
    assert _expect("uniform:a=-1,b=3", (5,)).var == pytest.approx(16.0 / 12)
    assert _expect("uniform:a=-1,b=3", (5,)).mean == pytest.approx(1.0)
    assert _expect("normal:mean=0.5,std=0.1", (5,)).var == pytest.approx(0.01)
    assert _expect("normal:mean=0.5,std=0.1", (5,)).mean == pytest.approx(0.5)
    assert _expect("constant:val=0.1", (3, 3)) == schemes.Expectation("constant", 0.1, 0.0)
    assert _expect("ones", (3,)) == schemes.Expectation("ones", 1.0, 0.0)
    # A fan-based scheme has nothing to say about a 1-D tensor.
    assert _expect("kaiming_normal", (5,)).var is None


def test_truncated_normal_moments_match_the_closed_form() -> None:
    # Symmetric window [-2, 2] around 0 with std 1: the textbook value 0.7737413.
    mean, var = schemes.trunc_normal_shape(0.0, 1.0, -2.0, 2.0)[:2]
    assert mean == pytest.approx(0.0, abs=1e-12)
    assert var == pytest.approx(0.7737413, rel=1e-6)
    # One-sided truncation [0, inf): half-normal, mean sqrt(2/pi), var 1 - 2/pi.
    mean, var = schemes.trunc_normal_shape(0.0, 1.0, 0.0, math.inf)[:2]
    assert mean == pytest.approx(math.sqrt(2 / math.pi))
    assert var == pytest.approx(1 - 2 / math.pi)
    # A wide window is the plain normal.
    assert schemes.trunc_normal_shape(1.0, 0.5, -100, 100)[:2] == pytest.approx((1.0, 0.25))


def test_truncated_normal_samples_match_the_formula() -> None:
    torch.manual_seed(0)
    t = torch.empty(400_000)
    scheme = parse_scheme("trunc_normal:mean=0.2,std=1,a=-1,b=2")
    schemes.apply(scheme, t)
    exp = schemes.expectation(scheme, t)
    assert float(t.double().mean()) == pytest.approx(exp.mean, abs=0.005)
    assert float(t.double().var()) == pytest.approx(exp.var, rel=0.01)


@pytest.mark.parametrize("info", list(schemes.SCHEMES.values()), ids=lambda i: i.name)
def test_apply_uses_torch_init_exactly(info: schemes.SchemeInfo) -> None:
    """Same seed, same values as calling torch.nn.init directly."""
    if info.name in ("default", "auto"):
        _check_per_parameter_scheme(info.name)
        return
    scheme = parse_scheme(info.name)
    ours = torch.empty(24, 12)
    torch.manual_seed(5)
    schemes.apply(scheme, ours)
    theirs = torch.empty(24, 12)
    torch.manual_seed(5)
    init = nn.init
    direct = {
        "zeros": lambda: init.zeros_(theirs),
        "ones": lambda: init.ones_(theirs),
        "constant": lambda: init.constant_(theirs, 0.0),
        "uniform": lambda: init.uniform_(theirs, 0.0, 1.0),
        "normal": lambda: init.normal_(theirs, 0.0, 1.0),
        "trunc_normal": lambda: init.trunc_normal_(theirs, 0.0, 1.0, -2.0, 2.0),
        "xavier_uniform": lambda: init.xavier_uniform_(theirs),
        "xavier_normal": lambda: init.xavier_normal_(theirs),
        "kaiming_uniform": lambda: init.kaiming_uniform_(theirs),
        "kaiming_normal": lambda: init.kaiming_normal_(theirs),
        "orthogonal": lambda: init.orthogonal_(theirs),
        "lecun_normal": lambda: init.normal_(theirs, 0.0, 1.0 / math.sqrt(12)),
    }
    direct[info.name]()
    if info.name == "lecun_normal":
        # LeCun normal is kaiming_normal_(fan_in, linear): std 1/sqrt(fan_in), same draws.
        assert torch.allclose(ours, theirs, rtol=1e-6, atol=0)
    else:
        assert torch.equal(ours, theirs)


def _check_per_parameter_scheme(name: str) -> None:
    """default and auto pick per parameter, so they are checked on a model, not one tensor."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 24), nn.Linear(24, 6))
    built = {k: v.clone() for k, v in model.state_dict().items()}
    if name == "default":
        # default draws nothing: every value stays as the constructors drew it, and each
        # expectation is torch's own (U(±1/√fan_in): variance 1/(3·fan_in)).
        found = assign.initialize(model, parse_scheme("default"), parse_scheme("default"), 5)
        assert all(torch.equal(v, built[k]) for k, v in model.state_dict().items())
        assert found["0.weight"].init == "kaiming_uniform(a=√5)"
        assert found["0.weight"].var == pytest.approx(1 / 36)
        assert found["1.bias"].var == pytest.approx(1 / 72)
        return
    # auto: each weight gets its chosen scheme (xavier_normal where none was chosen), in
    # named_parameters order after the seed; the biases get --bias-init (zeros: no draws).
    choices = {"0.weight": (parse_scheme("kaiming_normal"), "ReLU after it")}
    found = assign.initialize(model, parse_scheme("auto"), parse_scheme("zeros"), 5, choices)
    first, second = torch.empty(24, 12), torch.empty(6, 24)
    torch.manual_seed(5)
    nn.init.kaiming_normal_(first)
    nn.init.xavier_normal_(second)
    assert torch.equal(model[0].weight, first) and torch.equal(model[1].weight, second)
    assert not model[0].bias.any() and not model[1].bias.any()
    assert found["0.weight"].init == "kaiming_normal(leaky_relu, a=0) ← ReLU after it"
    assert found["1.weight"].init == "xavier_normal ← no activation seen after it"
    assert (found["0.weight"].var, found["1.weight"].var) == pytest.approx((2 / 12, 2 / 30))


def test_fans_are_torchs_and_none_below_two_dims() -> None:
    for shape in [(5, 4), (16, 8, 3, 3), (8, 4, 5), (1, 1, 7), (3, 2, 2, 2, 2)]:
        t = torch.empty(shape)
        assert schemes.fans(t) == nn.init._calculate_fan_in_and_fan_out(t)
    assert schemes.fans(torch.empty(5)) is None
    assert schemes.fans(torch.tensor(1.0)) is None
