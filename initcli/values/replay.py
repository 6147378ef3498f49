"""Replay a meta build's recorded writes and draws on real tensors, one parameter at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from initcli.init import schemes, torch_defaults
from initcli.init.schemes import Expectation
from initcli.model import building, record
from initcli.values.items import Item, Ring, StreamError

# Writes that set every element of their target whatever it held before.
_OVERWRITES = frozenset(
    (*record.RANDOM_METHODS, "fill_", "zero_", "copy_")
)  # nn.init's fills (all overwrite) are recognized by their module


@dataclass(frozen=True)
class Plan:
    """The writes of a real build in its order, and for each parameter which of them decide it.

    `writes`: the recorded writes, with transformers' post_init weight init (which a meta build
    skips) run on meta where the real build runs it. `span[name] = (first, last)`: the parameter
    is materialized at writes[first] (the last write that sets all of it) and final after
    writes[last]. `missing[name]`: why a parameter's values cannot be replayed.
    """

    writes: tuple[record.Write, ...]
    span: dict[str, tuple[int, int]]
    missing: dict[str, str]


def plan(model: nn.Module, trace: record.Trace) -> Plan:
    """What replaying `trace` reproduces for each parameter of `model` (its meta build)."""
    writes, failure = _expand(model, trace)
    params = {
        record.storage(p): (n, p)
        for n, p in model.named_parameters()
        if not building.is_uninitialized(p)
    }
    span: dict[str, tuple[int, int]] = {}
    missing: dict[str, str] = {}
    if failure is not None:
        return Plan(tuple(writes), {}, {n: failure for n, _ in params.values()})
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    opaque: dict[str, str] = {}
    lost: int | None = None  # the first draw that cannot be replayed: the stream is lost there
    for i, w in enumerate(writes):
        why = _why_not(w)
        if why is not None and w.draws and lost is None:
            lost = i
        if w.target is None or record.storage(w.target) not in params:
            continue
        name, p = params[record.storage(w.target)]
        last[name] = i
        if why is not None:
            first[name] = i
            opaque[name] = why
        elif overwrites(w, p):
            first[name] = i
            opaque.pop(name, None)
    for name, _p in params.values():
        if name in opaque:
            missing[name] = opaque[name]
        elif name not in first:
            missing[name] = "its value comes from constructor code that writes no tensor in place"
        elif lost is not None and last[name] >= lost:
            missing[name] = f"{writes[lost].name} drew from the random stream in a way not replayed"
        else:
            span[name] = (first[name], last[name])
    return Plan(tuple(writes), span, missing)


def stream(
    model: nn.Module, trace: record.Trace, seed: int, device: torch.device
) -> Iterator[Item]:
    """torch.manual_seed(seed), then every recorded write in order: on the parameter's real
    tensor while it is being decided, on scratch memory otherwise (draws still advance the random
    stream exactly as the real build's). Each parameter is handed out after its last write;
    memory ≈ the largest tensor, plus the parameters decided by interleaved writes."""
    decided = plan(model, trace)
    expected = torch_defaults.default_expectations(model)
    held = schemes.owners(model)
    named = dict(model.named_parameters())
    by_storage = {
        record.storage(p): n for n, p in named.items() if not building.is_uninitialized(p)
    }
    starts = {first: n for n, (first, _) in decided.span.items()}
    ends: dict[int, list[str]] = {}
    for n, (_, end) in decided.span.items():
        ends.setdefault(end, []).append(n)
    sizes = [p.untyped_storage().nbytes() for n, p in named.items() if n in decided.span]
    ring = Ring(max(sizes, default=0), device)
    live: dict[str, tuple[torch.Tensor, Any]] = {}
    torch.manual_seed(seed)

    def take(t: torch.Tensor) -> tuple[torch.Tensor, Any]:
        # The ring only while no other parameter is being set: the drawing thread then never
        # waits for memory that only it could give back (only measured items release theirs).
        if live:
            return torch.empty(t.untyped_storage().nbytes(), dtype=torch.uint8, device=device), None
        return ring.take(_bytes_like(t))

    for i, w in enumerate(decided.writes):
        if i in starts:
            name = starts[i]
            live[name] = take(named[name])
        owner = by_storage.get(record.storage(w.target)) if w.target is not None else None
        try:
            if owner is not None and owner in live:
                _run(w, live[owner][0])
            elif w.draws and _why_not(w) is None:
                _scratch(w, take, device)
        except Exception as exc:
            where = f" on {owner}" if owner else ""
            raise StreamError(
                f"replaying {w.name}{where} failed: {type(exc).__name__}: {exc}"
            ) from None

        for done in ends.get(i, []):
            block, release = live.pop(done)
            p = named[done]
            yield Item(done, held[id(p)][1], p, _view(block, p), expected[done], release)
    for name, p in named.items():
        if building.is_uninitialized(p):
            yield Item(name, held[id(p)][1], p, None, Expectation("uninitialized (lazy)"))
        elif name in decided.missing:
            exp = Expectation(f"not replayed ({decided.missing[name]})")
            yield Item(name, held[id(p)][1], p, None, exp)


def _expand(model: nn.Module, trace: record.Trace) -> tuple[list[record.Write], str | None]:
    """The trace's writes, each transformers post_init followed by the weight init it runs in a
    real build (`initialize_weights`, on meta here, with the parameters as they were before
    post_init tied any), or a reason why that init could not be run."""
    writes: list[record.Write] = []
    flags = {id(m): m.__dict__.get("_is_hf_initialized") for m in model.modules()}
    try:
        for event in trace.events:
            if isinstance(event, record.Write):
                writes.append(event)
                continue
            failure = _run_post_init(event, writes)
            if failure is not None:
                return writes, failure
    finally:
        for m in model.modules():
            if flags.get(id(m)) is None:
                m.__dict__.pop("_is_hf_initialized", None)
    return writes, None


def _run_post_init(event: record.PostInit, writes: list[record.Write]) -> str | None:
    before = event.params
    final = [(m, key, m._parameters[key]) for m, key, _ in before]
    for m, key, p in before:
        m._parameters[key] = p  # type: ignore[assignment]  # a Parameter, typed as a Tensor
    inner = record.Trace()
    try:
        with building.on_meta(trace=inner):
            event.model.initialize_weights()  # type: ignore[operator]
    except Exception as exc:
        name = type(event.model).__name__
        return f"{name}.initialize_weights() failed on meta: {type(exc).__name__}: {exc}"
    finally:
        for m, key, kept in final:
            m._parameters[key] = kept
    writes.extend(e for e in inner.events if isinstance(e, record.Write))
    return None


def _why_not(w: record.Write) -> str | None:
    """Why a write cannot be replayed on real tensors, or None."""
    if not w.replayable:
        return f"{w.name} could not be recorded to be made again"
    if w.kwargs.get("generator") is not None:
        return f"{w.name} draws from a generator of its own"
    if w.target is None:
        return None  # a factory: its tensor arguments are replaced by real ones of their shape
    given = w.args if w.creates else w.args[1:]
    others = [*given, *(v for k, v in w.kwargs.items() if k != "tensor")]
    if any(isinstance(a, torch.Tensor) and a.is_meta for a in _flat(others)):
        return f"{w.name} reads other tensors' values"
    return None


def _flat(values: list[Any]) -> Iterator[Any]:
    for v in values:
        if isinstance(v, tuple | list):
            yield from _flat(list(v))
        else:
            yield v


def overwrites(w: record.Write, p: torch.Tensor) -> bool:
    """Whether write `w` sets every element of parameter `p`, whatever it held before."""
    t = w.target
    assert t is not None
    whole = (
        t.numel() == p.numel()
        and t.storage_offset() == p.storage_offset()
        and t.is_contiguous()
        and p.is_contiguous()
    )
    init_fill = getattr(w.func, "__module__", None) == "torch.nn.init"
    return whole and (w.creates or init_fill or w.name in _OVERWRITES)


def _bytes_like(t: torch.Tensor) -> torch.Tensor:
    return torch.empty(t.untyped_storage().nbytes(), dtype=torch.uint8, device="meta")


def _view(block: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """`t`'s view (shape, strides, offset) of its storage, on the real bytes `block`."""
    typed = block.view(t.dtype)
    # as_strided's offset counts from the start of the whole storage, which `block` may be a
    # slice of (a region of the ring).
    return typed.as_strided(t.size(), t.stride(), typed.storage_offset() + t.storage_offset())


def _run(w: record.Write, real: torch.Tensor) -> None:
    assert w.target is not None
    args, kwargs = list(w.args), dict(w.kwargs)
    target = _view(real, w.target)
    if w.creates:
        with torch.no_grad():
            target.copy_(w.func(*args, **{**kwargs, "device": target.device}))
        return
    if args and args[0] is w.target:
        args[0] = target
    else:
        kwargs["tensor"] = target
    with torch.no_grad():
        w.func(*args, **kwargs)


def _scratch(
    w: record.Write,
    take: Callable[[torch.Tensor], tuple[torch.Tensor, Any]],
    device: torch.device,
) -> None:
    """A draw whose values no parameter keeps: made on scratch memory, for the random stream."""
    if w.target is None:
        args = [_real(a, device) for a in w.args]
        kwargs = {k: _real(v, device) for k, v in w.kwargs.items()}
        explicit = kwargs.get("device")
        if not any(isinstance(a, torch.Tensor) for a in args) and (
            explicit is None or torch.device(explicit).type == "meta"
        ):
            kwargs["device"] = device  # where the real build, under torch.device(dev), draws
        with torch.no_grad():
            w.func(*args, **kwargs)
        return
    block, release = take(w.target)
    try:
        _run(w, block)
    finally:
        if release is not None:
            release()


def _real(value: Any, device: torch.device) -> Any:
    # Only the shape matters (the draw's values are thrown away); ones are valid probabilities,
    # rates and standard deviations for every random factory.
    if isinstance(value, torch.Tensor) and value.is_meta:
        return torch.ones(value.shape, dtype=value.dtype, device=device)
    return value
