"""The user's own init code (`--init fn:...`, `method:...`): run it seeded, say what it set."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from initcli.errors import PolicyError, TargetError, first_line
from initcli.init import schemes, torch_defaults
from initcli.init.policy import FN, UserCode
from initcli.init.schemes import Expectation, Scheme
from initcli.model import building, resolve
from initcli.text import first_and_more


@dataclass(frozen=True)
class CodeRun:
    """What the code left in each parameter, and the remarks (untouched parameters)."""

    expectations: dict[str, Expectation]
    remarks: tuple[str, ...]


# Named schemes a drawn N(0, σ²) or U(±b) may be, tried in order at the tensor's fans: the
# first whose variance is σ² (to rounding) names the call (xavier_normal_ calls tensor.normal_).
_NAMED = {
    "normal": [
        "xavier_normal", "xavier_normal:gain=relu", "xavier_normal:gain=tanh",
        "kaiming_normal:nonlinearity=relu", "kaiming_normal:mode=fan_out,nonlinearity=relu",
        "lecun_normal", "kaiming_normal:mode=fan_out,nonlinearity=linear",
    ],
    "uniform": [
        "xavier_uniform", "xavier_uniform:gain=relu", "xavier_uniform:gain=tanh",
        "kaiming_uniform:nonlinearity=relu", "kaiming_uniform:mode=fan_out,nonlinearity=relu",
        f"kaiming_uniform:a={math.sqrt(5)!r}", "kaiming_uniform:nonlinearity=linear",
    ],
}  # fmt: skip
_TENSOR_METHODS = {
    "normal_": "normal",
    "uniform_": "uniform",
    "zero_": "zeros",
    "fill_": "constant",
}


class _Recorder(TorchFunctionMode):
    """Records every in-place call on a parameter's memory while the user's code runs.

    A TorchFunctionMode is torch's own hook for observing calls (torch.nn.init's functions and
    tensor methods dispatch to it): nothing global is replaced, and it is active only here.
    """

    def __init__(self, params: dict[tuple[int, int], str]) -> None:
        super().__init__()
        self.params = params
        self.calls: dict[str, list[tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]]] = {}

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        fname = getattr(func, "__name__", "")
        if fname == "__setitem__" or (fname.endswith("_") and not fname.startswith("_")):
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
                name = self.params.get((tensor.data_ptr(), tensor.numel()))
                if name is not None:
                    self.calls.setdefault(name, []).append((func, args, kwargs))
        return result


def _scheme(name: str, values: dict[str, Any]) -> Scheme:
    info = schemes.SCHEMES[name]
    params = []
    for p in info.params:
        value = values.get(p.name, p.default)
        if isinstance(value, torch.Tensor):
            value = value.item()
        params.append((p.name, value if isinstance(value, str) else float(value)))
    return Scheme(name, tuple(params))


def scheme_of(call: tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]) -> Scheme | None:
    """The scheme one recorded call draws, or None for anything else (mul_, copy_, ...)."""
    func, args, kwargs = call
    fname = getattr(func, "__name__", "")
    if getattr(func, "__module__", None) == "torch.nn.init":
        name = fname.removesuffix("_")
        if name not in schemes.SCHEMES:
            return None
        try:
            bound = inspect.signature(func).bind(*args, **kwargs)
        except TypeError:
            return None
        values = dict(bound.arguments)
        if name == "constant":
            values["val"] = values.get("val", 0.0)
        return _scheme(name, values)
    kind = _TENSOR_METHODS.get(fname)
    if kind is None:
        return None
    rest = list(args[1:])
    keys = {"normal": ("mean", "std"), "uniform": ("from", "to"), "constant": ("val",)}
    given = dict(zip(keys.get(kind, ()), rest, strict=False))
    given.update(kwargs)
    if kind == "uniform":
        given = {"a": given.get("from", 0.0), "b": given.get("to", 1.0)}
    if kind == "constant":
        given = {"val": given.get("val", given.get("value", 0.0))}
    return _scheme(kind, {k: v for k, v in given.items() if k != "generator"})


def name_of(scheme: Scheme, tensor: torch.Tensor) -> str:
    """`xavier_normal` for the N(0, σ²) that xavier_normal_ draws at this tensor's fans."""
    if scheme.name == "normal" and scheme.number("mean") == 0:
        var = scheme.number("std") ** 2
    elif scheme.name == "uniform" and scheme.number("a") == -scheme.number("b"):
        var = scheme.number("b") ** 2 / 3
    else:
        return schemes.short_label(scheme)
    if var > 0 and schemes.fans(tensor) is not None:
        for text in _NAMED[scheme.name]:
            named = schemes.parse_scheme(text)
            exp = schemes.expectation(named, tensor).var
            if exp is not None and math.isclose(exp, var, rel_tol=1e-6):
                return schemes.short_label(named)
    return schemes.short_label(scheme)


def _layout(model: nn.Module) -> dict[str, tuple[int, ...] | None]:
    """Each parameter's shape (None: lazy, not yet shaped), by name."""
    return {
        n: None if building.is_uninitialized(p) else tuple(p.shape)
        for n, p in model.named_parameters()
    }


def _check_layout(
    before: dict[str, tuple[int, ...] | None],
    after: dict[str, tuple[int, ...] | None],
    label: str,
    target: str,
) -> None:
    """Init code sets values; one that removes, adds or reshapes parameters (`__init__`, a
    rebuild) leaves a different model, and measuring that would describe neither: refuse it."""
    gone = [n for n in before if n not in after]
    added = [n for n in after if n not in before]
    reshaped = [
        n
        for n in before
        if n in after and None not in (before[n], after[n]) and before[n] != after[n]
    ]
    if not (gone or added or reshaped):
        return

    changes = []
    if gone:
        changes.append(f"removed {first_and_more(gone, 3)}")
    if added:
        changes.append(f"added {first_and_more(added, 3)}")
    if reshaped:
        n = reshaped[0]
        shape = "×".join(map(str, before[n] or ())), "×".join(map(str, after[n] or ()))
        changes.append(
            f"reshaped {n} from {shape[0]} to {shape[1]}"
            + (f" (and {len(reshaped) - 1:,} more)" if len(reshaped) > 1 else "")
        )

    def total(layout: dict[str, tuple[int, ...] | None]) -> int:
        return sum(math.prod(shape) for shape in layout.values() if shape is not None)

    raise PolicyError(
        f"{label} changed {target}'s parameters ({total(before):,} before, {total(after):,} "
        "after): "
        f"{'; '.join(changes)}; init code must set values, not rebuild the model"
    )


def run(code: UserCode, model: nn.Module, seed: int, target: str) -> CodeRun:
    """torch.manual_seed(seed), then model.apply(fn) or model.NAME(); per parameter, what the
    code set (from the init calls it made on it) or that it left the constructor's values."""
    if code.kind == FN:
        function = resolve.resolve_function(code.target)
        label = code.target

        def call() -> None:
            model.apply(function)  # type: ignore[arg-type]

    else:
        method = getattr(model, code.target, None)
        label = f"{type(model).__name__}.{code.target}"
        if method is None or not callable(method) or isinstance(method, nn.Module):
            what = "has no method" if method is None else "has an attribute, not a method,"
            raise PolicyError(
                f"{target} ({type(model).__name__}) {what} {code.target!r}; "
                f"--init method:NAME calls model.NAME() after the seed"
            )

        def call() -> None:
            method()

    shapes = _layout(model)
    params = {n: p for n, p in model.named_parameters() if not building.is_uninitialized(p)}
    before = {n: p.detach().clone() for n, p in params.items()}
    recorder = _Recorder({(p.data_ptr(), p.numel()): n for n, p in params.items()})
    torch.manual_seed(seed)
    try:
        # No torch.no_grad() here: the code runs as in the user's script (where an in-place
        # fill_ on a parameter outside no_grad raises), so its errors are the ones they would see.
        with resolve.user_code(label, "run"), recorder:
            call()
    except TargetError:
        raise
    except Exception as exc:
        raise PolicyError(
            f"{label} raised {first_line(exc)} while initializing {target}; fix the init code"
        ) from None
    _check_layout(shapes, _layout(model), label, target)
    defaults = torch_defaults.default_expectations(model)
    found: dict[str, Expectation] = {}
    untouched: list[str] = []
    for name, param in model.named_parameters():
        if building.is_uninitialized(param):
            found[name] = Expectation("uninitialized (lazy)")
            continue
        calls = recorder.calls.get(name, [])
        old = before.get(name)
        same = old is not None and old.shape == param.shape and torch.equal(old, param.detach())
        if not calls and same:
            untouched.append(name)
            exp = defaults.get(name, schemes.UNKNOWN)
            found[name] = replace(exp, init=f"default (untouched by {code.name})")
            continue
        scheme = scheme_of(calls[-1]) if calls else None
        if scheme is None:
            op = getattr(calls[-1][0], "__name__", "?") if calls else "not through torch"
            found[name] = Expectation(f"set by {code.name} ({op})")
            continue
        exp = schemes.expectation(scheme, param)
        # The heading names the code; the column says what it drew here.
        found[name] = replace(exp, init=name_of(scheme, param))
    remarks = []
    if untouched:
        shown = ", ".join(untouched[:5]) + (", ..." if len(untouched) > 5 else "")
        remarks.append(
            f"{code.name} left {len(untouched)} parameter{'s' if len(untouched) != 1 else ''} "
            f"at torch's default: {shown} — forgot a layer?"
        )
    return CodeRun(found, tuple(remarks))
