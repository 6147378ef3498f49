"""A model's values one tensor at a time (values_of), peak memory ≈ its largest tensor."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from initcli.init import assign, policy, schemes, stacking, torch_defaults, usercode
from initcli.init.schemes import Expectation, Scheme
from initcli.model import building, record
from initcli.values import replay
from initcli.values.items import Item, Ring, StreamError


def values_of(
    model: nn.Module,
    chosen: policy.Policy,
    seed: int,
    device: torch.device,
    *,
    streamed: bool,
    choices: Mapping[str, tuple[Scheme, str]] | None = None,
    target: str = "the model",
) -> tuple[Iterator[Item], tuple[str, ...]]:
    """Each parameter of `model` under `chosen` and the seeding contract (docs/contract/schemes.md),
    one at a time, and the remarks the user's init code made (its code runs here, at once).

    `streamed`: `model` is meta-built and each value is drawn on `device` while it is measured
    (`named`, or `default` for torch's defaults); else `model` is built for real (seeded before
    the build where its constructors are the init) and set in place. `choices`: auto's or a
    policy's per-parameter schemes (see assign.apply_chosen).
    """
    if streamed and chosen.is_default:
        return default(model, seed, device), ()
    if streamed:
        return named(model, chosen.weight, chosen.bias, seed, device, choices), ()
    if chosen.is_default:
        return in_memory(model, torch_defaults.default_expectations(model).items()), ()
    if chosen.code is not None:
        done = usercode.run(chosen.code, model, seed, target)
        return in_memory(model, done.expectations.items()), done.remarks
    drawn = assign.initialize_iter(model, chosen.weight, chosen.bias, seed, choices)
    return in_memory(model, drawn), ()


def _contiguous_bytes(params: Iterable[torch.Tensor]) -> int:
    return max(
        (p.numel() * p.element_size() for p in params if p.is_contiguous()),
        default=0,
    )


def in_memory(model: nn.Module, expected: Iterable[tuple[str, Expectation]]) -> Iterator[Item]:
    """The parameters of a model built for real, as `expected` (e.g. assign.initialize_iter,
    which sets each parameter just before yielding it) goes through them."""
    held = schemes.owners(model)
    params = dict(model.named_parameters())
    for name, exp in expected:
        param = params[name]
        tensor = None if building.is_uninitialized(param) else param.detach()
        yield Item(name, held[id(param)][1], param, tensor, exp)


def named(
    model: nn.Module,
    weight: Scheme,
    bias: Scheme,
    seed: int,
    device: torch.device,
    choices: Mapping[str, tuple[Scheme, str]] | None = None,
) -> Iterator[Item]:
    """Stream a named scheme over a meta-built model under the seeding contract (see
    docs/contract/schemes.md).

    torch.manual_seed(seed), then for each parameter in named_parameters() order: an empty tensor
    of its shape, dtype and layout on `device`, the scheme's torch.nn.init call on it, and the
    tensor handed out to be measured. The random stream is consumed by the same calls on tensors
    of the same shapes in the same order as `assign.initialize` on a real build, so the values
    are identical. Each tensor's memory is reused once the caller calls its `release`.
    `choices` gives auto's or a policy's per-parameter schemes (see assign.apply_chosen).
    """
    held = schemes.owners(model)
    params = [p for p in model.parameters() if not building.is_uninitialized(p)]
    ring = Ring(_contiguous_bytes(params), device)
    torch.manual_seed(seed)
    for name, param in model.named_parameters():
        module = held[id(param)][1]
        if building.is_uninitialized(param):
            yield Item(name, module, param, None, Expectation("uninitialized (lazy)"))
            continue
        chosen = assign.choose(weight, bias, module, name, param, choices)
        if chosen.is_default:  # pragma: no cover - callers stream only fully named schemes
            raise ValueError("streaming needs a named scheme for every parameter")
        tensor, release = ring.take(param)
        stack = stacking.stack_of(module, name.rpartition(".")[2], param)
        exp = assign.apply_chosen(chosen, name, tensor, choices, stack)
        yield Item(name, module, param, tensor, exp, release)


# --- default: each module's own reset_parameters, one module at a time ---------------------------

RESET_METHODS = ("reset_parameters", "_reset_parameters")


def reset_method(module: nn.Module) -> str | None:
    """The name of the method that draws a module's default init (MultiheadAttention and
    nn.Transformer call theirs `_reset_parameters`), or None."""
    for method in RESET_METHODS:
        if callable(getattr(module, method, None)):
            return method
    return None


@dataclass(frozen=True)
class DefaultPlan:
    """What a streamed default init can and cannot reproduce, known before anything is drawn."""

    # Modules that hold parameters directly but have no reset method: their values come from
    # constructor code that only a real build runs.
    without_reset: tuple[str, ...]
    # Layers that a real build deep-copies from their first sibling (nn.TransformerEncoder and
    # nn.TransformerDecoder do): streaming copies them too instead of drawing new numbers.
    copies: tuple[str, ...] = ()
    # Why code beyond the reset methods (transformers' post_init, a `self.apply(fn)`, constructor
    # code writing into parameters) sets values the reset replay does not reproduce, or None.
    model_init: str | None = None
    # With a model-level init the recorded build is replayed instead (initcli.values.replay): the
    # parameters whose values that replay cannot reproduce, each with why.
    not_replayed: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Step:
    """One module in processing order: children before parents, each module once.

    A module's tensors are final once its `sealer` has run: the outermost ancestor-or-self with a
    reset method (a parent's reset may overwrite its children: MultiheadAttention zeroes
    out_proj.bias, nn.Transformer redraws every matrix below it), or the last copy of it.
    `source` is the module it is a deep copy of, for layers cloned by a Transformer container.
    """

    name: str
    module: nn.Module
    sealer: nn.Module
    source: nn.Module | None


_CLONING = (nn.TransformerEncoder, nn.TransformerDecoder)


def _steps(model: nn.Module) -> list[_Step]:
    # A Transformer container deep-copies one layer: layers[0] is drawn, layers[i] copies it.
    copy_of: dict[int, nn.Module] = {}
    last_copy: dict[int, nn.Module] = {}
    for container in model.modules():
        if isinstance(container, _CLONING) and len(container.layers) > 1:
            first = container.layers[0]
            for layer in list(container.layers)[1:]:
                for a, b in zip(layer.modules(), first.modules(), strict=True):
                    copy_of[id(a)] = b
            for b in first.modules():
                last_copy[id(b)] = container.layers[-1]
    order: list[_Step] = []
    seen: set[int] = set()

    def walk(module: nn.Module, prefix: str, above: nn.Module | None) -> None:
        # `above`: the outermost ancestor whose reset runs after this module's and may change it.
        if id(module) in seen:
            return
        seen.add(id(module))
        source = copy_of.get(id(module))
        draws = source is None and reset_method(module) is not None
        if above is not None:
            sealer = above
        elif id(module) in last_copy:
            sealer = last_copy[id(module)]  # the first layer lives until its last copy is made
        else:
            sealer = module
        if above is None and draws and id(module) not in last_copy:
            above = module
        for key, child in module._modules.items():
            if child is not None:
                walk(child, f"{prefix}.{key}" if prefix else key, above)
        order.append(_Step(prefix or "(root)", module, sealer, source))

    walk(model, "", None)
    return order


def plan_default(model: nn.Module) -> DefaultPlan:
    trace = record.trace_of(model)
    if trace is not None and trace.model_init:
        not_replayed = tuple(replay.plan(model, trace).missing.items())
        return DefaultPlan((), (), model_init_reason(model), not_replayed)
    steps = _steps(model)
    missing = [
        s.name
        for s in steps
        if s.source is None
        and reset_method(s.module) is None
        and any(not building.is_uninitialized(p) for p in s.module.parameters(recurse=False))
    ]
    copies = [s.name for s in steps if s.source is not None and s.name.rsplit(".", 1)[-1].isdigit()]
    return DefaultPlan(tuple(missing), tuple(copies))


def model_init_reason(model: nn.Module) -> str | None:
    """What sets values beyond the modules' reset methods, as recorded by the meta build
    (building.build_meta), or None: then replaying each module's reset is exact."""
    trace = record.trace_of(model)
    if trace is None or not trace.model_init:
        return None
    inits = [e for e in trace.events if isinstance(e, record.PostInit)]
    if inits:
        return f"transformers' _init_weights (run by {type(inits[-1].model).__name__}.post_init)"
    writes = [e for e in trace.events if isinstance(e, record.Write) and not e.in_reset]
    if any(e.in_apply for e in writes):
        return "a model-level init (self.apply(fn) in the constructor)"
    return f"constructor code outside reset_parameters ({writes[0].name})"


def default(model: nn.Module, seed: int, device: torch.device) -> Iterator[Item]:
    """Stream the modules' own init over a meta-built model: torch.manual_seed(seed), then each
    module's reset method, children before parents, on real tensors that live only until no
    ancestor's reset can change them (layers a Transformer container deep-copies are copied).

    This reproduces a real build exactly when the constructors draw their numbers by calling those
    methods in that order, as torch's own layers do; see docs/guide/inspecting.md for the cases it
    does not (tensors a reset method leaves alone are reported without values, never as garbage).
    A model whose meta build recorded a model-level init (see `model_init_reason`) is instead
    replayed write by write from that record (initcli.values.replay), which includes that init.
    """
    trace = record.trace_of(model)
    if trace is not None and trace.model_init:
        yield from replay.stream(model, trace, seed, device)
        return
    expected = torch_defaults.default_expectations(model)
    held = schemes.owners(model)
    names = {id(p): n for n, p in model.named_parameters()}
    # Every (module, key) slot that holds each tensor: tied tensors are installed everywhere.
    slots: dict[int, list[tuple[nn.Module, str]]] = {}
    for module in model.modules():
        for key, p in module._parameters.items():
            if p is not None:
                slots.setdefault(id(p), []).append((module, key))
    live: dict[int, nn.Parameter] = {}  # meta parameter id → its real stand-in
    originals: dict[int, dict[str, nn.Parameter]] = {}  # module id → its own meta parameters
    saved_buffers: dict[int, dict[str, torch.Tensor]] = {}
    steps = _steps(model)
    by_sealer: dict[int, list[nn.Module]] = {}
    for step in steps:
        by_sealer.setdefault(id(step.sealer), []).append(step.module)

    def install(meta: torch.Tensor, value: torch.Tensor) -> None:
        for owner, key in slots[id(meta)]:
            owner._parameters[key] = value  # type: ignore[assignment]

    def stand_in(p: torch.Tensor) -> nn.Parameter:
        real = nn.Parameter(torch.empty_like(p, device=device), p.requires_grad)
        if real.is_floating_point() and real.numel():
            # A NaN in the first element marks the tensor unwritten: one a reset method leaves
            # alone would otherwise be reported from uninitialized memory.
            real.data[(0,) * real.dim()] = float("nan")
        return real

    torch.manual_seed(seed)
    for step in steps:
        module = step.module
        own = {k: p for k, p in module._parameters.items() if p is not None}
        originals[id(module)] = own
        scratch: dict[str, torch.Tensor] = {}
        for key, p in own.items():
            if building.is_uninitialized(p):
                continue
            if held[id(p)][1] is module:
                live[id(p)] = stand_in(p)
                install(p, live[id(p)])
            else:
                # A tensor tied to an earlier module: a real build drew this module's own weight
                # and then replaced it, so the draw is made (to keep the random stream aligned)
                # into a scratch tensor that is thrown away.
                scratch[key] = stand_in(p)
                module._parameters[key] = scratch[key]  # type: ignore[assignment]
        saved_buffers[id(module)] = {k: b for k, b in module._buffers.items() if b is not None}
        for key, b in saved_buffers[id(module)].items():
            module._buffers[key] = torch.empty_like(b, device=device)
        if step.source is not None:
            with torch.no_grad():
                for key, value in [*module._parameters.items(), *module._buffers.items()]:
                    origin = step.source._parameters.get(key, step.source._buffers.get(key))
                    if value is not None and origin is not None and origin.device == value.device:
                        value.copy_(origin)
        elif (method := reset_method(module)) is not None:
            try:
                with torch.no_grad():
                    getattr(module, method)()
            except Exception as exc:
                raise StreamError(
                    f"{step.name}.{method}() failed: {type(exc).__name__}: {exc}"
                ) from exc
        for key, p in own.items():
            if key in scratch:
                module._parameters[key] = live.get(id(p), p)
        for sealed in by_sealer.get(id(module), []):
            for p in originals.pop(id(sealed)).values():
                real = live.pop(id(p), None)
                if real is None:
                    continue
                pname = names[id(p)]
                install(p, p)
                if _unwritten(real):
                    kind = type(held[id(p)][1]).__name__
                    exp = Expectation(f"not reproduced ({kind} has no reset method that sets it)")
                    yield Item(pname, held[id(p)][1], p, None, exp)
                else:
                    yield Item(pname, held[id(p)][1], p, real.detach(), expected[pname])
            sealed._buffers.update(saved_buffers.pop(id(sealed)))
    for pname, p in model.named_parameters():
        if building.is_uninitialized(p):
            yield Item(pname, held[id(p)][1], p, None, Expectation("uninitialized (lazy)"))


def _unwritten(t: torch.Tensor) -> bool:
    return t.is_floating_point() and t.numel() > 0 and bool(torch.isnan(t[(0,) * t.dim()]))
