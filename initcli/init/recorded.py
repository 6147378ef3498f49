"""The init calls a meta build makes, recorded per tensor, and what the last one implies."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from initcli.errors import SchemeError
from initcli.init import schemes
from initcli.model import record

# Tensor methods and constant factories whose result is a known distribution, as its scheme.
_METHODS = {"normal_": "normal", "uniform_": "uniform", "zero_": "zeros", "fill_": "constant"}
_FACTORIES = {"ones": "ones", "zeros": "zeros"}
# nn.init functions (transformers' `initialization` module calls the same ones) by scheme name.
_INIT = {
    "normal_": "normal", "uniform_": "uniform", "constant_": "constant", "ones_": "ones",
    "zeros_": "zeros", "trunc_normal_": "trunc_normal", "xavier_uniform_": "xavier_uniform",
    "xavier_normal_": "xavier_normal", "kaiming_uniform_": "kaiming_uniform",
    "kaiming_normal_": "kaiming_normal", "orthogonal_": "orthogonal",
}  # fmt: skip
# Argument names the schemes use, where torch's differ.
_RENAMED = {"from": "a", "to": "b", "value": "val", "fill_value": "val"}


@dataclass(frozen=True)
class Fill:
    """The last whole-tensor write seen: the scheme it amounts to (e.g. `normal:mean=0,std=0.02`),
    or None for a write whose values initcli cannot predict (copy_, mul_, eye_, ...)."""

    scheme: str | None


@dataclass
class FillLog:
    """Per tensor storage, the last write a build made to the whole tensor, read from its trace.

    Keyed by the storage, since `weight.data.normal_()` writes through a new tensor object (the
    trace keeps the tensors alive, so a storage's address is never reused for another). A write
    to part of a tensor (an Embedding's padding row zeroed) leaves the record as it is.
    """

    fills: dict[int, Fill] = field(default_factory=dict)

    @classmethod
    def of_trace(cls, trace: record.Trace) -> FillLog:
        """The last whole-tensor write to each meta tensor the traced build wrote."""
        log = cls()
        for event in trace.events:
            if not isinstance(event, record.Write) or event.target is None:
                continue
            t = event.target
            if not t.is_meta or t.storage_offset() != 0:
                continue
            if t.numel() * t.element_size() != t.untyped_storage().nbytes():
                continue
            log.fills[record.storage(t)] = _fill(event)
        return log

    def of(self, tensor: torch.Tensor) -> Fill | None:
        """The last whole-tensor write to `tensor`'s storage, if any was seen."""
        return self.fills.get(record.storage(tensor))


def _fill(w: record.Write) -> Fill:
    """The scheme a recorded write amounts to (Fill(None) where its values are not a scheme's)."""
    name = w.name
    if w.creates:
        if name == "full" and len(w.args) >= 2 and isinstance(w.args[1], (int, float)):
            return Fill(f"constant:val={float(w.args[1])!r}")
        return Fill(_FACTORIES.get(name))
    from_init = getattr(w.func, "__module__", None) == "torch.nn.init"
    scheme = (_INIT if from_init else _METHODS).get(name)
    return Fill(_text(scheme, w.func, w.args, w.kwargs))


# Tensor methods have no Python signature: their positional arguments after self, by name.
_POSITIONAL = {"normal_": ("mean", "std"), "uniform_": ("from", "to"), "fill_": ("value",)}


def _text(
    scheme: str | None, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str | None:
    """The scheme text of the call, or None where an argument is not a plain value."""
    if scheme is None:
        return None
    name = getattr(func, "__name__", "")
    try:
        given = dict(inspect.signature(func).bind(*args, **kwargs).arguments)
        given.pop("tensor", None)
    except (TypeError, ValueError):  # a Tensor method
        given = dict(zip(_POSITIONAL.get(name, ()), args[1:], strict=False)) | kwargs
    params = []
    for key, value in given.items():
        if key == "generator" or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return None  # e.g. fill_(a tensor): not a value initcli can name
        shown = repr(float(value)) if not isinstance(value, str) else value
        params.append(f"{_RENAMED.get(key, key)}={shown}")
    return f"{scheme}:{','.join(params)}" if params else scheme


def implied_expectation(fill: Fill | None, tensor: torch.Tensor) -> schemes.Expectation:
    """What `fill` implies for `tensor`'s values (schemes.UNKNOWN where it cannot say)."""
    if fill is None or fill.scheme is None:
        return schemes.UNKNOWN
    try:
        scheme = schemes.parse_scheme(fill.scheme)
    except SchemeError:
        return schemes.UNKNOWN
    exp = schemes.expectation(scheme, tensor)
    return replace(exp, init=scheme.describe()) if exp.var is not None else schemes.UNKNOWN
