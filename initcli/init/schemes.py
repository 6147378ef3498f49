"""Init schemes: parse `name:key=value`, apply them with torch.nn.init, say what each implies."""

from __future__ import annotations

import difflib
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy
import torch
from torch import nn

from initcli.errors import SchemeError

# Non-excess kurtosis of the distributions a scheme draws from: it sets how much a sample variance
# may wander (stats.tolerance), so a uniform init gets a tighter band than a normal one.
KURTOSIS_UNIFORM = 1.8
KURTOSIS_NORMAL = 3.0

# What torch.nn.init.calculate_gain accepts as a nonlinearity name.
NONLINEARITIES = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu",
)  # fmt: skip
FAN_MODES = ("fan_in", "fan_out")
MAX_PARAM = 1e12
# calculate_gain's closed forms, as `initcli gain` prints them.
GAIN_FORMULAS = {
    "linear": "1", "conv1d": "1", "conv2d": "1", "conv3d": "1", "conv_transpose1d": "1",
    "conv_transpose2d": "1", "conv_transpose3d": "1", "sigmoid": "1", "tanh": "5/3",
    "relu": "√2", "leaky_relu": "√(2/(1+slope²))", "selu": "3/4",
}  # fmt: skip

ParamValue = float | str


@dataclass(frozen=True)
class SchemeParam:
    """One parameter a scheme takes: `kind` is "number", "choice" or "gain" (a number or a name)."""

    name: str
    kind: str
    default: ParamValue
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class SchemeInfo:
    """A registry entry: how the scheme is named, parameterized and what it promises."""

    name: str
    aliases: tuple[str, ...]
    params: tuple[SchemeParam, ...]
    values: str
    expected_var: str
    # Fan-based schemes and orthogonal need a weight matrix; torch raises for fewer dimensions.
    min_dims: int = 0


@dataclass(frozen=True)
class Scheme:
    """A parsed scheme: canonical name plus every parameter resolved (defaults filled in)."""

    name: str
    params: tuple[tuple[str, ParamValue], ...] = ()

    def get(self, key: str) -> ParamValue:
        for name, value in self.params:
            if name == key:
                return value
        raise KeyError(key)

    def number(self, key: str) -> float:
        value = self.get(key)
        assert isinstance(value, float)
        return value

    def text(self, key: str) -> str:
        value = self.get(key)
        assert isinstance(value, str)
        return value

    @property
    def info(self) -> SchemeInfo:
        return SCHEMES[self.name]

    @property
    def is_default(self) -> bool:
        return self.name == "default"

    def describe(self) -> str:
        """E.g. `kaiming_normal(mode=fan_in, nonlinearity=leaky_relu, a=0)`."""
        if not self.params:
            return self.name
        inner = ", ".join(f"{key}={format_value(value)}" for key, value in self.params)
        return f"{self.name}({inner})"


@dataclass(frozen=True)
class Expectation:
    """What an applied init implies for one tensor; None where no formula is known."""

    init: str
    mean: float | None = None
    var: float | None = None
    kurtosis: float | None = None
    notes: tuple[str, ...] = field(default=())


UNKNOWN = Expectation(init="unknown")


def format_value(value: ParamValue) -> str:
    return value if isinstance(value, str) else f"{value:g}"


# A gain is a number or a nonlinearity name, turned into calculate_gain (the schemes legend).
_GAIN = SchemeParam("gain", "gain", 1.0)
_KAIMING_PARAMS = (
    SchemeParam("mode", "choice", "fan_in", FAN_MODES),
    SchemeParam("nonlinearity", "choice", "leaky_relu", NONLINEARITIES),
    SchemeParam("a", "number", 0.0),  # leaky_relu's negative slope
)

SCHEMES: dict[str, SchemeInfo] = {
    info.name: info
    for info in (
        SchemeInfo("default", (), (), "what each module's constructor does",
                   "per module type, e.g. Linear 1/(3·fan_in)"),
        SchemeInfo("zeros", (), (), "0", "0"),
        SchemeInfo("ones", (), (), "1", "0"),
        SchemeInfo("constant", (), (SchemeParam("val", "number", 0.0),), "val", "0"),
        SchemeInfo("uniform", (),
                   (SchemeParam("a", "number", 0.0), SchemeParam("b", "number", 1.0)),
                   "U(a, b)", "(b−a)²/12"),
        SchemeInfo("normal", (), (SchemeParam("mean", "number", 0.0),
                                  SchemeParam("std", "number", 1.0)),
                   "N(mean, std²)", "std²"),
        SchemeInfo("trunc_normal", (), (SchemeParam("mean", "number", 0.0),
                                        SchemeParam("std", "number", 1.0),
                                        SchemeParam("a", "number", -2.0),
                                        SchemeParam("b", "number", 2.0)),
                   "N(mean, std²) truncated to [a, b]", "truncated-normal variance"),
        SchemeInfo("xavier_uniform", ("xavier", "glorot_uniform"), (_GAIN,),
                   "U(±gain·√(6 / (fan_in + fan_out)))", "2·gain² / (fan_in + fan_out)",
                   min_dims=2),
        SchemeInfo("xavier_normal", ("glorot_normal",), (_GAIN,),
                   "N(0, 2·gain² / (fan_in + fan_out))", "2·gain² / (fan_in + fan_out)",
                   min_dims=2),
        SchemeInfo("kaiming_uniform", ("he_uniform",), _KAIMING_PARAMS,
                   "U(±gain·√(3 / fan))", "gain² / fan", min_dims=2),
        SchemeInfo("kaiming_normal", ("kaiming", "he", "he_normal"), _KAIMING_PARAMS,
                   "N(0, gain² / fan)", "gain² / fan", min_dims=2),
        SchemeInfo("orthogonal", (), (_GAIN,), "(semi-)orthogonal matrix × gain",
                   "gain² / max(rows, cols)", min_dims=2),
        SchemeInfo("lecun_normal", (), (), "N(0, 1 / fan_in)", "1 / fan_in", min_dims=2),
        SchemeInfo("auto", (), (),
                   "per weight, by the activation after it: He, Xavier or LeCun",
                   "that of the scheme chosen", min_dims=2),
    )
}  # fmt: skip

ALIASES: dict[str, str] = {alias: info.name for info in SCHEMES.values() for alias in info.aliases}


def _canonical_name(raw: str) -> str:
    name = raw.strip().lower().replace("-", "_")
    if name in SCHEMES:
        return name
    if name in ALIASES:
        return ALIASES[name]
    known = sorted([*SCHEMES, *ALIASES])
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise SchemeError(f"unknown scheme {raw.strip()!r}; {hint}run 'initcli schemes' to list them")


def _parse_value(scheme: str, spec: SchemeParam, raw: str) -> ParamValue:
    text = raw.strip()
    if spec.kind == "choice":
        if text not in spec.choices:
            close = difflib.get_close_matches(text, spec.choices, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise SchemeError(
                f"{scheme}: {spec.name}={text!r} is not allowed; {hint}"
                f"choose one of: {', '.join(spec.choices)}"
            )
        return text
    try:
        number = float(text)
    except ValueError:
        if spec.kind == "gain" and text in NONLINEARITIES:
            return text
        extra = " or a nonlinearity name (e.g. tanh, relu)" if spec.kind == "gain" else ""
        raise SchemeError(f"{scheme}: {spec.name} must be a number{extra}, got {text!r}") from None
    if not math.isfinite(number):
        raise SchemeError(f"{scheme}: {spec.name} must be a finite number, got {text!r}")
    if abs(number) > MAX_PARAM:
        # Beyond this, gains and variances overflow (a² in calculate_gain) or float32 does.
        raise SchemeError(f"{scheme}: {spec.name}={text} is out of range (|value| ≤ 1e12)")
    return number


def _check_ranges(scheme: Scheme) -> None:
    name = scheme.name
    if name in ("uniform", "trunc_normal") and scheme.number("a") > scheme.number("b"):
        raise SchemeError(
            f"{name}: a must not exceed b (got a={format_value(scheme.get('a'))}, "
            f"b={format_value(scheme.get('b'))})"
        )
    gain = dict(scheme.params).get("gain")
    if isinstance(gain, float) and gain < 0 and name != "orthogonal":
        raise SchemeError(f"{name}: gain must be ≥ 0 (got {gain:g})")
    if name == "normal" and scheme.number("std") < 0:
        raise SchemeError("normal: std must be ≥ 0")
    if name == "trunc_normal":
        if scheme.number("std") <= 0:
            raise SchemeError("trunc_normal: std must be > 0")
        if scheme.number("a") == scheme.number("b"):
            raise SchemeError("trunc_normal: a must be below b")


def parse_scheme(text: str) -> Scheme:
    """Parse `name` or `name:key=value,key=value`; raise SchemeError that says how to fix it."""
    if not text or not text.strip():
        raise SchemeError(
            "empty scheme; give a name such as kaiming_normal (initcli schemes lists them)"
        )
    raw_name, sep, raw_params = text.partition(":")
    name = _canonical_name(raw_name)
    info = SCHEMES[name]
    given: dict[str, ParamValue] = {}
    if sep and raw_params.strip():
        by_name = {p.name: p for p in info.params}
        for item in raw_params.split(","):
            key, eq, value = item.partition("=")
            key = key.strip()
            if not eq or not key:
                raise SchemeError(
                    f"{name}: {item.strip()!r} is not key=value "
                    f"(write e.g. {name}:{_example(info)})"
                )
            if key not in by_name:
                if not info.params:
                    raise SchemeError(f"{name} takes no parameters; drop the ':' and what follows")
                close = difflib.get_close_matches(key, list(by_name), n=1)
                takes = ", ".join(by_name)
                hint = f"did you mean '{close[0]}'? (it takes: {takes})" if close else ""
                raise SchemeError(
                    f"{name} has no parameter {key!r}; {hint or 'it takes: ' + takes}"
                )
            if key in given:
                raise SchemeError(f"{name}: parameter {key!r} is given twice")
            given[key] = _parse_value(name, by_name[key], value)
    elif sep:
        raise SchemeError(
            f"{name}: nothing after ':'; write e.g. {name}:{_example(info)} or just {name}"
        )
    scheme = Scheme(name, tuple((p.name, given.get(p.name, p.default)) for p in info.params))
    _check_ranges(scheme)
    return scheme


def _example(info: SchemeInfo) -> str:
    if not info.params:
        return "(no parameters)"
    return ",".join(f"{p.name}={format_value(p.default)}" for p in info.params)


def gain_of(value: ParamValue, slope: float | None = None) -> float:
    """A gain parameter as a number: numbers pass through, names go through calculate_gain."""
    if isinstance(value, float):
        return value
    return float(nn.init.calculate_gain(value, slope))  # type: ignore[arg-type]


def gain_squared(value: ParamValue, slope: float | None = None) -> float:
    """gain² computed from its closed form, so 2/fan_in comes out as exactly 0.5 for fan_in 4."""
    if isinstance(value, float):
        return value * value
    if value == "relu":
        return 2.0
    if value == "leaky_relu":
        negative_slope = 0.01 if slope is None else slope
        return 2.0 / (1.0 + negative_slope**2)
    if value == "tanh":
        return 25.0 / 9.0
    if value == "selu":
        return 9.0 / 16.0
    return gain_of(value, slope) ** 2  # linear, conv*, sigmoid: gain 1


def fans(tensor: torch.Tensor) -> tuple[int, int] | None:
    """torch's own fan_in/fan_out, or None below 2 dimensions (torch raises there)."""
    if tensor.dim() < 2:
        return None
    fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(tensor)
    return int(fan_in), int(fan_out)


# Gauss-Legendre nodes on [0, 1] for the truncated-normal moments: panels of 32 nodes integrate
# the density to double precision wherever it is (see trunc_normal_shape).
_GL_NODES, _GL_WEIGHTS = numpy.polynomial.legendre.leggauss(32)
_GL_NODES, _GL_WEIGHTS = (_GL_NODES + 1.0) / 2.0, _GL_WEIGHTS / 2.0
_GL_PANELS = 8
# Beyond this drop of the log density from its peak, the remaining mass is < e^-50 of the total.
_TAIL_LOG = 50.0


def trunc_normal_shape(mean: float, std: float, a: float, b: float) -> tuple[float, float, float]:
    """Mean, variance and (non-excess) kurtosis of N(mean, std²) truncated to [a, b] (a < b).

    The closed form divides differences of normal tail probabilities, which cancel to nothing
    (10.0 and 0.0 for [10, 11]) far in a tail or for a narrow window. Here the density is
    integrated directly where it holds its mass: [a, b] clipped to where the log density lies
    within 50 of its peak, in coordinates relative to the window's left end, so no two large
    numbers are subtracted. Accurate to ~1e-12 relative for any bounds (tests: mpmath at 50 digits).

    The kurtosis matters far in a tail: there the truncated normal is nearly exponential
    (kurtosis → 9), and a sample variance wanders three times as far as a normal's.
    """
    alpha, beta = (a - mean) / std, (b - mean) / std
    peak = min(max(0.0, alpha), beta)
    reach = math.sqrt(peak * peak + 2.0 * _TAIL_LOG)
    lo, hi = max(alpha, -reach), min(beta, reach)
    width = (hi - lo) / _GL_PANELS
    u = (numpy.arange(_GL_PANELS)[:, None] + _GL_NODES[None, :]).ravel() * width
    w = numpy.tile(_GL_WEIGHTS, _GL_PANELS)
    # log density relative to the peak, as a product: (x - peak)(x + peak) with x = lo + u.
    density = w * numpy.exp(-0.5 * (lo - peak + u) * (lo + peak + u))
    total = float(density.sum())
    u_mean = float((density * u).sum()) / total
    u_var = float((density * (u - u_mean) ** 2).sum()) / total
    u_m4 = float((density * (u - u_mean) ** 4).sum()) / total
    kurtosis = u_m4 / (u_var * u_var) if u_var > 0 else KURTOSIS_UNIFORM
    return mean + std * (lo + u_mean), std * std * u_var, kurtosis


def expectation(scheme: Scheme, tensor: torch.Tensor) -> Expectation:
    """What a named scheme implies for this tensor's values (docs/contract/schemes.md's table)."""
    name = scheme.name
    label = name
    if name == "zeros":
        return Expectation(label, 0.0, 0.0)
    if name == "ones":
        return Expectation(label, 1.0, 0.0)
    if name == "constant":
        return Expectation(label, scheme.number("val"), 0.0)
    if name == "uniform":
        a, b = scheme.number("a"), scheme.number("b")
        return Expectation(label, (a + b) / 2, (b - a) ** 2 / 12, KURTOSIS_UNIFORM)
    if name == "normal":
        return Expectation(label, scheme.number("mean"), scheme.number("std") ** 2, KURTOSIS_NORMAL)
    if name == "trunc_normal":
        m, v, kurt = trunc_normal_shape(
            scheme.number("mean"), scheme.number("std"), scheme.number("a"), scheme.number("b")
        )
        # Near the centre truncation thins the tails; far in one it leaves an exponential-like
        # slope whose kurtosis reaches 9: the band follows the shape actually drawn.
        return Expectation(label, m, v, max(kurt, KURTOSIS_NORMAL))
    fan = fans(tensor)
    if fan is None or tensor.numel() == 0:
        return Expectation(label)
    fan_in, fan_out = fan
    if name in ("xavier_uniform", "xavier_normal"):
        var = 2.0 * gain_squared(scheme.get("gain")) / (fan_in + fan_out)
        kurt = KURTOSIS_UNIFORM if name == "xavier_uniform" else KURTOSIS_NORMAL
        return Expectation(label, 0.0, var, kurt)
    if name in ("kaiming_uniform", "kaiming_normal"):
        gain2 = gain_squared(scheme.text("nonlinearity"), scheme.number("a"))
        fan_used = fan_in if scheme.text("mode") == "fan_in" else fan_out
        kurt = KURTOSIS_UNIFORM if name == "kaiming_uniform" else KURTOSIS_NORMAL
        return Expectation(label, 0.0, gain2 / fan_used, kurt)
    if name == "orthogonal":
        rows = tensor.shape[0]
        cols = tensor.numel() // rows
        # Rows (or columns) of a semi-orthogonal matrix have unit norm, so the mean square is exact;
        # the normal kurtosis only widens the band.
        return Expectation(
            label, 0.0, gain_squared(scheme.get("gain")) / max(rows, cols), KURTOSIS_NORMAL
        )
    if name == "lecun_normal":
        return Expectation(label, 0.0, 1.0 / fan_in, KURTOSIS_NORMAL)
    raise AssertionError(f"no expectation for {name}")  # pragma: no cover - registry is closed


def apply(scheme: Scheme, tensor: torch.Tensor) -> None:
    """Fill `tensor` in place with torch.nn.init's own function for the scheme."""
    init = nn.init
    name = scheme.name
    calls: dict[str, Callable[[], object]] = {
        "zeros": lambda: init.zeros_(tensor),
        "ones": lambda: init.ones_(tensor),
        "constant": lambda: init.constant_(tensor, scheme.number("val")),
        "uniform": lambda: init.uniform_(tensor, scheme.number("a"), scheme.number("b")),
        "normal": lambda: init.normal_(tensor, scheme.number("mean"), scheme.number("std")),
        "trunc_normal": lambda: init.trunc_normal_(
            tensor, scheme.number("mean"), scheme.number("std"),
            scheme.number("a"), scheme.number("b")),
        "xavier_uniform": lambda: init.xavier_uniform_(tensor, gain_of(scheme.get("gain"))),
        "xavier_normal": lambda: init.xavier_normal_(tensor, gain_of(scheme.get("gain"))),
        "kaiming_uniform": lambda: init.kaiming_uniform_(
            tensor, a=scheme.number("a"), mode=scheme.text("mode"),  # type: ignore[arg-type]
            nonlinearity=scheme.text("nonlinearity")),  # type: ignore[arg-type]
        "kaiming_normal": lambda: init.kaiming_normal_(
            tensor, a=scheme.number("a"), mode=scheme.text("mode"),  # type: ignore[arg-type]
            nonlinearity=scheme.text("nonlinearity")),  # type: ignore[arg-type]
        "orthogonal": lambda: _orthogonal(tensor, gain_of(scheme.get("gain"))),
        # LeCun normal is Kaiming normal with gain 1 on fan_in; torch has no separate function.
        "lecun_normal": lambda: init.kaiming_normal_(tensor, mode="fan_in", nonlinearity="linear"),
    }  # fmt: skip
    with warnings.catch_warnings():
        # torch warns that initializing a zero-element tensor is a no-op; the report says so.
        warnings.simplefilter("ignore", UserWarning)
        calls[name]()


def _orthogonal(tensor: torch.Tensor, gain: float) -> None:
    if tensor.dtype in (torch.float16, torch.bfloat16):
        # torch's QR has no half-precision kernel: orthogonalize in float32, store rounded.
        full = torch.empty(tensor.shape, dtype=torch.float32, device=tensor.device)
        nn.init.orthogonal_(full, gain)
        with torch.no_grad():
            tensor.copy_(full)
        return
    nn.init.orthogonal_(tensor, gain)


# --- which parameter gets which init -------------------------------------------------------------


def owners(model: nn.Module) -> dict[int, tuple[str, nn.Module]]:
    """Parameter identity → (full name, module that holds it directly), first holder wins.

    named_modules() walks in the same order as named_parameters(), so the first holder's name is
    the name named_parameters() reports for a tied tensor.
    """
    found: dict[int, tuple[str, nn.Module]] = {}
    for prefix, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            found.setdefault(id(param), (f"{prefix}.{pname}" if prefix else pname, module))
    return found


AUTO = "auto"  # the scheme that picks each weight's init from the activation after it
RULES, DEFAULT = "policy", Scheme("default")  # RULES: a policy's marker; its rules fill `choices`
Choices = Mapping[str, tuple[Scheme, str]]  # per parameter: auto's scheme and why, or a rule's
NOT_SEEN = "no activation seen after it"


def short_label(scheme: Scheme) -> str:
    """A compact name for a chosen scheme: kaiming_normal(relu), xavier_normal(gain=tanh)."""
    if scheme.name in ("kaiming_normal", "kaiming_uniform"):
        nl = scheme.text("nonlinearity")
        slope = f", a={scheme.number('a'):g}" if nl == "leaky_relu" else ""
        return f"{scheme.name}({nl}{slope})"
    if scheme.name in ("xavier_normal", "xavier_uniform", "orthogonal"):
        gain = scheme.get("gain")
        return scheme.name if gain == 1.0 else f"{scheme.name}(gain={format_value(gain)})"
    if scheme.name == "normal" and scheme.number("mean") == 0:
        return f"normal(std={scheme.number('std'):g})"
    return scheme.describe()


def variance_formula(scheme: Scheme) -> str:
    """The variance a scheme implies, its gain written in: `2/fan_in` for kaiming_normal(relu)."""
    name = scheme.name
    if name in ("kaiming_normal", "kaiming_uniform"):
        nl, a = scheme.text("nonlinearity"), scheme.number("a")
        gain2 = {"relu": "2", "tanh": "(5/3)²", "selu": "(3/4)²"}.get(nl, "1")
        if nl == "leaky_relu":
            gain2 = "2" if a == 0 else f"2/(1+{a:g}²)"
        fan = scheme.text("mode")
        return f"{gain2}/{fan}" if gain2 != "1" else f"1/{fan}"
    if name in ("xavier_normal", "xavier_uniform"):
        gain = scheme.get("gain")
        named = {"tanh": "(5/3)²", "relu": "2", "selu": "(3/4)²"}
        gain2 = named.get(gain, "1") if isinstance(gain, str) else f"{gain:g}²"
        factor = "2" if gain2 in ("1", "1²") else f"2·{gain2}"
        return f"{factor}/(fan_in+fan_out)"
    if name == "lecun_normal":
        return "1/fan_in"
    return scheme.info.expected_var
