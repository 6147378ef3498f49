"""`auto`: the scheme each weight gets from the activation after it (or its module's role)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from initcli.init.schemes import NOT_SEEN, Scheme, owners, parse_scheme

# Module types → the activation kind auto and `defaults` reason about (the YAML spec's names).
# First match wins: ReLU6 is a Hardtanh subclass, so it is listed before Hardtanh.
_ACTIVATION_KINDS: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.ReLU, "relu"), (nn.ReLU6, "relu"), (nn.RReLU, "relu"), (nn.LeakyReLU, "leaky_relu"),
    (nn.PReLU, "leaky_relu"), (nn.Tanh, "tanh"), (nn.Hardtanh, "tanh"), (nn.Softsign, "tanh"),
    (nn.Sigmoid, "sigmoid"), (nn.Hardsigmoid, "sigmoid"), (nn.SELU, "selu"), (nn.GELU, "gelu"),
    (nn.SiLU, "silu"), (nn.Mish, "silu"), (nn.Hardswish, "silu"), (nn.ELU, "elu"),
    (nn.CELU, "elu"),
)  # fmt: skip


@dataclass(frozen=True)
class Follower:
    """The activation after a weight: its kind (None: none), slope, and where it was seen."""

    kind: str | None
    slope: float = 0.0
    where: str = ""


def activation_kind(module: nn.Module) -> tuple[str, float] | None:
    """(kind, negative slope) for an activation module, None for anything else."""
    for cls, kind in _ACTIVATION_KINDS:
        if isinstance(module, cls):
            if isinstance(module, nn.LeakyReLU):
                return kind, float(module.negative_slope)
            if isinstance(module, nn.PReLU):
                return kind, float(module.init)
            return kind, 0.0
    return None


def follower_label(kind: str, slope: float, where: str) -> str:
    """E.g. `act1 ReLU`, `act2 LeakyReLU(0.2)`: how a reason names the activation."""
    return f"{where}({slope:g})" if kind == "leaky_relu" and slope else where


def auto_scheme(kind: str | None, slope: float = 0.0) -> Scheme:
    """The scheme auto picks in front of an activation kind (None: no activation follows)."""
    if kind in ("relu", "elu", "gelu", "silu"):
        return parse_scheme("kaiming_normal:nonlinearity=relu")
    if kind == "leaky_relu":
        return parse_scheme(f"kaiming_normal:nonlinearity=leaky_relu,a={slope!r}")
    if kind in ("tanh", "sigmoid"):
        return parse_scheme(f"xavier_normal:gain={kind}")
    if kind == "selu":
        return parse_scheme("lecun_normal")
    return parse_scheme("xavier_normal")


def _module_choice(module: nn.Module, pname: str) -> tuple[Scheme, str] | None:
    # Weights whose scale is not set by an activation after them.
    if isinstance(module, nn.Embedding | nn.EmbeddingBag):
        return parse_scheme("normal:std=1"), "embedding rows are looked up, not summed"
    if isinstance(module, nn.RNNBase):
        if pname.startswith("weight_hh"):
            return parse_scheme("orthogonal"), "recurrent matrix, applied at every step"
        if getattr(module, "nonlinearity", "tanh") == "relu":
            return parse_scheme("kaiming_normal:nonlinearity=relu"), f"{module.mode} relu"
        return parse_scheme("xavier_normal"), f"{module.mode} input to sigmoid/tanh gates"
    if isinstance(module, nn.MultiheadAttention):
        return parse_scheme("xavier_normal"), "attention projection, no activation"
    if isinstance(module, nn.modules.linear.NonDynamicallyQuantizableLinear):
        # MultiheadAttention's out_proj: its weight is used functionally, never called.
        return parse_scheme("xavier_normal"), "attention output projection, no activation"
    return None


def functional_kind(fn: object) -> tuple[str, float] | None:
    """The kind of an activation given as a function or module (TransformerEncoderLayer's)."""
    if isinstance(fn, nn.Module):
        return activation_kind(fn)
    name = getattr(fn, "__name__", "")
    kinds = {"relu": "relu", "gelu": "gelu", "silu": "silu", "tanh": "tanh", "sigmoid": "sigmoid",
             "selu": "selu", "elu": "elu", "leaky_relu": "leaky_relu"}  # fmt: skip
    return (kinds[name], 0.01 if name == "leaky_relu" else 0.0) if name in kinds else None


def auto_choices(
    model: nn.Module, followers: Mapping[str, Follower], missing: str = NOT_SEEN
) -> dict[str, tuple[Scheme, str]]:
    """Per ≥2-D parameter name: the scheme auto applies and why, from each module's follower.

    `followers` maps module names (as in named_modules) to what follows them; a module missing
    from it was not seen, and gets xavier_normal like a weight with nothing after it, with
    `missing` as the reason.
    """
    held = owners(model)
    result: dict[str, tuple[Scheme, str]] = {}
    modules = dict(model.named_modules())
    names = {id(m): n for n, m in modules.items()}
    for name, param in model.named_parameters():
        if param.dim() < 2:
            continue
        module = held[id(param)][1]
        special = _module_choice(module, name.rsplit(".", 1)[-1])
        if special is not None:
            result[name] = special
            continue
        follower = followers.get(names.get(id(module), ""))
        if follower is None:
            result[name] = (auto_scheme(None), missing)
        elif follower.kind is None:
            result[name] = (auto_scheme(None), follower.where or "no activation follows")
        else:
            result[name] = (
                auto_scheme(follower.kind, follower.slope),
                follower_label(follower.kind, follower.slope, follower.where),
            )
    return result
