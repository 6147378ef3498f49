"""The fans a layer's forward pass has, where torch's (read off the weight's layout) mislead."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from initcli.init.schemes import Scheme, fans
from initcli.init.stacking import stack_of
from initcli.model.building import is_uninitialized
from initcli.text import first_and_more

# torch's fans count, for a weight of shape (rows, cols, *kernel): fan_in = cols·k and
# fan_out = rows·k, whatever the layer does with it. Forward fans count what one output element
# sums over (fan_in) and how many output elements one input element feeds (fan_out), per kernel
# position and ignoring stride, padding and dilation, as torch's do.

# Row-stacked weights (an LSTM's 4 gates, a GRU's 3; attention's q, k and v) are several
# matrices of hidden_size (embed_dim) rows each: the forward fan_out is one matrix's.
# Experts' 3-D weights [experts, out, in] apply one slice per token: a slice's fans (init.stacking).


@dataclass(frozen=True)
class Forward:
    """A weight's forward fans, and why they are not torch's (None where they are the same)."""

    fan_in: int
    fan_out: int
    layout: str | None = None


def forward_fans(module: nn.Module, pname: str, param: torch.Tensor) -> Forward | None:
    """The fans of `module`'s parameter `pname` in its forward pass; None below 2 dimensions
    and for an uninitialized lazy parameter (as torch's fans)."""
    if is_uninitialized(param):
        return None
    torch_fans = fans(param)
    if torch_fans is None:
        return None
    fan_in, fan_out = torch_fans
    found = _forward(module, pname, param, fan_in)
    if found is None or (found.fan_in, found.fan_out) == (fan_in, fan_out):
        return Forward(fan_in, fan_out)
    return found


def _forward(module: nn.Module, pname: str, param: torch.Tensor, fan_in: int) -> Forward | None:
    kind = type(module).__name__
    shape = tuple(param.shape)
    if pname == "weight" and _is_hf_conv1d(module, shape):
        # transformers' Conv1D computes x @ weight + bias: its weight is stored in×out.
        return Forward(shape[0], shape[1], f"{kind} stores its weight in×out (Linear: out×in)")
    if pname == "weight" and isinstance(module, nn.modules.conv._ConvNd):
        groups = int(module.groups)
        k = math.prod(shape[2:])
        if module.transposed:
            # weight is (in, out/groups, *k): torch reads out/groups·k as fan_in.
            layout = f"{kind} stores its weight (in, out/groups, *k)"
            stride = math.prod(int(s) for s in module.stride)
            if stride > 1:
                # A strided transposed conv's output position sums only ~k/stride of the taps.
                layout += (
                    f"; stride {tuple(module.stride)} is not counted: an output position sums "
                    f"about 1/{stride} of the kernel's taps"
                )
            return Forward(shape[0] // groups * k, shape[1] * k, layout)
        if groups > 1:
            # fan_in = in/groups·k is right; one input channel feeds out/groups channels only.
            return Forward(
                fan_in, shape[0] // groups * k, f"groups={groups}: an input channel feeds "
                f"out/groups = {shape[0] // groups} of the {shape[0]} output channels"
            )  # fmt: skip
        return None
    experts = stack_of(module, pname, param)
    if experts is not None:
        # One slice per forward call: its fans, not torch's of the 3-D tensor (out·in and E·in).
        return Forward(*experts.forward_fans(shape), experts.layout(kind))
    stacked = _stacked(module, pname)
    if stacked is not None:
        parts, what = stacked
        return Forward(fan_in, shape[0] // parts, f"{kind} stacks {what} in one weight")
    return None


def _is_hf_conv1d(module: nn.Module, shape: tuple[int, ...]) -> bool:
    # By name, so transformers is never imported for it: its Conv1D keeps nf (= out) beside it.
    named = any(c.__name__ == "Conv1D" for c in type(module).__mro__)
    return named and len(shape) == 2 and getattr(module, "nf", None) == shape[1]


def _stacked(module: nn.Module, pname: str) -> tuple[int, str] | None:
    """(how many matrices, what they are) for a row-stacked weight, else None."""
    if pname.startswith(("weight_ih", "weight_hh")):  # not an LSTM's projection weight_hr
        gates = (
            4 if isinstance(module, nn.LSTM | nn.LSTMCell)
            else 3 if isinstance(module, nn.GRU | nn.GRUCell)
            else None
        )  # fmt: skip
        if gates is not None:
            return gates, f"{gates} gates of hidden_size = {module.hidden_size} rows"
    if isinstance(module, nn.MultiheadAttention) and pname == "in_proj_weight":
        return 3, f"q, k and v, each embed_dim = {module.embed_dim} rows"
    return None


# The fan each fan-based scheme divides by: a mode, or both fans summed (xavier).
SUM = "fan_in+fan_out"


def fan_used(scheme: Scheme | None, module: nn.Module, pname: str) -> str | None:
    """Which of torch's fans `scheme` uses on that parameter ("fan_in", "fan_out" or SUM), or
    None where it uses none; `scheme` None or default: torch's default init for the module."""
    if scheme is None or scheme.is_default:
        # torch's layers: kaiming_uniform(a=√5) on fan_in; MultiheadAttention: xavier_uniform.
        if pname == "weight" and isinstance(module, nn.Linear | nn.modules.conv._ConvNd):
            return "fan_in"
        if isinstance(module, nn.MultiheadAttention) and pname == "in_proj_weight":
            return SUM
        return None
    if scheme.name in ("kaiming_normal", "kaiming_uniform"):
        return scheme.text("mode")
    if scheme.name in ("xavier_normal", "xavier_uniform"):
        return SUM
    if scheme.name == "lecun_normal":
        return "fan_in"
    return None


@dataclass(frozen=True)
class FanUse:
    """One parameter whose init divides by a fan that its forward pass does not have."""

    name: str
    module: str
    init: str  # e.g. "kaiming_normal", "kaiming_uniform(a=√5) (torch's default)"
    used: str  # "fan_in", "fan_out" or SUM
    torch_fan: int
    forward_fan: int
    layout: str


def fan_use(
    name: str, module: nn.Module, pname: str, param: torch.Tensor, scheme: Scheme | None
) -> FanUse | None:
    """The fan `scheme` uses on the parameter where it is not the forward pass's, else None."""
    used = fan_used(scheme, module, pname)
    found = forward_fans(module, pname, param)  # None for an uninitialized lazy parameter
    if used is None or found is None or found.layout is None:
        return None
    # A named scheme on experts' slices is applied per slice (assign.apply_to): its fans are one
    # slice's as stored, which leaves only a fused gate_up's fan_out off.
    experts = stack_of(module, pname, param) if scheme is not None else None
    torch_fans = fans(param if experts is None else experts.views(param)[0])
    assert torch_fans is not None  # forward fans exist only where torch's do
    values = {"fan_in": 0, "fan_out": 1}
    if used == SUM:
        mine, theirs = sum(torch_fans), found.fan_in + found.fan_out
    else:
        mine, theirs = torch_fans[values[used]], (found.fan_in, found.fan_out)[values[used]]
    if mine == theirs:
        return None
    if scheme is None or scheme.is_default:
        label = (
            "xavier_uniform (torch's default)" if used == SUM else "kaiming_uniform(a=√5) "
            "(torch's default)"
        )  # fmt: skip
    else:
        label = scheme.name
    return FanUse(name, type(module).__name__, label, used, mine, theirs, found.layout)


def off_remarks(uses: Iterable[FanUse]) -> tuple[str, ...]:
    """One sentence per (init, layer type, fans): the factor a fan-based init is off by."""
    groups: dict[tuple[str, str, str, int, int], list[FanUse]] = {}
    for use in uses:
        key = (use.init, use.module, use.used, use.torch_fan, use.forward_fan)
        groups.setdefault(key, []).append(use)
    out = []
    for (init, kind, used, mine, theirs), found in groups.items():
        names = first_and_more(found, 3, show=lambda u: u.name)
        out.append(
            f"{init} on {names} ({kind}) uses torch's {used} = {mine:,}, but the forward pass's "
            f"{used} is {theirs:,} ({found[0].layout}): the variance is {theirs / mine:.3g}× "
            f"({theirs:,}/{mine:,}) that of {init.split(' (')[0]} at the forward {used}."
        )
    return tuple(out)


@dataclass(frozen=True)
class SliceUse:
    """A fan-based scheme applied per slice of a stacked weight (init.stacking), not to all."""

    name: str
    module: str
    init: str
    slices: int
    shape: tuple[int, ...]  # one slice's, as nn.init saw it (out×in)
    whole_fan_in: int  # torch's fan_in of the whole 3-D tensor
    slice_fan_in: int


def slice_use(
    name: str, module: nn.Module, pname: str, param: torch.Tensor, scheme: Scheme | None
) -> SliceUse | None:
    """Where `scheme` was applied per expert slice (assign.apply_to), what that changed."""
    if scheme is None or fan_used(scheme, module, pname) is None:
        return None
    experts = stack_of(module, pname, param)
    if experts is None:
        return None
    view = experts.views(param)[0]
    whole, one = fans(param), fans(view)
    assert whole is not None and one is not None  # 3-D and its 2-D slice
    kind = type(module).__name__
    return SliceUse(name, kind, scheme.name, experts.slices, tuple(view.shape), whole[0], one[0])


def slice_remarks(uses: Iterable[SliceUse]) -> tuple[str, ...]:
    """One Note per (init, layer type, shapes): the scheme went slice by slice."""
    groups: dict[tuple[str, str, int, tuple[int, ...], int, int], list[SliceUse]] = {}
    for use in uses:
        key = (use.init, use.module, use.slices, use.shape, use.whole_fan_in, use.slice_fan_in)
        groups.setdefault(key, []).append(use)
    out = []
    for (init, kind, slices, shape, whole, one), found in groups.items():
        names = first_and_more(found, 3, show=lambda u: u.name)
        rows, cols = shape
        out.append(
            f"{init} on {names} ({kind}) was applied per expert: one torch.nn.init call on each "
            f"of the {slices} slices ({rows}×{cols}, fan_in {one:,}, the forward pass's), not on "
            f"the 3-D tensor, whose torch fan_in ({whole:,}) is no layer's; a seed gives what a "
            "script calling it on each slice in order would."
        )
    return tuple(out)
