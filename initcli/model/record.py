"""Record, in order, what a meta build writes into its tensors and draws from the random stream."""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import torch
from torch import nn

# Factories that draw from the global random stream (unless handed a generator of their own).
_RANDOM_FACTORIES = frozenset(
    getattr(torch, name)
    for name in (
        "rand", "randn", "randint", "randperm", "normal", "bernoulli", "multinomial",
        "poisson", "rand_like", "randn_like", "randint_like",
    )
)  # fmt: skip
# Factories whose values are known from their arguments: a parameter made from one
# (`nn.Parameter(torch.ones(d))`) has those values until something writes into it.
_CONSTANT_FACTORIES = frozenset(
    getattr(torch, name)
    for name in ("tensor", "ones", "zeros", "full", "arange", "linspace", "eye")
)
# In-place Tensor methods that draw random numbers into their tensor.
RANDOM_METHODS = frozenset((
    "normal_", "uniform_", "random_", "bernoulli_", "exponential_", "cauchy_", "log_normal_",
    "geometric_",
))  # fmt: skip
# nn.init functions that draw random numbers (the others are deterministic fills).
RANDOM_INITS = frozenset((
    "uniform_", "normal_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
    "kaiming_normal_", "trunc_normal_", "orthogonal_", "sparse_",
))  # fmt: skip
# In-place methods that change a tensor's bookkeeping, not its values.
_NOT_WRITES = frozenset((
    "requires_grad_", "share_memory_", "detach_", "retain_grad", "rename_", "refine_names_",
    "record_stream_",
))  # fmt: skip
_INPLACE_OPERATORS = frozenset(
    f"__i{op}__"
    for op in (
        "add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow", "and", "or", "xor",
        "lshift", "rshift",
    )
)  # fmt: skip
_RESETS = frozenset({"reset_parameters", "_reset_parameters"})
# nn.init functions that return at once on a meta tensor without handing themselves to the
# function mode (torch 2.13): they are recorded from the `is_meta` check they make instead.
_IS_META = torch._C.TensorBase.__dict__["is_meta"]
# torch.nn.init's own functions, taken at import: transformers replaces the module's attributes
# with its guarded copies while its initialize_weights runs.
_NN_INIT = {name: f for name, f in vars(nn.init).items() if callable(f)}
_APPLY = nn.Module.apply.__code__


def storage(t: torch.Tensor) -> int:
    """The identity of a tensor's storage: `weight.data.normal_()` writes through a new tensor
    object, to the same storage (the trace keeps its tensors alive, so no address is reused)."""
    return int(t.untyped_storage()._cdata)


@dataclass(frozen=True)
class Write:
    """One call that writes into `target` (in place) or, for a factory, draws a new tensor.

    `func(*args, **kwargs)` is the call as made; `target` is the tensor written (None for a
    factory). `draws`: it consumes the global random stream. `in_reset`: made from inside a
    module's reset method; `in_apply`: from inside `nn.Module.apply` (a model-level init).
    """

    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    target: torch.Tensor | None
    draws: bool
    in_reset: bool
    in_apply: bool
    # False when the call could be seen but not recorded so that it can be made again.
    replayable: bool = True
    # A factory that made `target` (with values known from its arguments), not a write into it.
    creates: bool = False

    @property
    def name(self) -> str:
        return str(getattr(self.func, "__name__", self.func))


@dataclass(frozen=True)
class PostInit:
    """transformers' `post_init` of `model` began here (on meta it skips the weight init that a
    real build runs at this point). `params`: every (module, key, parameter) slot below `model`
    at that moment, before the tying that post_init does.

    Modules are held weakly: the trace lives beside its model (see `remember`) and must not keep
    it alive.
    """

    _model: weakref.ref[nn.Module]
    _params: tuple[tuple[weakref.ref[nn.Module], str, torch.Tensor], ...]

    @property
    def model(self) -> nn.Module:
        model = self._model()
        assert model is not None, "a trace is only read while its model lives"
        return model

    @property
    def params(self) -> list[tuple[nn.Module, str, torch.Tensor]]:
        slots = [(ref(), key, p) for ref, key, p in self._params]
        return [(m, key, p) for m, key, p in slots if m is not None]


Event = Write | PostInit


@dataclass
class Trace:
    """The writes and draws of one build, in the order they ran."""

    events: list[Event] = field(default_factory=list)
    _seen_post_init: set[int] = field(default_factory=set)
    _last_init_frame: FrameType | None = None

    def see(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Called with every torch function the build calls, before it runs."""
        self._mark_post_init()
        name = getattr(func, "__name__", "")
        module = getattr(func, "__module__", None)
        generator = kwargs.get("generator")
        if getattr(func, "__self__", None) is _IS_META:
            self._see_init_on_meta()
            return
        if func in _RANDOM_FACTORIES:
            self._add(func, args, kwargs, None, generator is None)
            return
        target = args[0] if args else kwargs.get("tensor")
        if not isinstance(target, torch.Tensor):
            return
        if module == "torch.nn.init" and name.endswith("_"):
            draws = name in RANDOM_INITS and generator is None
        elif (
            name in _INPLACE_OPERATORS
            or name == "__setitem__"
            or (name.endswith("_") and not name.startswith("__") and name not in _NOT_WRITES)
        ):
            draws = name in RANDOM_METHODS and generator is None
        else:
            return
        if target.is_meta or draws:
            self._add(func, args, kwargs, target, draws)

    def _add(
        self,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        target: torch.Tensor | None,
        draws: bool,
        replayable: bool = True,
    ) -> None:
        in_reset = in_apply = False
        frame: FrameType | None = sys._getframe(2)
        while frame is not None:
            in_reset = in_reset or frame.f_code.co_name in _RESETS
            in_apply = in_apply or frame.f_code is _APPLY
            frame = frame.f_back
        write = Write(func, args, dict(kwargs), target, draws, in_reset, in_apply, replayable)
        self.events.append(write)

    def made(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], result: Any
    ) -> None:
        """Called with what each torch function returned: records the constant factories' new
        meta tensors, whose values a parameter made from them starts with."""
        made = isinstance(result, torch.Tensor) and result.is_meta
        if made and func in _CONSTANT_FACTORIES and "out" not in kwargs:
            write = Write(func, args, dict(kwargs), result, False, True, False, creates=True)
            self.events.append(write)

    def _see_init_on_meta(self) -> None:
        """An `is_meta` check made inside torch.nn.init: the init function that made it
        (trunc_normal_, orthogonal_, sparse_, dirac_ stop there on meta) is recorded, with the
        arguments it was called with, once per call."""
        frame: FrameType | None = sys._getframe(3)
        outer = None
        while frame is not None and frame.f_globals.get("__name__") == "torch.nn.init":
            outer, frame = frame, frame.f_back
        if outer is None or outer is self._last_init_frame:
            return
        self._last_init_frame = outer
        code = outer.f_code
        func = _NN_INIT.get(code.co_name)
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        kwargs = {name: outer.f_locals[name] for name in names if name in outer.f_locals}
        target = kwargs.get("tensor")
        if not isinstance(target, torch.Tensor):
            return
        known = func is not None and getattr(func, "__code__", None) is code
        if func is None or not known:
            func = getattr(nn.init, code.co_name, None)  # named, but not made again
        if func is None:
            return
        draws = code.co_name in RANDOM_INITS and kwargs.get("generator") is None
        self._add(func, (), kwargs, target, draws, known)

    def _mark_post_init(self) -> None:
        hf = sys.modules.get("transformers.modeling_utils")
        pretrained = getattr(hf, "PreTrainedModel", None)
        if pretrained is None:
            return
        code = pretrained.post_init.__code__
        frame: FrameType | None = sys._getframe(2)
        while frame is not None and frame.f_code is not code:
            frame = frame.f_back
        if frame is None:
            return
        model = frame.f_locals.get("self")
        if not isinstance(model, nn.Module) or id(model) in self._seen_post_init:
            return
        self._seen_post_init.add(id(model))
        slots = tuple(
            (weakref.ref(m), key, p)
            for m in model.modules()
            for key, p in m._parameters.items()
            if p is not None
        )
        self.events.append(PostInit(weakref.ref(model), slots))

    @property
    def model_init(self) -> bool:
        """Whether code beyond the modules' own reset methods set values: a transformers
        post_init, a `self.apply(fn)`, or a constructor writing into a parameter itself."""
        return any(isinstance(e, PostInit) or not (e.in_reset or e.creates) for e in self.events)


_TRACES: weakref.WeakKeyDictionary[nn.Module, Trace] = weakref.WeakKeyDictionary()


def remember(model: nn.Module, trace: Trace) -> None:
    _TRACES[model] = trace


def trace_of(model: nn.Module) -> Trace | None:
    """The trace recorded while `model` was built on meta (building.build_meta), if any."""
    return _TRACES.get(model)
